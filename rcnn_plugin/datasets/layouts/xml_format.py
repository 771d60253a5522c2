"""Finder for Pascal VOC XML: the classic layout and LabelImg folders.

Classic: ``Annotations/``, ``JPEGImages/`` and ``ImageSets/Main/<split>.txt``
(per-class lists such as ``RBC_train.txt`` are skipped). LabelImg: a folder
of XML files (``annotations/``, ``Annotations/`` or beside the images)
without split lists; the images are found from the XML ``<filename>``.

Classes come from a ``classes.txt`` / ``labels.txt`` nearest the data root
if there is one, else from the ``<name>`` tags of every XML file, sorted
alphabetically (so the order does not depend on file order).
"""
import os.path as osp
import xml.etree.ElementTree as ET
from typing import Dict, List, Optional, Set, Tuple

from .base import Found, split_name
from .scan import FolderIndex, find_image_dir, path_parts, read_name_list

__all__ = ['find_voc']

_ANN_NAMES = ('annotations', 'annotation', 'xml', 'xmls', 'labels', 'anns')
_IMG_NAMES = ('JPEGImages', 'images', 'Images', 'imgs', 'img', 'PNGImages')
_CLASS_FILES = ('classes.txt', 'labels.txt')


def _xml_dirs(index: FolderIndex) -> List[str]:
    dirs = []
    for rel, names in sorted(index.files.items()):
        xmls = [n for n in names if n.lower().endswith('.xml')][:3]
        if xmls and all(index.kind(osp.join(rel, n)) == 'voc' for n in xmls):
            dirs.append(rel)
    return dirs


def _read_xml(path: str) -> Tuple[Optional[str], List[str]]:
    """``<filename>`` and the object names of one XML file."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError):
        return None, []  # StrictXMLDataset names the file when it reads it
    names = [(obj.findtext('name') or '').strip()
             for obj in root.findall('object')]
    return root.findtext('filename'), [n for n in names if n]


def _classic(index: FolderIndex, xml_dirs: List[str]) -> Dict[str, dict]:
    splits: Dict[str, dict] = {}
    for ann in xml_dirs:
        parts = path_parts(ann)
        if not parts or parts[-1] != 'Annotations':
            continue
        base = osp.join(*parts[:-1]) if len(parts) > 1 else ''
        lists = osp.join(base, 'ImageSets', 'Main')
        img = next((osp.join(base, n) for n in _IMG_NAMES
                    if osp.isdir(index.abs(osp.join(base, n)))),
                   osp.join(base, 'JPEGImages'))
        for name in index.files.get(lists, ()):
            if not name.endswith('.txt') or '_' in name:
                continue  # per-class lists (RBC_train.txt)
            split = split_name(parts[:-1] + [osp.splitext(name)[0]])
            split = osp.join(base, split) if split in splits else split
            splits[split] = dict(
                ann_file=osp.join(lists, name),
                data_prefix=dict(sub_data_root=''), ann_subdir=ann,
                img_subdir=img)
    return splits


def _image_dir(index: FolderIndex, ann: str, refs: List[str]) -> Optional[
        str]:
    parts = path_parts(ann)
    near = [ann]
    for i in range(len(parts) - 1, -1, -1):
        if parts[i].lower() in _ANN_NAMES:
            near += [osp.join(*(parts[:i] + [n] + parts[i + 1:]))
                     for n in _IMG_NAMES]
            break
    parent = osp.join(*parts[:-1]) if len(parts) > 1 else ''
    near += [osp.join(parent, n) for n in _IMG_NAMES]
    found = find_image_dir(index, refs, near) if all(refs) else None
    if found is not None:
        return found
    # <filename> absent or wrong: an image with the XML's stem, any type
    sample = [osp.splitext(n)[0] for n in index.files[ann]
              if n.lower().endswith('.xml')][:3]
    for cand in near + index.image_dirs():
        have = {osp.splitext(n)[0] for n in index.images(cand)}
        if have and all(stem in have for stem in sample):
            return cand
    return None


def _folders(index: FolderIndex, xml_dirs: List[str], taken: Set[str],
             refs: Dict[str, List[str]]) -> Tuple[Dict[str, dict],
                                                  List[str]]:
    splits: Dict[str, dict] = {}
    notes = []
    for ann in xml_dirs:
        if ann in taken:
            continue
        img = _image_dir(index, ann, refs[ann][:3])
        if img is None:
            notes.append(f'{ann}: VOC XML files whose images '
                         f'{refs[ann][:2]} were not found; not used.')
            continue
        split = split_name(path_parts(ann))
        splits[ann if split in splits else split] = dict(
            ann_file='', data_prefix=dict(sub_data_root=''), ann_subdir=ann,
            img_subdir=img)
    return splits, notes


def _voc_classes(index: FolderIndex, names: Set[str], num: int
                 ) -> Tuple[Tuple[str, ...], str, List[str]]:
    for rel in index.named(_CLASS_FILES):
        listed = read_name_list(index.abs(rel))
        if not listed:
            continue
        notes = []
        missing = sorted(names - set(listed))
        if missing:
            notes.append(f'The XML files name classes {missing} that {rel} '
                         f'does not list ({listed}): add them there or give '
                         'the full list with --classes.')
        return tuple(listed), rel, notes
    return tuple(sorted(names)), f'the annotations ({num} files)', []


def find_voc(index: FolderIndex) -> Optional[Found]:
    """Pascal VOC XML folders, with or without ``ImageSets/Main`` lists.

    Args:
        index (FolderIndex): The folder index.

    Returns:
        Found | None: What was found, or None.
    """
    xml_dirs = _xml_dirs(index)
    if not xml_dirs:
        return None
    names: Set[str] = set()
    refs: Dict[str, List[str]] = {}
    num = 0
    for ann in xml_dirs:
        refs[ann] = []
        for n in index.files[ann]:
            if n.lower().endswith('.xml'):
                filename, objs = _read_xml(index.abs(osp.join(ann, n)))
                names.update(objs)
                num += 1
                refs[ann].append(osp.basename(
                    (filename or '').replace('\\', '/')))
    splits = _classic(index, xml_dirs)
    taken = {c['ann_subdir'] for c in splits.values()}
    more, notes = _folders(index, xml_dirs, taken, refs)
    splits.update(more)
    classes, source, class_notes = _voc_classes(index, names, num)
    return Found('voc', splits, classes, source,
                 f'{num} VOC XML files in {xml_dirs}', notes + class_notes)
