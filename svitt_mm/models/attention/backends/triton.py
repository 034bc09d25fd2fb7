"""The ``triton`` backend: block-sparse attention by Triton kernels (:mod:`.triton_kernels`).

Where the gather backend copies every query block's keys and values into a gathered tensor (and ``flex``
into a tiled one), the kernels read them in place through the layout's token-index table, and compute
nothing beyond the table's ``G + S * block_size`` columns (rounded up to whole ``block_n`` column tiles).
Without gradients one launch computes the global and the local queries; with gradients the local queries
run through :class:`TritonLocalAttention` (one forward launch, two backward launches) and the global ones
in PyTorch.

Triton runs on CUDA tensors, and on CPU tensors in its interpreter (``TRITON_INTERPRET=1`` before Triton is
imported; what the tests use, far too slow for anything else, so ``backend='auto'`` never picks it there).
"""
from __future__ import annotations

import functools
import importlib.util
import os
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from svitt_mm.utils.arg_checks import ArgumentError

from ..base import PairBias
from ..block_layout import BlockLayout, KeyTables
from ..logits import row_logit_mask
from .base import AttentionBackend, AttentionCall
from .gather import global_attention
from .kernel_inputs import kernel_local_mask, mask_gradient, query_tile

@functools.lru_cache(maxsize=None)
def triton_installed() -> bool:
    return importlib.util.find_spec('triton') is not None


def triton_interpreter_on() -> bool:
    """Whether Triton runs kernels on CPU tensors through its interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get('TRITON_INTERPRET') == '1'


class TritonLocalAttention(torch.autograd.Function):
    """Local-query attention ``[B, H, N - G, D]`` through the Triton kernels.

    ``mask`` is the additive :func:`~..logits.local_logit_mask` (``None`` when it only masks what
    ``key_index`` already marks ``-1``); its gradient is :func:`~.kernel_inputs.mask_gradient`.
    """

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, mask: Optional[Tensor], key_index: Tensor,
                block_index: Tensor, num_global: int, block_size: int, kernel_options: dict) -> Tensor:
        from .triton_kernels import block_sparse_forward
        out, lse, _ = block_sparse_forward(q, k, v, key_index, mask, num_global, block_size, **kernel_options)
        ctx.save_for_backward(q, k, v, out, lse, key_index, block_index, mask)
        ctx.setup = (num_global, block_size, kernel_options)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        from .triton_kernels import block_sparse_backward
        q, k, v, out, lse, key_index, block_index, mask = ctx.saved_tensors
        num_global, block_size, kernel_options = ctx.setup
        mask_grad = mask is not None and ctx.needs_input_grad[3]
        grad_q, grad_k, grad_v, grad_pairs = block_sparse_backward(
            grad_out, q, k, v, out, lse, key_index, block_index, mask, mask_grad, num_global, block_size,
            **kernel_options)
        grad_mask = mask_gradient(grad_pairs, mask) if mask_grad else None
        return grad_q, grad_k, grad_v, grad_mask, None, None, None, None, None


class TritonBackend(AttentionBackend):
    """Fused Triton kernels reading keys and values in place.

    Args:
        block_n: key columns per kernel step (a power of two, at least 16); ``None``: the query tile
            (``block_size`` rounded up to a power of two, 16 to 64).
        num_warps, num_stages: Triton launch options of the kernels.
    """

    name = 'triton'
    devices = {'cuda': '', 'cpu': "float32, in Triton's interpreter (TRITON_INTERPRET=1), for tests"}
    dtypes = (torch.float32, torch.bfloat16, torch.float16)
    auto_devices = ('cuda',)
    auto_note = "on CPU it runs only in Triton's interpreter (for tests; name backend='triton' to use it)"

    def __init__(self, block_n: Optional[int] = None, num_warps: int = 4, num_stages: int = 2) -> None:
        if block_n is not None and (not isinstance(block_n, int) or block_n < 16 or block_n & (block_n - 1)):
            raise ArgumentError(f"backend 'triton': block_n must be a power of two >= 16 or None, got {block_n!r}")
        for key, value in (('num_warps', num_warps), ('num_stages', num_stages)):
            if not isinstance(value, int) or value < 1:
                raise ArgumentError(f"backend 'triton': {key} must be a positive int, got {value!r}")
        self.kernel_options = dict(block_n=block_n, num_warps=num_warps, num_stages=num_stages)

    def extra_reasons(self, call: AttentionCall) -> List[str]:
        if not triton_installed():
            return ['Triton is not installed']
        reasons = []
        if call.device == 'cpu' and not triton_interpreter_on():
            reasons.append("on CPU it needs Triton's interpreter (TRITON_INTERPRET=1 before Triton is imported)")
        if call.device == 'cpu' and call.dtype != torch.float32:
            reasons.append("Triton's interpreter computes float32 only (numpy has no bfloat16)")
        if call.head_dim < 16 or call.head_dim & (call.head_dim - 1):
            reasons.append(f'head_dim must be a power of two >= 16, got {call.head_dim}')
        tile = query_tile(call.block_size)
        if call.needs_grad and call.num_global > tile:
            reasons.append(f'its backward takes at most {tile} global tokens (one query tile) at blocks of '
                           f'{call.block_size}, got {call.num_global}')
        return reasons

    def attention(self, q: Tensor, k: Tensor, v: Tensor, num_global: int, layout: BlockLayout, tables: KeyTables,
                  key_padding_mask: Optional[Tensor], bias: Optional[PairBias]) -> Tuple[Tensor, Tensor]:
        mask = kernel_local_mask(q, num_global, layout, tables, key_padding_mask, bias)
        if torch.is_grad_enabled():
            out_global, probs = global_attention(q, k, v, num_global, key_padding_mask, bias)
            out_local = TritonLocalAttention.apply(q, k, v, mask, tables.kernel, layout.block_index, num_global,
                                                   layout.block_size, self.kernel_options)
            return torch.cat([out_global, out_local], dim=2), probs
        from .triton_kernels import block_sparse_forward
        global_mask = None if mask is None else row_logit_mask(num_global, q.shape[-2], key_padding_mask, bias,
                                                               q.dtype, q.device)
        out, _, probs = block_sparse_forward(q, k, v, tables.kernel, mask, num_global, layout.block_size,
                                             with_global=num_global > 0, global_mask=global_mask,
                                             store_lse=False, **self.kernel_options)
        if probs is None:
            probs = q.new_zeros(q.shape[0], q.shape[1], 0, q.shape[2])
        return out, probs

    def extra_repr(self) -> str:
        return ', '.join(f'{key}={value}' for key, value in self.kernel_options.items())
