from .cli import add_common_args, load_config
from .dist import prepare_distributed
from .overlay import apply_overlays

__all__ = [
    'add_common_args', 'apply_overlays', 'load_config', 'prepare_distributed'
]
