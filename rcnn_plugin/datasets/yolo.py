"""YOLO txt datasets (Darknet, CVAT "YOLO 1.1" export, Ultralytics).

Each image ``<img dir>/<rel>/<stem>.<ext>`` has an optional label file
``<label dir>/<rel>/<stem>.txt`` (or ``.TXT``: the extension in any case,
lower-case first) with one object per line::

    class cx cy w h                # box, normalised to [0, 1]
    class x1 y1 x2 y2 x3 y3 ...    # polygon (Ultralytics segments)

An image without a label file, or with an empty one, is a negative image.
Class names come from ``obj.names`` / ``classes.txt`` (one per line) or
``data.yaml`` (``names:`` as a list or an index mapping), in index order.

Layouts, with ``data_prefix=dict(img=..., ann=...)`` relative to
``data_root``:

- CVAT export unpacked in place: ``img='obj_train_data'`` (labels beside
  the images, ``ann`` may be left out), ``obj.names`` at the root.
- ``../shared/datasets/kitti_yolo``: ``img='images/train/obj_train_data'``,
  ``ann='labels/train/obj_train_data'``, names in ``labels/train``.
- Ultralytics: ``img='images/train'``, ``ann='labels/train'``,
  ``data.yaml`` at the root.
"""
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple, Union

import yaml
from mmdet.registry import DATASETS
from mmengine.logging import print_log

from .errors import AnnotationError
from .label_files import pick_label_files
from .native import NativeDetDataset, read_image_size

__all__ = ['YOLODataset', 'parse_yolo_line', 'read_class_names']

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
NAMES_FILES = ('obj.names', 'classes.txt', 'data.yaml', 'data.yml')
# Image lists that CVAT and Darknet keep beside the labels.
LIST_FILES = ('train.txt', 'val.txt', 'valid.txt', 'test.txt')


def read_class_names(path: str) -> Tuple[str, ...]:
    """Read class names from ``obj.names``/``classes.txt`` or ``data.yaml``.

    Args:
        path (str): The names file.

    Returns:
        tuple[str, ...]: Class names in index order.
    """
    try:
        with open(path, encoding='utf-8-sig') as f:
            text = f.read()
    except UnicodeDecodeError as err:
        raise AnnotationError(path, f'is not UTF-8 text: {err}') from None
    if not path.endswith(('.yaml', '.yml')):
        # Label i is line i: a blank line inside the list would shift every
        # later class by one, so only trailing blank lines are allowed.
        lines = [line.strip() for line in text.rstrip().splitlines()]
        if not any(lines):
            raise AnnotationError(path, 'holds no class names')
        if '' in lines:
            lineno = lines.index('') + 1
            raise AnnotationError(
                path, 'has a blank line among the class names: label '
                f'{lineno - 1} would be an unnamed class and the later '
                'labels would shift; remove the line or name the class',
                lineno)
        return tuple(lines)
    try:
        names = (yaml.safe_load(text) or {}).get('names')
    except (yaml.YAMLError, AttributeError) as err:
        raise AnnotationError(path, f'is not a YAML mapping: {err}') from None
    if isinstance(names, dict):
        if set(names) != set(range(len(names))):
            raise AnnotationError(path, 'names must map 0..N-1 to class '
                                  f'names, got keys {list(names)}'[:300],
                                  '[names]')
        names = [names[i] for i in range(len(names))]
    if not isinstance(names, list) or not names:
        raise AnnotationError(path, 'needs a non-empty "names" list or '
                              'mapping', '[names]')
    return tuple(str(n) for n in names)


def parse_yolo_line(line: str, num_classes: int, width: int, height: int,
                    path: str, lineno: int) -> Optional[dict]:
    """Parse one label line into an instance in absolute pixels.

    Args:
        line (str): The text line.
        num_classes (int): Number of class names.
        width (int): Image width in pixels.
        height (int): Image height in pixels.
        path (str): Label file, for errors.
        lineno (int): 1-based line number, for errors.

    Returns:
        dict | None: Instance with ``bbox``, ``bbox_label``,
        ``ignore_flag`` (and ``mask`` for polygons); None for a blank line.
    """
    parts = line.split()
    if not parts:
        return None
    n = len(parts)
    if n != 5 and (n < 7 or n % 2 == 0):
        raise AnnotationError(
            path, f'expected 5 columns (class cx cy w h) or a class and at '
            f'least 3 x y pairs (polygon), got {n} columns', lineno)
    try:
        label = int(parts[0])
        vals = [float(v) for v in parts[1:]]
    except ValueError:
        raise AnnotationError(path, 'expected an integer class index and '
                              f'numbers, got {line.strip()!r}',
                              lineno) from None
    if not 0 <= label < num_classes:
        raise AnnotationError(path, f'class index {label} is outside the '
                              f'{num_classes} class names', lineno)
    if not all(0.0 <= v <= 1.0 for v in vals):  # also rejects nan
        raise AnnotationError(path, 'coordinates must be normalised to '
                              f'[0, 1], got {parts[1:]}', lineno)
    inst = dict(bbox_label=label, ignore_flag=0)
    if n == 5:
        cx, cy, w, h = vals
        inst['bbox'] = [(cx - w / 2) * width, (cy - h / 2) * height,
                        (cx + w / 2) * width, (cy + h / 2) * height]
        return inst
    xs = [v * width for v in vals[0::2]]
    ys = [v * height for v in vals[1::2]]
    inst['bbox'] = [min(xs), min(ys), max(xs), max(ys)]
    inst['mask'] = [[c for xy in zip(xs, ys) for c in xy]]
    return inst


