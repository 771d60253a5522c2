"""The steps of a one-command fine-tune before the Runner starts.

Each step prints what it found and raises :class:`FinetuneError` (a
sentence for the user) when the data cannot be trained on as it is.
"""
import copy
from collections import Counter
from typing import Dict, List, Optional, Sequence, Tuple

from mmdet.registry import DATASETS
from mmengine.dataset import BaseDataset

from rcnn_plugin.datasets.native import NativeDetDataset

__all__ = [
    'FinetuneError', 'bad_image_lines', 'build_split', 'class_counts',
    'check_cfg_options', 'check_val_classes', 'layout_summary',
    'resolve_splits', 'skip_bad_images'
]


class FinetuneError(RuntimeError):
    """The data or the options cannot be fine-tuned on; a sentence."""


# --cfg-options keys that the tool derives other values from: set through
# the flag, or the lr, epochs and schedule stay those of the old value.
_DERIVED = {'train_dataloader.batch_size': '--batch-size',
            'optim_wrapper.optimizer.lr': '--lr',
            'train_cfg.max_epochs': '--epochs'}


def check_cfg_options(options: Optional[dict]) -> None:
    """Refuse ``--cfg-options`` keys that have their own flag.

    Args:
        options (dict, optional): The parsed ``--cfg-options``.

    Raises:
        FinetuneError: Naming the flag to use instead.
    """
    for key, flag in _DERIVED.items():
        if key in (options or {}):
            raise FinetuneError(
                f'--cfg-options {key}: use {flag} instead (the tool fits '
                'the lr, epochs, warm-up and decay to it; set through '
                '--cfg-options they would stay fitted to the default)')


def _inner(cfg: dict) -> dict:
    """The innermost dataset config of wrappers."""
    while 'dataset' in cfg:
        cfg = cfg['dataset']
    return cfg


def skip_bad_images(cfg: dict) -> dict:
    """Make a native reader count and list bad images instead of failing.

    Its own class check only warns: the fine-tune checks the classes of
    the training and validation splits together (:func:`check_val_classes`)
    and says more than one split can.

    Args:
        cfg (dict): A dataset config (or a wrapper of one).

    Returns:
        dict: A copy with ``on_bad_image='skip'`` and
        ``check_classes='warn'`` where the reader has them.
    """
    cfg = copy.deepcopy(cfg)
    inner = _inner(cfg)
    cls = DATASETS.get(inner['type'])
    if isinstance(cls, type) and issubclass(cls, NativeDetDataset):
        inner.update(on_bad_image='skip', check_classes='warn')
    return cfg


def layout_summary(layout) -> List[str]:
    """Lines that say what was found in the data folder.

    Args:
        layout (DatasetLayout): The detected layout.

    Returns:
        list[str]: Lines for the console.
    """
    lines = [
        f'[finetune] data: {layout.data_root} ({layout.fmt}; splits: '
        f'{", ".join(layout.splits)}; train on {layout.train_split!r}, '
        f'validate on {layout.val_split!r})',
        f'[finetune] {len(layout.classes)} classes from '
        f'{layout.class_source}: {", ".join(layout.classes)}',
    ]
    return lines + [f'[finetune] note: {note}' for note in layout.notes]


def resolve_splits(layout, val_fraction: float, seed: int,
                   split_dir: str) -> Tuple[Dict[str, dict], List[str]]:
    """train / val / test dataset configs, splitting off val if needed.

    Args:
        layout (DatasetLayout): The detected layout.
        val_fraction (float): Share of the training images held out when
            the data has no validation split.
        seed (int): Seed of that split.
        split_dir (str): Where the split's image lists are written.

    Returns:
        tuple[dict[str, dict], list[str]]: Configs for ``'train'``,
        ``'val'`` and ``'test'`` (the validation split when the data has
        no separate test split), and lines for the console.
    """
    from rcnn_plugin.datasets.layouts import stratified_split
    train = skip_bad_images(layout.splits[layout.train_split])
    lines = []
    if layout.val_split is None:
        if not 0 < val_fraction < 1:
            raise FinetuneError(
                f'the data has no validation split and --val-fraction is '
                f'{val_fraction}; give a fraction in (0, 1), e.g. 0.2')
        train, val = stratified_split(train, val_fraction, seed, split_dir)
        lines.append(
            f'[finetune] no validation split in the data: held out '
            f'{val_fraction:.0%} of {layout.train_split!r}, stratified by '
            f'class, seed {seed}; image lists in {split_dir}/')
    else:
        val = skip_bad_images(layout.splits[layout.val_split])
    test_name = 'test' if 'test' in layout.splits else None
    if test_name in (None, layout.val_split, layout.train_split):
        test = val
    else:
        test = skip_bad_images(layout.splits[test_name])
        lines.append(f'[finetune] the best checkpoint is evaluated on '
                     f'{test_name!r} after training')
    return dict(train=train, val=val, test=test), lines


