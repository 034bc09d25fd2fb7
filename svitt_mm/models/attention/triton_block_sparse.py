"""Block-sparse attention computed by Triton kernels.

Same pattern, layout and contract as :class:`~.block_sparse.BlockSparseAttention`. Where
:class:`~.block_sparse.BlockSparseAttention` copies every query block's keys and values into a gathered
tensor (and :class:`~.flex_block_sparse.FlexBlockSparseAttention` into a tiled one), the kernels
(:mod:`.triton_block_sparse_kernels`) read them in place through the layout's token-index table, and compute
nothing beyond the table's ``G + S * block_size`` columns (rounded up to whole ``block_n`` column tiles).
Without gradients one launch computes the global and the local queries; with gradients the local queries
run through :class:`TritonLocalAttention` (one forward launch, two backward launches) and the global ones
in PyTorch.

Triton runs on CUDA tensors, and on CPU tensors in its interpreter (``TRITON_INTERPRET=1`` before Triton is
imported; what the tests use). Anywhere else (CPU without the interpreter, or Triton not installed) the
operator computes the same function with the gather path of its parent class, which is the fastest CPU path.
"""
from __future__ import annotations

import importlib.util
import os
from typing import Optional, Tuple

import torch
from torch import Tensor

from svitt_mm.registry import ATTENTION_OPS
from svitt_mm.utils.cost import counting_flops

from .base import PairBias
from .block_layout import BlockLayout
from .block_sparse import global_attention_mask
from .kernel_block_sparse import KernelBlockSparseAttention, mask_gradient


def triton_runs_on(device: torch.device) -> bool:
    """Whether the Triton kernels can run on tensors of ``device`` here."""
    if importlib.util.find_spec('triton') is None:
        return False
    return device.type == 'cuda' or (device.type == 'cpu' and os.environ.get('TRITON_INTERPRET') == '1')


class TritonLocalAttention(torch.autograd.Function):
    """Local-query attention ``[B, H, N - G, D]`` through the Triton kernels.

    ``mask`` is the additive :func:`~.block_sparse.local_attention_mask` (``None`` when it only masks what
    ``key_index`` already marks ``-1``); its gradient is :func:`~.kernel_block_sparse.mask_gradient`.
    """

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, mask: Optional[Tensor], key_index: Tensor,
                block_index: Tensor, num_global: int, block_size: int, kernel_options: dict) -> Tensor:
        from .triton_block_sparse_kernels import block_sparse_forward
        out, lse, _ = block_sparse_forward(q, k, v, key_index, mask, num_global, block_size, **kernel_options)
        ctx.save_for_backward(q, k, v, out, lse, key_index, block_index, mask)
        ctx.setup = (num_global, block_size, kernel_options)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        from .triton_block_sparse_kernels import block_sparse_backward
        q, k, v, out, lse, key_index, block_index, mask = ctx.saved_tensors
        num_global, block_size, kernel_options = ctx.setup
        mask_grad = mask is not None and ctx.needs_input_grad[3]
        grad_q, grad_k, grad_v, grad_pairs = block_sparse_backward(
            grad_out, q, k, v, out, lse, key_index, block_index, mask, mask_grad, num_global, block_size,
            **kernel_options)
        grad_mask = mask_gradient(grad_pairs, mask) if mask_grad else None
        return grad_q, grad_k, grad_v, grad_mask, None, None, None, None, None


@ATTENTION_OPS.register_module()
class TritonBlockSparseAttention(KernelBlockSparseAttention):
    """:class:`~.block_sparse.BlockSparseAttention` whose local queries run through fused Triton kernels.

    Args:
        block_n: key columns per kernel step (a power of two, at least 16); ``None``: the query tile
            (``block_size`` rounded up to a power of two, 16 to 64).
        num_warps, num_stages: Triton launch options of both kernels.
        **kwargs: the arguments of :class:`~.block_sparse.BlockSparseAttention`.
    """

    def __init__(self, block_n: Optional[int] = None, num_warps: int = 4, num_stages: int = 2,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        name = type(self).__name__
        if block_n is not None and (not isinstance(block_n, int) or block_n < 16 or block_n & (block_n - 1)):
            raise ValueError(f'{name}: block_n must be a power of two >= 16 or None, got {block_n!r}')
        for key, value in (('num_warps', num_warps), ('num_stages', num_stages)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f'{name}: {key} must be a positive int, got {value!r}')
        self.kernel_options = dict(block_n=block_n, num_warps=num_warps, num_stages=num_stages)

    def extra_repr(self) -> str:
        options = ', '.join(f'{key}={value}' for key, value in self.kernel_options.items())
        return f'{super().extra_repr()}, {options}'

    def sparse_attention(self, q: Tensor, k: Tensor, v: Tensor, num_global: int, layout: BlockLayout,
                         key_padding_mask: Optional[Tensor],
                         bias: Optional[PairBias]) -> Tuple[Tensor, Tensor]:
        """Without gradients, the global and the local queries run in one kernel launch; with them, the
        global queries run in PyTorch and the local ones through :class:`TritonLocalAttention`."""
        if torch.is_grad_enabled() or counting_flops() or not triton_runs_on(q.device):
            return super().sparse_attention(q, k, v, num_global, layout, key_padding_mask, bias)
        from .triton_block_sparse_kernels import block_sparse_forward
        key_index, mask = self.local_inputs(q, num_global, layout, key_padding_mask, bias)
        global_mask = None if mask is None else global_attention_mask(q, num_global, key_padding_mask, bias)
        out, _, probs = block_sparse_forward(q, k, v, key_index, mask, num_global, layout.block_size,
                                             with_global=num_global > 0, global_mask=global_mask,
                                             store_lse=False, **self.kernel_options)
        if probs is None:
            probs = q.new_zeros(q.shape[0], q.shape[1], 0, q.shape[2])
        return out, probs

    def local_attention(self, q: Tensor, k: Tensor, v: Tensor, num_global: int, layout: BlockLayout,
                        key_padding_mask: Optional[Tensor], bias: Optional[PairBias]) -> Tensor:
        """Outputs ``[B, H, N - G, D]`` of the local queries through :class:`TritonLocalAttention` (the
        path with gradients).

        Under :func:`~svitt_mm.utils.cost.count_flops` (torch's counter cannot see inside Triton), and where
        Triton does not run, the gather path computes the same outputs.
        """
        if counting_flops() or not triton_runs_on(q.device):
            return super().local_attention(q, k, v, num_global, layout, key_padding_mask, bias)
        key_index, mask = self.local_inputs(q, num_global, layout, key_padding_mask, bias)
        return TritonLocalAttention.apply(q, k, v, mask, key_index, layout.block_index, num_global,
                                          layout.block_size, self.kernel_options)