def _fast_boxes(lines: List[str], num_classes: int, width: int,
                height: int) -> Optional[List[dict]]:
    """Parse well-formed box lines quickly; None if any line is not one
    (polygons included), so that :func:`parse_yolo_line` names it."""
    out = []
    for line in lines:
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 5:
            return None
        try:
            label = int(parts[0])
            cx, cy, w, h = map(float, parts[1:])
        except ValueError:
            return None
        # Chained comparisons are False for nan, as they must be.
        if not (0 <= label < num_classes and 0 <= cx <= 1 and 0 <= cy <= 1
                and 0 <= w <= 1 and 0 <= h <= 1):
            return None
        out.append({'bbox': [(cx - w / 2) * width, (cy - h / 2) * height,
                             (cx + w / 2) * width, (cy + h / 2) * height],
                    'bbox_label': label, 'ignore_flag': 0})
    return out


def _scan_images(img_dir: str) -> List[str]:
    """Relative paths of the images under ``img_dir``, sorted."""
    found = []
    for root, dirs, files in os.walk(img_dir):
        dirs.sort()
        rel = osp.relpath(root, img_dir)
        for name in files:
            if name.lower().endswith(IMG_EXTENSIONS):
                found.append(name if rel == '.' else osp.join(rel, name))
    return sorted(found)


