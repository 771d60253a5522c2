"""Finders for the text label formats: YOLO and KITTI.

YOLO class names come from ``data.yaml`` / ``data.yml`` (the one nearest
the data root) first, then from the names file nearest the data root
(``classes.txt``, ``obj.names``, Roboflow's ``_darknet.labels``). When
several files disagree, each file and its list is named in the notes.
"""
import os.path as osp
from typing import Dict, List, Optional, Tuple

from ..errors import AnnotationError
from ..kitti import KITTI_CLASSES
from ..yolo import LIST_FILES, read_class_names
from .base import Found, split_name
from .scan import FolderIndex, path_parts, read_head

__all__ = ['find_yolo', 'find_kitti', 'yolo_names']

_YAML_FILES = ('data.yaml', 'data.yml')
_NAME_FILES = ('classes.txt', 'obj.names', '_darknet.labels',
               'classes.names')
_NOT_LABELS = LIST_FILES + ('classes.txt', 'labels.txt', 'readme.txt',
                            'license.txt', 'readme.roboflow.txt')
_SAMPLE = 5


def _label_files(index: FolderIndex, rel_dir: str) -> List[str]:
    return [n for n in index.files[rel_dir]
            if n.lower().endswith('.txt') and n.lower() not in _NOT_LABELS
            and not n.lower().startswith('readme')]


def _is_yolo_dir(index: FolderIndex, rel_dir: str) -> Optional[str]:
    """'yolo' or 'yolo-poly' if the sampled label files are YOLO,
    'empty' if they are all empty (a split of negatives)."""
    kinds = [index.kind(osp.join(rel_dir, n))
             for n in _label_files(index, rel_dir)[:_SAMPLE]]
    yolo = [k for k in kinds if k.startswith('yolo')]
    other = [k for k in kinds if k in ('other', 'kitti')]
    if kinds and set(kinds) == {'empty'}:
        return 'empty'
    if not yolo or len(other) > len(yolo):
        return None
    return 'yolo-poly' if 'yolo-poly' in yolo else 'yolo'


def _yolo_image_dir(index: FolderIndex, ann: str) -> Optional[str]:
    parts = path_parts(ann)
    if 'labels' in parts:
        i = len(parts) - 1 - parts[::-1].index('labels')
        img = osp.join(*(parts[:i] + ['images'] + parts[i + 1:]))
        if osp.isdir(index.abs(img)):
            return img
    stems = {osp.splitext(n)[0] for n in index.images(ann)}
    labels = _label_files(index, ann)
    if stems and any(osp.splitext(n)[0] in stems for n in labels):
        return ann  # images and labels side by side
    return None


def yolo_names(index: FolderIndex) -> Tuple[Optional[str], Tuple[str, ...],
                                            List[str]]:
    """Choose the YOLO class-names file and report disagreements.

    Args:
        index (FolderIndex): The folder index.

    Returns:
        tuple: The chosen file (relative, or None), its class names and
        notes.
    """
    files = index.named(_YAML_FILES) + index.named(_NAME_FILES)
    lists: Dict[str, Tuple[str, ...]] = {}
    notes = []
    for rel in files:
        try:
            lists[rel] = read_class_names(index.abs(rel))
        except (AnnotationError, OSError) as err:
            notes.append(f'Could not read class names from {rel}: {err}')
    if not lists:
        return None, (), notes
    chosen = next(iter(lists))
    if len(set(lists.values())) > 1:
        listed = '; '.join(f'{rel}: {list(names)}'
                           for rel, names in lists.items())
        other = next(n for n in lists.values() if n != lists[chosen])
        notes.append(
            f'The class-name files disagree ({listed}). Using {chosen} '
            '(data.yaml first, then the file nearest the data root). To '
            'use another list, give it in label-index order, e.g. '
            f'--classes {" ".join(other)}')
    return chosen, lists[chosen], notes


def _max_label(index: FolderIndex, anns: List[str]) -> int:
    top = -1
    for ann in anns:
        for name in _label_files(index, ann):
            for line in read_head(index.abs(osp.join(ann, name)),
                                  1 << 20).splitlines():
                if line.split() and line.split()[0].isdigit():
                    top = max(top, int(line.split()[0]))
    return top


