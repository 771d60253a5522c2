"""Dataset wrappers: a class subset, a K-shot split and an image subset.

:class:`ImageSubsetDataset` keeps the images listed in a text file (a
train / val split drawn by :func:`rcnn_plugin.datasets.stratified_split`).
The few-shot wrappers below keep every instance they do not use as
``ignore_flag=1`` rather than deleting it.

Few-shot wrappers (a class subset and a K-shot split):

Both keep every instance they do not use as ``ignore_flag=1`` rather than
deleting it: mmdet's ``PackDetInputs`` moves ignored instances to
``ignored_instances``, so with the default assigner they are background
(TFA's behaviour), and with ``assigner.ignore_iof_thr > 0`` they are
excluded from the negatives. Instances of classes outside the subset get
``bbox_label=-1``.
"""
import copy
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmdet.registry import DATASETS
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from .errors import AnnotationError
from .k_shot import load_split, sample_k_shot, save_split
from .stats import labelled_cat_ids


def prepare_or_refetch(prepare: Callable[[int], Optional[dict]], idx: int,
                       num: int, test_mode: bool, max_refetch: int,
                       path_of: Callable[[int], str]) -> dict:
    """mmengine's ``BaseDataset.__getitem__`` rule for a pipeline that
    returns None (a crop without boxes, an empty image): in training,
    another image drawn at random, up to ``max_refetch`` times; in test
    mode, an error. The error names the last image tried.

    Args:
        prepare (Callable): Index -> the pipeline's output or None.
        idx (int): The index asked for.
        num (int): The number of images to draw from.
        test_mode (bool): Whether the dataset is in test mode.
        max_refetch (int): Images drawn after the first.
        path_of (Callable): Index -> its image path, for the error.

    Returns:
        dict: The first output that is not None.
    """
    for tries in range(1, max_refetch + 2):
        data = prepare(idx)
        if data is not None:
            return data
        if test_mode or tries > max_refetch:
            break
        idx = np.random.randint(0, num)  # another image, as mmengine does
    raise RuntimeError(
        f'the pipeline returned None for image {path_of(idx)} ('
        + ('test mode: no other image is drawn)' if test_mode else
           f'and for the {tries - 1} other images drawn after it); check '
           'the image files and the pipeline (RandomCrop without '
           'allow_negative_crop, FilterAnnotations, ...)'))


@DATASETS.register_module()
class ClassSubsetDataset:
    """Restrict a detection dataset to some of its classes.

    Labels are renumbered in the order of ``classes`` (e.g. base training
    on BCCD's ``('RBC',)``); instances of other classes become ignored with
    label -1. Images are all kept, also those left without an instance.

    The wrapped dataset is ``self.source`` (not ``dataset``: helpers such as
    :func:`rcnn_plugin.datasets.class_instance_counts` unwrap ``.dataset``
    chains and would count the unrestricted data).

    Args:
        dataset (BaseDataset | dict): The dataset or its config.
        classes (Sequence[str], optional): Classes to keep, in the order
            wanted; each must be a class of ``dataset``. None keeps all.
            Defaults to None.
        lazy_init (bool): Defer loading until ``full_init``. Defaults to
            False.
    """

    def __init__(self,
                 dataset: Union[BaseDataset, dict],
                 classes: Optional[Sequence[str]] = None,
                 lazy_init: bool = False) -> None:
        self.source = DATASETS.build(dataset) if isinstance(
            dataset, dict) else dataset
        inner = tuple(self.source.metainfo['classes'])
        self.classes = inner if classes is None else tuple(classes)
        unknown = [c for c in self.classes if c not in inner]
        if unknown or len(set(self.classes)) != len(self.classes):
            raise ValueError(f'classes {list(self.classes)} must be distinct '
                             f'classes of the dataset {list(inner)}; '
                             f'unknown: {unknown}')
        self._new_label = {inner.index(c): i
                           for i, c in enumerate(self.classes)}
        meta = copy.deepcopy(self.source.metainfo)
        meta['classes'] = self.classes
        if meta.get('palette') and len(meta['palette']) == len(inner):
            meta['palette'] = [meta['palette'][inner.index(c)]
                               for c in self.classes]
        self._metainfo = meta
        self.data_list: List[dict] = []
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self) -> dict:
        """Meta information with the kept classes (a copy)."""
        return copy.deepcopy(self._metainfo)

    def _relabel(self, info: dict) -> dict:
        info = copy.deepcopy(info)
        for inst in info.get('instances', []):
            label = self._new_label.get(inst['bbox_label'], -1)
            if label < 0:
                inst['ignore_flag'] = 1
            inst['bbox_label'] = label
        return info

    def full_init(self) -> None:
        """Load the inner dataset and relabel its data infos."""
        if self._fully_initialized:
            return
        self.source.full_init()
        self.data_list = [self._relabel(self.source.get_data_info(i))
                          for i in range(len(self.source))]
        self._fully_initialized = True

    def get_data_info(self, idx: int) -> dict:
        """Data info of image ``idx`` (a copy), labels renumbered.

        Args:
            idx (int): Image index.

        Returns:
            dict: The data info.
        """
        return copy.deepcopy(self.data_list[idx])

    def get_cat_ids(self, idx: int) -> List[int]:
        """Labels of the non-ignored instances (for ClassBalancedDataset
        and ClassAwareSampler).

        Args:
            idx (int): Image index.

        Returns:
            list[int]: Labels.
        """
        return labelled_cat_ids(self.data_list[idx].get('instances', []))

    def __getitem__(self, idx: int) -> dict:
        return prepare_or_refetch(
            lambda i: self.source.pipeline(self.get_data_info(i)), idx,
            len(self), bool(getattr(self.source, 'test_mode', False)),
            getattr(self.source, 'max_refetch', 1000),
            lambda i: self.data_list[i].get('img_path', f'#{i}'))

    def __len__(self) -> int:
        return len(self.data_list)


