"""A seeded, class-stratified train / val split for data without a val set.

Images are grouped by the rarest class they hold (the class in the fewest
images; images without objects form their own group) and each group gives
the same share of its images to val, so rare classes reach val instead of
being left to chance. Then every class with at least 2 images is given at
least one val image and every class keeps at least one train image, where
moving an image can do that without taking another class's last one.
"""
import copy
import os
import os.path as osp
import random
from collections import Counter, defaultdict
from typing import Dict, List, Set, Tuple

from mmdet.registry import DATASETS

from ..utils.fileio import atomic_open
from .config_tree import set_test_mode, update_inner_dataset_cfg

__all__ = ['stratified_split']

_NEGATIVE = -1


def _draw(labels: List[Set[int]], fraction: float, seed: int) -> Set[int]:
    """Indices of the val images."""
    counts = Counter(c for ls in labels for c in ls)
    groups: Dict[int, List[int]] = defaultdict(list)
    for i, ls in enumerate(labels):
        key = min(ls, key=lambda c: (counts[c], c)) if ls else _NEGATIVE
        groups[key].append(i)
    rng = random.Random(seed)
    val: Set[int] = set()
    for key in sorted(groups):
        members = list(groups[key])
        rng.shuffle(members)
        n = len(members)
        take = int(n * fraction + 0.5)
        if key != _NEGATIVE:
            take = max(take, 1)
        val.update(members[:min(take, n - 1)])
    _balance(labels, counts, val, rng)
    return val


def _balance(labels: List[Set[int]], counts: Counter, val: Set[int],
             rng: random.Random) -> None:
    """Give each class a train image, then (if it has 2+) a val image."""
    in_val = Counter(c for i in val for c in labels[i])
    for c in sorted(counts):
        if in_val[c] == counts[c]:  # no train image left: take one back
            i = rng.choice(sorted(i for i in val if c in labels[i]))
            val.discard(i)
            in_val.subtract(labels[i])
    for c in sorted(counts):
        if counts[c] < 2 or in_val[c]:
            continue
        movable = [i for i, ls in enumerate(labels) if c in ls and i not in
                   val and all(counts[d] - in_val[d] > 1 for d in ls)]
        if movable:
            i = rng.choice(movable)
            val.add(i)
            in_val.update(labels[i])
    if not val:  # e.g. only single-image classes and no negatives
        movable = [i for i, ls in enumerate(labels)
                   if all(counts[d] > 1 for d in ls)]
        val.add(rng.choice(movable or list(range(len(labels)))))


def _write(path: str, lines: List[str]) -> None:
    with atomic_open(path, encoding='utf-8') as f:
        f.write(''.join(line + '\n' for line in sorted(lines)))


def stratified_split(dataset_cfg: dict, val_fraction: float, seed: int,
                     out_dir: str) -> Tuple[dict, dict]:
    """Split a dataset into train and val image lists, class-stratified.

    The dataset is built (``pipeline=[]``) and its images are split as the
    module docstring says. ``out_dir/train.txt`` and ``out_dir/val.txt``
    get the image paths relative to the dataset's ``data_root``, one per
    line, sorted. The same seed gives the same files.

    Args:
        dataset_cfg (dict): A dataset config (its pipeline is kept in the
            returned configs).
        val_fraction (float): Share of each group drawn for val, in (0, 1).
        seed (int): Seed of the draw.
        out_dir (str): Folder for ``train.txt`` and ``val.txt``.

    Returns:
        tuple[dict, dict]: Train and val configs, each
        ``dict(type='ImageSubsetDataset', dataset=<dataset_cfg>,
        img_list=<file>)``; the val one sets ``test_mode=True`` in its
        dataset config (and drops ``filter_cfg``'s ``bbox_min_size``).
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f'val_fraction must be in (0, 1), got '
                         f'{val_fraction!r}')
    cfg = copy.deepcopy(dict(dataset_cfg))
    dataset = DATASETS.build(
        update_inner_dataset_cfg(copy.deepcopy(cfg), pipeline=[]))
    dataset.full_init()
    root = getattr(dataset, 'data_root', None) or ''
    paths, labels = [], []
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        paths.append(osp.relpath(info['img_path'], root) if root
                     else info['img_path'])
        labels.append({inst['bbox_label'] for inst in info['instances']
                       if not inst.get('ignore_flag', 0)
                       and inst['bbox_label'] >= 0})
    if len(paths) < 2:
        raise ValueError(
            f'cannot split {len(paths)} image(s) of {cfg.get("type")} under'
            f' {root!r} into train and val: it needs at least 2 images; '
            'label more images or give a val set.')
    val = _draw(labels, val_fraction, seed)
    os.makedirs(out_dir, exist_ok=True)
    files = {name: osp.join(out_dir, f'{name}.txt') for name in
             ('train', 'val')}
    _write(files['train'], [p for i, p in enumerate(paths) if i not in val])
    _write(files['val'], [paths[i] for i in val])
    train_cfg = dict(type='ImageSubsetDataset', dataset=copy.deepcopy(cfg),
                     img_list=files['train'])
    # set_test_mode drops filter_cfg's bbox_min_size, on which mmdet's
    # XMLDataset asserts not test_mode (a bare AssertionError).
    val_cfg = dict(type='ImageSubsetDataset',
                   dataset=set_test_mode(copy.deepcopy(cfg)),
                   img_list=files['val'])
    return train_cfg, val_cfg
