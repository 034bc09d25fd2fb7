"""Triton kernels of block-sparse attention (forward and backward).

A local program computes one query tile (up to ``BLOCK_M`` rows of one layout block) of one (sample, head).
It reads its keys and values straight from ``k, v [B, H, N, D]`` through the row's token-index table
(:func:`~..block_layout.key_token_index`, ``-1`` at unused slots), ``BLOCK_N`` columns at a time, with an
online softmax: no gathered copies, and no padded tiles beyond the table's width. At inference the same
launch also computes the global queries' rows and probabilities (dense over all keys).

The backward recomputes the probabilities from the forward's log-sum-exp. One kernel sums ``dq`` (and writes
the gradient of the additive mask, when it needs one) per query tile; another sums ``dk`` and ``dv`` per key
tile over the query blocks that read it (:func:`reverse_table`), so no two programs write the same row.

Imported only where Triton runs: CUDA tensors, or the interpreter (``TRITON_INTERPRET=1``) on CPU.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import triton
import triton.language as tl
from torch import Tensor

from .kernel_inputs import query_tile

@triton.jit
def _dot(a, b, IEEE: tl.constexpr):
    """``a @ b`` with fp32 accumulation; exact fp32 products (no TF32) for fp32 inputs."""
    if IEEE:
        product = tl.dot(a, b, input_precision='ieee')
    else:
        product = tl.dot(a, b)
    return product


@triton.jit
def _logits(a, b, extra_ptr, extra_offsets, extra_valid, scale, HAS_EXTRA: tl.constexpr, IEEE: tl.constexpr):
    """Base-2 logits ``(a @ b^T * scale + extra) * log2(e)``, the additive ``extra`` read at ``extra_offsets``
    where ``extra_valid``."""
    s = _dot(a, tl.trans(b), IEEE) * (scale * 1.4426950408889634)
    if HAS_EXTRA:
        extra = tl.load(extra_ptr + extra_offsets, mask=extra_valid, other=0.0)
        s = s + extra.to(tl.float32) * 1.4426950408889634
    return s


@triton.jit
def _query_tile(q_ptr, block, tile, block_size, num_local, num_global, stride_qn, stride_qd,
                BLOCK_M: tl.constexpr, HEAD_DIM: tl.constexpr):
    """A query tile: its rows within the block, their sequence and local positions, which rows exist
    (ragged block, ragged tail), and the queries (0 at missing rows)."""
    rows = tile * BLOCK_M + tl.arange(0, BLOCK_M)
    local = block * block_size + rows
    row_valid = (rows < block_size) & (local < num_local)
    position = num_global + local
    dims = tl.arange(0, HEAD_DIM)
    q = tl.load(q_ptr + position[:, None] * stride_qn + dims[None, :] * stride_qd, mask=row_valid[:, None],
                other=0.0)
    return rows, position, local, row_valid, q


@triton.jit
def _key_tile(q, k_ptr, v_ptr, key_index_ptr, mask_ptr, b, h, block, rows, row_valid, start, width,
              stride_kn, stride_kd, stride_vn, stride_vd, stride_mb, stride_mh, stride_mm, stride_mr, stride_mc,
              scale, HAS_MASK: tl.constexpr, IEEE: tl.constexpr, BLOCK_N: tl.constexpr,
              HEAD_DIM: tl.constexpr):
    """Table columns ``start + [0, BLOCK_N)`` of a query tile's row: the base-2 logits ``[BLOCK_M, BLOCK_N]``
    (``-inf`` at unused columns), the keys and values ``[BLOCK_N, HEAD_DIM]``, and the columns and their
    validity."""
    cols = start + tl.arange(0, BLOCK_N)
    index = tl.load(key_index_ptr + block * width + cols, mask=cols < width, other=-1)
    col_valid = index >= 0
    token = tl.where(col_valid, index, 0)
    dims = tl.arange(0, HEAD_DIM)
    k = tl.load(k_ptr + token[:, None] * stride_kn + dims[None, :] * stride_kd, mask=col_valid[:, None],
                other=0.0)
    v = tl.load(v_ptr + token[:, None] * stride_vn + dims[None, :] * stride_vd, mask=col_valid[:, None],
                other=0.0)
    offsets = (b * stride_mb + h * stride_mh + block * stride_mm + rows[:, None] * stride_mr
               + cols[None, :] * stride_mc)
    s = _logits(q, k, mask_ptr, offsets, row_valid[:, None] & col_valid[None, :], scale, HAS_MASK, IEEE)
    s = tl.where(col_valid[None, :], s, float('-inf'))
    return s, k, v, cols, col_valid


@triton.jit
def _softmax_step(s, v, row_max, row_sum, acc, IEEE: tl.constexpr):
    """One online-softmax step: fold base-2 logits ``s`` and values ``v`` into the running max, sum and
    unnormalised output."""
    new_max = tl.maximum(row_max, tl.max(s, 1))
    shift = tl.where(new_max == float('-inf'), 0.0, new_max)  # rows with nothing valid yet
    p = tl.exp2(s - shift[:, None])
    alpha = tl.exp2(row_max - shift)
    row_sum = row_sum * alpha + tl.sum(p, 1)
    acc = acc * alpha[:, None] + _dot(p.to(v.dtype), v, IEEE)
    return new_max, row_sum, acc


@triton.jit
def _softmax_finish(row_max, row_sum, acc):
    """Normalised outputs and base-2 log-sum-exp; a row whose keys are all masked gets output 0 and
    log-sum-exp +inf (probabilities 0)."""
    empty = row_sum == 0.0
    out = acc / tl.where(empty, 1.0, row_sum)[:, None]
    lse = tl.where(empty, float('inf'), row_max + tl.log2(tl.where(empty, 1.0, row_sum)))
    return out, lse


@triton.jit
def _global_rows(q_ptr, k_ptr, v_ptr, out_ptr, probs_ptr, logits_ptr, gmask_ptr, b, h,
                 stride_qn, stride_qd, stride_kn, stride_kd, stride_vn, stride_vd, stride_on, stride_od,
                 stride_gb, stride_gh, stride_gr, stride_gc, num_heads, num_tokens, num_global, scale,
                 HAS_GMASK: tl.constexpr, IEEE: tl.constexpr, BLOCK_G: tl.constexpr, BLOCK_N: tl.constexpr,
                 HEAD_DIM: tl.constexpr):
    """The global queries of one (sample, head) over every key: their outputs and probabilities.

    The first pass keeps the base-2 logits in an fp32 scratch ``[B, H, G, N]`` while it runs the online
    softmax; the second turns them into probabilities with the final log-sum-exp.
    """
    rows = tl.arange(0, BLOCK_G)
    row_valid = rows < num_global
    dims = tl.arange(0, HEAD_DIM)
    q = tl.load(q_ptr + rows[:, None] * stride_qn + dims[None, :] * stride_qd, mask=row_valid[:, None],
                other=0.0)
    stats = ((b * num_heads + h) * num_global + rows[:, None]) * num_tokens
    row_max = tl.full([BLOCK_G], float('-inf'), tl.float32)
    row_sum = tl.zeros([BLOCK_G], tl.float32)
    acc = tl.zeros([BLOCK_G, HEAD_DIM], tl.float32)
    for start in range(0, num_tokens, BLOCK_N):
        cols = start + tl.arange(0, BLOCK_N)
        col_valid = cols < num_tokens
        k = tl.load(k_ptr + cols[:, None] * stride_kn + dims[None, :] * stride_kd, mask=col_valid[:, None],
                    other=0.0)
        offsets = b * stride_gb + h * stride_gh + rows[:, None] * stride_gr + cols[None, :] * stride_gc
        s = _logits(q, k, gmask_ptr, offsets, row_valid[:, None] & col_valid[None, :], scale, HAS_GMASK, IEEE)
        s = tl.where(col_valid[None, :], s, float('-inf'))
        tl.store(logits_ptr + stats + cols[None, :], s, mask=row_valid[:, None] & col_valid[None, :])
        v = tl.load(v_ptr + cols[:, None] * stride_vn + dims[None, :] * stride_vd, mask=col_valid[:, None],
                    other=0.0)
        row_max, row_sum, acc = _softmax_step(s, v, row_max, row_sum, acc, IEEE)
    out, lse = _softmax_finish(row_max, row_sum, acc)
    tl.store(out_ptr + rows[:, None] * stride_on + dims[None, :] * stride_od, out.to(out_ptr.dtype.element_ty),
             mask=row_valid[:, None])
    tl.debug_barrier()  # the scratch logits written above are read back below
    for start in range(0, num_tokens, BLOCK_N):
        cols = start + tl.arange(0, BLOCK_N)
        keep = row_valid[:, None] & (cols < num_tokens)[None, :]
        s = tl.load(logits_ptr + stats + cols[None, :], mask=keep, other=float('-inf'))
        tl.store(probs_ptr + stats + cols[None, :], tl.exp2(s - lse[:, None]).to(probs_ptr.dtype.element_ty),
                 mask=keep)


@triton.jit
def _local_rows(q_ptr, k_ptr, v_ptr, out_ptr, lse_ptr, key_index_ptr, mask_ptr, b, h, program,
                stride_qn, stride_qd, stride_kn, stride_kd, stride_vn, stride_vd, stride_on, stride_od,
                stride_mb, stride_mh, stride_mm, stride_mr, stride_mc, num_heads, num_global, num_local,
                block_size, width, tiles_per_block, out_row_offset, scale, HAS_MASK: tl.constexpr,
                STORE_LSE: tl.constexpr, IEEE: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                HEAD_DIM: tl.constexpr):
    """One query tile of the local queries of one (sample, head) over its row of the key table."""
    block = program // tiles_per_block
    tile = program % tiles_per_block
    rows, position, local, row_valid, q = _query_tile(q_ptr, block, tile, block_size, num_local, num_global,
                                                      stride_qn, stride_qd, BLOCK_M, HEAD_DIM)
    dims = tl.arange(0, HEAD_DIM)
    row_max = tl.full([BLOCK_M], float('-inf'), tl.float32)
    row_sum = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], tl.float32)
    for start in range(0, width, BLOCK_N):
        s, k, v, cols, col_valid = _key_tile(
            q, k_ptr, v_ptr, key_index_ptr, mask_ptr, b, h, block, rows, row_valid, start, width, stride_kn,
            stride_kd, stride_vn, stride_vd, stride_mb, stride_mh, stride_mm, stride_mr, stride_mc, scale,
            HAS_MASK, IEEE, BLOCK_N, HEAD_DIM)
        row_max, row_sum, acc = _softmax_step(s, v, row_max, row_sum, acc, IEEE)
    out, lse = _softmax_finish(row_max, row_sum, acc)
    tl.store(out_ptr + (position - out_row_offset)[:, None] * stride_on + dims[None, :] * stride_od,
             out.to(out_ptr.dtype.element_ty), mask=row_valid[:, None])
    if STORE_LSE:
        tl.store(lse_ptr + (b * num_heads + h) * num_local + local, lse, mask=row_valid)


@triton.jit
def block_sparse_forward_kernel(
        q_ptr, k_ptr, v_ptr, out_ptr, lse_ptr, key_index_ptr, mask_ptr, gmask_ptr, probs_ptr, logits_ptr,
        stride_qb, stride_qh, stride_qn, stride_qd, stride_kb, stride_kh, stride_kn, stride_kd,
        stride_vb, stride_vh, stride_vn, stride_vd, stride_ob, stride_oh, stride_on, stride_od,
        stride_mb, stride_mh, stride_mm, stride_mr, stride_mc, stride_gb, stride_gh, stride_gr, stride_gc,
        num_heads, batch_heads, num_tokens, num_global, num_local, block_size, width, tiles_per_block,
        local_programs, out_row_offset, scale, HAS_MASK: tl.constexpr, HAS_GMASK: tl.constexpr,
        WITH_GLOBAL: tl.constexpr, STORE_LSE: tl.constexpr, IEEE: tl.constexpr, BLOCK_M: tl.constexpr,
        BLOCK_N: tl.constexpr, BLOCK_G: tl.constexpr, BLOCK_GN: tl.constexpr, HEAD_DIM: tl.constexpr):
    # A 1-D grid: with WITH_GLOBAL the first B * H programs compute the global rows (they run longest, so
    # they start first), then come the local query tiles, sample by sample and head by head.
    local_program = tl.program_id(0)
    if WITH_GLOBAL:
        local_program -= batch_heads
    bh = tl.where(local_program < 0, tl.program_id(0), local_program // local_programs)
    b = bh // num_heads
    h = bh % num_heads
    q_ptr += b * stride_qb + h * stride_qh
    k_ptr += b * stride_kb + h * stride_kh
    v_ptr += b * stride_vb + h * stride_vh
    out_ptr += b * stride_ob + h * stride_oh
    if WITH_GLOBAL:
        if local_program < 0:
            _global_rows(q_ptr, k_ptr, v_ptr, out_ptr, probs_ptr, logits_ptr, gmask_ptr, b, h, stride_qn,
                         stride_qd, stride_kn, stride_kd, stride_vn, stride_vd, stride_on, stride_od, stride_gb,
                         stride_gh, stride_gr, stride_gc, num_heads, num_tokens, num_global, scale, HAS_GMASK,
                         IEEE, BLOCK_G, BLOCK_GN, HEAD_DIM)
        else:
            _local_rows(q_ptr, k_ptr, v_ptr, out_ptr, lse_ptr, key_index_ptr, mask_ptr, b, h,
                        local_program % local_programs, stride_qn, stride_qd, stride_kn, stride_kd, stride_vn,
                        stride_vd, stride_on, stride_od, stride_mb, stride_mh, stride_mm, stride_mr, stride_mc,
                        num_heads, num_global, num_local, block_size, width, tiles_per_block, out_row_offset,
                        scale, HAS_MASK, STORE_LSE, IEEE, BLOCK_M, BLOCK_N, HEAD_DIM)
    else:
        _local_rows(q_ptr, k_ptr, v_ptr, out_ptr, lse_ptr, key_index_ptr, mask_ptr, b, h,
                    local_program % local_programs, stride_qn, stride_qd, stride_kn, stride_kd, stride_vn,
                    stride_vd, stride_on, stride_od, stride_mb, stride_mh, stride_mm, stride_mr, stride_mc,
                    num_heads, num_global, num_local, block_size, width, tiles_per_block, out_row_offset,
                    scale, HAS_MASK, STORE_LSE, IEEE, BLOCK_M, BLOCK_N, HEAD_DIM)


@triton.jit
def _query_tile_for_backward(q_ptr, grad_out_ptr, lse_ptr, delta_ptr, b, h, block, tile, stride_qn, stride_qd,
                             stride_gn, stride_gd, num_heads, num_global, num_local, block_size,
                             BLOCK_M: tl.constexpr, HEAD_DIM: tl.constexpr):
    """What the backward reads of a query tile: its rows (within the block) and their validity, the
    queries, the output gradients, the log-sum-exp and ``delta = rowsum(dO * O)``."""
    rows, position, local, row_valid, q = _query_tile(q_ptr, block, tile, block_size, num_local, num_global,
                                                      stride_qn, stride_qd, BLOCK_M, HEAD_DIM)
    dims = tl.arange(0, HEAD_DIM)
    grad_out = tl.load(grad_out_ptr + local[:, None] * stride_gn + dims[None, :] * stride_gd,
                       mask=row_valid[:, None], other=0.0)
    stats = (b * num_heads + h) * num_local + local
    lse = tl.load(lse_ptr + stats, mask=row_valid, other=float('inf'))
    delta = tl.load(delta_ptr + stats, mask=row_valid, other=0.0)
    return position, rows, row_valid, q, grad_out, lse, delta


@triton.jit
def block_sparse_backward_query_kernel(
        q_ptr, k_ptr, v_ptr, grad_out_ptr, lse_ptr, delta_ptr, key_index_ptr, mask_ptr, grad_q_ptr,
        grad_mask_ptr, stride_qb, stride_qh, stride_qn, stride_qd, stride_kb, stride_kh, stride_kn, stride_kd,
        stride_vb, stride_vh, stride_vn, stride_vd, stride_gb, stride_gh, stride_gn, stride_gd,
        stride_mb, stride_mh, stride_mm, stride_mr, stride_mc, stride_db, stride_dh, stride_dm, stride_dr,
        stride_dc, num_heads, num_tokens, num_global, num_local, block_size, width, tiles_per_block, scale,
        HAS_MASK: tl.constexpr, MASK_GRAD: tl.constexpr, IEEE: tl.constexpr, BLOCK_M: tl.constexpr,
        BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr):
    """``dq`` of one local query tile (and the logits' gradient, for the mask), over its row of the key
    table."""
    block = tl.program_id(0) // tiles_per_block
    tile = tl.program_id(0) % tiles_per_block
    b = tl.program_id(1) // num_heads
    h = tl.program_id(1) % num_heads
    dims = tl.arange(0, HEAD_DIM)
    q_ptr += b * stride_qb + h * stride_qh
    k_ptr += b * stride_kb + h * stride_kh
    v_ptr += b * stride_vb + h * stride_vh
    grad_out_ptr += b * stride_gb + h * stride_gh
    position, rows, row_valid, q, grad_out, lse, delta = _query_tile_for_backward(
        q_ptr, grad_out_ptr, lse_ptr, delta_ptr, b, h, block, tile, stride_qn, stride_qd, stride_gn, stride_gd,
        num_heads, num_global, num_local, block_size, BLOCK_M, HEAD_DIM)
    grad_q = tl.zeros([BLOCK_M, HEAD_DIM], tl.float32)
    for start in range(0, width, BLOCK_N):
        s, k, v, cols, col_valid = _key_tile(
            q, k_ptr, v_ptr, key_index_ptr, mask_ptr, b, h, block, rows, row_valid, start, width, stride_kn,
            stride_kd, stride_vn, stride_vd, stride_mb, stride_mh, stride_mm, stride_mr, stride_mc, scale,
            HAS_MASK, IEEE, BLOCK_N, HEAD_DIM)
        p = tl.exp2(s - lse[:, None])  # [BLOCK_M, BLOCK_N]; 0 at invalid rows and columns
        grad_s = p * (_dot(grad_out, tl.trans(v), IEEE) - delta[:, None])  # of the natural-log-scale logits
        if MASK_GRAD:
            offsets = (b * stride_db + h * stride_dh + block * stride_dm + rows[:, None] * stride_dr
                       + cols[None, :] * stride_dc)
            tl.store(grad_mask_ptr + offsets, grad_s, mask=row_valid[:, None] & (cols < width)[None, :])
        grad_q += _dot(grad_s.to(k.dtype), k, IEEE)
    grad_q_ptr += (b * num_heads + h) * num_tokens * HEAD_DIM
    tl.store(grad_q_ptr + position[:, None] * HEAD_DIM + dims[None, :], (grad_q * scale).to(q.dtype),
             mask=row_valid[:, None])


@triton.jit
def block_sparse_backward_key_kernel(
        q_ptr, k_ptr, v_ptr, grad_out_ptr, lse_ptr, delta_ptr, reverse_query_ptr, reverse_column_ptr,
        reverse_count_ptr, mask_ptr, grad_k_ptr, grad_v_ptr,
        stride_qb, stride_qh, stride_qn, stride_qd, stride_kb, stride_kh, stride_kn, stride_kd,
        stride_vb, stride_vh, stride_vn, stride_vd, stride_gb, stride_gh, stride_gn, stride_gd,
        stride_mb, stride_mh, stride_mm, stride_mr, stride_mc, num_heads, batch_heads, num_tokens,
        num_global, num_local, block_size, reverse_width, tiles_per_block, key_programs, scale,
        HAS_MASK: tl.constexpr, IEEE: tl.constexpr, BLOCK_M: tl.constexpr, HEAD_DIM: tl.constexpr):
    """``dk`` and ``dv`` of one key tile: a tile of a local key block, or (the first ``B * H`` programs,
    which run longest) the global keys. It visits the query blocks that read it (the reverse table), so
    every key row is written by exactly one program, without atomics."""
    # 1-D grid: B * H global-key programs, then the local key tiles, sample by sample and head by head.
    local_program = tl.program_id(0) - batch_heads
    bh = tl.where(local_program < 0, tl.program_id(0), local_program // key_programs)
    b = bh // num_heads
    h = bh % num_heads
    group = tl.where(local_program < 0, 0, local_program % key_programs // tiles_per_block + 1)
    key_tile = tl.where(local_program < 0, 0, local_program % key_programs % tiles_per_block)
    within = key_tile * BLOCK_M + tl.arange(0, BLOCK_M)  # key rows of the group; the table column offset
    key_local = (group - 1) * block_size + within
    is_global = group == 0
    key_valid = tl.where(is_global, within < num_global, (within < block_size) & (key_local < num_local))
    key_position = tl.where(is_global, within, num_global + key_local)
    dims = tl.arange(0, HEAD_DIM)
    q_ptr += b * stride_qb + h * stride_qh
    k_ptr += b * stride_kb + h * stride_kh
    v_ptr += b * stride_vb + h * stride_vh
    grad_out_ptr += b * stride_gb + h * stride_gh
    k = tl.load(k_ptr + key_position[:, None] * stride_kn + dims[None, :] * stride_kd, mask=key_valid[:, None],
                other=0.0)
    v = tl.load(v_ptr + key_position[:, None] * stride_vn + dims[None, :] * stride_vd, mask=key_valid[:, None],
                other=0.0)
    grad_k = tl.zeros([BLOCK_M, HEAD_DIM], tl.float32)
    grad_v = tl.zeros([BLOCK_M, HEAD_DIM], tl.float32)
    count = tl.load(reverse_count_ptr + group)
    for i in range(0, count * tiles_per_block):
        entry = group * reverse_width + i // tiles_per_block
        block = tl.load(reverse_query_ptr + entry)
        column = tl.load(reverse_column_ptr + entry) + within  # this key's column in the block's table row
        _, rows, row_valid, q, grad_out, lse, delta = _query_tile_for_backward(
            q_ptr, grad_out_ptr, lse_ptr, delta_ptr, b, h, block, i % tiles_per_block, stride_qn, stride_qd,
            stride_gn, stride_gd, num_heads, num_global, num_local, block_size, BLOCK_M, HEAD_DIM)
        offsets = (b * stride_mb + h * stride_mh + block * stride_mm + rows[None, :] * stride_mr
                   + column[:, None] * stride_mc)
        s = _logits(k, q, mask_ptr, offsets, key_valid[:, None] & row_valid[None, :], scale, HAS_MASK,
                    IEEE)  # [keys, queries]
        s = tl.where(key_valid[:, None], s, float('-inf'))
        p = tl.exp2(s - lse[None, :])
        grad_v += _dot(p.to(grad_out.dtype), grad_out, IEEE)
        grad_s = p * (_dot(v, tl.trans(grad_out), IEEE) - delta[None, :])
        grad_k += _dot(grad_s.to(q.dtype), q, IEEE)
    offsets = (b * num_heads + h) * num_tokens * HEAD_DIM + key_position[:, None] * HEAD_DIM + dims[None, :]
    tl.store(grad_k_ptr + offsets, (grad_k * scale).to(k.dtype), mask=key_valid[:, None])
    tl.store(grad_v_ptr + offsets, grad_v.to(v.dtype), mask=key_valid[:, None])


def mask_strides(mask: Optional[Tensor], shape: Tuple[int, ...]) -> Tuple[int, ...]:
    """Strides of the additive mask broadcast to ``[B, H, M, block_size, C]`` (zeros when there is none)."""
    return (0,) * 5 if mask is None else mask.expand(shape).stride()


def launch_config(q: Tensor, block_size: int, num_blocks: int, block_n: Optional[int]) -> dict:
    """Grid and compile-time sizes shared by the two kernels."""
    dim = q.shape[-1]
    if dim < 16 or dim & (dim - 1):
        raise ValueError(f'triton block-sparse attention: head_dim must be a power of two >= 16, got {dim}')
    block_m = query_tile(block_size)
    tiles = -(-block_size // block_m)
    return dict(grid=(num_blocks * tiles, q.shape[0] * q.shape[1]), tiles_per_block=tiles, BLOCK_M=block_m,
                BLOCK_N=block_n or block_m, HEAD_DIM=dim, IEEE=q.dtype == torch.float32)


def block_sparse_forward(q: Tensor, k: Tensor, v: Tensor, key_index: Tensor, mask: Optional[Tensor],
                         num_global: int, block_size: int, block_n: Optional[int] = None,
                         num_warps: int = 4, num_stages: int = 2, with_global: bool = False,
                         global_mask: Optional[Tensor] = None,
                         store_lse: bool = True) -> Tuple[Tensor, Optional[Tensor], Optional[Tensor]]:
    """Block-sparse attention of the local queries, and with ``with_global`` of the global ones too.

    Args:
        q, k, v: ``[B, H, N, D]``.
        key_index: int32 ``[M, C]`` key positions per query block, ``-1`` at unused slots.
        mask: optional additive mask broadcastable to ``[B, H, M, block_size, C]`` (bias, padding keys).
        with_global: also compute the global queries' rows (dense over all keys) in the same launch.
        global_mask: optional additive mask broadcastable to ``[B, H, G, N]`` of the global queries.
        store_lse: return the local queries' log-sum-exp (what the backward needs); else ``lse`` is ``None``.

    Returns:
        ``(out, lse, probs)``: without ``with_global``, ``out [B, H, N - G, D]`` holds the local queries
        only and ``probs`` is ``None``; with it, ``out [B, H, N, D]`` holds every query and ``probs
        [B, H, G, N]`` the global queries' probabilities. ``lse [B, H, N - G]`` (fp32, base 2) is the local
        queries' log-sum-exp.
    """
    batch, heads, num_tokens, dim = q.shape
    num_local = num_tokens - num_global
    blocks, width = key_index.shape
    config = launch_config(q, block_size, blocks, block_n)
    local_programs = config.pop('grid')[0]
    tiles_per_block = config.pop('tiles_per_block')
    rows = num_tokens if with_global else num_local
    out = torch.empty(batch, heads, rows, dim, dtype=q.dtype, device=q.device)
    lse = torch.empty(batch, heads, num_local, dtype=torch.float32, device=q.device) if store_lse else None
    probs = logits = None
    if with_global:
        probs = torch.empty(batch, heads, num_global, num_tokens, dtype=q.dtype, device=q.device)
        logits = torch.empty(probs.shape, dtype=torch.float32, device=q.device)
    shape = (batch, heads, blocks, block_size, width)
    global_strides = (0,) * 4 if global_mask is None else global_mask.expand(
        batch, heads, num_global, num_tokens).stride()
    grid = (batch * heads * (local_programs + with_global),)
    block_sparse_forward_kernel[grid](
        q, k, v, out, out if lse is None else lse, key_index, q if mask is None else mask,
        q if global_mask is None else global_mask, q if probs is None else probs, out if logits is None else logits,
        *q.stride(), *k.stride(), *v.stride(), *out.stride(), *mask_strides(mask, shape), *global_strides,
        heads, batch * heads, num_tokens, num_global, num_local, block_size, width, tiles_per_block,
        local_programs, 0 if with_global else num_global, dim ** -0.5, HAS_MASK=mask is not None,
        HAS_GMASK=global_mask is not None, WITH_GLOBAL=with_global, STORE_LSE=store_lse,
        BLOCK_G=max(16, triton.next_power_of_2(num_global)), BLOCK_GN=128, num_warps=num_warps,
        num_stages=num_stages, **config)
    return out, lse, probs


def reverse_table(block_index: Tensor, num_global: int, block_size: int) -> Tuple[Tensor, Tensor, Tensor]:
    """Which query blocks read each key group: group 0 is the global keys (read by every query block at
    table column 0), group ``1 + j`` is local key block ``j``.

    Returns:
        ``(query, column, count)``: int32 ``[1 + M, R]`` query blocks and the table column where the group
        starts in their rows (``G + slot * block_size``), valid in the first ``count[group]`` entries.
    """
    blocks, slots = block_index.shape
    device = block_index.device
    query = torch.arange(blocks, device=device).repeat_interleave(slots)
    column = num_global + torch.arange(slots, device=device).repeat(blocks) * block_size
    key = block_index.flatten()
    used = key >= 0
    query, column, key = query[used], column[used], key[used]
    order = torch.argsort(key * blocks + query)
    query, column, key = query[order], column[order], key[order]
    count = torch.bincount(key, minlength=blocks)
    rank = torch.arange(key.numel(), device=device) - (torch.cumsum(count, 0) - count)[key]
    # A query block lists a key block at most once, so M entries always suffice (no device-to-host read).
    table = torch.zeros(2, 1 + blocks, blocks, dtype=torch.int32, device=device)
    table[0, 0] = torch.arange(blocks, device=device, dtype=torch.int32)  # global keys: column 0
    table[0, 1 + key, rank] = query.to(torch.int32)
    table[1, 1 + key, rank] = column.to(torch.int32)
    global_count = torch.full((1,), blocks if num_global else 0, dtype=count.dtype, device=device)
    return table[0], table[1], torch.cat([global_count, count]).to(torch.int32)


def block_sparse_backward(grad_out: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor,
                          key_index: Tensor, block_index: Tensor, mask: Optional[Tensor], mask_grad: bool,
                          num_global: int, block_size: int, block_n: Optional[int] = None, num_warps: int = 4,
                          num_stages: int = 2) -> Tuple[Tensor, Tensor, Tensor, Optional[Tensor]]:
    """Gradients of :func:`block_sparse_forward` (local queries): ``(dq, dk, dv [B, H, N, D], dmask)``.

    One kernel computes ``dq`` per query tile (and ``dmask``, ``mask_grad`` only: ``[B, H, M, block_size,
    C]`` fp32, to be summed over the mask's broadcast dimensions by the caller), another ``dk, dv`` per key
    tile from the :func:`reverse_table` of ``block_index`` ``[M, S]``.
    """
    batch, heads, num_tokens, dim = q.shape
    num_local = num_tokens - num_global
    blocks, width = key_index.shape
    config = launch_config(q, block_size, blocks, block_n)
    if num_global > config['BLOCK_M']:
        raise ValueError(f'triton block-sparse attention: at most {config["BLOCK_M"]} global tokens in the '
                         f'backward, got {num_global}')
    delta = (grad_out.float() * out.float()).sum(-1).contiguous()  # [B, H, N - G]
    grad_q = torch.zeros_like(q, memory_format=torch.contiguous_format)  # global rows: not these queries
    grad_k = torch.empty(q.shape, dtype=k.dtype, device=q.device)  # every row written once
    grad_v = torch.empty(q.shape, dtype=v.dtype, device=q.device)
    shape = (batch, heads, blocks, block_size, width)
    grad_mask = torch.zeros(shape, dtype=torch.float32, device=q.device) if mask_grad else None
    tiles = config.pop('tiles_per_block')
    grid = config.pop('grid')
    common = dict(HAS_MASK=mask is not None, num_warps=num_warps, num_stages=num_stages, IEEE=config['IEEE'],
                  BLOCK_M=config['BLOCK_M'], HEAD_DIM=dim)
    block_sparse_backward_query_kernel[grid](
        q, k, v, grad_out, lse, delta, key_index, q if mask is None else mask, grad_q,
        q if grad_mask is None else grad_mask, *q.stride(), *k.stride(), *v.stride(), *grad_out.stride(),
        *mask_strides(mask, shape), *mask_strides(grad_mask, shape), heads, num_tokens, num_global, num_local,
        block_size, width, tiles, dim ** -0.5, MASK_GRAD=mask_grad, BLOCK_N=config['BLOCK_N'], **common)
    query, column, count = reverse_table(block_index, num_global, block_size)
    block_sparse_backward_key_kernel[(batch * heads * (1 + blocks * tiles),)](
        q, k, v, grad_out, lse, delta, query, column, count, q if mask is None else mask, grad_k, grad_v,
        *q.stride(), *k.stride(), *v.stride(), *grad_out.stride(), *mask_strides(mask, shape), heads,
        batch * heads, num_tokens, num_global, num_local, block_size, query.shape[1], tiles, blocks * tiles,
        dim ** -0.5, **common)
    return grad_q, grad_k, grad_v, grad_mask
