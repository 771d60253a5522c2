from .bccd import BCCDDataset
from .stats import class_instance_counts, count_images_without_instances
from .synthetic_cells import SyntheticCellsDataset, make_synthetic_cells
from .xml_style import StrictXMLDataset, UnknownClassError

__all__ = [
    'BCCDDataset', 'StrictXMLDataset', 'SyntheticCellsDataset',
    'UnknownClassError', 'class_instance_counts',
    'count_images_without_instances', 'make_synthetic_cells'
]
