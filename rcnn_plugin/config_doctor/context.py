"""What the checks look at: the config, a lazily built model and datasets.

The command-line tool lets the context build everything from the config;
the training hook hands over the runner's model and training dataset so
that nothing is built twice.
"""
import copy
import os
from typing import Any, Dict, Iterator, List, Optional, Tuple

import torch.nn as nn
from mmengine.config import Config, ConfigDict
from mmengine.dataset import BaseDataset
from mmengine.model import is_model_wrapper

from rcnn_plugin.datasets.config_tree import iter_dataset_cfgs

__all__ = ['SPLITS', 'DoctorContext', 'dataset_classes', 'detector_cfg',
           'iter_class_cfgs', 'iter_dataset_cfgs', 'prepare_registries']

SPLITS = ('train', 'val', 'test')


def prepare_registries(cfg: Config) -> None:
    """Import ``custom_imports`` and set mmdet's default registry scope.

    Args:
        cfg (Config): The config whose modules must be resolvable.
    """
    from mmdet.utils import register_all_modules
    from mmengine.registry import init_default_scope
    from mmengine.utils import import_modules_from_strings
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    register_all_modules(init_default_scope=False)
    init_default_scope(cfg.get('default_scope', 'mmdet'))


def detector_cfg(model_cfg: dict) -> Tuple[str, dict]:
    """The detector's config and its key.

    mmdet's semi-supervised models (``SemiBaseDetector``, ``SoftTeacher``)
    and our teacher-student ones wrap the detector as ``model.detector``;
    other models are the detector.

    Args:
        model_cfg (dict): ``cfg.model``.

    Returns:
        tuple[str, dict]: ``('model.detector', cfg.model.detector)`` or
        ``('model', cfg.model)``.
    """
    if model_cfg.get('backbone') is None and isinstance(
            model_cfg.get('detector'), dict):
        return 'model.detector', model_cfg['detector']
    return 'model', model_cfg


def _declared_classes(ds_cfg: dict) -> Optional[Tuple[str, ...]]:
    """A wrapper's own classes: ``classes``, or ``old_classes`` followed
    by ``new_classes`` (an incremental step's ``NewClassDataset``)."""
    if isinstance(ds_cfg.get('classes'), (list, tuple)):
        return tuple(ds_cfg['classes'])
    old, new = ds_cfg.get('old_classes'), ds_cfg.get('new_classes')
    if isinstance(old, (list, tuple)) and isinstance(new, (list, tuple)):
        return tuple(old) + tuple(new)
    return None


def iter_class_cfgs(ds_cfg: Any, key: str) -> Iterator[Tuple[dict, str]]:
    """Like :func:`iter_dataset_cfgs`, but stop at a wrapper that declares
    its own ``classes`` (e.g. ``ClassSubsetDataset``, ``KShotDataset``) or
    ``old_classes`` + ``new_classes`` (``NewClassDataset``): its classes,
    not the wrapped dataset's, are what the model sees.

    Args:
        ds_cfg (Any): A dataset config (dict) or anything else (ignored).
        key (str): Its dotted config key.

    Yields:
        tuple[dict, str]: Each config that decides the classes, and its key.
    """
    if isinstance(ds_cfg, dict) and _declared_classes(ds_cfg) is not None:
        yield ds_cfg, key
    elif isinstance(ds_cfg, dict) and isinstance(ds_cfg.get('dataset'),
                                                 dict):
        yield from iter_class_cfgs(ds_cfg['dataset'], f'{key}.dataset')
    elif isinstance(ds_cfg, dict) and isinstance(ds_cfg.get('datasets'),
                                                 (list, tuple)):
        for i, sub in enumerate(ds_cfg['datasets']):
            yield from iter_class_cfgs(sub, f'{key}.datasets[{i}]')
    else:
        yield from iter_dataset_cfgs(ds_cfg, key)


