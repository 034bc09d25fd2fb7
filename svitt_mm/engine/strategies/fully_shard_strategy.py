"""Fully sharded data parallel training (ZeRO-3-like) with torch's ``fully_shard`` (FSDP2) for MMEngine's
``FlexibleRunner``: ``tools/train.py --strategy fsdp``.

MMEngine's ``FSDPStrategy`` wraps the model in the older ``FullyShardedDataParallel`` (FSDP1) with a CUDA
``device_id``, so on a machine without CUDA it stops at "Found no NVIDIA driver" (or, given a CPU device,
at our 0-d ``contrastive_head.temperature``: "FSDP doesn't support scalar parameters"). ``fully_shard``
shards over any process group, gloo on CPU included, so this strategy trains on CPUs and GPUs alike.

What it does:

* **Sharding.** Every element of every ``nn.ModuleList`` (the transformer layers: ``VideoBEiT.blocks``,
  ``BertFusionEncoder.layers``, ``AnswerDecoder.layers``) is one sharded unit; the root holds the rest
  (embeddings, norms, heads). Parameters, gradients and AdamW states live as 1/world shards (``Shard(0)``);
  a unit all-gathers its parameters for its forward and backward only. 0-d parameters (the contrastive
  temperature), which ``fully_shard`` refuses, stay whole on every rank and their gradients are averaged
  over the ranks after each backward, as DDP would.
* **Same start as DDP.** Rank 0's weights are broadcast before sharding (DDP does the same when it wraps).
* **Checkpoints** hold the full state dict, written by rank 0, in exactly the layout a single-process run
  writes (model keys without prefixes, optimizer state keyed by parameter index): ``tools/test.py``,
  ``load_from`` and ``--resume`` read them with or without this strategy.
* **Evaluation** runs on gathered parameters (see :class:`~.fully_sharded_model.FullyShardedModel`).

Args:
    param_dtype: ``None`` (parameters and gradients in float32) or ``'bfloat16'``/``'float16'``: the
        dtype the all-gathered parameters and the forward/backward use; gradients are reduced in float32
        and the sharded master weights stay float32 (``MixedPrecisionPolicy``).
    reshard_after_forward: free the gathered parameters of a unit after its forward (ZeRO-3); ``False``
        keeps them until the backward (ZeRO-2-like memory: no second all-gather, more memory).
    **kwargs: ``DDPStrategy``'s (``sync_bn``) and ``BaseStrategy``'s arguments (work dir, env, logging).
"""
from __future__ import annotations

import copy
import re
import time
from typing import Callable, Dict, List, Optional, Union

import mmengine
import torch
import torch.distributed as dist
from mmengine._strategy import DDPStrategy
from mmengine.device import get_device
from mmengine.dist import is_main_process
from mmengine.model import is_model_wrapper
from mmengine.optim import BaseOptimWrapper
from mmengine.runner.checkpoint import _load_checkpoint, save_checkpoint
from mmengine.utils import get_git_hash
from torch import nn
from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict,
                                                     get_optimizer_state_dict, set_optimizer_state_dict)
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
from torch.distributed.tensor import DTensor, distribute_tensor

from svitt_mm.registry import STRATEGIES
from svitt_mm.utils.arg_checks import ArgumentError
from svitt_mm.utils.errors import UserError

from .fully_sharded_model import FullyShardedModel

# Gathered on every rank (each rank loads the checkpoint file itself), or gathered onto rank 0's CPU.
_FULL = StateDictOptions(full_state_dict=True)
_FULL_ON_RANK0 = StateDictOptions(full_state_dict=True, cpu_offload=True)
PARAM_DTYPES = dict(bfloat16=torch.bfloat16, float16=torch.float16)


def sharded_units(model: nn.Module) -> List[nn.Module]:
    """The elements of every outermost ``nn.ModuleList`` of ``model`` (its transformer layers)."""
    units: List[nn.Module] = []
    taken = set()
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and id(module) not in taken:
            units.extend(module)
            taken.update(id(inner) for unit in module for inner in unit.modules())
    return units


def average_gradient_over_ranks(param: torch.Tensor) -> None:
    """Post-accumulate-grad hook of an unsharded parameter: replace its gradient by the mean over ranks
    (every rank runs the same backward, so the hooks fire, and the all-reduces run, in the same order)."""
    dist.all_reduce(param.grad)
    param.grad.div_(dist.get_world_size())


def index_keyed(optim_state: dict) -> dict:
    """A parameter-name-keyed optimizer state dict (``get_optimizer_state_dict``) in ``Optimizer.state_dict``'s
    layout: parameters numbered in param-group order, as in a single-process run of the same config."""
    index = {}
    for group in optim_state['param_groups']:
        for name in group['params']:
            index.setdefault(name, len(index))
    return dict(state={index[name]: state for name, state in optim_state['state'].items()},
                param_groups=[dict(group, params=[index[name] for name in group['params']])
                              for group in optim_state['param_groups']])


def name_keyed(optim_state: dict, names: List[str]) -> dict:
    """The inverse of :func:`index_keyed` for an optimizer whose parameters, in param-group order, are
    called ``names``."""
    return dict(state={names[index]: state for index, state in optim_state['state'].items()},
                param_groups=[dict(group, params=[names[index] for index in group['params']])
                              for group in optim_state['param_groups']])


