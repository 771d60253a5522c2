from .cosine_sim_bbox_head import CosineSimBBoxHead

__all__ = ['CosineSimBBoxHead']
