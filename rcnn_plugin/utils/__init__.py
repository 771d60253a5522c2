from .cli import add_common_args, load_config
from .dist import prepare_distributed

__all__ = ['add_common_args', 'load_config', 'prepare_distributed']
