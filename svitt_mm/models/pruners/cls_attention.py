"""Keep the local tokens the global [CLS] query attends to most (SViTT's visual node sparsity)."""
from svitt_mm.registry import TOKEN_PRUNERS

from .base import TokenPruner


@TOKEN_PRUNERS.register_module()
class ClsAttentionPruner(TokenPruner):
    """Top-``ceil(keep_rate * N)`` tokens by head-averaged [CLS] attention, kept in their order."""
