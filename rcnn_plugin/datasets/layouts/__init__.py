"""Dataset folders as labelling tools leave them: format, splits, classes.

:func:`detect_layout` finds which of :data:`FORMATS` a folder holds (or
reads the one given), its splits and class names, and returns a
:class:`DatasetLayout` with one dataset config per split. Used by
``tools/analysis/check_dataset.py --data-root``, the converters in
``tools/dataset_converters`` and ``tools/finetune.py``.
"""
from ..val_split import stratified_split
from .base import FORMATS, DatasetLayout, LayoutError
from .detect import LOOKED_FOR, detect_layout, split_configs

__all__ = [
    'FORMATS', 'DatasetLayout', 'LayoutError', 'LOOKED_FOR',
    'detect_layout', 'split_configs', 'stratified_split'
]