@DATASETS.register_module()
class KShotDataset(ClassSubsetDataset):
    """Exactly K annotated instances per class, chosen with a seed (TFA).

    Selection (:func:`rcnn_plugin.datasets.k_shot.select_class`): per class,
    images holding the class are visited in a seeded random order and
    taken while their instances of the class fit in K; a dense class whose
    images all exceed the rest of the budget gets a random subset of one
    image's instances. The dataset holds the chosen images once each; an
    instance counts as annotated only if it was chosen for its class, every
    other instance in those images (other classes, surplus instances) is
    kept as ignored. This is TFA's protocol, except that an image chosen for
    two classes appears once with both classes' picks instead of twice.

    The split (image ids and instance indices per class, with K, seed and
    classes) is written to ``split_file``; when that file exists it is read
    back instead, and must match K, seed and classes.

    Args:
        dataset (BaseDataset | dict): The full training set or its config.
        shots (int): K, at least 1.
        seed (int): Seed of the draw. Defaults to 0.
        classes (Sequence[str], optional): Classes to keep (as
            :class:`ClassSubsetDataset`). Defaults to None.
        split_file (str, optional): JSON file to write, or to read if it
            exists; ``{shots}`` and ``{seed}`` in it are filled in, so one
            config serves every seed. Defaults to None (not saved).
        lazy_init (bool): Defer loading. Defaults to False.
    """

    def __init__(self,
                 dataset: Union[BaseDataset, dict],
                 shots: int,
                 seed: int = 0,
                 classes: Optional[Sequence[str]] = None,
                 split_file: Optional[str] = None,
                 lazy_init: bool = False) -> None:
        self.shots = shots
        self.seed = seed
        self.split_file = split_file.format(
            shots=shots, seed=seed) if split_file else None
        super().__init__(dataset, classes, lazy_init)

    def full_init(self) -> None:
        """Relabel, then draw (or read) the split and keep its images."""
        if self._fully_initialized:
            return
        super().full_init()
        infos = self.data_list
        args = (infos, self.classes, self.shots, self.seed)
        if self.split_file and osp.isfile(self.split_file):
            selection = load_split(self.split_file, *args)
            how = f'read from {self.split_file}'
        else:
            selection = sample_k_shot(*args)
            how = 'drawn'
            if self.split_file:
                save_split(self.split_file, selection, *args)
                how += f', written to {self.split_file}'
        chosen = {}
        for insts_by_pos in selection.values():
            for pos, inds in insts_by_pos.items():
                chosen.setdefault(pos, set()).update(inds)
        data_list = []
        for pos in sorted(chosen):
            info = infos[pos]
            for j, inst in enumerate(info['instances']):
                if j not in chosen[pos]:
                    inst['ignore_flag'] = 1
            data_list.append(info)
        self.data_list = data_list
        print_log(f'KShotDataset: {self.shots}-shot split (seed '
                  f'{self.seed}) {how}: {len(data_list)} images for '
                  f'{len(self.classes)} classes', logger='current')


def _read_img_list(path: str) -> List[Tuple[int, str]]:
    """Non-blank lines of an image list as ``(line number, entry)``."""
    try:
        with open(path, encoding='utf-8-sig') as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise FileNotFoundError(f'img_list {path} does not exist') from None
    entries = [(n, line.strip()) for n, line in enumerate(lines, 1)
               if line.strip()]
    if not entries:
        raise AnnotationError(path, 'lists no images: an image list needs '
                              'one image path (relative to data_root) per '
                              'line')
    return entries


