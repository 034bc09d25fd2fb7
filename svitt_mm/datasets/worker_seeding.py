"""Random streams of data-loader workers that depend only on (seed, epoch, rank, worker id).

Persistent workers (``persistent_workers=True``) keep their numpy, python and torch generators from one
epoch to the next, so an uninterrupted run draws epoch 3's random frame offsets and crops from streams
that epochs 1 and 2 advanced, while a run resumed at epoch 3 starts fresh workers seeded as at start-up:
the two runs train on different clips. :class:`EpochSeededWorkers` re-seeds each worker when it fetches
its first sample of an epoch, from ``(seed, epoch, rank, worker id)`` alone, so both runs draw the same.

The epoch reaches the workers through a small shared-memory array that the main process writes
(:meth:`EpochSeededWorkers.set_worker_epoch`, called by ``RNGStateHook`` before each training epoch)
and the workers read; it is created with the dataset, before the workers start.
"""
from __future__ import annotations

import multiprocessing
import random

import numpy as np
import torch
from torch.utils.data import get_worker_info

_UNSET = -1


def worker_seed(seed: int, epoch: int, rank: int, worker_id: int) -> int:
    """A 32-bit seed for one worker's generators in one epoch (numpy's ``SeedSequence`` of the four)."""
    return int(np.random.SeedSequence([seed, epoch, rank, worker_id]).generate_state(1)[0])


class EpochSeededWorkers:
    """Re-seed data-loader workers at each epoch from ``(seed, epoch, rank, worker id)``; see the module
    docstring. Call :meth:`init_worker_seeding` in ``__init__`` and :meth:`reseed_worker` at the start of
    ``__getitem__``. In the main process (``num_workers=0``) nothing is re-seeded: there the generators
    are the training process's own, which ``RNGStateHook`` saves and restores."""

    def init_worker_seeding(self) -> None:
        # (seed, epoch, rank); epoch -1 until the trainer sets it (evaluation, plain iteration)
        self._worker_epoch = multiprocessing.RawArray('q', [0, _UNSET, 0])
        self._seeded_for = None

    def set_worker_epoch(self, seed: int, epoch: int, rank: int = 0) -> None:
        """From the main process: the workers re-seed for ``epoch`` at their next fetch."""
        self._worker_epoch[:] = [seed, epoch, rank]

    def reseed_worker(self) -> None:
        """In a worker, at the first fetch after :meth:`set_worker_epoch`: seed python's, numpy's and
        torch's generators for this (seed, epoch, rank, worker)."""
        info = get_worker_info()
        seed, epoch, rank = self._worker_epoch[:]
        if info is None or epoch == _UNSET or self._seeded_for == (seed, epoch, rank):
            return
        value = worker_seed(seed, epoch, rank, info.id)
        random.seed(value)
        np.random.seed(value)
        torch.manual_seed(value)
        self._seeded_for = (seed, epoch, rank)
