"""Dense attention whose pair bias stays inside the attention kernel (the strong dense baseline).

:class:`DenseAttention` materialises the relative position bias as a ``[1, H, N, N]`` tensor that needs a
gradient, so every layer writes, reads and back-propagates it (on CPU, ``scaled_dot_product_attention``
then also leaves its fused kernel for the math path). :class:`FusedBiasDenseAttention` computes the same
function (values and gradients, including the bias table's) from the pair bias' table
(:meth:`~.base.PairBias.as_table`, :class:`~.base.BiasTable`):

* ``flex`` (CUDA): ``torch.nn.attention.flex_attention`` compiled, with a ``score_mod`` that adds
  ``table[rows(q, k), h]`` (the row arithmetic runs inside the kernel) and ``-inf`` at padding keys; flex's
  backward sends the bias gradient to the table.
* ``chunked`` (any device; the CPU choice, see docs/benchmarks.md "Strong dense baseline"): query rows in
  chunks of at most ``chunk_bytes`` of logits; forward by the fused SDPA kernel with the chunk's bias
  (no gradient), backward recomputes each chunk's probabilities and accumulates ``dq, dk, dv`` and the
  table gradient (``index_add_`` of ``dS`` into the rows), so that no ``N x N`` tensor outlives a chunk.

``auto`` picks ``flex`` on CUDA and ``chunked`` elsewhere. FLOP counts (``svitt_mm.apis.cost.count_flops``)
run ``chunked``: its forward counts as :class:`DenseAttention`'s, its backward one ``q k^T`` product more
(``2 B H N^2 D`` per layer: the recomputation of the logits that fused attention backward passes do). A pair bias without ``as_table()`` is
materialised once per call, as :class:`DenseAttention` does, with a logged warning.
The global queries' probabilities are recomputed explicitly, as in :class:`DenseAttention`.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from torch import Tensor

from svitt_mm.registry import ATTENTION_OPS
from svitt_mm.utils.arg_checks import ArgumentError

from .base import AttentionOp, BiasTable, PairBias, bias_table
from .dense import DenseAttention
from .flop_counting import counting_flops
from .logits import key_padding_logits, row_logit_mask, softmax_rows

BACKEND_CHOICES = ('auto', 'flex', 'chunked')
_COMPILED_FLEX: Dict[str, Callable[..., Tensor]] = {}


def table_logits(table: BiasTable, queries: Tensor, keys: Tensor, key_padding_mask: Optional[Tensor],
                 dtype: torch.dtype) -> Tensor:
    """Additive mask ``[P or B, H, rows, N]`` of the query rows ``queries`` (``[rows, 1]``) over all keys
    (``keys = arange(N)[None]``): the table's bias and ``-inf`` at padding keys."""
    by_head = table.table.t().contiguous()  # [H, R]: the gather writes [H, P, rows, N] in order
    mask = by_head[:, table.rows(queries, keys)].movedim(0, 1).to(dtype)
    if key_padding_mask is not None:
        mask = mask + key_padding_logits(key_padding_mask, dtype)
    return mask


class _ChunkedBiasAttention(torch.autograd.Function):
    """Dense attention with a table bias, computed in chunks of query rows (see the module docstring)."""

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, table_values: Tensor, rows: Callable,
                key_padding_mask: Optional[Tensor], chunk: int) -> Tensor:
        table = BiasTable(table_values, rows)
        keys = torch.arange(k.shape[-2], device=q.device)[None, :]
        out = torch.empty_like(q)
        for start in range(0, q.shape[-2], chunk):
            queries = torch.arange(start, min(start + chunk, q.shape[-2]), device=q.device)[:, None]
            mask = table_logits(table, queries, keys, key_padding_mask, q.dtype)
            out[:, :, start:start + chunk] = F.scaled_dot_product_attention(
                q[:, :, start:start + chunk], k, v, attn_mask=mask)
        ctx.save_for_backward(q, k, v, out, table_values, key_padding_mask)
        ctx.rows, ctx.chunk = rows, chunk
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        q, k, v, out, table_values, key_padding_mask = ctx.saved_tensors
        table = BiasTable(table_values, ctx.rows)
        scale = 1.0 / math.sqrt(q.shape[-1])
        keys = torch.arange(k.shape[-2], device=q.device)[None, :]
        grad_q, grad_k, grad_v = torch.empty_like(q), torch.zeros_like(k), torch.zeros_like(v)
        grad_table = torch.zeros(table_values.shape, dtype=torch.float32, device=q.device)
        for start in range(0, q.shape[-2], ctx.chunk):
            stop = min(start + ctx.chunk, q.shape[-2])
            queries = torch.arange(start, stop, device=q.device)[:, None]
            q_rows, d_out = q[:, :, start:stop], grad_out[:, :, start:stop]
            logits = q_rows @ k.transpose(-1, -2) * scale + table_logits(table, queries, keys,
                                                                        key_padding_mask, q.dtype)
            probs = logits.softmax(dim=-1)
            grad_v += probs.transpose(-1, -2) @ d_out
            delta = (d_out * out[:, :, start:stop]).sum(dim=-1, keepdim=True)
            grad_logits = probs * (d_out @ v.transpose(-1, -2) - delta)  # dS, [B, H, c, N]
            grad_q[:, :, start:stop] = grad_logits @ k * scale
            grad_k += grad_logits.transpose(-1, -2) @ q_rows * scale
            rows = table.rows(queries, keys)  # [P, c, N]
            if rows.shape[0] == 1:
                grad_logits = grad_logits.sum(dim=0, keepdim=True)
            grad_table.index_add_(0, rows.reshape(-1),
                                  grad_logits.movedim(1, -1).reshape(-1, grad_table.shape[1]).float())
        return grad_q, grad_k, grad_v, grad_table.to(table_values.dtype), None, None, None