@STRATEGIES.register_module()
class FullyShardStrategy(DDPStrategy):
    """See the module docstring."""

    def __init__(self, *, param_dtype: Optional[str] = None, reshard_after_forward: bool = True,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if param_dtype is not None and param_dtype not in PARAM_DTYPES:
            raise ArgumentError(f'FullyShardStrategy: param_dtype must be None or one of {sorted(PARAM_DTYPES)}, '
                                f'got {param_dtype!r}')
        self.mp_policy = MixedPrecisionPolicy(param_dtype=PARAM_DTYPES.get(param_dtype),
                                              reduce_dtype=torch.float32)
        self.reshard_after_forward = bool(reshard_after_forward)

    # ------------------------------------------------------------------ sharding
    def _wrap_model(self, model: nn.Module) -> FullyShardedModel:
        if is_model_wrapper(model):
            return model
        if not (dist.is_available() and dist.is_initialized()):
            raise UserError('FullyShardStrategy needs a process group: run under torchrun with --launcher pytorch')
        model = self.convert_model(model).to(get_device())
        for tensor in model.state_dict().values():  # start from rank 0's weights, as DDP does
            dist.broadcast(tensor, src=0)
        whole = {param for param in model.parameters() if param.dim() == 0}
        for unit in sharded_units(model):
            fully_shard(unit, mp_policy=self.mp_policy, reshard_after_forward=self.reshard_after_forward,
                        ignored_params=whole)
        fully_shard(model, mp_policy=self.mp_policy, ignored_params=whole)
        for param in whole:
            if param.requires_grad:
                param.register_post_accumulate_grad_hook(average_gradient_over_ranks)
        return FullyShardedModel(model)

    @property
    def _sharded(self) -> nn.Module:
        return self.model.module

    # ------------------------------------------------------------------ state dicts
    def model_state_dict(self) -> dict:
        """The full model state dict on rank 0 (CPU tensors), ``{}`` on the others; collective."""
        return get_model_state_dict(self._sharded, options=_FULL_ON_RANK0)

    def optim_state_dict(self) -> dict:
        """The full optimizer state dict on rank 0, in a single-process run's layout; collective."""
        state = get_optimizer_state_dict(self._sharded, self.optim_wrapper.optimizer, options=_FULL_ON_RANK0)
        return index_keyed(state) if state else state

    def shard_like_model(self, state_dict: dict) -> dict:
        """``state_dict`` with each full tensor of a sharded parameter or buffer replaced by its shard (a
        ``DTensor`` placed as the model's), so that ``load_state_dict`` copies shard into shard. Each rank
        takes its own part of the full tensor it read; entries of other names or shapes are left for the
        loader to report."""
        own = self._sharded.state_dict()
        sharded = {}
        for key, value in state_dict.items():
            target = own.get(key)
            if isinstance(target, DTensor) and isinstance(value, torch.Tensor) \
                    and not isinstance(value, DTensor) and value.shape == target.shape:
                value = distribute_tensor(value.to(target.dtype), target.device_mesh, target.placements,
                                          src_data_rank=None)
            sharded[key] = value
        return sharded

    def load_model_state_dict(self, state_dict: dict, *, strict: bool = False,
                              revise_keys: list = [(r'^module.', '')]) -> None:
        """Load a full (or this model's sharded) state dict: each rank keeps its shard."""
        revised = {}
        for key, value in state_dict.items():
            for pattern, replacement in revise_keys:
                key = re.sub(pattern, replacement, key)
            revised[key] = value
        self._sharded.load_state_dict(self.shard_like_model(revised), strict=strict)

    def load_optim_state_dict(self, state_dict: dict) -> None:
        """Load a full optimizer state dict in a single-process run's layout (each rank keeps its shard)."""
        ids = {id(param): name for name, param in self._sharded.named_parameters()}
        names = [ids[id(param)] for group in self.optim_wrapper.optimizer.param_groups for param in group['params']]
        set_optimizer_state_dict(self._sharded, self.optim_wrapper.optimizer, name_keyed(state_dict, names),
                                 options=_FULL)

    # ------------------------------------------------------------------ checkpoints
    def load_checkpoint(self, filename: str, *, map_location: Union[str, Callable] = 'cpu', strict: bool = False,
                        revise_keys: list = [(r'^module.', '')], callback: Optional[Callable] = None) -> dict:
        """Every rank reads the full checkpoint (on the CPU) and keeps its shard of it."""
        self.logger.info(f'Load checkpoint from {filename}')
        checkpoint = _load_checkpoint(filename, map_location='cpu')
        # Hooks that load the weights themselves (CheckedLoadHook) see the shards.
        checkpoint['state_dict'] = self.shard_like_model(checkpoint['state_dict'])
        if callback is not None:
            callback(checkpoint)
        self.load_model_state_dict(checkpoint.pop('state_dict'), strict=strict, revise_keys=revise_keys)
        return checkpoint

    def save_checkpoint(self, filename: str, *, save_optimizer: bool = True, save_param_scheduler: bool = True,
                        extra_ckpt: Optional[dict] = None, callback: Optional[Callable] = None) -> None:
        """Gather the full state on rank 0 (every rank must call this) and write it there."""
        checkpoint: Dict[str, object] = dict(state_dict=self.model_state_dict())
        if save_optimizer and hasattr(self, 'optim_wrapper'):
            if not isinstance(self.optim_wrapper, BaseOptimWrapper):
                raise TypeError(f'FullyShardStrategy: one optimizer wrapper expected, got {type(self.optim_wrapper)}')
            checkpoint['optimizer'] = self.optim_state_dict()
        if save_param_scheduler and hasattr(self, 'param_schedulers'):
            checkpoint['param_schedulers'] = self.scheduler_state_dict()
        extra = copy.copy(extra_ckpt) if extra_ckpt is not None else {}
        extra['meta'] = dict(extra.get('meta') or {}, seed=self.seed,
                             time=time.strftime('%Y%m%d_%H%M%S', time.localtime()),
                             mmengine=mmengine.__version__ + get_git_hash())
        checkpoint.update(extra)
        if not is_main_process():
            return
        if callback is not None:
            callback(checkpoint)
        save_checkpoint(checkpoint, filename)
