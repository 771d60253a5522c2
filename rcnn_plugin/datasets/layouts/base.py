"""What a layout finder returns, and how splits are named and chosen."""
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

__all__ = ['FORMATS', 'DatasetLayout', 'Found', 'LayoutError',
           'split_name', 'split_role', 'choose_splits']

FORMATS = ('yolo', 'voc', 'coco', 'via', 'labelme', 'kitti', 'csv')

# Folder names that say what a folder holds, not which split it is.
GENERIC_NAMES = {
    'images', 'image', 'imgs', 'img', 'jpegimages', 'pngimages', 'labels',
    'label', 'annotations', 'annotation', 'anns', 'ann', 'xml', 'xmls',
    'obj_train_data', 'data', 'label_2', 'image_2', 'dataset', 'json',
    'csv', 'via_region_data', 'via_export_json', 'instances', 'coco', '',
}
_ROLES = (('train', ('train', 'training')), ('trainval', ('trainval', )),
          ('val', ('val', 'valid', 'validation', 'dev')),
          ('test', ('test', 'testing')))


class LayoutError(ValueError):
    """A folder matches no format, several formats, or cannot be read.

    ``str(err)`` is a full sentence for a user: what was looked for, what
    was found, the ``--format`` choices and what to do.
    """


@dataclass
class DatasetLayout:
    """A dataset folder as :func:`detect_layout` understood it.

    Args:
        fmt (str): One of ``FORMATS``.
        data_root (str): Absolute path of the dataset folder.
        splits (dict[str, dict]): Split name to a dataset config (no
            ``pipeline`` key) that builds with ``DATASETS.build`` once a
            pipeline is added (add ``test_mode=True`` for a val or test
            split: a class missing there is then logged, not fatal).
        train_split (str): The key of ``splits`` to train on.
        val_split (str, optional): The key of the validation split, None
            if there is none.
        classes (tuple[str, ...]): Class names in label order.
        class_source (str): Where the classes came from: a file relative
            to ``data_root``, ``'--classes'`` or e.g. ``'the annotations
            (12 files)'``.
        notes (list[str]): Sentences for the user (disagreeing class lists,
            unused folders, ...).
        has_masks (bool): The annotations carry polygons or masks.
    """

    fmt: str
    data_root: str
    splits: Dict[str, dict]
    train_split: str
    val_split: Optional[str]
    classes: Tuple[str, ...]
    class_source: str
    notes: List[str] = field(default_factory=list)
    has_masks: bool = False


@dataclass
class Found:
    """What one format's finder saw in a folder (before the configs).

    Args:
        fmt (str): The format.
        splits (dict[str, dict]): Split name to the format-specific config
            keys (``ann_file``, ``data_prefix``, ...), relative to the
            data root.
        classes (tuple[str, ...]): Detected class names.
        class_source (str): Where they came from.
        evidence (str): What was found, for messages (e.g. ``'12 YOLO
            label files in labels/train'``).
        notes (list[str]): Sentences for the user.
        has_masks (bool): The annotations carry polygons.
    """

    fmt: str
    splits: Dict[str, dict]
    classes: Tuple[str, ...]
    class_source: str
    evidence: str
    notes: List[str] = field(default_factory=list)
    has_masks: bool = False


def split_role(name: str) -> Optional[str]:
    """Role of a split name: train, trainval, val or test (or None).

    The whole name is tried first, then its words (split at ``_``, ``-``,
    ``.`` and spaces): a name with one role word whose other words are
    generic (``labels``, ``images``, ...) or digits, such as
    ``train_labels`` or ``test-images``, has that role; one with several
    roles (``train_test``) or other words (``person_keypoints_train2017``,
    ``val2017_subset``) has none.

    Args:
        name (str): A split name such as ``'train2017'`` or ``'valid'``.

    Returns:
        str | None: ``'train'``, ``'trainval'``, ``'val'``, ``'test'`` or
        None for other names.
    """
    base = name.lower().split('/')[-1]
    role = _word_role(base)
    if role is not None:
        return role
    # one role word, the others generic ('labels', 'images') or digits:
    # not person_keypoints_train2017 or captions_val2017 beside COCO's
    # instances files
    words = [w for w in re.split(r'[_\-. ]+', base) if w]
    roles = {_word_role(w) for w in words} - {None}
    others = [w for w in words if _word_role(w) is None]
    if len(roles) == 1 and all(w in GENERIC_NAMES or w.isdigit()
                               for w in others):
        return roles.pop()
    return None


def _word_role(word: str) -> Optional[str]:
    word = re.sub(r'[\d_\-. ]+$', '', word)
    for role, names in _ROLES:
        if word in names:
            return role
    return None


def split_name(parts: Sequence[str]) -> str:
    """Name a split from the path parts that lead to its files.

    Folder names such as ``images`` or ``annotations`` are skipped; the
    last part that is a split name (``train``, ``val2017``...) wins, then
    the last other part; ``'all'`` if nothing is left.

    Args:
        parts (Sequence[str]): Folder names and a cleaned file stem.

    Returns:
        str: The split name.
    """
    names = [p for p in parts if p.lower() not in GENERIC_NAMES]
    for part in reversed(names):
        if split_role(part):
            return part
    return names[-1] if names else 'all'


def choose_splits(names: Sequence[str]) -> Tuple[str, Optional[str],
                                                 List[str]]:
    """Pick the training and the validation split.

    Training: ``train`` (or ``training``, ``train2017``...), else
    ``trainval``, else the only split, else the first split (sorted) that
    is no val/test split, with a note. Validation: a val split, else a test
    split, else None. When training on ``trainval`` a val split is not
    chosen (by VOC convention ``trainval`` holds it, so the best checkpoint
    would be chosen on trained images), nor a test split (its number would
    be biased): None (the caller holds out a val set), with a note.

    Args:
        names (Sequence[str]): The split names found.

    Returns:
        tuple[str, str | None, list[str]]: Train split, val split, notes.
    """
    by_role: Dict[Optional[str], List[str]] = {}
    for name in sorted(names):
        by_role.setdefault(split_role(name), []).append(name)
    notes = []
    train = (by_role.get('train') or by_role.get('trainval') or [None])[0]
    if train is None:
        others = by_role.get(None) or sorted(names)
        train = others[0]
        if len(names) > 1:
            notes.append(
                f'No split is named train: training on {train!r} of the '
                f'splits {sorted(names)}; rename the folders or files '
                '(train, val) to choose.')
    val = (by_role.get('val') or by_role.get('test') or [None])[0]
    if split_role(train) == 'trainval' and by_role.get('val'):
        val = None  # the test split stays clean for the final number
        notes.append(
            f'Training on {train!r}, which holds the val split(s) '
            f"{by_role['val']} by VOC convention: validating on them would "
            'choose the best checkpoint on trained images, and on the test '
            'split would bias its number, so none is chosen: hold a '
            'validation set out of it (tools/finetune.py does, see '
            '--val-fraction).')
    for chosen in (train, val):  # VOC2007 and VOC2012 both have a train
        role = split_role(chosen) if chosen is not None else None
        same = [n for n in by_role.get(role, []) if n != chosen]
        if role is not None and same:
            notes.append(f'Using {chosen!r}; the splits {same} have the '
                         f'same role ({role}) and are not used: merge them '
                         'or give the one to use its own folder.')
    return train, (val if val != train else None), notes
