from .bccd import BCCDDataset
from .proposals import (
    ProposalFileError,
    StrictProposalsMixin,
    match_proposals,
    proposal_key,
)
from .stats import class_instance_counts, count_images_without_instances
from .synthetic_cells import SyntheticCellsDataset, make_synthetic_cells
from .transforms import BoxProposalBroadcaster
from .xml_style import StrictXMLDataset, UnknownClassError

__all__ = [
    'BCCDDataset', 'BoxProposalBroadcaster', 'ProposalFileError',
    'StrictProposalsMixin', 'StrictXMLDataset', 'SyntheticCellsDataset',
    'UnknownClassError', 'class_instance_counts',
    'count_images_without_instances', 'make_synthetic_cells',
    'match_proposals', 'proposal_key'
]
