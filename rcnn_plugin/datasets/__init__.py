from .bccd import BCCDDataset
from .samplers import (
    NegativeFractionSampler,
    is_negative_image,
    negatives_per_batch,
)
from .stats import class_instance_counts, count_images_without_instances
from .synthetic_cells import SyntheticCellsDataset, make_synthetic_cells
from .xml_style import StrictXMLDataset, UnknownClassError

__all__ = [
    'NegativeFractionSampler', 'is_negative_image', 'negatives_per_batch',
    'BCCDDataset', 'StrictXMLDataset', 'SyntheticCellsDataset',
    'UnknownClassError', 'class_instance_counts',
    'count_images_without_instances', 'make_synthetic_cells'
]