@DATASETS.register_module()
class YOLODataset(NativeDetDataset):
    """YOLO txt detection dataset, read in place.

    It takes :class:`NativeDetDataset`'s arguments; ``data_prefix`` gives
    the image folder (``img``) and the label folder (``ann``, defaults to
    the image folder), both relative to ``data_root``. Class names come
    from ``names_file``; ``metainfo=dict(classes=...)``, if given, must
    match it exactly (a YOLO label is an index into that list).

    Args:
        *args: Positional arguments of mmdet's ``BaseDetDataset``.
        names_file (str | bool, optional): ``obj.names``, ``classes.txt``
            or ``data.yaml``, relative to ``data_root``. If None, the first
            of those names found in the label folder, its parents up to
            ``data_root`` is used. False reads no names file: the classes
            are ``metainfo=dict(classes=...)`` in label-index order (to
            rename or respell a names file's classes). Defaults to None.
        **kwargs: Keyword arguments of mmdet's ``BaseDetDataset``
            (``data_root``, ``ann_file``, ``data_prefix``, ...).
    """

    METAINFO = {'classes': ()}

    def __init__(self, *args, names_file: Optional[Union[str, bool]] = None,
                 **kwargs) -> None:
        self.names_file = names_file
        super().__init__(*args, **kwargs)

    def _find_names_file(self, ann_dir: str) -> Optional[str]:
        if self.names_file:
            path = osp.join(self.data_root or '', self.names_file)
            if not osp.isfile(path):
                raise FileNotFoundError(f'names_file {path} does not exist')
            return path
        root = osp.abspath(self.data_root or ann_dir)
        folder = osp.abspath(ann_dir)
        while True:
            for name in NAMES_FILES:
                if osp.isfile(osp.join(folder, name)):
                    return osp.join(folder, name)
            if folder == root or osp.dirname(folder) == folder:
                return None
            folder = osp.dirname(folder)

    def _resolve_classes(self, ann_dir: str) -> Tuple[str, ...]:
        classes = tuple(self._metainfo.get('classes') or ())
        if self.names_file is False:
            if not classes:
                raise ValueError('names_file=False needs metainfo=dict('
                                 'classes=(...)) in label-index order')
            return classes
        path = self._find_names_file(ann_dir)
        if path is None:
            if not classes:
                raise FileNotFoundError(
                    f'no class names: none of {NAMES_FILES} found from '
                    f'{ann_dir} up to data_root, and no metainfo classes')
            return classes
        names = read_class_names(path)
        if classes and classes != names:
            raise ValueError(
                f'metainfo classes {classes} do not match {path} {names}. '
                'YOLO labels are indices into the names file, so the lists '
                'must be equal and in the same order.')
        self._metainfo['classes'] = names
        return names

    def load_raw_data_list(self) -> List[dict]:
        """Index the images and parse their label files.

        Returns:
            list[dict]: One data info per image, negatives included.
        """
        img_dir = self.data_prefix.get('img', self.data_root)
        ann_dir = self.data_prefix.get('ann') or img_dir
        if not osp.isdir(img_dir):
            raise FileNotFoundError(f'image folder {img_dir} does not exist')
        if not osp.isdir(ann_dir):
            raise FileNotFoundError(f'label folder {ann_dir} does not exist')
        num_classes = len(self._resolve_classes(ann_dir))
        images = _scan_images(img_dir)
        stems = {osp.splitext(p)[0] for p in images}
        if len(stems) < len(images):  # a.jpg and a.png: one a.txt, one id
            seen: Dict[str, str] = {}
            for rel in images:
                other = seen.setdefault(osp.splitext(rel)[0], rel)
                if other != rel:
                    raise AnnotationError(
                        osp.join(img_dir, rel), f'and {other} have one name '
                        'stem, so they would share one label file and one '
                        'image id: rename or remove one')
        labels = pick_label_files(_scan_labels(ann_dir), ann_dir)
        for label in labels.values():
            if osp.splitext(label)[0] not in stems:
                raise AnnotationError(
                    osp.join(ann_dir, label), 'has no image with the same '
                    f'name and one of {IMG_EXTENSIONS} under {img_dir}')
        self._check_unlabelled(images, list(labels), img_dir, ann_dir)
        return self.parse_each(
            images, ann_dir,
            lambda rel: self._parse_image(img_dir, ann_dir, rel, num_classes,
                                          labels.get(osp.splitext(rel)[0])))

    def _check_unlabelled(self, images: List[str], stems: List[str],
                          img_dir: str, ann_dir: str) -> None:
        """Count the images without a label file (YOLO's negatives, by the
        ``stems`` of the label files); none labelled at all is a wrong
        folder, not a split of negatives."""
        labelled = set(stems)
        bare = [p for p in images if osp.splitext(p)[0] not in labelled]
        if images and len(bare) == len(images):
            raise FileNotFoundError(
                f'none of the {len(images)} images under {img_dir} has a '
                f'label file (<name>.txt) in {ann_dir}: is data_prefix.ann '
                'the right folder?')
        self.unlabelled_images = len(bare)
        if bare:
            print_log(
                f'{len(bare)} of {len(images)} images under {img_dir} have '
                f'no label file in {ann_dir} and are read as negatives '
                f'(no objects), e.g. {bare[0]}', logger='current', level=20)

    def _parse_image(self, img_dir: str, ann_dir: str, rel: str,
                     num_classes: int, label: Optional[str]) -> dict:
        img_path = osp.join(img_dir, rel)
        stem = osp.splitext(rel)[0]
        ann_path = osp.join(ann_dir, label or stem + '.txt')
        width, height = read_image_size(img_path, ann_path)
        try:
            with open(ann_path, encoding='utf-8-sig') as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            lines = []
        except UnicodeDecodeError as err:
            raise AnnotationError(ann_path,
                                  f'is not UTF-8 text: {err}') from None
        instances = _fast_boxes(lines, num_classes, width, height)
        if instances is None:  # parse line by line to name the bad line
            instances = []
            for lineno, line in enumerate(lines, 1):
                inst = parse_yolo_line(line, num_classes, width, height,
                                       ann_path, lineno)
                if inst is not None:
                    instances.append(inst)
        return dict(img_path=img_path, img_id=stem, width=width,
                    height=height, ann_path=ann_path, instances=instances)


def _scan_labels(ann_dir: str) -> List[str]:
    """Relative paths of ``.txt`` label files under ``ann_dir``, sorted;
    the extension in any case (``a.TXT``), as the layout finder reads it."""
    found = []
    for root, _, files in os.walk(ann_dir):
        rel = osp.relpath(root, ann_dir)
        for name in files:
            low = name.lower()
            if low.endswith('.txt') and low not in NAMES_FILES + LIST_FILES:
                found.append(name if rel == '.' else osp.join(rel, name))
    return sorted(found)
