from .balloon import BalloonDataset
from .bccd import BCCDDataset
from .coco_writer import convert_main, dataset_to_coco, polygon_area
from .errors import AnnotationError, BadImageError
from .kitti import KittiDataset, parse_kitti_line
from .labelme import LabelMeDataset, labelme_shape_polygon
from .layouts import FORMATS, split_configs
from .native import drop_degenerate, read_image_size
from .proposals import (
    ProposalFileError,
    match_proposals,
    proposal_key,
)
from .shapes import check_numbers, ellipse_polygon, polygon_bbox, rect_polygon
from .stats import class_instance_counts, count_images_without_instances
from .synthetic_cells import SyntheticCellsDataset, make_synthetic_cells
from .transforms import *  # noqa: F401,F403
from .validation import check_dataset_cfg, format_report, is_fatal
from .via import VIADataset, via_shape_polygon
from .xml_style import StrictXMLDataset, UnknownClassError
from .yolo import YOLODataset, parse_yolo_line, read_class_names

__all__ = [
    'FORMATS', 'AnnotationError', 'BadImageError', 'BCCDDataset',
    'KittiDataset', 'LabelMeDataset', 'StrictXMLDataset',
    'SyntheticCellsDataset', 'UnknownClassError', 'VIADataset',
    'YOLODataset', 'check_dataset_cfg', 'check_numbers',
    'class_instance_counts', 'convert_main', 'count_images_without_instances',
    'dataset_to_coco', 'drop_degenerate', 'ellipse_polygon', 'format_report',
    'is_fatal', 'labelme_shape_polygon', 'make_synthetic_cells',
    'parse_kitti_line', 'parse_yolo_line', 'polygon_area', 'polygon_bbox',
    'read_class_names', 'read_image_size', 'rect_polygon', 'split_configs',
    'via_shape_polygon',
    'BalloonDataset', 'ProposalFileError', 'match_proposals', 'proposal_key'
]
