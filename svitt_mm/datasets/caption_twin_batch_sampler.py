"""Batches that hold each caption together with its twin, so that the contrastive loss must tell them apart.

A caption's twin is the caption with one of ``swap_words``'s words replaced by its partner: with
``swap_words=[('left', 'right'), ('grows', 'shrinks')]``, "a red circle moves left" and "a red circle moves
right" are twins. On the built-in demo data every twin is the time-reversal of its caption, so a batch of
twins makes frame order the only way to lower the loss; in a random batch the twin is rarely present and
an order-blind model loses little.
"""
from __future__ import annotations

from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from torch.utils.data import Sampler

from svitt_mm.registry import DATA_SAMPLERS
from svitt_mm.utils.arg_checks import ArgumentError

from .rank_batch_sampler import RankBatchSampler


def twin_key(caption: str, partner: Dict[str, str]) -> Tuple[str, ...]:
    """The caption's words with every swap word replaced by its pair's name: equal for twins."""
    return tuple('|'.join(sorted((word, partner[word]))) if word in partner else word
                 for word in caption.lower().split())


@DATA_SAMPLERS.register_module()
class CaptionTwinBatchSampler(RankBatchSampler):
    """Batches made of (sample, twin sample) couples, in random order.

    Per epoch (seed ``sampler.seed + epoch``, the same on every rank), the samples of each pair of twin
    captions are shuffled and coupled one to one (caption A's i-th sample with caption B's i-th); samples
    left over, and those whose caption has no twin in the dataset, are paired at random. The pairs are
    shuffled, laid end to end (an odd sample out last) and cut into global batches of
    ``batch_size * world_size`` (the incomplete rest is dropped); rank ``r`` takes the ``r``-th
    ``batch_size`` slice. With an even ``batch_size`` no couple is split.

    Use as the train dataloader's ``batch_sampler=dict(type='CaptionTwinBatchSampler', swap_words=[...])``
    with a ``DefaultSampler`` (MMEngine passes that ``sampler`` and ``batch_size``; it supplies the dataset,
    ``shuffle``, ``seed`` and the epoch) and ``drop_last=False`` in the dataloader (PyTorch forbids it
    next to a batch sampler; this sampler always drops the incomplete batch).

    Args:
        sampler: an MMEngine ``DefaultSampler`` over a dataset whose data infos hold ``captions`` (one
            caption per training sample, as ``VideoTextDataset`` gives in ``mode='train'``).
        batch_size: samples per batch on each rank.
        swap_words: pairs of words that turn a caption into its twin.
        rank, world_size: default to the current process group's.
    """

    def __init__(self, sampler: Sampler, batch_size: int, swap_words: Sequence[Sequence[str]],
                 rank: Optional[int] = None, world_size: Optional[int] = None) -> None:
        super().__init__(sampler, batch_size, rank, world_size)
        name = type(self).__name__
        partner: Dict[str, str] = {}
        for pair in swap_words:
            if len(pair) != 2 or pair[0] == pair[1] or any(word in partner for word in pair):
                raise ArgumentError(f'{name}: swap_words must be pairs of distinct words, each word in one pair; '
                                    f'got {pair!r} in {list(swap_words)!r}')
            partner[pair[0].lower()], partner[pair[1].lower()] = pair[1].lower(), pair[0].lower()
        dataset = sampler.dataset
        self.num_samples = len(dataset)
        if self.num_samples < self.global_batch:
            raise ArgumentError(f'{name}: {self.num_samples} samples do not fill one global batch of '
                                f'{batch_size} x {self.world_size} ranks')
        groups: Dict[Tuple[str, ...], Dict[str, List[int]]] = {}
        for index in range(self.num_samples):
            captions = dataset.get_data_info(index).get('captions')
            if not captions or len(captions) != 1:
                raise ArgumentError(f'{name}: sample {index} must hold exactly one caption (a train-mode '
                                    f'VideoTextDataset), got {captions!r}')
            caption = captions[0]
            groups.setdefault(twin_key(caption, partner), {}).setdefault(caption, []).append(index)
        self.groups = [list(sides.values()) for sides in groups.values()]
        self.num_twin_pairs = sum(len(sides) == 2 for sides in self.groups)

    def units(self, rng: Optional[np.random.Generator]) -> List[List[int]]:
        """The epoch's units of two samples, shuffled by ``rng`` (in order when ``None``): the twin couples,
        then the other samples paired among themselves; an odd one out comes last."""
        couples: List[List[int]] = []
        singles: List[int] = []
        for sides in self.groups:
            sides = [list(rng.permutation(side)) if rng is not None else list(side) for side in sides]
            if len(sides) == 2:
                count = min(len(sides[0]), len(sides[1]))
                couples += [[int(a), int(b)] for a, b in zip(sides[0][:count], sides[1][:count])]
                singles += [int(i) for side in sides for i in side[count:]]
            else:
                singles += [int(i) for side in sides for i in side]
        if rng is not None:
            singles = [singles[i] for i in rng.permutation(len(singles))]
        units = couples + [singles[i:i + 2] for i in range(0, len(singles) - 1, 2)]
        if rng is not None:
            units = [units[i] for i in rng.permutation(len(units))]
        return units + ([singles[-1:]] if len(singles) % 2 else [])

    def __iter__(self) -> Iterator[List[int]]:
        order = [index for unit in self.units(self.epoch_rng()) for index in unit]
        for offset in range(0, len(order) - self.global_batch + 1, self.global_batch):
            yield self.rank_slice(order[offset:offset + self.global_batch])

    def __len__(self) -> int:
        return self.num_samples // self.global_batch
