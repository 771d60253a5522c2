from .loading import (
    LoadDomainImageFromFile,
    exif_orientation,
    image_orientation,
    scale_intensity,
)

__all__ = [
    'LoadDomainImageFromFile', 'exif_orientation', 'image_orientation',
    'scale_intensity'
]
