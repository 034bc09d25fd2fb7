"""Curricula: schedules of training settings, applied by :class:`~svitt_mm.engine.hooks.CurriculumHook`."""
from .temporal_sparse_expansion import TemporalSparseExpansion

__all__ = ['TemporalSparseExpansion']
