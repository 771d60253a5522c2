"""LabelMe JSON datasets: one JSON file per image.

Each file holds ``imagePath`` (relative to the JSON file), ``imageHeight``,
``imageWidth`` and ``shapes``, each with ``label``, ``points`` (a list of
``[x, y]``), ``shape_type`` and ``group_id``:

- ``polygon`` (at least 3 points) and ``rectangle`` (2 corners) and
  ``circle`` (centre and a point on the circle) become instances with a
  box and a polygon mask;
- shapes sharing a ``label`` and a non-null ``group_id`` are parts of one
  instance: one box around all parts and one mask with several polygons;
- ``line``, ``linestrip``, ``point``, ``points`` and ``mask`` shapes are
  skipped and counted per type (``skipped_shapes``);
- a shape labelled ``__ignore__`` (labelme2coco's convention, also the
  first line of its ``labels.txt``) is an ignore region: ``ignore_flag=1``,
  ``bbox_label=-1``, whatever the class list.
"""
import json
import math
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

from mmdet.registry import DATASETS

from .errors import AnnotationError
from .native import NativeDetDataset, read_image_size
from .shapes import check_numbers, ellipse_polygon, polygon_bbox, rect_polygon

__all__ = ['LabelMeDataset', 'labelme_shape_polygon']

SKIPPED_TYPES = ('line', 'linestrip', 'point', 'points', 'mask')
IGNORE_LABEL = '__ignore__'
_NUMBER_TYPES = {int, float}


def _fast_flat(points: list) -> Optional[List[float]]:
    """Flatten ``[[x, y], ...]`` of finite numbers; None if anything is
    off (the caller then finds and names the bad point)."""
    try:
        if not all(len(p) == 2 for p in points):
            return None
        flat = [c for p in points for c in p]
    except TypeError:
        return None
    if set(map(type, flat)) <= _NUMBER_TYPES and all(
            map(math.isfinite, flat)):
        return flat
    return None


def _checked_flat(points: list, path: str, where: str) -> List[float]:
    """Flatten point by point, naming the first bad point."""
    flat = []
    for i, point in enumerate(points):
        flat += check_numbers(point, path, f'{where}[points][{i}]', 2)[:2]
        if len(point) != 2:
            raise AnnotationError(path, f'a point is [x, y], got {point}',
                                  f'{where}[points][{i}]')
    return flat


def labelme_shape_polygon(shape: dict, path: str, where: str) -> List[float]:
    """Turn a LabelMe polygon, rectangle or circle into a flat polygon.

    Args:
        shape (dict): The shape, with ``points`` and ``shape_type``.
        path (str): The JSON file, for errors.
        where (str): Key path of the shape, for errors.

    Returns:
        list[float]: Flat polygon in absolute pixels.
    """
    kind = shape.get('shape_type') or 'polygon'
    points = shape.get('points')
    if not isinstance(points, list):
        raise AnnotationError(path, 'points must be a list of [x, y]',
                              where + '[points]')
    flat = _fast_flat(points)
    if flat is None:
        flat = _checked_flat(points, path, where)
    n = len(flat) // 2
    if kind == 'polygon':
        if n < 3:
            raise AnnotationError(path, 'a polygon needs at least 3 points, '
                                  f'got {n}', where + '[points]')
        return flat
    if n != 2:
        raise AnnotationError(path, f'a {kind} needs exactly 2 points, got '
                              f'{n}', where + '[points]')
    if kind == 'rectangle':
        x1, x2 = sorted(flat[0::2])
        y1, y2 = sorted(flat[1::2])
        return rect_polygon(x1, y1, x2, y2)
    if kind == 'circle':
        r = math.hypot(flat[2] - flat[0], flat[3] - flat[1])
        return ellipse_polygon(flat[0], flat[1], r, r)
    raise AnnotationError(path, f'unsupported shape_type {kind!r}',
                          where + '[shape_type]')


