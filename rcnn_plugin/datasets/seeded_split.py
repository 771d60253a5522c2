"""A seeded split of a dataset without split files, kept in a file.

Datasets such as bcd (``../shared/datasets/bcd``) come as one table with
no train / test lists. :class:`SeededSplitDataset` draws a
class-stratified split with :func:`stratified_split` the first time it is
built, writes it to ``split_dir`` (``train.txt``, ``val.txt`` and
``split.json`` with the seed and fraction), and reads the same files on
every later build, so the division is reproducible and can be inspected or
committed. Two configs that share ``split_dir`` (e.g. the unlabelled
target part and the test part of a domain-adaptation run) see the same
division.
"""
import json
import os.path as osp
from typing import Any, Dict

from mmdet.registry import DATASETS

from ..utils.fileio import atomic_open
from .dataset_wrappers import ImageSubsetDataset, _norm, _read_img_list
from .val_split import stratified_split

__all__ = ['SeededSplitDataset', 'ensure_split']

_PARTS = ('train', 'val')


def ensure_split(dataset: dict, split_dir: str, fraction: float,
                 seed: int) -> Dict[str, str]:
    """Write the split into ``split_dir`` once; check it on later calls.

    Args:
        dataset (dict): Config of the dataset to split.
        split_dir (str): Folder of ``train.txt``, ``val.txt`` and
            ``split.json``.
        fraction (float): Share of images drawn for ``val``, in (0, 1).
        seed (int): Seed of the draw.

    Returns:
        dict[str, str]: Part name (``train``, ``val``) to its list file.

    Raises:
        ValueError: ``split.json`` records another seed or fraction.
    """
    meta_path = osp.join(split_dir, 'split.json')
    files = {p: osp.join(split_dir, f'{p}.txt') for p in _PARTS}
    wanted: Dict[str, Any] = dict(seed=seed, fraction=fraction)
    if osp.isfile(meta_path):
        with open(meta_path, encoding='utf-8') as f:
            found = json.load(f)
        if {k: found.get(k) for k in wanted} != wanted:
            raise ValueError(
                f'{meta_path} records a split with {found}, not {wanted}; '
                'use another split_dir or delete the old split')
        if all(osp.isfile(f) for f in files.values()):
            return files
    stratified_split(dataset, fraction, seed, split_dir)
    with atomic_open(meta_path, encoding='utf-8') as f:
        json.dump(wanted, f)
    return files


@DATASETS.register_module()
class SeededSplitDataset(ImageSubsetDataset):
    """One part of a seeded, class-stratified split written to a folder.

    Args:
        dataset (dict): Config of the dataset to split (its pipeline is
            the one used).
        split_dir (str): Folder of the split files; written on first use.
        part (str): ``'train'`` or ``'val'``. Defaults to 'train'.
        fraction (float): Share of images in ``val``. Defaults to 0.3.
        seed (int): Seed of the draw. Defaults to 0.
        lazy_init (bool): Defer reading until ``full_init``. Defaults to
            False.
    """

    def __init__(self,
                 dataset: dict,
                 split_dir: str,
                 part: str = 'train',
                 fraction: float = 0.3,
                 seed: int = 0,
                 lazy_init: bool = False) -> None:
        if part not in _PARTS:
            raise ValueError(f'part must be one of {_PARTS}, got {part!r}')
        if not isinstance(dataset, dict):
            raise TypeError('dataset must be a dataset config (a dict), got '
                            f'{type(dataset).__name__}')
        files = ensure_split(dict(dataset), split_dir, fraction, seed)
        self.part, self.split_files = part, files
        super().__init__(dataset, files[part], lazy_init=lazy_init)

    def full_init(self) -> None:
        """Match the listed images; an image of the dataset that neither
        part lists (added after the split was drawn) is an error, not an
        image silently left out of both."""
        if self._fully_initialized:
            return
        super().full_init()
        root = getattr(self.source, 'data_root', None) or ''
        listed = {_norm(entry) for path in self.split_files.values()
                  for _, entry in _read_img_list(path)}
        unlisted = []
        for i in range(len(self.source)):
            path = self.source.get_data_info(i)['img_path']
            rel = _norm(osp.relpath(path, root) if root else path)
            if rel not in listed and _norm(osp.abspath(path)) not in listed:
                unlisted.append(rel)
        if unlisted:
            self._fully_initialized = False  # a second call checks again
            folder = osp.dirname(self.split_files['train'])
            raise ValueError(
                f'{len(unlisted)} image(s) of the dataset are in neither part '
                f'of the split in {folder} (e.g. {unlisted[0]}): added after '
                'the split was drawn? Delete the folder to draw the split '
                'again (or choose another split_dir)')
