from .base import TokenPruner, TokenReduction
from .cls_attention import ClsAttentionPruner
from .proportional_attention import ProportionalAttentionBias
from .random_pruner import RandomPruner
from .text_guided import TextGuidedPruner
from .token_merger import TokenMerger

__all__ = ['TokenPruner', 'TokenReduction', 'ClsAttentionPruner', 'ProportionalAttentionBias', 'RandomPruner',
           'TextGuidedPruner', 'TokenMerger']
