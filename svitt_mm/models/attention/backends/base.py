"""What a block-sparse backend declares, and the description of a call it is asked about.

A backend computes block-sparse attention for any :class:`~..block_layout.BlockLayout` (so for any pattern).
It declares what it supports as class attributes (the backend support table in the README is generated
from them) and, for the call at hand, :meth:`AttentionBackend.not_supported_reasons`: an empty list when it
can run, else one readable reason per obstacle. The dispatcher (:mod:`..dispatch`) chooses among them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor

from ..base import PairBias
from ..block_layout import BlockLayout, KeyTables


@dataclass(frozen=True)
class AttentionCall:
    """What the backends are asked to compute (hashable: one log line per distinct call).

    Attributes:
        device: device type of ``q`` (``'cpu'``, ``'cuda'``, ...).
        dtype: dtype of ``q, k, v``.
        needs_grad: gradients may be asked for (grad mode on, and ``q, k, v`` require them or a bias is given).
        bias: a pair bias is added.
        key_padding: a key padding mask is given.
        compiling: traced by ``torch.compile``.
        head_dim: ``D``.
        num_global: global tokens.
        block_size: tokens per layout block.
    """

    device: str
    dtype: torch.dtype
    needs_grad: bool
    bias: bool
    key_padding: bool
    compiling: bool
    head_dim: int
    num_global: int
    block_size: int

    def __str__(self) -> str:
        flags = [name for name in ('needs_grad', 'bias', 'key_padding', 'compiling') if getattr(self, name)]
        return (f'{self.device} {str(self.dtype).replace("torch.", "")}, head_dim {self.head_dim}, '
                f'{self.num_global} global, blocks of {self.block_size}' + ''.join(f', {flag}' for flag in flags))


def describe_call(q: Tensor, k: Tensor, v: Tensor, num_global: int, block_size: int,
                  key_padding_mask: Optional[Tensor], bias: Optional[PairBias]) -> AttentionCall:
    """The :class:`AttentionCall` of an operator call."""
    needs_grad = torch.is_grad_enabled() and (bias is not None or q.requires_grad or k.requires_grad
                                              or v.requires_grad)
    return AttentionCall(q.device.type, q.dtype, needs_grad, bias is not None, key_padding_mask is not None,
                         torch.compiler.is_compiling(), q.shape[-1], num_global, block_size)


class AttentionBackend:
    """Base class of block-sparse backends.

    Declarations (class attributes):
        name: what ``BlockSparseAttention(backend=...)`` calls it.
        devices: device types it runs on, each with a note (``''`` when there is nothing to add); ``None``: any.
        dtypes: dtypes it computes in (``None``: any floating dtype).
        gradient_devices: device types where it has a backward (``None``: wherever it runs).
        auto_devices: device types where ``backend='auto'`` may pick it (``None``: wherever it runs).
        auto_note: why ``'auto'`` does not pick it on the other devices.

    Constructor arguments are the backend's own tuning options (``BlockSparseAttention(backend_options=
    {name: {...}})``).
    """

    name: str = ''
    devices: Optional[Dict[str, str]] = None
    dtypes: Optional[Tuple[torch.dtype, ...]] = None
    gradient_devices: Optional[Tuple[str, ...]] = None
    auto_devices: Optional[Tuple[str, ...]] = None
    auto_note: str = ''

    def not_supported_reasons(self, call: AttentionCall) -> List[str]:
        """Why this backend cannot compute ``call`` (empty: it can): the declarations, then :meth:`extra_reasons`."""
        reasons = []
        if self.devices is not None and call.device not in self.devices:
            reasons.append(f'runs on {"/".join(self.devices)}, not {call.device}')
        if self.dtypes is not None and call.dtype not in self.dtypes:
            names = '/'.join(str(dtype).replace('torch.', '') for dtype in self.dtypes)
            reasons.append(f'computes in {names}, not {str(call.dtype).replace("torch.", "")}')
        if call.needs_grad and not reasons and self.gradient_devices is not None \
                and call.device not in self.gradient_devices:
            reasons.append(f'has no backward on {call.device} (run under torch.no_grad())')
        return reasons + (self.extra_reasons(call) if not reasons else [])

    def extra_reasons(self, call: AttentionCall) -> List[str]:
        """Reasons beyond the declarations (a kernel that did not build, a head size it cannot tile, ...)."""
        return []

    def auto_reasons(self, call: AttentionCall) -> List[str]:
        """Why ``backend='auto'`` passes over this backend although it can run."""
        return [] if self.auto_devices is None or call.device in self.auto_devices else [self.auto_note]

    def attention(self, q: Tensor, k: Tensor, v: Tensor, num_global: int, layout: BlockLayout, tables: KeyTables,
                  key_padding_mask: Optional[Tensor], bias: Optional[PairBias]) -> Tuple[Tensor, Tensor]:
        """``(out [B, H, N, D], global_probs [B, H, G, N])`` under a sparse ``layout`` (with its key ``tables``,
        :func:`~..block_layout.key_tables`); the operator contract of :mod:`..base`."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        """The backend's options, for the operator's ``repr``."""
        return ''