def flex_bias_attention(q: Tensor, k: Tensor, v: Tensor, table: Tensor, rows: Callable,
                        key_padding_mask: Optional[Tensor]) -> Tensor:
    """Dense attention through ``flex_attention`` with ``score_mod`` adding ``table[rows(q, k)[b], h]`` and
    ``-inf`` at padding keys (uncompiled here; :func:`compiled_flex_bias_attention` compiles it)."""
    from torch.nn.attention.flex_attention import flex_attention

    def score_mod(score: Tensor, b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        score = score + table[rows(q_idx, kv_idx, b), h].to(score.dtype)
        if key_padding_mask is not None:
            score = torch.where(key_padding_mask[b, kv_idx], float('-inf'), score)
        return score

    return flex_attention(q, k, v, score_mod=score_mod)


def compiled_flex_bias_attention(device_type: str) -> Callable[..., Tensor]:
    """:func:`flex_bias_attention` compiled for ``device_type``, once per process (recompiled per shape,
    dtype and the presence of padding)."""
    if device_type not in _COMPILED_FLEX:
        _COMPILED_FLEX[device_type] = torch.compile(flex_bias_attention, dynamic=False)
    return _COMPILED_FLEX[device_type]


@ATTENTION_OPS.register_module()
class FusedBiasDenseAttention(AttentionOp):
    """Dense attention that reads the pair bias' table inside the kernel; see the module docstring.

    Args:
        backend: ``'auto'`` (``flex`` on CUDA, ``chunked`` elsewhere), ``'flex'`` or ``'chunked'``.
        chunk_bytes: ``chunked``: largest logits chunk ``[B, H, rows, N]`` in bytes (default 16 MiB).
    """

    def __init__(self, backend: str = 'auto', chunk_bytes: int = 16 * 2**20) -> None:
        super().__init__()
        if backend not in BACKEND_CHOICES:
            raise ArgumentError(f'FusedBiasDenseAttention: backend must be one of {BACKEND_CHOICES}, '
                                f'got {backend!r}')
        if chunk_bytes < 1:
            raise ArgumentError(f'FusedBiasDenseAttention: chunk_bytes must be >= 1, got {chunk_bytes!r}')
        self.backend = backend
        self.chunk_bytes = chunk_bytes
        self.dense = DenseAttention()
        self._warned = False

    def resolve_backend(self, device: torch.device) -> str:
        """The backend a call on ``device`` runs (``auto``: ``flex`` on CUDA, ``chunked`` elsewhere)."""
        if self.backend != 'auto':
            return self.backend
        return 'flex' if device.type == 'cuda' else 'chunked'

    def forward(self, q: Tensor, k: Tensor, v: Tensor, num_global: int = 1, layout=None,
                key_padding_mask: Optional[Tensor] = None,
                bias: Optional[PairBias] = None) -> Tuple[Tensor, Tensor]:
        table = bias_table(bias)
        if bias is not None and table is None:
            if not self._warned:
                print_log(f'FusedBiasDenseAttention: the pair bias {type(bias).__name__} offers no as_table(); '
                          'materialising it as a [B, H, N, N] tensor (DenseAttention)', logger='current',
                          level=30)
                self._warned = True
            return self.dense(q, k, v, num_global=num_global, key_padding_mask=key_padding_mask, bias=bias)
        if table is None:  # no bias: SDPA's fused kernels
            return self.dense(q, k, v, num_global=num_global, key_padding_mask=key_padding_mask, bias=bias)
        # FLOP counts take the chunked path (torch's counter cannot see inside flex; the dense path would
        # hold every layer's [B, H, N, N] probabilities for backward).
        if not counting_flops() and self.resolve_backend(q.device) == 'flex':
            inputs = (q, k, v, table.table)
            if q.device.type == 'cpu':
                if torch.is_grad_enabled() and any(t.requires_grad for t in inputs):
                    raise ArgumentError("FusedBiasDenseAttention: backend 'flex' has no CPU backward in this "
                                        "torch (flex_attention); use backend='chunked' (or 'auto') on CPU")
                inputs = tuple(t.detach() for t in inputs)  # flex refuses CPU inputs that require grad
            run = compiled_flex_bias_attention(q.device.type) if q.device.type == 'cuda' else flex_bias_attention
            out = run(*inputs, table.rows, key_padding_mask)
        else:
            row_bytes = q.shape[0] * q.shape[1] * k.shape[-2] * q.element_size()
            chunk = max(1, self.chunk_bytes // row_bytes)
            out = _ChunkedBiasAttention.apply(q, k, v, table.table, table.rows, key_padding_mask, chunk)
        mask = row_logit_mask(num_global, k.shape[-2], key_padding_mask, bias, q.dtype, q.device)
        return out, softmax_rows(q[:, :, :num_global], k, mask)

    def extra_repr(self) -> str:
        return f'backend={self.backend!r}, chunk_bytes={self.chunk_bytes}'
