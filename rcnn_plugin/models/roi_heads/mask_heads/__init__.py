from .small_init_fcn_mask_head import SmallInitFCNMaskHead

__all__ = ['SmallInitFCNMaskHead']
