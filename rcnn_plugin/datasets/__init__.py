from .balloon import BalloonDataset
from .bccd import BCCDDataset
from .coco_writer import convert_main, dataset_to_coco, polygon_area
from .config_tree import (
    iter_dataset_cfgs,
    set_test_mode,
    update_inner_dataset_cfg,
)
from .csv_style import CSVDataset
from .dataset_wrappers import (
    ClassSubsetDataset,
    ImageSubsetDataset,
    KShotDataset,
)
from .errors import AnnotationError, BadImageError
from .k_shot import load_split, sample_k_shot, save_split
from .kitti import KittiDataset, parse_kitti_line
from .labelme import LabelMeDataset, labelme_shape_polygon
from .layouts import FORMATS, LayoutError, detect_layout, split_configs
from .native import drop_degenerate, read_image_size
from .proposals import ProposalFileError, match_proposals, proposal_key
from .samplers import (
    NegativeFractionSampler,
    is_negative_image,
    negatives_per_batch,
)
from .seeded_split import SeededSplitDataset, ensure_split
from .shapes import check_numbers, ellipse_polygon, polygon_bbox, rect_polygon
from .stats import (
    class_instance_counts,
    count_ignored_instances,
    count_images_without_instances,
)
from .synthetic_cells import SyntheticCellsDataset, make_synthetic_cells
from .transforms import *  # noqa: F401,F403
from .val_split import stratified_split
from .validation import check_dataset_cfg, format_report, is_fatal
from .via import VIADataset, via_shape_polygon
from .xml_style import StrictXMLDataset, UnknownClassError
from .yolo import YOLODataset, parse_yolo_line, read_class_names

__all__ = [
    'AnnotationError',
    'BadImageError',
    'BCCDDataset',
    'CSVDataset',
    'detect_layout',
    'ImageSubsetDataset',
    'LayoutError',
    'stratified_split',
    'update_inner_dataset_cfg',
    'iter_dataset_cfgs',
    'set_test_mode',
    'check_dataset_cfg',
    'check_numbers',
    'class_instance_counts',
    'ClassSubsetDataset',
    'convert_main',
    'count_ignored_instances',
    'count_images_without_instances',
    'dataset_to_coco',
    'drop_degenerate',
    'ellipse_polygon',
    'format_report',
    'FORMATS',
    'is_fatal',
    'is_negative_image',
    'KittiDataset',
    'KShotDataset',
    'labelme_shape_polygon',
    'LabelMeDataset',
    'load_split',
    'make_synthetic_cells',
    'NegativeFractionSampler',
    'negatives_per_batch',
    'parse_kitti_line',
    'parse_yolo_line',
    'polygon_area',
    'polygon_bbox',
    'read_class_names',
    'read_image_size',
    'rect_polygon',
    'sample_k_shot',
    'save_split',
    'SeededSplitDataset',
    'ensure_split',
    'split_configs',
    'StrictXMLDataset',
    'SyntheticCellsDataset',
    'UnknownClassError',
    'via_shape_polygon',
    'VIADataset',
    'YOLODataset',
    'BalloonDataset',
    'ProposalFileError',
    'match_proposals',
    'proposal_key',
]
