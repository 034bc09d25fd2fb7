from .contrastive import ContrastiveHead
from .matching import MatchingHead

__all__ = ['ContrastiveHead', 'MatchingHead']
