"""Finders for the JSON formats: COCO, VIA and LabelMe.

- COCO: any JSON with ``images`` and ``annotations`` (``annotations/
  instances_val.json``, Roboflow's ``train/_annotations.coco.json``,
  ``train.json``...). The image folder is found from the ``file_name``
  values. Classes: the categories in id order; a category that no
  annotation uses and that is the ``supercategory`` of the others (as
  Roboflow exports write) is left out.
- VIA: ``<split>/via_region_data.json`` or any VIA export. The region
  attribute that names the class is detected; without one, every region
  is one class ``'object'``.
- LabelMe: one JSON per image. Classes from ``labels.txt`` (``__ignore__``
  and ``_background_`` are not classes) or the shape labels, sorted.
"""
import json
import os.path as osp
import shlex
from collections import Counter
from typing import Dict, List, Optional, Sequence, Tuple

from ..labelme import SKIPPED_TYPES
from .base import Found, LayoutError, split_name
from .scan import (
    FolderIndex,
    clean_stem,
    image_prefix,
    path_parts,
    read_name_list,
)

__all__ = ['find_coco', 'find_via', 'find_labelme']

_CLASS_KEYS = ('class', 'label', 'name', 'type', 'category', 'class_name')


def load_json(index: FolderIndex, rel: str) -> object:
    """Parse a JSON file, as a :class:`LayoutError` naming it if broken.

    Args:
        index (FolderIndex): The folder index.
        rel (str): The file, relative to the root.

    Returns:
        object: The parsed JSON.
    """
    try:
        with open(index.abs(rel), encoding='utf-8-sig') as f:
            return json.load(f)
    except (ValueError, OSError) as err:
        raise LayoutError(f'{index.abs(rel)} looks like an annotation file '
                          f'but cannot be read as JSON: {err}') from None


def _split_of(rel: str, taken: Dict[str, dict]) -> str:
    parts = path_parts(osp.dirname(rel)) + [clean_stem(rel)]
    name = split_name(parts)
    return osp.splitext(rel)[0] if name in taken else name


def _coco_classes(data: dict) -> Tuple[List[str], List[str]]:
    cats = sorted((c for c in data.get('categories') or []
                   if isinstance(c, dict) and 'id' in c),
                  key=lambda c: c['id'])
    used = {a.get('category_id') for a in data['annotations']
            if isinstance(a, dict)}
    supers = {c.get('supercategory') for c in cats}
    dropped = [c['name'] for c in cats
               if c['id'] not in used and c['name'] in supers and
               len(cats) > 1]
    return [str(c['name']) for c in cats if c['name'] not in dropped], \
        dropped


def check_coco_label_order(index: FolderIndex, ann_files: List[str],
                           classes: Sequence[str]) -> None:
    """Refuse classes whose order mmdet's CocoDataset would not keep.

    mmdet's ``CocoDataset`` numbers the labels in the order the JSON lists
    its categories, not in the order of ``metainfo['classes']``; when the
    two differ, every box is named after another class and nothing warns.

    Args:
        index (FolderIndex): The folder index.
        ann_files (list[str]): The COCO JSON files, relative to the root.
        classes (Sequence[str]): The chosen class names, in label order.

    Raises:
        LayoutError: If a file lists the classes in another order.
    """
    for rel in ann_files:
        data = load_json(index, rel)
        listed = [str(c.get('name')) for c in data.get('categories') or []
                  if isinstance(c, dict)]
        in_json = [n for n in listed if n in classes]
        # CocoDataset's label i is the i-th listed category of the classes.
        if in_json != list(classes[:len(in_json)]):
            raise LayoutError(
                f'{rel} lists its categories as {in_json}, and the classes '
                f'are {list(classes)}: mmdet\'s CocoDataset numbers the '
                'labels in the order of the JSON\'s categories, so boxes '
                'would be named after other classes. Give --classes in the '
                'JSON\'s order, or make every JSON list the same categories '
                'in the same order.')


def check_coco_encoding(index: FolderIndex, ann_files: List[str]) -> None:
    """Refuse COCO JSON files that start with a UTF-8 byte-order mark.

    We read them with ``utf-8-sig``, but mmdet's ``CocoDataset`` reads them
    with pycocotools' ``json.load``, which fails with a bare "Unexpected
    UTF-8 BOM" traceback and no file name.

    Args:
        index (FolderIndex): The folder index.
        ann_files (list[str]): The COCO JSON files, relative to the root.

    Raises:
        LayoutError: Naming the first such file and how to re-save it.
    """
    for rel in ann_files:
        with open(index.abs(rel), 'rb') as f:
            if f.read(3) != b'\xef\xbb\xbf':
                continue
        fix = ('import pathlib, sys; p = pathlib.Path(sys.argv[1]); '
               "p.write_text(p.read_text(encoding='utf-8-sig'), "
               "encoding='utf-8')")
        raise LayoutError(
            f'{index.abs(rel)} starts with a UTF-8 byte-order mark (BOM), '
            "which mmdet's CocoDataset (pycocotools) cannot read. Re-save "
            'it as UTF-8 without the mark, e.g. python -c '
            f'{shlex.quote(fix)} {shlex.quote(index.abs(rel))}')