def dataset_classes(ds_cfg: dict) -> Optional[Tuple[str, ...]]:
    """Classes a dataset config will have, without building it.

    ``metainfo=dict(classes=...)`` in the config wins over the class's
    ``METAINFO``, as in mmengine's ``BaseDataset``.

    Args:
        ds_cfg (dict): A leaf dataset config, or a wrapper with its own
            ``classes`` (see :func:`iter_class_cfgs`).

    Returns:
        tuple[str, ...] | None: The class names, or None when unknown.
    """
    from mmdet.registry import DATASETS
    declared = _declared_classes(ds_cfg)  # class wrappers
    if declared is not None:
        return declared
    meta = ds_cfg.get('metainfo') or {}
    if isinstance(meta, dict) and isinstance(meta.get('classes'),
                                             (list, tuple)):
        return tuple(meta['classes'])
    ds_type = ds_cfg.get('type')
    cls = DATASETS.get(ds_type) if isinstance(ds_type, str) else ds_type
    classes = getattr(cls, 'METAINFO', {}).get('classes')
    return tuple(classes) if classes else None


def _build_dataset(ds_cfg: dict) -> BaseDataset:
    """Build a dataset without serialising its data list: mmengine's
    serialisation fails on an empty list with "need at least one array to
    concatenate", and an empty dataset is what the checks report."""
    from mmdet.registry import DATASETS
    ds_cfg = copy.deepcopy(ds_cfg)
    for leaf, _ in iter_dataset_cfgs(ds_cfg, ''):
        leaf['serialize_data'] = False
    dataset = DATASETS.build(ds_cfg)
    dataset.full_init()
    return dataset


class DoctorContext:
    """Config plus the objects the checks need, built on first use.

    Args:
        cfg (Config): The merged config.
        model (nn.Module, optional): An already built model (the runner's);
            wrappers such as DDP are unwrapped. Built from ``cfg.model`` if
            None. Defaults to None.
        datasets (dict[str, BaseDataset], optional): Already built datasets
            by split (``'train'``, ``'val'``, ``'test'``). Defaults to None.
        world_size (int, optional): Number of training processes. Defaults
            to ``$WORLD_SIZE`` or 1.
        build_datasets (bool): Whether datasets missing from ``datasets``
            may be built from the config. Defaults to True.
    """

    def __init__(self,
                 cfg: Config,
                 model: Optional[nn.Module] = None,
                 datasets: Optional[Dict[str, BaseDataset]] = None,
                 world_size: Optional[int] = None,
                 build_datasets: bool = True) -> None:
        if not isinstance(cfg, (Config, ConfigDict, dict)):
            raise TypeError(f'cfg must be an mmengine Config, got {type(cfg)}')
        self.cfg = cfg
        if model is not None and is_model_wrapper(model):
            model = model.module
        self._model = model
        self._datasets: Dict[str, Optional[BaseDataset]] = dict(datasets or {})
        self.world_size = int(world_size or os.environ.get('WORLD_SIZE', 1))
        self.build_datasets = build_datasets

    @property
    def model(self) -> nn.Module:
        """The detector, built from ``cfg.model`` (without loading weights)
        on first use."""
        if self._model is None:
            from mmdet.registry import MODELS
            self._model = MODELS.build(copy.deepcopy(self.cfg.model))
        return self._model

    def dataset_cfg(self, split: str) -> Optional[dict]:
        """The dataset config of ``{split}_dataloader``, or None.

        Args:
            split (str): ``'train'``, ``'val'`` or ``'test'``.

        Returns:
            dict | None: ``cfg.{split}_dataloader.dataset``.
        """
        loader = self.cfg.get(f'{split}_dataloader')
        return loader.get('dataset') if isinstance(loader, dict) else None

    def dataset(self, split: str) -> Optional[BaseDataset]:
        """The dataset of a split, built (and fully initialised) on first
        use; None when the config has none or building is not allowed.

        Args:
            split (str): ``'train'``, ``'val'`` or ``'test'``.

        Returns:
            BaseDataset | None: The dataset, after ``filter_cfg``.
        """
        if split in self._datasets:
            return self._datasets[split]
        ds_cfg = self.dataset_cfg(split)
        dataset = None
        if ds_cfg is not None and self.build_datasets:
            # test_dataloader is often val_dataloader: build it once.
            for other in SPLITS:
                if self._datasets.get(other) is not None and \
                        self.dataset_cfg(other) == ds_cfg:
                    dataset = self._datasets[other]
                    break
            else:
                dataset = _build_dataset(ds_cfg)
        self._datasets[split] = dataset
        return dataset

    def splits(self) -> List[str]:
        """Splits whose dataloader the config defines.

        Returns:
            list[str]: A subset of ``('train', 'val', 'test')``.
        """
        return [s for s in SPLITS if self.dataset_cfg(s) is not None]
