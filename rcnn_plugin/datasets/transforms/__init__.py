from .loading import (
    LoadDomainImageFromFile,
    exif_orientation,
    image_orientation,
    scale_intensity,
)
from .wrappers import BoxProposalBroadcaster

__all__ = [
    'LoadDomainImageFromFile', 'exif_orientation', 'image_orientation',
    'scale_intensity', 'BoxProposalBroadcaster'
]
