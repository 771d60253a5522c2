"""Unlabelled view of a labelled dataset: its boxes are never handed on."""
import copy
from typing import Union

from mmdet.registry import DATASETS
from mmengine.dataset import BaseDataset

__all__ = ['UnlabelledDataset']


@DATASETS.register_module()
class UnlabelledDataset:
    """Wrap a dataset and hand out its images with no instances.

    For the target domain of unsupervised adaptation: whatever boxes the
    wrapped reader parsed, ``get_data_info`` and ``__getitem__`` give
    ``instances=[]``, so no pipeline, sampler or model can read target
    labels. An empty dataset is an error (an empty unlabelled loader
    would make adaptation a silent no-op).

    Args:
        dataset (BaseDataset | dict): The dataset or its config; it needs
            a ``pipeline`` (e.g. ``LoadImageFromFile`` and
            ``MultiBranch``).
        lazy_init (bool): Defer loading until ``full_init``.
            Defaults to False.
    """

    # rcnn_plugin's config doctor does not count the classes of a dataset
    # that says it is unlabelled (its empty_data check).
    unlabelled = True

    def __init__(self, dataset: Union[BaseDataset, dict],
                 lazy_init: bool = False) -> None:
        self.source = (DATASETS.build(dataset) if isinstance(dataset, dict)
                       else dataset)
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self) -> dict:
        """Meta information of the wrapped dataset (a copy)."""
        return copy.deepcopy(self.source.metainfo)

    def full_init(self) -> None:
        """Load the wrapped dataset; refuse an empty one."""
        if self._fully_initialized:
            return
        self.source.full_init()
        if len(self.source) == 0:
            raise ValueError(
                f'the unlabelled target dataset ({type(self.source).__name__}'
                f' under {getattr(self.source, "data_root", None)!r}) has no '
                'images: check its data_root, ann_file and split')
        self._fully_initialized = True

    def get_data_info(self, idx: int) -> dict:
        """The wrapped data info without its instances.

        Args:
            idx (int): Image index.

        Returns:
            dict: Image path, size and id; ``instances`` is empty.
        """
        info = copy.deepcopy(self.source.get_data_info(idx))
        info['instances'] = []
        info.pop('ann_path', None)
        return info

    def __getitem__(self, idx: int) -> dict:
        return self.source.pipeline(self.get_data_info(idx))

    def __len__(self) -> int:
        self.full_init()
        return len(self.source)
