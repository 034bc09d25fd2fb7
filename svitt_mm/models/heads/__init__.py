from .contrastive import ContrastiveHead
from .lm_head import LanguageModelHead
from .matching import MatchingHead

__all__ = ['ContrastiveHead', 'MatchingHead', 'LanguageModelHead']
