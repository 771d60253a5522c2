"""VIA (VGG Image Annotator) JSON datasets, with polygons as masks.

Reads VIA 1.x/2.x exports: a mapping from a key (usually file name plus
size) to ``{filename, size, regions, file_attributes}``, or a VIA 2 project
file holding that mapping under ``_via_img_metadata``. ``regions`` may be a
list or a dict keyed by string indices (as in the balloon dataset).

Shapes: ``polygon`` / ``polyline`` (``all_points_x``, ``all_points_y``),
``rect`` (``x, y, width, height``), ``circle`` (``cx, cy, r``) and
``ellipse`` (``cx, cy, rx, ry``, optional ``theta``) become instances with
a box and a polygon mask; ``point`` regions are skipped and counted
(``skipped_shapes``). VIA does not store the image size (``size`` is the
file size in bytes), so it is read from the image header.
"""
import json
import logging
import os.path as osp
from typing import Dict, List, Optional

from mmdet.registry import DATASETS
from mmengine.logging import print_log

from .errors import AnnotationError
from .native import NativeDetDataset, read_image_size
from .shapes import (
    check_numbers,
    ellipse_polygon,
    polygon_area,
    polygon_bbox,
    rect_polygon,
)

__all__ = ['VIADataset', 'via_shape_polygon']


def via_shape_polygon(shape: object, path: str,
                      where: str) -> Optional[List[float]]:
    """Turn VIA ``shape_attributes`` into a flat polygon.

    Args:
        shape (object): The ``shape_attributes`` mapping.
        path (str): The JSON file, for errors.
        where (str): Key path of the region, for errors.

    Returns:
        list[float] | None: The polygon, or None for a ``point``.
    """
    if not isinstance(shape, dict) or not isinstance(shape.get('name'), str):
        raise AnnotationError(path, 'shape_attributes must be a mapping '
                              'with a "name"', where)
    name = shape['name']
    try:
        if name in ('polygon', 'polyline'):
            xs = check_numbers(shape['all_points_x'], path, where)
            ys = check_numbers(shape['all_points_y'], path, where)
            if len(xs) != len(ys) or len(xs) < 3:
                raise AnnotationError(
                    path, f'a polygon needs at least 3 points and as many '
                    f'x as y, got {len(xs)} x and {len(ys)} y', where)
            return [c for xy in zip(xs, ys) for c in xy]
        if name == 'rect':
            x, y, w, h = check_numbers(
                [shape[k] for k in ('x', 'y', 'width', 'height')], path,
                where)
            return rect_polygon(x, y, x + w, y + h)
        if name == 'circle':
            cx, cy, r = check_numbers([shape[k] for k in ('cx', 'cy', 'r')],
                                      path, where)
            return ellipse_polygon(cx, cy, r, r)
        if name == 'ellipse':
            cx, cy, rx, ry, theta = check_numbers(
                [shape[k] for k in ('cx', 'cy', 'rx', 'ry')] +
                [shape.get('theta', 0)], path, where)
            return ellipse_polygon(cx, cy, rx, ry, theta)
    except KeyError as err:
        raise AnnotationError(path, f'{name} shape lacks {err}',
                              where) from None
    if name == 'point':
        return None
    raise AnnotationError(path, f'unsupported shape {name!r}', where)