def find_coco(index: FolderIndex) -> Optional[Found]:
    """COCO JSON files anywhere under the root.

    Args:
        index (FolderIndex): The folder index.

    Returns:
        Found | None: What was found, or None.
    """
    files = [r for r in index.with_ext('.json') if index.kind(r) == 'coco']
    if not files:
        return None
    splits: Dict[str, dict] = {}
    classes: List[str] = []
    notes, masks = [], False
    for rel in files:
        data = load_json(index, rel)
        if not isinstance(data, dict) or not isinstance(
                data.get('images'), list) or not isinstance(
                    data.get('annotations'), list):
            notes.append(f'{rel} lists images but no "annotations": an '
                         'unlabelled image list, not used.')
            continue
        if not data['annotations']:  # CVAT / Label Studio: unlabelled
            notes.append(f'{rel} has an empty "annotations" list (an '
                         'unlabelled subset): not used as a split, so it '
                         'cannot be chosen for validation.')
            continue
        split = _split_of(rel, splits)
        refs = [str(i.get('file_name', '')) for i in data['images'][:5]
                if isinstance(i, dict)]
        splits[split] = dict(ann_file=rel, data_prefix=dict(
            img=image_prefix(index, rel, split, refs)))
        names, dropped = _coco_classes(data)
        if dropped:
            notes.append(f'{rel}: left out the category {dropped}, which '
                         'no annotation uses and which is the supercategory'
                         ' of the others (as Roboflow exports write).')
        if classes and names != classes:
            first = splits[next(iter(splits))]['ann_file']
            notes.append(f'The categories of {rel} {names} differ from '
                         f'{classes} of {first}; using the union, in that '
                         'order.')
        classes += [n for n in names if n not in classes]
        masks = masks or any(isinstance(a, dict) and a.get('segmentation')
                             for a in data['annotations'])
    if not splits:
        return Found('coco', {}, (), '', f'COCO image lists {files}', notes)
    source = splits[next(iter(splits))]['ann_file']
    return Found('coco', splits, tuple(classes), source,
                 f'COCO JSON files {[c["ann_file"] for c in splits.values()]}',
                 notes, masks)


def _via_images(data: object) -> Optional[Dict[str, dict]]:
    if isinstance(data, dict) and '_via_img_metadata' in data:
        data = data['_via_img_metadata']
    if not isinstance(data, dict) or not all(
            isinstance(v, dict) and 'filename' in v for v in data.values()):
        return None
    return data


def _via_regions(images: Dict[str, dict]) -> List[dict]:
    out = []
    for entry in images.values():
        regions = entry.get('regions') or []
        out += list(regions.values()) if isinstance(regions, dict) \
            else list(regions)
    return [r for r in out if isinstance(r, dict)]


def _attr_value(value: object) -> Optional[str]:
    if isinstance(value, dict):  # checkbox / dropdown: {option: true}
        chosen = [k for k, v in value.items() if v]
        value = chosen[0] if len(chosen) == 1 else None
    # stripped, as the reader does: 'cat ' and 'cat' are one class
    return value.strip() or None if isinstance(value, str) else None


def _via_class_attribute(regions: List[dict]) -> Tuple[Optional[str],
                                                       List[str]]:
    # point regions are skipped by the reader; the class attribute is one
    # most regions carry (a region without it is then the reader's error,
    # naming it, not a reason to merge every class into one)
    regions = [r for r in regions if not (
        isinstance(r.get('shape_attributes'), dict)
        and r['shape_attributes'].get('name') == 'point')]
    counts: Counter = Counter()
    for region in regions:
        attrs = region.get('region_attributes')
        for key, value in (attrs.items() if isinstance(attrs, dict) else ()):
            if _attr_value(value) is not None:
                counts[key] += 1
    most = [k for k, n in counts.items() if 2 * n > len(regions)]
    if not regions or not most:
        return None, []
    key = next((k for k in most if k.lower() in _CLASS_KEYS),
               max(sorted(most), key=counts.__getitem__))
    names = sorted({_attr_value(r['region_attributes'].get(key))
                    for r in regions if isinstance(
                        r.get('region_attributes'), dict)} - {None})
    return key, names


