"""Balloon (the Mask R-CNN balloon sample): VIA polygons, one class.

Layout::

    balloon/
      train/via_region_data.json, train/*.jpg   (61 images, 255 polygons)
      val/via_region_data.json, val/*.jpg       (13 images, 50 polygons)

Use ``data_root='.../balloon/'``, ``ann_file='train/via_region_data.json'``
and ``data_prefix=dict(img='train/')``.
"""
from mmdet.registry import DATASETS

from .via import VIADataset

__all__ = ['BalloonDataset']


@DATASETS.register_module()
class BalloonDataset(VIADataset):
    """Balloon instance segmentation, read in place from its VIA JSON.

    A :class:`VIADataset` with the one class ``balloon`` that drops
    degenerate polygons (fewer than 3 points, or zero area) with a warning
    naming the file and region, and counts them per file in
    ``degenerate_polygons``.

    Args:
        *args: Positional arguments of :class:`VIADataset`.
        drop_degenerate (bool): See :class:`VIADataset`. Defaults to True.
        **kwargs: Keyword arguments of :class:`VIADataset`.
    """

    METAINFO = {'classes': ('balloon', ), 'palette': [(220, 20, 60)]}

    def __init__(self, *args, drop_degenerate: bool = True,
                 **kwargs) -> None:
        super().__init__(*args, drop_degenerate=drop_degenerate, **kwargs)
