from .corruptions import (
    RandomCorrupt,
    SeededCorrupt,
    check_severities,
    corrupt,
    insert_after_loading,
    patch_imagecorruptions,
    resolve_corruptions,
)
from .loading import (
    LoadDomainImageFromFile,
    exif_orientation,
    image_orientation,
    scale_intensity,
)
from .stain import HEDJitter

__all__ = [
    'HEDJitter',
    'RandomCorrupt', 'SeededCorrupt', 'check_severities', 'corrupt',
    'insert_after_loading', 'patch_imagecorruptions', 'resolve_corruptions',
    'LoadDomainImageFromFile', 'exif_orientation', 'image_orientation',
    'scale_intensity'
]
