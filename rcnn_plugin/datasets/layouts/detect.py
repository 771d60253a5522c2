"""Which format a dataset folder holds, its splits and its classes."""
import copy
import os.path as osp
from collections import Counter
from typing import Dict, List, Optional, Sequence

from ...utils.config_types import cfg_type_name
from .base import (
    FORMATS,
    DatasetLayout,
    Found,
    LayoutError,
    choose_splits,
)
from .csv_format import find_csv
from .json_formats import (
    check_coco_encoding,
    check_coco_label_order,
    find_coco,
    find_labelme,
    find_via,
)
from .scan import IMG_EXTENSIONS, FolderIndex
from .txt_formats import find_kitti, find_yolo
from .xml_format import find_voc

__all__ = ['detect_layout', 'split_configs', 'LOOKED_FOR', 'TYPES']

TYPES = dict(yolo='YOLODataset', voc='StrictXMLDataset', coco='CocoDataset',
             via='VIADataset', labelme='LabelMeDataset', kitti='KittiDataset',
             csv='CSVDataset')
_FINDERS = dict(yolo=find_yolo, voc=find_voc, coco=find_coco, via=find_via,
                labelme=find_labelme, kitti=find_kitti, csv=find_csv)
LOOKED_FOR = dict(
    yolo='yolo: .txt label files (class cx cy w h, normalised) in '
    'labels/<split>/ beside images/<split>/ (or <split>/labels/, or beside '
    'the images), class names in data.yaml, classes.txt or obj.names',
    voc='voc: Pascal VOC .xml files in Annotations/ with ImageSets/Main/'
    '<split>.txt, or in annotations/ or beside the images',
    coco='coco: a .json file with "images" and "annotations" (e.g. '
    'annotations/instances_train.json or train/_annotations.coco.json)',
    via='via: a VIA .json export with "filename" and "regions" per image '
    '(e.g. train/via_region_data.json)',
    labelme='labelme: one LabelMe .json per image with "shapes" and '
    '"imagePath"',
    kitti='kitti: label_2/*.txt (15 columns) beside image_2/ (e.g. '
    'training/label_2)',
    csv='csv: a .csv whose header names an image column and xmin, ymin, '
    'xmax, ymax (and a label column)')
_CHOICES = f'--format {{{",".join(FORMATS)}}}'


def _run_finders(index: FolderIndex, names: Sequence[str],
                 problems: List[str]) -> List[Found]:
    found = []
    for name in names:
        try:
            result = _FINDERS[name](index)
        except LayoutError as err:
            if len(names) == 1:
                raise
            problems.append(f'{name}: {err}')
            continue
        if result is not None:
            found.append(result)
    return found


def _inventory(index: FolderIndex) -> str:
    exts: Counter = Counter()
    images = 0
    for names in index.files.values():
        for n in names:
            ext = osp.splitext(n)[1].lower()
            if ext in IMG_EXTENSIONS:
                images += 1
            elif ext:
                exts[ext] += 1
    other = ', '.join(f'{n} {e}' for e, n in exts.most_common(6))
    return f'{images} images' + (f' and {other} files' if other else '')


def _nothing(index: FolderIndex, fmt: str, found: List[Found],
             problems: List[str]) -> str:
    looked = '; '.join(LOOKED_FOR[f] for f in (
        FORMATS if fmt == 'auto' else (fmt, )))
    seen = _inventory(index)
    extra = ' '.join(n for f in found for n in f.notes) + \
        ''.join(f' {p}' for p in problems)
    labels = any(not n.lower().endswith(IMG_EXTENSIONS)
                 for names in index.files.values() for n in names)
    if index.image_dirs() and not labels:
        return (f'no labels found under {index.root}: {seen} in '
                f'{index.image_dirs()[:3]}, but no annotation files. Looked '
                f'for {looked}. Label the images and export one of these '
                f'formats ({_CHOICES}).')
    what = 'dataset layout' if fmt == 'auto' else f'{fmt} layout'
    return (f'no {what} found under {index.root}: found {seen}.{extra} '
            f'Looked for {looked}. Check the path, or choose the format '
            f'with {_CHOICES} to see why it does not match.')


def _ambiguous(root: str, found: List[Found]) -> str:
    what = '; '.join(f'{f.fmt} ({f.evidence})' for f in found)
    return (f'{root} matches several formats: {what}. Choose one with '
            f'--format {" or --format ".join(f.fmt for f in found)} '
            f'(choices: {", ".join(FORMATS)}), or move the other files '
            'out of the folder.')


def _config(root: str, found: Found, keys: dict, classes: tuple,
            given: bool) -> dict:
    cfg = dict(type=TYPES[found.fmt], data_root=root, **copy.deepcopy(keys))
    cfg['metainfo'] = dict(classes=classes)
    if found.fmt == 'yolo' and given:
        cfg['names_file'] = False  # the given names, in label-index order
    if found.fmt == 'via' and cfg.get('class_attribute') is None and \
            len(classes) != 1:
        raise LayoutError(
            f'the VIA regions under {root} carry no class attribute, so '
            f'the dataset has one class, but --classes gave {list(classes)}'
            ': give one name, or add a class attribute in VIA.')
    return cfg


