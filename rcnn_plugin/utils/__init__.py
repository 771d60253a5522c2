from .dist import prepare_distributed

__all__ = ['prepare_distributed']