def _norm(path: str) -> str:
    return osp.normpath(path.replace('\\', '/'))


@DATASETS.register_module()
class ImageSubsetDataset:
    """Keep the images listed in a text file, in the file's order.

    Each non-blank line of ``img_list`` is an image path relative to the
    wrapped dataset's ``data_root`` (as :func:`stratified_split` writes
    them) or an absolute path. A line that matches no image of the dataset,
    or repeats an image, is an :class:`AnnotationError` naming the file and
    line. Metainfo, ``test_mode``, ``get_data_info`` (for mmdet's
    ``AspectRatioBatchSampler``) and ``get_cat_ids`` pass through.

    The wrapped dataset is ``self.source`` (as in
    :class:`ClassSubsetDataset`: helpers that unwrap ``.dataset`` chains
    would count every image). The readers' problem counts
    (``bad_images``, ``dropped_boxes``, ...) are forwarded from it and
    cover the whole wrapped dataset.

    Args:
        dataset (BaseDataset | dict): The dataset or its config.
        img_list (str): The text file of image paths.
        lazy_init (bool): Defer reading until ``full_init``. Defaults to
            False.
    """

    _FORWARDED = ('bad_images', 'unknown_class_counts', 'dropped_boxes',
                  'clipped_boxes', 'skipped_shapes', 'pipeline', 'data_root')

    def __init__(self,
                 dataset: Union[BaseDataset, dict],
                 img_list: str,
                 lazy_init: bool = False) -> None:
        if isinstance(dataset, dict):
            self.source = DATASETS.build(dataset)
        elif hasattr(dataset, 'get_data_info'):
            self.source = dataset
        else:
            raise TypeError('dataset must be a dataset config or a dataset,'
                            f' got {type(dataset).__name__}')
        self.img_list = img_list
        self.indices: List[int] = []
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    def __getattr__(self, name: str):
        if name in self._FORWARDED and 'source' in self.__dict__:
            return getattr(self.source, name)
        raise AttributeError(
            f'{type(self).__name__!r} object has no attribute {name!r}')

    @property
    def metainfo(self) -> dict:
        """Meta information of the wrapped dataset (a copy)."""
        return copy.deepcopy(self.source.metainfo)

    @property
    def test_mode(self) -> bool:
        """``test_mode`` of the wrapped dataset."""
        return bool(getattr(self.source, 'test_mode', False))

    def full_init(self) -> None:
        """Load the wrapped dataset and match the listed images."""
        if self._fully_initialized:
            return
        self.source.full_init()
        root = getattr(self.source, 'data_root', None) or ''
        by_path: Dict[str, int] = {}
        for i in range(len(self.source)):
            path = self.source.get_data_info(i)['img_path']
            by_path.setdefault(_norm(osp.relpath(path, root) if root
                                     else path), i)
            by_path.setdefault(_norm(osp.abspath(path)), i)
        seen: Dict[int, int] = {}
        for lineno, entry in _read_img_list(self.img_list):
            idx = by_path.get(_norm(entry))
            if idx is None:
                raise AnnotationError(
                    self.img_list, f'{entry!r} matches no image of the '
                    f'dataset ({len(self.source)} images under {root!r}; '
                    'paths are relative to its data_root, and images that '
                    'filter_cfg removes cannot be listed)', lineno)
            if idx in seen:
                raise AnnotationError(
                    self.img_list, f'{entry!r} is listed twice (first on '
                    f'line {seen[idx]})', lineno)
            seen[idx] = lineno
        self.indices = list(seen)
        self._fully_initialized = True

    def _source_idx(self, idx: int) -> int:
        if not self._fully_initialized:
            self.full_init()
        return self.indices[idx]

    def get_data_info(self, idx: int) -> dict:
        """Data info of the ``idx``-th listed image.

        Args:
            idx (int): Index in the list.

        Returns:
            dict: The wrapped dataset's data info.
        """
        return self.source.get_data_info(self._source_idx(idx))

    def get_cat_ids(self, idx: int) -> List[int]:
        """Category ids of the ``idx``-th listed image.

        Args:
            idx (int): Index in the list.

        Returns:
            list[int]: The labels, as the wrapped dataset gives them.
        """
        return self.source.get_cat_ids(self._source_idx(idx))

    def __getitem__(self, idx: int) -> dict:
        prepare = getattr(self.source, 'prepare_data', None)
        if prepare is None:
            return self.source[self._source_idx(idx)]
        return prepare_or_refetch(
            lambda i: prepare(self._source_idx(i)), idx, len(self),
            self.test_mode, getattr(self.source, 'max_refetch', 1000),
            lambda i: self.get_data_info(i)['img_path'])

    def __len__(self) -> int:
        if not self._fully_initialized:
            self.full_init()
        return len(self.indices)
