"""Balloon (the Mask R-CNN balloon sample): VIA polygons, one class.

Layout::

    balloon/
      train/via_region_data.json, train/*.jpg   (61 images, 255 polygons)
      val/via_region_data.json, val/*.jpg       (13 images, 50 polygons)

Use ``data_root='.../balloon/'``, ``ann_file='train/via_region_data.json'``
and ``data_prefix=dict(img='train/')``.
"""
from typing import Dict, List, Optional

from mmdet.registry import DATASETS
from mmengine.logging import print_log

from .coco_writer import polygon_area
from .via import VIADataset

__all__ = ['BalloonDataset']


@DATASETS.register_module()
class BalloonDataset(VIADataset):
    """Balloon instance segmentation, read in place from its VIA JSON.

    On top of :class:`VIADataset`, a degenerate polygon (fewer than 3
    points, or zero area: all points on one line) is dropped with a warning
    naming the file and region, and counted per file in
    ``degenerate_polygons``; the total is logged once per split.
    (``VIADataset`` alone refuses a polygon of fewer than 3 points.)
    """

    METAINFO = {'classes': ('balloon', ), 'palette': [(220, 20, 60)]}

    def load_raw_data_list(self) -> List[dict]:
        """Parse the VIA JSON, dropping and counting degenerate polygons.

        Returns:
            list[dict]: One data info per image, in file order.
        """
        self.degenerate_polygons: Dict[str, int] = {}
        data_list = super().load_raw_data_list()
        if self.degenerate_polygons:
            print_log(
                f'{type(self).__name__}: dropped '
                f'{sum(self.degenerate_polygons.values())} degenerate '
                f'polygon(s) (fewer than 3 points or zero area) in '
                f'{self.ann_file}', logger='current', level=30)
        return data_list

    def _parse_region(self, path: str, where: str,
                      region: object) -> Optional[dict]:
        shape = region.get('shape_attributes') if isinstance(
            region, dict) else None
        if not _is_degenerate_polygon(shape):
            return super()._parse_region(path, where, region)
        self.degenerate_polygons[path] = \
            self.degenerate_polygons.get(path, 0) + 1
        print_log(f'{path}{where}: dropped a degenerate polygon with '
                  f'{len(shape["all_points_x"])} point(s) (fewer than 3 or '
                  'zero area)', logger='current', level=30)
        return None


def _is_degenerate_polygon(shape: object) -> bool:
    """True for a well-formed VIA polygon of < 3 points or zero area."""
    if not isinstance(shape, dict) or \
            shape.get('name') not in ('polygon', 'polyline'):
        return False
    xs, ys = shape.get('all_points_x'), shape.get('all_points_y')
    if not (isinstance(xs, list) and isinstance(ys, list)
            and len(xs) == len(ys)):
        return False  # malformed: VIADataset raises with the location
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool)
               for v in xs + ys):
        return False
    return polygon_area([[c for xy in zip(xs, ys) for c in xy]]) == 0
