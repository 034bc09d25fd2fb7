from .base import TokenPruner
from .cls_attention import ClsAttentionPruner
from .random_pruner import RandomPruner
from .text_guided import TextGuidedPruner

__all__ = ['TokenPruner', 'ClsAttentionPruner', 'RandomPruner', 'TextGuidedPruner']
