from .ignore_negatives_assigner import IgnoreNegativesAssigner

__all__ = ['IgnoreNegativesAssigner']
