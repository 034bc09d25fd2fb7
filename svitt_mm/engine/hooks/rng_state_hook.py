"""Random-number-generator states saved in checkpoints and restored on resume.

MMEngine seeds every generator once at start-up, so a resumed run draws the random numbers of a fresh
run (dropout masks, random attention blocks, random frame offsets), not those the interrupted run
would have drawn next. This hook stores the python, numpy, torch (and CUDA) generator states in each
checkpoint and puts them back when training resumes. The data order needs nothing: MMEngine's
``DefaultSampler`` shuffles with a generator seeded by ``seed + epoch``.

The data-loader workers' generators are not in the checkpoint: before each training epoch the hook tells
the training datasets the epoch, and their workers re-seed from ``(seed, epoch, rank, worker id)``
(:mod:`svitt_mm.datasets.worker_seeding`), so persistent workers draw in epoch k what fresh workers of a
run resumed at epoch k draw; and it keeps the main process's torch stream aligned where persistent
workers would make a resumed run draw one base seed more (see :meth:`RNGStateHook.before_train_epoch`).
Iteration-based loops need neither: on resume MMEngine replays the batches already trained, through
workers started as in the first run.
"""
from __future__ import annotations

import random
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from mmengine.dataset import ConcatDataset
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop
from torch.utils.data import Dataset

from svitt_mm.registry import HOOKS

CHECKPOINT_KEY = 'rng_state'


def capture_rng_state() -> Dict[str, Any]:
    """The state of every global generator, in types that ``torch.load(weights_only=True)`` accepts
    (numpy's key array is stored as a list of ints)."""
    bit_generator, key, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    state: Dict[str, Any] = dict(
        python=random.getstate(),
        numpy=dict(bit_generator=bit_generator, key=key.tolist(), pos=int(pos),
                   has_gauss=int(has_gauss), gauss=float(gauss)),
        torch=torch.get_rng_state(),
    )
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Dict[str, Any]) -> None:
    """Set every global generator to a state from :func:`capture_rng_state`."""
    version, internal, gauss_next = state['python']
    random.setstate((version, tuple(internal), gauss_next))
    numpy_state = state['numpy']
    np.random.set_state((numpy_state['bit_generator'], np.asarray(numpy_state['key'], dtype=np.uint32),
                         numpy_state['pos'], numpy_state['has_gauss'], numpy_state['gauss']))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


def leaf_datasets(dataset: Dataset) -> List[Dataset]:
    """``dataset``, or the datasets a ``ConcatDataset`` (MMEngine's or torch's) joins, recursively."""
    children = getattr(dataset, 'datasets', None)
    if isinstance(dataset, ConcatDataset) or isinstance(children, (list, tuple)):
        return [leaf for child in children for leaf in leaf_datasets(child)]
    return [dataset]


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Save the global RNG states with every checkpoint; restore them when training resumes.

    The states are put back in ``before_train``, after the Runner has seeded and built everything, so
    that nothing the Runner does on start-up draws from them. Checkpoints are written by rank 0, so in
    a distributed run every rank resumes with rank 0's streams (the same as at start-up unless
    ``randomness.diff_rank_seed`` is set).
    """

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self._pending: Optional[Dict[str, Any]] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint[CHECKPOINT_KEY] = capture_rng_state()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if CHECKPOINT_KEY in checkpoint:
            self._pending = checkpoint[CHECKPOINT_KEY]
        else:
            print_log('the checkpoint has no RNG states: random streams restart from the seed',
                      logger='current')

    def before_train(self, runner) -> None:
        # `load_from` without `resume` also calls after_load_checkpoint; only a resumed run (iter > 0)
        # continues the checkpoint's streams.
        if self._pending is not None and runner.iter > 0:
            restore_rng_state(self._pending)
        self._pending = None

    def before_train_epoch(self, runner) -> None:
        if not isinstance(runner.train_loop, EpochBasedTrainLoop):
            return
        loader = runner.train_loop.dataloader
        for dataset in leaf_datasets(loader.dataset):
            if hasattr(dataset, 'set_worker_epoch'):
                dataset.set_worker_epoch(runner.seed, runner.epoch, runner.rank)
        if loader.num_workers > 0 and loader.persistent_workers and loader._iterator is not None:
            # A new loader iterator draws its workers' base seed from the global torch generator: every
            # epoch without persistent workers, but with them only the first epoch of a run, which for a
            # resumed run is a later epoch than for the uninterrupted one. Draw as a new iterator would, so
            # that the main process's stream (dropout, random attention blocks) is the same in both runs.
            torch.empty((), dtype=torch.int64).random_(generator=loader.generator)
