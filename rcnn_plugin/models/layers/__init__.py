from .cosine_sim_linear import CosineSimLinear

__all__ = ['CosineSimLinear']
