"""The data of an incremental step: new-class labels only."""
from typing import Sequence, Union

from mmdet.registry import DATASETS
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from rcnn_plugin.datasets import ClassSubsetDataset


@DATASETS.register_module()
class NewClassDataset(ClassSubsetDataset):
    """The training data of a step: the new classes, numbered after the old.

    Labels follow the student's classes ``old_classes + new_classes``
    (:class:`ClassSubsetDataset` renumbers them). Instances of an old class
    are removed: in a step the old classes are not labelled. New data that
    still labels an old class is an error, or with
    ``on_old_labels='warn'`` a counted warning (this is how a benchmark
    simulates a step on a fully labelled dataset such as BCCD). Instances
    of classes outside both lists stay ignored, as in
    :class:`ClassSubsetDataset`. The inner dataset must list every old and
    new class (e.g. ``metainfo=dict(classes=...)``).

    Args:
        dataset (BaseDataset | dict): The dataset or its config.
        old_classes (Sequence[str]): Classes of the previous model.
        new_classes (Sequence[str]): Classes added in this step.
        on_old_labels (str): 'error' or 'warn' (drop them and say how
            many). Defaults to 'error'.
        drop_images_without_new (bool): Drop the images that have no
            new-class instance. Defaults to True.
        lazy_init (bool): Defer loading until ``full_init``. Defaults to
            False.
    """

    def __init__(self,
                 dataset: Union[BaseDataset, dict],
                 old_classes: Sequence[str],
                 new_classes: Sequence[str],
                 on_old_labels: str = 'error',
                 drop_images_without_new: bool = True,
                 lazy_init: bool = False) -> None:
        if on_old_labels not in ('error', 'warn'):
            raise ValueError("on_old_labels must be 'error' or 'warn', got "
                             f'{on_old_labels!r}')
        clash = [c for c in new_classes if c in old_classes]
        if clash:
            raise ValueError(f'new_classes {list(new_classes)} collide with '
                             f'old_classes {list(old_classes)}: {clash}')
        self.old_classes = tuple(old_classes)
        self.new_classes = tuple(new_classes)
        self.on_old_labels = on_old_labels
        self.drop_images_without_new = drop_images_without_new
        self.num_old_labels = 0
        self.num_dropped_images = 0
        super().__init__(dataset, classes=self.old_classes + self.new_classes,
                         lazy_init=lazy_init)

    def _relabel(self, info: dict) -> dict:
        info = super()._relabel(info)
        insts = info.get('instances', [])
        kept = [i for i in insts
                if not 0 <= i['bbox_label'] < len(self.old_classes)]
        self.num_old_labels += len(insts) - len(kept)
        info['instances'] = kept
        return info

    def full_init(self) -> None:
        """Load, relabel, and check that no old class is labelled."""
        if self._fully_initialized:
            return
        self.num_old_labels = 0
        super().full_init()
        counts = {c: 0 for c in self.new_classes}
        keep = []
        for i in range(len(self)):
            labels = self.get_cat_ids(i)
            for label in labels:
                counts[self.classes[label]] += 1
            keep.append(bool(labels) or not self.drop_images_without_new)
        self.num_dropped_images = keep.count(False)
        if self.num_dropped_images:
            print_log(
                f'{self.num_dropped_images} of {len(keep)} images have no '
                f'new-class instance ({list(self.new_classes)}) and are '
                'dropped (drop_images_without_new=True)', logger='current',
                level=30)
            self.data_list = [d for d, k in zip(self.data_list, keep) if k]
        print_log(f'new-class instances: {counts} in {len(self)} images',
                  logger='current')
        empty = [c for c, n in counts.items() if not n]
        if empty:  # a head row trained on background only, silently
            self._fully_initialized = False
            source = getattr(self.source, 'ann_file', '') or getattr(
                self.source, 'data_root', '') or type(self.source).__name__
            raise ValueError(
                f'NewClassDataset: the new class(es) {empty} have no '
                f'instance in {source} ({len(self)} images kept of '
                f'{len(keep)}): check new_classes against the data\'s class '
                'names')
        if not self.num_old_labels:
            return
        msg = (f'the new data labels {self.num_old_labels} instances of the '
               f'old classes {list(self.old_classes)}')
        if self.on_old_labels == 'error':
            self._fully_initialized = False
            raise ValueError(f'{msg}; a step trains on new-class labels '
                             "only. Set on_old_labels='warn' to drop them.")
        print_log(f'{msg}: dropped (on_old_labels=warn)', logger='current',
                  level=30)