def build_split(cfg: dict, test_mode: bool) -> BaseDataset:
    """Build a dataset config without a pipeline, fully indexed.

    Args:
        cfg (dict): A dataset config (or a wrapper of one).
        test_mode (bool): mmdet's ``test_mode``.

    Returns:
        BaseDataset: The built dataset.
    """
    cfg = copy.deepcopy(cfg)
    _inner(cfg).update(pipeline=[], test_mode=test_mode)
    dataset = DATASETS.build(cfg)
    dataset.full_init()
    return dataset


def _data_infos(dataset: BaseDataset) -> List[dict]:
    return [dataset.get_data_info(i) for i in range(len(dataset))]


def class_counts(dataset: BaseDataset) -> Counter:
    """Non-ignored instances per label.

    Args:
        dataset (BaseDataset): A built detection dataset.

    Returns:
        Counter: Label to count.
    """
    return Counter(inst['bbox_label'] for info in _data_infos(dataset)
                   for inst in info.get('instances', [])
                   if not inst.get('ignore_flag', 0))


def check_val_classes(train: BaseDataset, val: BaseDataset,
                      classes: Sequence[str]) -> Optional[str]:
    """Refuse a class that only the validation split has.

    Args:
        train (BaseDataset): The training set.
        val (BaseDataset): The validation set.
        classes (Sequence[str]): Class names.

    Returns:
        str | None: A warning for classes absent from both, or from the
        validation split only; None.

    Raises:
        FinetuneError: If a class has validation instances but no
            training instance.
    """
    train_counts, val_counts = class_counts(train), class_counts(val)
    only_val = [c for i, c in enumerate(classes)
                if val_counts[i] and not train_counts[i]]
    if only_val:
        counts = ', '.join(
            str(val_counts[list(classes).index(c)]) for c in only_val)
        raise FinetuneError(
            f'classes {only_val} have objects in the validation split '
            f'({counts} of them) but none in the training split: the model '
            'cannot learn them. Move some of their images into the '
            'training split, or remove their objects from the annotations.')
    notes = []
    missing = [c for i, c in enumerate(classes) if not train_counts[i]]
    if missing:
        notes.append(f'classes {missing} have no object in the training or '
                     'the validation split; they are kept in the head but '
                     'cannot be learned')
    unseen = [c for i, c in enumerate(classes)
              if train_counts[i] and not val_counts[i]]
    if unseen:  # mmdet's VOC mAP leaves a class without ground truth out
        notes.append(f'classes {unseen} have no object in the validation '
                     'split: the validation mAP, the best checkpoint and '
                     'early stopping do not see them; give the validation '
                     'split some')
    return '; '.join(notes) or None


def bad_image_lines(datasets: Sequence[BaseDataset]) -> List[str]:
    """List the images the readers skipped because they do not decode.

    Args:
        datasets (Sequence[BaseDataset]): Built datasets (wrappers too).

    Returns:
        list[str]: Console lines (empty when none was skipped).
    """
    bad = {}
    for dataset in datasets:
        while hasattr(dataset, 'dataset'):
            dataset = dataset.dataset
        bad.update(getattr(dataset, 'bad_images', {}) or {})
    if not bad:
        return []
    lines = [f'[finetune] skipped {len(bad)} image(s) that are missing or '
             'do not decode:']
    return lines + [f'  {msg}' for msg in sorted(bad)]
