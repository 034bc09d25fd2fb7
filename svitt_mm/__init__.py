"""svitt_mm: sparse video-text transformers (SViTT and dense baselines) on MMEngine."""
from .version import __version__

__all__ = ['__version__']
