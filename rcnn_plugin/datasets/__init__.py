from .bccd import BCCDDataset
from .dataset_wrappers import ClassSubsetDataset, KShotDataset
from .k_shot import load_split, sample_k_shot, save_split
from .samplers import (
    NegativeFractionSampler,
    is_negative_image,
    negatives_per_batch,
)
from .stats import class_instance_counts, count_images_without_instances
from .synthetic_cells import SyntheticCellsDataset, make_synthetic_cells
from .xml_style import StrictXMLDataset, UnknownClassError

__all__ = [
    'ClassSubsetDataset', 'KShotDataset', 'load_split', 'sample_k_shot',
    'save_split',
    'NegativeFractionSampler', 'is_negative_image', 'negatives_per_batch',
    'BCCDDataset', 'StrictXMLDataset', 'SyntheticCellsDataset',
    'UnknownClassError', 'class_instance_counts',
    'count_images_without_instances', 'make_synthetic_cells'
]
