from .amp import BF16_SWAPS, enable_amp
from .cli import add_common_args, load_config
from .dist import prepare_distributed

__all__ = [
    'add_common_args', 'load_config', 'prepare_distributed', 'BF16_SWAPS',
    'enable_amp'
]
