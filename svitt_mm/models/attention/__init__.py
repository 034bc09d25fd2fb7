from .base import AttentionOp, PairBias
from .dense import DenseAttention

__all__ = ['AttentionOp', 'PairBias', 'DenseAttention']