@DATASETS.register_module()
class VIADataset(NativeDetDataset):
    """VIA JSON instance segmentation dataset, read in place.

    ``ann_file`` is the VIA JSON; images are looked up in
    ``data_prefix['img']`` (defaults to the JSON's folder). Instances get a
    ``mask`` in mmdet's polygon format, so use
    ``LoadAnnotations(with_mask=True, poly2mask=False)`` or ``True``.

    Args:
        *args: Positional arguments of mmdet's ``BaseDetDataset``.
        class_attribute (str, optional): The ``region_attributes`` key that
            holds the class name (a text value, or a checkbox/dropdown
            mapping with one true option). If None, the dataset must have
            exactly one class and every region is of that class.
            Defaults to None.
        drop_degenerate (bool): Drop a polygon of fewer than 3 points or
            of zero area (all points on one line) with a warning naming
            the file and region, count it per file in
            ``degenerate_polygons`` and log the total once per file. If
            False, a polygon of fewer than 3 points is an
            ``AnnotationError``. Defaults to False.
        **kwargs: Keyword arguments of mmdet's ``BaseDetDataset``
            (``data_root``, ``ann_file``, ``data_prefix``, ...).
    """

    METAINFO = {'classes': ()}

    def __init__(self, *args, class_attribute: Optional[str] = None,
                 drop_degenerate: bool = False, **kwargs) -> None:
        self.class_attribute = class_attribute
        self.drop_degenerate = drop_degenerate
        super().__init__(*args, **kwargs)

    def load_raw_data_list(self) -> List[dict]:
        """Parse the VIA JSON file.

        Returns:
            list[dict]: One data info per image, in file order.
        """
        path = self.ann_file
        try:
            with open(path, encoding='utf-8-sig') as f:
                data = json.load(f)
        except (ValueError, UnicodeDecodeError) as err:
            raise AnnotationError(path, f'is not valid JSON: {err}') from None
        if isinstance(data, dict) and '_via_img_metadata' in data:
            data = data['_via_img_metadata']
        elif isinstance(data, dict) and {'project', 'file',
                                         'metadata'} <= set(data):
            raise AnnotationError(path, 'is a VIA 3 project, which is not '
                                  'supported: export the annotations from '
                                  'VIA 2 (Annotation > Export as JSON)')
        if not isinstance(data, dict):
            raise AnnotationError(path, 'expected a VIA mapping of images')
        if self.class_attribute is None and \
                len(self._metainfo['classes']) != 1:
            raise ValueError(
                f'{path}: set class_attribute (the region attribute that '
                'names the class) or give exactly one class in metainfo, got'
                f' {tuple(self._metainfo["classes"])}')
        img_dir = self.data_prefix.get('img') or osp.dirname(path)
        self.degenerate_polygons: Dict[str, int] = {}
        data_list = self.parse_each(
            list(data.items()), path,
            lambda item: self._parse_image(path, img_dir, *item))
        if self.degenerate_polygons:
            print_log(
                f'{type(self).__name__}: dropped '
                f'{sum(self.degenerate_polygons.values())} degenerate '
                f'polygon(s) (fewer than 3 points or zero area) in {path}',
                logger='current', level=logging.WARNING)
        return data_list

    def _parse_image(self, path: str, img_dir: str, key: str,
                     entry: object) -> dict:
        where = f'[{key!r}]'
        if not isinstance(entry, dict) or \
                not isinstance(entry.get('filename'), str):
            raise AnnotationError(path, 'expected a mapping with a '
                                  '"filename"', where)
        img_path = osp.join(img_dir, entry['filename'])
        width, height = read_image_size(img_path, path, where)
        regions = entry.get('regions', [])
        if isinstance(regions, dict):
            regions = list(regions.items())
        elif isinstance(regions, list):
            regions = list(enumerate(regions))
        else:
            raise AnnotationError(path, 'regions must be a list or a '
                                  'mapping', where + '[regions]')
        instances = []
        for idx, region in regions:
            inst = self._parse_region(path, f'{where}[regions][{idx!r}]',
                                      region)
            if inst is not None:
                instances.append(inst)
        return dict(img_path=img_path, img_id=entry['filename'],
                    width=width, height=height, ann_path=path,
                    instances=instances)

    def _parse_region(self, path: str, where: str,
                      region: object) -> Optional[dict]:
        if not isinstance(region, dict):
            raise AnnotationError(path, 'a region must be a mapping', where)
        shape = region.get('shape_attributes')
        if self.drop_degenerate and _is_degenerate_polygon(shape):
            self.degenerate_polygons[path] = \
                self.degenerate_polygons.get(path, 0) + 1
            print_log(f'{path}{where}: dropped a degenerate polygon with '
                      f'{len(shape["all_points_x"])} point(s) (fewer than 3 '
                      'or zero area)', logger='current',
                      level=logging.WARNING)
            return None
        poly = via_shape_polygon(shape, path, where + '[shape_attributes]')
        if poly is None:
            self.skipped_shapes['point'] += 1
            return None
        label = self._region_label(path, where, region)
        if label is None:
            return None
        return dict(bbox=polygon_bbox(poly), bbox_label=label[0],
                    ignore_flag=label[1], mask=[poly])

    def _region_label(self, path: str, where: str, region: dict):
        if self.class_attribute is None:
            return 0, 0
        where += f'[region_attributes][{self.class_attribute!r}]'
        attrs = region.get('region_attributes')
        value = attrs.get(self.class_attribute) if isinstance(
            attrs, dict) else None
        if isinstance(value, dict):  # checkbox: {option: true/false}
            chosen = [k for k, v in value.items() if v]
            value = chosen[0] if len(chosen) == 1 else None
        if not isinstance(value, str):
            raise AnnotationError(path, 'expected one class name, got '
                                  f'{value!r}'[:200], where)
        # 'cat ' typed in VIA's attribute box is class 'cat'
        return self.class_label(value.strip(), path, where)


def _is_degenerate_polygon(shape: object) -> bool:
    """True for a well-formed VIA polygon of < 3 points or zero area."""
    if not isinstance(shape, dict) or \
            shape.get('name') not in ('polygon', 'polyline'):
        return False
    xs, ys = shape.get('all_points_x'), shape.get('all_points_y')
    if not (isinstance(xs, list) and isinstance(ys, list)
            and len(xs) == len(ys)):
        return False  # malformed: via_shape_polygon raises with the location
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool)
               for v in xs + ys):
        return False
    return polygon_area([[c for xy in zip(xs, ys) for c in xy]]) == 0
