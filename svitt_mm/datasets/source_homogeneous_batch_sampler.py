"""Batches drawn from one part of a ConcatDataset at a time (e.g. 1-frame images vs 4-frame videos)."""
from __future__ import annotations

from typing import Iterator, List, Optional, Sequence

import numpy as np
from mmengine.dataset import ConcatDataset
from torch.utils.data import Sampler

from svitt_mm.registry import DATA_SAMPLERS
from svitt_mm.utils.arg_checks import ArgumentError

from .rank_batch_sampler import RankBatchSampler


def interleave_sources(batch_counts: Sequence[int]) -> List[int]:
    """Source index of each batch when source ``s`` contributes ``batch_counts[s]`` batches, spread evenly.

    Batch ``j`` of source ``s`` sits at the fraction ``(j + 0.5) / batch_counts[s]`` of the epoch, so
    every stretch of the epoch holds the sources in proportion to their sizes (ties: lower source first).
    E.g. ``[3, 1] -> [0, 0, 1, 0]`` (positions 1/6, 1/2, 1/2 and 5/6).
    """
    keys = [((j + 0.5) / count, source, j)
            for source, count in enumerate(batch_counts) for j in range(count)]
    return [source for _, source, _ in sorted(keys)]


@DATA_SAMPLERS.register_module()
class SourceHomogeneousBatchSampler(RankBatchSampler):
    """Every batch comes from one dataset of a :class:`mmengine.dataset.ConcatDataset`.

    Per epoch, each source's indices are shuffled (seed ``sampler.seed + epoch``, the same on every
    rank), cut into global batches of ``batch_size * world_size`` (the incomplete rest is dropped), and
    the sources' batches are interleaved in proportion to their sizes (:func:`interleave_sources`).
    Rank ``r`` takes the ``r``-th ``batch_size`` slice of each global batch: all ranks run the same
    number of steps and, at each step, the same source (so clip lengths agree across ranks too).

    Use as the train dataloader's ``batch_sampler=dict(type='SourceHomogeneousBatchSampler')`` with a
    ``DefaultSampler``; MMEngine passes that ``sampler`` and ``batch_size``. The sampler supplies the
    dataset, ``shuffle``, ``seed`` and the epoch (``DistSamplerSeedHook`` calls its ``set_epoch``); its
    own index order is not used. Set ``drop_last=False`` in the dataloader (PyTorch forbids it next to a
    batch sampler; this sampler always drops incomplete batches).

    Args:
        sampler: an MMEngine ``DefaultSampler`` (or any object with ``dataset``, ``shuffle``, ``seed`` and
            ``epoch``) over a ``ConcatDataset``.
        batch_size: samples per batch on each rank.
        rank, world_size: default to the current process group's.
    """

    def __init__(self, sampler: Sampler, batch_size: int, rank: Optional[int] = None,
                 world_size: Optional[int] = None) -> None:
        dataset = getattr(sampler, 'dataset', None)
        if not isinstance(dataset, ConcatDataset):
            raise TypeError(f'SourceHomogeneousBatchSampler needs a ConcatDataset (train_dataloader.dataset '
                            f'type="ConcatDataset", datasets=[...]), got {type(dataset).__name__}')
        super().__init__(sampler, batch_size, rank, world_size)
        # mmengine's ConcatDataset keeps cumulative_sizes private until it is fully initialised
        self.offsets = [0] + [len(part) for part in dataset.datasets]
        self.offsets = np.cumsum(self.offsets).tolist()
        self.batch_counts = [len(part) // self.global_batch for part in dataset.datasets]
        if sum(self.batch_counts) == 0:
            raise ArgumentError(f'SourceHomogeneousBatchSampler: no source holds one global batch of '
                                f'{batch_size} x {self.world_size} ranks (source sizes '
                                f'{[len(part) for part in dataset.datasets]})')

    def __iter__(self) -> Iterator[List[int]]:
        rng = self.epoch_rng()
        batches_of_source = []
        for source, count in enumerate(self.batch_counts):
            start, stop = self.offsets[source], self.offsets[source + 1]
            indices = np.arange(start, stop)
            if rng is not None:
                indices = rng.permutation(indices)
            batches = indices[:count * self.global_batch].reshape(count, self.global_batch)
            batches_of_source.append(iter(batches))
        for source in interleave_sources(self.batch_counts):
            yield self.rank_slice(next(batches_of_source[source])).tolist()

    def __len__(self) -> int:
        return sum(self.batch_counts)