def _unused_images(index: FolderIndex, splits: Dict[str, dict]) -> List[str]:
    used = set()
    for cfg in splits.values():
        prefix = cfg.get('data_prefix', {})
        for key in ('img', 'ann'):
            if prefix.get(key) is not None:
                used.add(prefix[key].rstrip('/'))
        if cfg.get('img_subdir'):
            used.add(cfg['img_subdir'])
    if '' in used or any(cfg_type_name(c) == 'LabelMeDataset'
                         for c in splits.values()):
        return []
    unused = [d for d in index.image_dirs() if not any(
        d == u or d.startswith(u + '/') for u in used)]
    if not unused:
        return []
    num = sum(len(index.images(d)) for d in unused)
    return [f'{num} images in {unused[:3]} belong to no labelled split '
            '(e.g. an unlabelled test set): not used.']


def _layout(index: FolderIndex, found: Found,
            classes: Optional[Sequence[str]]) -> DatasetLayout:
    notes = list(found.notes)
    chosen = tuple(classes) if classes else tuple(found.classes)
    source = '--classes' if classes else found.class_source
    if classes and chosen != tuple(found.classes):
        notes.append(f'--classes {list(chosen)} replace the classes '
                     f'{list(found.classes)} read from {found.class_source}.')
    if not chosen:
        raise LayoutError(
            f'no class names found for the {found.fmt} dataset under '
            f'{index.root} ({found.evidence}): give them with --classes.')
    if len(set(chosen)) != len(chosen):
        raise LayoutError(f'the class names {list(chosen)} repeat a name; '
                          'give each class once (--classes).')
    if found.fmt == 'coco':
        ann_files = [k['ann_file'] for k in found.splits.values()]
        check_coco_encoding(index, ann_files)
        check_coco_label_order(index, ann_files, chosen)
    splits = {name: _config(index.root, found, keys, chosen, bool(classes))
              for name, keys in found.splits.items()}
    train, val, split_notes = choose_splits(list(splits))
    return DatasetLayout(
        fmt=found.fmt, data_root=index.root, splits=splits,
        train_split=train, val_split=val, classes=chosen,
        class_source=source,
        notes=notes + split_notes + _unused_images(index, splits),
        has_masks=found.has_masks)


def detect_layout(data_root: str, fmt: str = 'auto',
                  classes: Optional[Sequence[str]] = None) -> DatasetLayout:
    """Find the format, splits and classes of a dataset folder.

    Args:
        data_root (str): The dataset folder.
        fmt (str): One of ``FORMATS``, or ``'auto'`` to detect it.
            Defaults to 'auto'.
        classes (Sequence[str], optional): Class names that replace the
            detected ones (in label order; for YOLO, in label-index order).
            Defaults to None.

    Returns:
        DatasetLayout: The layout, with one dataset config per split.
    """
    if fmt != 'auto' and fmt not in FORMATS:
        raise LayoutError(f'unknown format {fmt!r}: choose auto or one of '
                          f'{", ".join(FORMATS)} ({_CHOICES}).')
    root = osp.abspath(osp.expanduser(str(data_root)))
    if not osp.isdir(root):
        raise LayoutError(f'the data root {root} does not exist or is not '
                          'a folder: give the folder that holds the images '
                          'and annotations.')
    index = FolderIndex(root)
    problems: List[str] = []
    found = _run_finders(index, FORMATS if fmt == 'auto' else (fmt, ),
                         problems)
    usable = [f for f in found if f.splits]
    if len(usable) > 1:
        raise LayoutError(_ambiguous(root, usable))
    if not usable:
        raise LayoutError(_nothing(index, fmt, found, problems))
    layout = _layout(index, usable[0], classes)
    layout.notes += [f'Ignored a possible {p}' for p in problems]
    return layout


def split_configs(data_root: str, fmt: str = 'auto',
                  classes: Optional[Sequence[str]] = None
                  ) -> Dict[str, dict]:
    """Dataset configs, one per split found under ``data_root``.

    Args:
        data_root (str): The dataset folder.
        fmt (str): One of ``FORMATS`` or ``'auto'``. Defaults to 'auto'.
        classes (Sequence[str], optional): Class names replacing the
            detected ones. Defaults to None.

    Returns:
        dict[str, dict]: Split name to a dataset config (``type``,
        ``data_root``, ``data_prefix``, ``ann_file``, ``metainfo``,
        ``pipeline=[]``).
    """
    layout = detect_layout(data_root, fmt, classes)
    return {name: dict(cfg, pipeline=[])
            for name, cfg in layout.splits.items()}