def _yolo_splits(index: FolderIndex, dirs: List[str]
                 ) -> Tuple[Dict[str, dict], List[str]]:
    pairs, notes = [], []
    for ann in dirs:
        # YOLODataset reads label folders recursively: a folder inside one
        # already chosen (the data root too) is part of it, not a split
        outer = next((a for _, a in pairs if a in ('', '.')
                      or ann.startswith(a + osp.sep)), None)
        if outer is not None:
            if outer in ('', '.'):
                notes.append(f'{ann}: inside the data root, whose labels are '
                             'read recursively; its images are part of that '
                             'split, not a split of their own. Move the '
                             "root's images and labels into a folder of "
                             'their own to keep it apart.')
            continue
        img = _yolo_image_dir(index, ann)
        if img is None:
            notes.append(f'{ann}: YOLO label files without an images folder'
                         ' or images beside them; not used.')
            continue
        pairs.append((img, ann))
    splits: Dict[str, dict] = {}
    for img, ann in pairs:
        name = split_name(path_parts(ann))
        name = ann if name in splits else name
        splits[name] = dict(data_prefix=dict(img=img, ann=ann))
    return splits, notes


def find_yolo(index: FolderIndex) -> Optional[Found]:
    """YOLO txt labels in ``labels/<split>`` beside ``images/<split>``
    (also CVAT's ``obj_train_data`` folders and ``<split>/labels``), or
    beside the images.

    Args:
        index (FolderIndex): The folder index.

    Returns:
        Found | None: What was found, or None.
    """
    kinds = {d: _is_yolo_dir(index, d) for d in sorted(index.files)}
    if not any(k and k != 'empty' for k in kinds.values()):
        return None
    # folders of empty label files count beside real ones (negatives)
    dirs = sorted((d for d, k in kinds.items() if k and (
        k != 'empty' or 'labels' in path_parts(d))),
                  key=lambda d: (len(path_parts(d)), d))
    splits, notes = _yolo_splits(index, dirs)
    if not splits:
        return Found('yolo', {}, (), '', f'YOLO label files in {dirs}',
                     notes)
    names_file, classes, name_notes = yolo_names(index)
    source = names_file
    if names_file is None:
        top = _max_label(index, [c['data_prefix']['ann']
                                 for c in splits.values()])
        classes = tuple(str(i) for i in range(top + 1))
        source = 'the label indices (no names file)'
        name_notes.append(
            'No data.yaml, classes.txt or obj.names found: the classes are '
            f'named by their index {list(classes)}; name them with '
            '--classes (in label-index order).')
    for cfg in splits.values():
        cfg['names_file'] = names_file or False
    num = sum(len(_label_files(index, c['data_prefix']['ann']))
              for c in splits.values())
    return Found('yolo', splits, classes, source,
                 f'{num} YOLO label files in '
                 f'{sorted(c["data_prefix"]["ann"] for c in splits.values())}',
                 notes + name_notes,
                 any(kinds[d] == 'yolo-poly' for d in dirs))


def _kitti_classes(index: FolderIndex, ann: str) -> List[str]:
    found = set()
    for name in _label_files(index, ann):
        for line in read_head(index.abs(osp.join(ann, name)),
                              1 << 20).splitlines():
            if line.split() and line.split()[0] != 'DontCare':
                found.add(line.split()[0])
    known = [c for c in KITTI_CLASSES if c in found]
    return known + sorted(found - set(known))


def find_kitti(index: FolderIndex) -> Optional[Found]:
    """KITTI ``label_2`` folders beside ``image_2`` (``training/`` or the
    root).

    Args:
        index (FolderIndex): The folder index.

    Returns:
        Found | None: What was found, or None. Classes: KITTI's order for
        its own names, then other names sorted.
    """
    splits, classes, num = {}, [], 0
    for ann in sorted(index.files):
        parts = path_parts(ann)
        files = _label_files(index, ann)
        if not parts or parts[-1] != 'label_2' or not files or \
                index.kind(osp.join(ann, files[0])) not in ('kitti', 'empty'):
            continue
        img = osp.join(*(parts[:-1] + ['image_2']))
        if not osp.isdir(index.abs(img)):
            continue
        splits[split_name(parts[:-1])] = dict(
            data_prefix=dict(img=img, ann=ann))
        classes += [c for c in _kitti_classes(index, ann) if c not in classes]
        num += len(files)
    if not splits:
        return None
    return Found('kitti', splits, tuple(classes),
                 f'the annotations ({num} files)',
                 f'{num} KITTI label files in '
                 f'{sorted(c["data_prefix"]["ann"] for c in splits.values())}')
