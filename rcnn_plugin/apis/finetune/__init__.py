"""One-command fine-tuning of a labelled folder (``tools/finetune.py``)."""
from .auto_config import FinetuneOptions, build_overrides, write_config
from .cli import main, parse_args, prepare
from .data_stats import (
    DataStats,
    collect_stats,
    default_epochs,
    pick_img_scale,
    small_object_warning,
)
from .pretrained import retarget_checkpoint

__all__ = [
    'DataStats', 'FinetuneOptions', 'build_overrides', 'collect_stats',
    'default_epochs', 'main', 'parse_args', 'pick_img_scale', 'prepare',
    'retarget_checkpoint', 'small_object_warning', 'write_config'
]
