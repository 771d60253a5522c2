from .bbox_heads import CosineSimBBoxHead

__all__ = ['CosineSimBBoxHead']