@DATASETS.register_module()
class LabelMeDataset(NativeDetDataset):
    """LabelMe JSON dataset, read in place.

    The JSON files are found under ``data_prefix['ann']`` (defaults to
    ``data_root``), recursively. An image is ``imagePath`` relative to its
    JSON file, or, if ``data_prefix['img']`` is set, the base name of
    ``imagePath`` in that folder. Class names must be given in
    ``metainfo=dict(classes=...)``.
    """

    METAINFO = {'classes': ()}

    def load_raw_data_list(self) -> List[dict]:
        """Parse every LabelMe JSON file, sorted by path.

        Returns:
            list[dict]: One data info per JSON file.
        """
        if not self._metainfo.get('classes'):
            raise ValueError('LabelMeDataset needs metainfo=dict(classes='
                             '(...)): LabelMe files carry no class list')
        if IGNORE_LABEL in self._metainfo['classes']:
            raise ValueError(
                f'LabelMeDataset: {IGNORE_LABEL!r} is in the classes, but '
                'LabelMe marks ignore regions with it (as labelme2coco '
                'does); remove it from metainfo classes (a labels.txt '
                'copied whole carries it)')
        ann_dir = self.data_prefix.get('ann') or self.data_root
        if not osp.isdir(ann_dir):
            raise FileNotFoundError(f'annotation folder {ann_dir} does not '
                                    'exist')
        self._label_map = {c: i for i, c in enumerate(
            self._metainfo['classes'])}
        files = []
        for root, dirs, names in os.walk(ann_dir):
            dirs.sort()
            files += [osp.join(root, n) for n in names if n.endswith('.json')]
        return self.parse_each(sorted(files), ann_dir,
                               lambda p: self._parse_file(p, ann_dir))

    def _read(self, path: str) -> dict:
        try:
            with open(path, encoding='utf-8-sig') as f:
                data = json.load(f)
        except (ValueError, UnicodeDecodeError) as err:
            raise AnnotationError(path, f'is not valid JSON: {err}') from None
        if not isinstance(data, dict):
            raise AnnotationError(path, 'expected a LabelMe mapping')
        return data

    def _image(self, data: dict, path: str) -> Tuple[str, int, int]:
        rel = data.get('imagePath')
        if not isinstance(rel, str) or not rel:
            raise AnnotationError(path, 'needs an image file name',
                                  '[imagePath]')
        rel = rel.replace('\\', '/')
        img_dir = self.data_prefix.get('img')
        img_path = osp.join(img_dir, osp.basename(rel)) if img_dir \
            else osp.normpath(osp.join(osp.dirname(path), rel))
        w, h = data.get('imageWidth'), data.get('imageHeight')
        # the header only (no decoding); it also finds a missing image
        real = read_image_size(img_path, path, '[imagePath]')
        if all(isinstance(v, int) and not isinstance(v, bool) and v > 0
               for v in (w, h)) and (w, h) != real:
            why = ('the image is displayed turned by its EXIF orientation, '
                   'which the labelling tool did not apply' if (h, w) == real
                   else 'the image was resized or replaced after labelling')
            raise AnnotationError(
                path, f'says the image is {w}x{h} (imageWidth x imageHeight)'
                f', but {img_path} is {real[0]}x{real[1]} as loaded: {why}, '
                'so the shapes would not fit it. Label the image again, or '
                'scale the points and the sizes in the JSON to the image.',
                '[imageWidth]')
        return (img_path, ) + real

    def _parse_file(self, path: str, ann_dir: str) -> dict:
        data = self._read(path)
        img_path, width, height = self._image(data, path)
        shapes = data.get('shapes', [])
        if not isinstance(shapes, list):
            raise AnnotationError(path, 'shapes must be a list', '[shapes]')
        groups: Dict[tuple, dict] = {}
        instances = []
        for i, shape in enumerate(shapes):
            inst = self._fast_shape(shape)
            if inst is None:  # anything unusual: check it, name the key
                inst = self._parse_shape(path, f'[shapes][{i}]', shape)
                if inst is None:
                    continue
            group = shape.get('group_id')
            if group is None:
                instances.append(inst)
                continue
            key = (shape['label'], group)
            if group is None or key not in groups:
                instances.append(inst)
                if group is not None:
                    groups[key] = inst
                continue
            merged = groups[key]
            merged['mask'] += inst['mask']
            b, o = merged['bbox'], inst['bbox']
            merged['bbox'] = [min(b[0], o[0]), min(b[1], o[1]),
                              max(b[2], o[2]), max(b[3], o[3])]
        # ``path`` is ``ann_dir/<rel>.json`` (os.walk): cheaper than relpath
        img_id = path[len(ann_dir):].lstrip('/\\')[:-len('.json')]
        return dict(img_path=img_path, img_id=img_id, width=width,
                    height=height, ann_path=path, instances=instances)

    def _fast_shape(self, shape: object) -> Optional[dict]:
        """A well-formed polygon or rectangle of a known class, or None."""
        if type(shape) is not dict:
            return None
        group, kind = shape.get('group_id'), shape.get('shape_type')
        name, points = shape.get('label'), shape.get('points')
        label = self._label_map.get(name) if type(name) is str else None
        if label is None or type(points) is not list or not (
                group is None or type(group) in (int, str)):
            return None
        flat = _fast_flat(points)
        if flat is None:
            return None
        if kind in ('polygon', None) and len(flat) >= 6:
            poly = flat
        elif kind == 'rectangle' and len(flat) == 4:
            x1, x2 = sorted(flat[0::2])
            y1, y2 = sorted(flat[1::2])
            poly = [x1, y1, x2, y1, x2, y2, x1, y2]
        else:
            return None
        xs, ys = poly[0::2], poly[1::2]
        return {'bbox': [min(xs), min(ys), max(xs), max(ys)],
                'bbox_label': label, 'ignore_flag': 0, 'mask': [poly]}

    def _parse_shape(self, path: str, where: str, shape: object):
        if not isinstance(shape, dict) or not isinstance(
                shape.get('label'), str):
            raise AnnotationError(path, 'a shape needs a "label"', where)
        if shape.get('shape_type') in SKIPPED_TYPES:
            self.skipped_shapes[shape['shape_type']] += 1
            return None
        group = shape.get('group_id')
        if group is not None and (isinstance(group, bool) or
                                  not isinstance(group, (int, str))):
            raise AnnotationError(path, 'group_id must be null, an integer '
                                  f'or a string, got {group!r}'[:200],
                                  where + '[group_id]')
        poly = labelme_shape_polygon(shape, path, where)
        if shape['label'] == IGNORE_LABEL:
            label = (-1, 1)
        else:
            label = self.class_label(shape['label'], path, where + '[label]')
        if label is None:
            return None
        return dict(bbox=polygon_bbox(poly), bbox_label=label[0],
                    ignore_flag=label[1], mask=[poly])