def find_via(index: FolderIndex) -> Optional[Found]:
    """VIA JSON exports anywhere under the root.

    Args:
        index (FolderIndex): The folder index.

    Returns:
        Found | None: What was found, or None.
    """
    files = [r for r in index.with_ext('.json') if index.kind(r) == 'via']
    loaded = {r: _via_images(load_json(index, r)) for r in files}
    loaded = {r: d for r, d in loaded.items() if d is not None}
    if not loaded:
        return None
    splits: Dict[str, dict] = {}
    regions: List[dict] = []
    for rel, images in loaded.items():
        split = _split_of(rel, splits)
        refs = [str(v['filename']) for v in list(images.values())[:5]]
        splits[split] = dict(ann_file=rel, data_prefix=dict(
            img=image_prefix(index, rel, split, refs)))
        regions += _via_regions(images)
    key, classes = _via_class_attribute(regions)
    notes = []
    if key is None:
        classes = ['object']
        notes.append('The VIA regions carry no class attribute: every '
                      "region is one class named 'object'; name it with "
                      '--classes NAME.')
    for cfg in splits.values():
        cfg['class_attribute'] = key
    masks = any(isinstance(r.get('shape_attributes'), dict) and
                r['shape_attributes'].get('name') not in ('rect', 'point')
                for r in regions)
    source = (f'the region attribute {key!r} ({len(regions)} regions)'
              if key else 'one class (no class attribute)')
    return Found('via', splits, tuple(classes), source,
                 f'VIA JSON files {list(loaded)}', notes, masks)


def _labelme_groups(dirs: List[str]) -> Dict[str, str]:
    """Split name to the folder LabelMeDataset walks (recursively)."""
    groups: Dict[str, List[str]] = {}
    for d in dirs:
        groups.setdefault(split_name(path_parts(d)), []).append(d)
    prefixes = {name: osp.commonpath(ds) for name, ds in groups.items()}
    for name, prefix in prefixes.items():
        for other, ds in groups.items():
            if other != name and any(
                    not prefix or d == prefix or d.startswith(prefix + '/')
                    for d in ds):
                return {'all': osp.commonpath(dirs)}
    return prefixes


def _labelme_shapes(data: object) -> List[dict]:
    shapes = data.get('shapes') if isinstance(data, dict) else None
    return [s for s in shapes or [] if isinstance(s, dict)
            and s.get('shape_type') not in SKIPPED_TYPES]


def _labelme_image_prefix(index: FolderIndex, rel: str,
                          data: dict) -> Optional[str]:
    """None if ``imagePath`` resolves beside the JSON, else the folder
    that holds the image (LabelMeDataset then uses its base name)."""
    ref = str(data.get('imagePath') or '').replace('\\', '/')
    if osp.isfile(osp.join(index.abs(osp.dirname(rel)), ref)):
        return None
    folder = osp.dirname(rel)
    return image_prefix(index, rel, split_name(path_parts(folder)),
                         [osp.basename(ref)])


def _labelme_classes(index: FolderIndex, labels: Counter, num: int
                     ) -> Tuple[Tuple[str, ...], str, List[str]]:
    for rel in index.named(('labels.txt', 'classes.txt')):
        listed = read_name_list(index.abs(rel))
        if not listed:
            continue
        missing = sorted(set(labels) - set(listed))
        notes = [f'The LabelMe shapes use labels {missing} that {rel} does '
                 'not list: add them there, or give the full list with '
                 '--classes.'] if missing else []
        return tuple(listed), rel, notes
    return tuple(sorted(labels)), f'the annotations ({num} files)', []


def find_labelme(index: FolderIndex) -> Optional[Found]:
    """LabelMe JSON files (one per image) anywhere under the root.

    Args:
        index (FolderIndex): The folder index.

    Returns:
        Found | None: What was found, or None.
    """
    files = [r for r in index.with_ext('.json')
             if index.kind(r) == 'labelme']
    if not files:
        return None
    dirs = sorted({osp.dirname(r) for r in files})
    groups = _labelme_groups(dirs)
    labels: Counter = Counter()
    masks = False
    splits: Dict[str, dict] = {}
    for rel in files:
        data = load_json(index, rel)
        shapes = _labelme_shapes(data)
        labels.update(str(s.get('label')) for s in shapes
                      if s.get('label') != '__ignore__')
        masks = masks or any(s.get('shape_type') in ('polygon', 'circle',
                                                     None) for s in shapes)
        for name, prefix in groups.items():
            inside = not prefix or rel.startswith(prefix + '/')
            if inside and name not in splits and isinstance(data, dict):
                splits[name] = dict(data_prefix=dict(ann=prefix))
                img = _labelme_image_prefix(index, rel, data)
                if img is not None:
                    splits[name]['data_prefix']['img'] = img
    classes, source, notes = _labelme_classes(index, labels, len(files))
    return Found('labelme', splits, classes, source,
                 f'{len(files)} LabelMe JSON files in {dirs}', notes, masks)
