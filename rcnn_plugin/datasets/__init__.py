from .bccd import BCCDDataset
from .synthetic_cells import SyntheticCellsDataset, make_synthetic_cells
from .xml_style import StrictXMLDataset, UnknownClassError

__all__ = [
    'BCCDDataset', 'StrictXMLDataset', 'SyntheticCellsDataset',
    'UnknownClassError', 'make_synthetic_cells'
]
