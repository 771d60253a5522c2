from .cosine_sim_linear import CosineSimLinear
from .sparse_roi_align import sparse_roi_align

__all__ = ['CosineSimLinear', 'sparse_roi_align']
