"""An optimizer wrapper that refuses to train through a NaN or infinite loss.

A non-finite loss back-propagates non-finite gradients, and one AdamW step with them turns every
weight into NaN; the run then goes on logging ``nan`` for hours. :class:`FiniteLossOptimWrapper`
checks the loss before ``backward``, names the iteration, the epoch and the loss terms that are not
finite, and stops training (or skips a limited number of such steps).
"""
from __future__ import annotations

import logging
import math
from contextlib import contextmanager
from typing import Dict, Iterator, Optional

import torch
from mmengine.dist import all_reduce, is_distributed
from mmengine.logging import MessageHub, print_log
from mmengine.optim import OptimWrapper
from torch import nn

from svitt_mm.registry import OPTIM_WRAPPERS
from svitt_mm.utils.arg_checks import ArgumentError
from svitt_mm.utils.errors import UserError


class NonFiniteLossError(UserError, FloatingPointError):
    """Training stopped because a loss was NaN or infinite."""


def non_finite_terms(losses: Dict[str, object]) -> Dict[str, float]:
    """The entries of a model's loss dict (tensors or lists of tensors) whose value is not finite,
    as ``{name: value}`` (the first non-finite element of a multi-element entry)."""
    bad: Dict[str, float] = {}
    for name, value in losses.items():
        tensors = value if isinstance(value, (list, tuple)) else [value]
        for tensor in tensors:
            if isinstance(tensor, torch.Tensor) and tensor.is_floating_point():
                flat = tensor.detach().reshape(-1)
                mask = ~torch.isfinite(flat)
                if mask.any():
                    bad[name] = flat[mask][0].item()
                    break
    return bad


@OPTIM_WRAPPERS.register_module()
class FiniteLossOptimWrapper(OptimWrapper):
    """``OptimWrapper`` that checks the loss before every backward pass.

    A non-finite loss raises :class:`NonFiniteLossError` naming the iteration and epoch (as the
    training log counts them, from 1) and the loss terms that are not finite; the parameters and the
    optimizer state stay as they were after the last good step. With ``max_skipped_steps=N`` the first
    ``N`` such steps are skipped instead (each logged as a warning; the gradients accumulated towards
    that update are dropped) and the ``N+1``-th stops training. In distributed runs the ranks agree
    (one all-reduce of a flag per step), so they skip or stop together.

    Args:
        max_skipped_steps: how many non-finite steps to skip before stopping; 0 stops at the first.
        **kwargs: ``OptimWrapper``'s arguments (``optimizer``, ``accumulative_counts``, ``clip_grad``).
    """

    def __init__(self, max_skipped_steps: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        if max_skipped_steps < 0:
            raise ArgumentError(f'max_skipped_steps must be >= 0, got {max_skipped_steps}')
        self.max_skipped_steps = max_skipped_steps
        self.skipped_steps = 0
        self._losses: Dict[str, object] = {}

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        """OptimWrapper's context, plus a forward hook that keeps the model's loss dict, so that a
        non-finite total can be traced to its terms."""
        def keep_losses(module, args, output):
            self._losses = output if isinstance(output, dict) else {}

        self._losses = {}
        handle = model.register_forward_hook(keep_losses)
        try:
            with super().optim_context(model):
                yield
        finally:
            handle.remove()

    def update_params(self, loss: torch.Tensor, step_kwargs: Optional[Dict] = None,
                      zero_kwargs: Optional[Dict] = None) -> None:
        """Back-propagate ``loss`` (a scalar) and step, as ``OptimWrapper`` does, if it is finite on
        every rank; otherwise skip or raise (see the class docstring)."""
        finite = torch.isfinite(loss.detach()).all().to(torch.float32).reshape(1).cpu()
        if is_distributed():
            all_reduce(finite, op='min')
        if bool(finite.item()):
            super().update_params(loss, step_kwargs, zero_kwargs)
            return
        message = self._describe(loss)
        if self.skipped_steps >= self.max_skipped_steps:
            raise NonFiniteLossError(f'{message}; training stopped before the optimizer step'
                                     + (f' ({self.skipped_steps} non-finite steps skipped before)'
                                        if self.skipped_steps else ''))
        self.skipped_steps += 1
        print_log(f'{message}; step skipped ({self.skipped_steps} of at most {self.max_skipped_steps})',
                  logger='current', level=logging.WARNING)
        self._inner_count += 1  # the skipped step still counts towards gradient accumulation
        self.zero_grad(**(zero_kwargs or {}))

    def _describe(self, loss: torch.Tensor) -> str:
        hub = MessageHub.get_current_instance()
        iteration = hub.get_info('iter', 0) + 1
        epoch = hub.get_info('epoch', 0) + 1
        terms = non_finite_terms(self._losses)
        if terms:
            named = ', '.join(f'{name}={value}' for name, value in terms.items())
        elif math.isfinite(loss.detach().float().reshape(-1)[0].item()):
            named = 'the loss is finite here but not on another rank'
        else:
            named = f'total loss={loss.detach().float().reshape(-1)[0].item()}'
        return f'non-finite loss at iteration {iteration} (epoch {epoch}): {named}'
