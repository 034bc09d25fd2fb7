"""Distributed set-up shared by tools/train.py and tools/test.py: DDP on CPU, and FlexibleRunner
strategies (DDP, FSDP on torch's ``fully_shard``, DeepSpeed).

MMEngine's own initialisation calls ``torch.cuda.set_device`` and gives DDP a GPU ``device_ids``, both of
which fail on a machine without CUDA. On such a machine :func:`setup_distributed` starts the gloo
process group itself (MMEngine then skips its own) and wraps the model without device ids.
"""
from __future__ import annotations

import copy
import gc
import importlib.util
from typing import NamedTuple, Optional

import torch
import torch.distributed as dist
from mmengine.config import Config

from svitt_mm.utils.errors import UserError


class DistributedSetupError(UserError, RuntimeError):
    """A launcher or strategy that cannot run here; the message says what to do instead."""


class StrategyChoice(NamedTuple):
    """What ``--strategy NAME`` puts in the config."""

    strategy: dict  # FlexibleRunner's `strategy`
    optim_wrapper: Optional[str] = None  # optim wrapper type the strategy needs, if not the config's
    package: Optional[str] = None  # package the strategy imports
    ddp_wrapper: bool = False  # the model is wrapped by MMDistributedDataParallel (CPU settings apply)
    cpu_refusal: Optional[str] = None  # why it cannot run without CUDA (None: it can)


STRATEGIES = {
    'ddp': StrategyChoice(dict(type='DDPStrategy'), ddp_wrapper=True),
    # torch's fully_shard (FSDP2): parameters, gradients and optimizer states sharded (ZeRO-3-like), on
    # GPUs over NCCL and on CPUs over gloo (svitt_mm.engine.strategies).
    'fsdp': StrategyChoice(dict(type='FullyShardStrategy')),
    # ZeRO stage 2 shards optimizer states and gradients; bf16 weights and activations (the video input is
    # cast to bf16 with them); DeepSpeed steps through its own engine.
    'deepspeed': StrategyChoice(
        dict(type='DeepSpeedStrategy', zero_optimization=dict(stage=2), bf16=dict(enabled=True),
             inputs_to_half=['inputs']),
        optim_wrapper='DeepSpeedOptimWrapper', package='deepspeed',
        cpu_refusal="DeepSpeed's ZeRO engine runs on CUDA GPUs here (its CPU accelerator needs Intel's "
                    'extension and oneCCL, which svitt_mm does not install) and this machine has none; on '
                    'CPU use --strategy fsdp (ZeRO-3-like sharding over gloo)'),
}


def cpu_model_wrapper_cfg(find_unused_parameters: bool = False) -> dict:
    """``MMDistributedDataParallel`` settings for CPU processes: no device ids, no buffer broadcast."""
    return dict(type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False,
                find_unused_parameters=find_unused_parameters)


def finish_distributed() -> None:
    """Wait for every rank (rank 0 may still be writing its checkpoint), then tear the process group down
    before the interpreter exits: a process group left to the interpreter's shutdown can abort the process
    ("terminate called without an active exception", or SIGABRT with no Python frame).

    Call it after dropping the last reference to the Runner. Garbage is collected first: the Runner, its
    hooks and loops form reference cycles, so its DDP model (whose reducer holds the process group) and its
    data-loader iterators would otherwise be destroyed only in the interpreter's shutdown, after this.
    """
    gc.collect()
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def setup_distributed(cfg: Config) -> None:
    """Prepare ``cfg`` (with ``cfg.launcher`` set) for the Runner; call before building it.

    Sets ``find_unused_parameters`` to False unless the config says otherwise. With a launcher and no
    CUDA it initialises the gloo process group from torchrun's environment (``RANK``, ``WORLD_SIZE``,
    ``MASTER_ADDR``, ``MASTER_PORT``) and sets ``model_wrapper_cfg`` to :func:`cpu_model_wrapper_cfg`.

    Raises:
        DistributedSetupError: a launcher other than ``pytorch`` on a machine without CUDA.
    """
    cfg.find_unused_parameters = bool(cfg.get('find_unused_parameters', False))
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise DistributedSetupError(
            f'--launcher {launcher} needs CUDA; on CPU run the tool under torchrun with --launcher pytorch '
            '(e.g. torchrun --nproc_per_node=2 tools/train.py CONFIG --launcher pytorch)')
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    cfg.env_cfg = dict(cfg.get('env_cfg') or {}, dist_cfg=dict(backend='gloo'))
    cfg.model_wrapper_cfg = cpu_model_wrapper_cfg(cfg.find_unused_parameters)


def use_strategy(cfg: Config, name: str) -> None:
    """Switch ``cfg`` to MMEngine's ``FlexibleRunner`` with the strategy ``name`` (a key of
    :data:`STRATEGIES`). Call after :func:`setup_distributed`: a CPU model-wrapper config moves into the
    strategy, which is where ``FlexibleRunner`` looks for it.

    Raises:
        DistributedSetupError: an unknown strategy, one that cannot run on this machine (no CUDA), whose
            package is not installed, or a run without a distributed launcher (every strategy needs a
            process group; one process is ``torchrun --nproc_per_node=1``).
    """
    if name not in STRATEGIES:
        raise DistributedSetupError(f'unknown strategy {name!r}; choose one of {sorted(STRATEGIES)}')
    choice = STRATEGIES[name]
    if choice.cpu_refusal is not None and not torch.cuda.is_available():
        raise DistributedSetupError(f'--strategy {name} cannot run on this machine: {choice.cpu_refusal}')
    if choice.package is not None and importlib.util.find_spec(choice.package) is None:
        raise DistributedSetupError(
            f'--strategy {name} needs the {choice.package} package: pip install -e ".[{choice.package}]"')
    if cfg.get('launcher', 'none') == 'none':
        raise DistributedSetupError(
            f'--strategy {name} needs a process group: run tools/train.py under torchrun with --launcher '
            f'pytorch (torchrun --nproc_per_node=N tools/train.py CONFIG --launcher pytorch --strategy {name}; '
            'N=1 for one GPU)')
    strategy = copy.deepcopy(choice.strategy)
    model_wrapper = cfg.pop('model_wrapper_cfg', None)
    if model_wrapper is not None and choice.ddp_wrapper:
        strategy['model_wrapper'] = model_wrapper
    cfg.runner_type = 'FlexibleRunner'
    cfg.strategy = strategy
    if choice.optim_wrapper is not None and cfg.get('optim_wrapper') is not None:
        # Only the optimizer and the per-parameter settings carry over to the strategy's wrapper.
        cfg.optim_wrapper = dict(type=choice.optim_wrapper, optimizer=cfg.optim_wrapper.optimizer,
                                 paramwise_cfg=cfg.optim_wrapper.get('paramwise_cfg'))
