from .atomic_checkpoint_hook import AtomicCheckpointHook
from .broken_media_hook import BrokenMediaHook
from .checked_load_hook import CheckedLoadHook
from .curriculum_hook import CurriculumHook
from .metrics_table_hook import MetricsTableHook
from .rng_state_hook import RNGStateHook

__all__ = ['AtomicCheckpointHook', 'BrokenMediaHook', 'CheckedLoadHook', 'CurriculumHook', 'MetricsTableHook', 'RNGStateHook']
