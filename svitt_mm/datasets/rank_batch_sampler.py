"""Base of the batch samplers that build global batches per epoch and give each rank its slice."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from mmengine.dist import get_dist_info
from torch.utils.data import Sampler

from svitt_mm.utils.arg_checks import ArgumentError


class RankBatchSampler(Sampler):
    """Wraps an MMEngine ``DefaultSampler`` (its ``dataset``, ``shuffle``, ``seed`` and epoch); subclasses
    lay out global batches of ``batch_size * world_size`` indices per epoch and yield
    :meth:`rank_slice` of each.

    Args:
        sampler: an MMEngine ``DefaultSampler`` (or any object with ``dataset``, ``shuffle``, ``seed`` and
            ``epoch``).
        batch_size: samples per batch on each rank.
        rank, world_size: default to the current process group's.
    """

    def __init__(self, sampler: Sampler, batch_size: int, rank: Optional[int] = None,
                 world_size: Optional[int] = None) -> None:
        if batch_size < 1:
            raise ArgumentError(f'{type(self).__name__}: batch_size must be >= 1, got {batch_size}')
        dist_rank, dist_world = get_dist_info()
        self.sampler = sampler
        self.batch_size = batch_size
        self.rank = dist_rank if rank is None else rank
        self.world_size = dist_world if world_size is None else world_size
        self.global_batch = batch_size * self.world_size

    def set_epoch(self, epoch: int) -> None:
        """Forwarded to the wrapped sampler (``DistSamplerSeedHook`` calls it; the epoch seeds the shuffle)."""
        self.sampler.set_epoch(epoch)

    def epoch_rng(self) -> Optional[np.random.Generator]:
        """This epoch's generator (seed ``sampler.seed + epoch``, the same on every rank), or ``None`` when
        the sampler does not shuffle."""
        if not getattr(self.sampler, 'shuffle', True):
            return None
        return np.random.default_rng(int(getattr(self.sampler, 'seed', 0) or 0)
                                     + int(getattr(self.sampler, 'epoch', 0)))

    def rank_slice(self, global_batch: Sequence[int]) -> Sequence[int]:
        """This rank's ``batch_size`` indices of one global batch."""
        start = self.rank * self.batch_size
        return global_batch[start:start + self.batch_size]
