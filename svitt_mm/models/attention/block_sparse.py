"""Block-sparse attention (SViTT's edge sparsity) by gathering key/value blocks.

Global queries attend densely to every key; local query block ``m`` attends to the global keys and to the
key blocks its :class:`~.block_layout.BlockLayout` row lists. The keys and values of every query block are
gathered with one token-index table (the same table gives the bias positions), and all blocks of all heads
go through one ``scaled_dot_product_attention`` call, so time and memory grow with the kept pairs.
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from svitt_mm.registry import ATTENTION_OPS

from .base import AttentionOp, PairBias
from .block_layout import (BlockLayout, computed_pair_fraction, dense_block_index, key_token_index,
                           num_blocks, num_slots, query_token_index, sparse_block_index)
from .dense import DenseAttention, key_padding_logits


def global_attention_mask(q: Tensor, num_global: int, key_padding_mask: Optional[Tensor],
                          bias: Optional[PairBias]) -> Optional[Tensor]:
    """Additive mask ``[B or 1, H or 1, G, N]`` of the global queries: the pair bias (called with
    ``[G, 1] x [1, N]`` positions) and ``-inf`` at padding keys; ``None`` when there is neither."""
    mask = None
    if bias is not None and num_global:
        index = torch.arange(q.shape[-2], device=q.device)
        mask = bias(index[:num_global, None], index[None, :]).to(q.dtype)
    if key_padding_mask is not None:
        padding = key_padding_logits(key_padding_mask, q.dtype)
        mask = padding if mask is None else mask + padding
    return mask


def global_attention(q: Tensor, k: Tensor, v: Tensor, num_global: int,
                     key_padding_mask: Optional[Tensor],
                     bias: Optional[PairBias]) -> Tuple[Tensor, Tensor]:
    """Dense attention of the global queries over all keys.

    Args:
        q, k, v: ``[B, H, N, D]``; the first ``num_global`` queries are the global ones.
        key_padding_mask: optional bool ``[B, N]``, ``True`` at padding keys.
        bias: optional pair bias (see :func:`global_attention_mask`).

    Returns:
        ``(out [B, H, G, D], probs [B, H, G, N])``.
    """
    logits = q[:, :, :num_global] @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    mask = global_attention_mask(q, num_global, key_padding_mask, bias)
    if mask is not None:
        logits = logits + mask
    probs = logits.softmax(dim=-1)
    return probs @ v, probs


def local_attention_mask(q: Tensor, num_global: int, layout: BlockLayout, key_index: Tensor,
                         key_valid: Tensor, key_padding_mask: Optional[Tensor],
                         bias: Optional[PairBias]) -> Tensor:
    """Additive mask ``[B or 1, H or 1, M, bs or 1, C]`` of the local queries' computed pairs.

    Column ``c`` of block ``m`` is the key ``key_index[m, c]``, from :func:`~.block_layout.key_token_index`
    with its ``key_valid`` (``C = num_global + S * bs``, global keys first). The mask is ``-inf`` on unused
    slots, the padding of a ragged last block and padding keys, and holds the pair bias, called with the
    query positions ``[M, bs, 1]`` and the key positions ``[M, 1, C]``.
    """
    mask = torch.zeros(key_valid.shape, dtype=q.dtype, device=q.device)
    mask = mask.masked_fill(~key_valid, float('-inf'))[None, None, :, None, :]
    if key_padding_mask is not None:
        mask = mask.masked_fill(key_padding_mask[:, key_index][:, None, :, None, :], float('-inf'))
    if bias is not None:
        query_index = query_token_index(layout, num_global)
        mask = mask + bias(query_index[:, :, None], key_index[:, None, :]).to(q.dtype)
    return mask


def gathered_block_attention(q: Tensor, k: Tensor, v: Tensor, num_global: int, layout: BlockLayout,
                             key_index: Tensor, mask: Tensor) -> Tensor:
    """Local-query outputs ``[B, H, N - G, D]`` under a :func:`local_attention_mask`, by gathering each
    query block's keys and values (positions ``key_index [M, C]``) and running all blocks of all heads
    through one SDPA call."""
    batch, heads, _, dim = q.shape
    blocks, size = layout.num_blocks, layout.block_size
    width = key_index.shape[1]
    flat = key_index.flatten()
    keys = k.index_select(2, flat).view(batch, heads * blocks, width, dim)
    values = v.index_select(2, flat).view(batch, heads * blocks, width, dim)
    queries = F.pad(q[:, :, num_global:], (0, 0, 0, blocks * size - layout.num_tokens))
    queries = queries.reshape(batch, heads * blocks, size, dim)
    mask = mask.expand(-1, heads, -1, -1, -1).reshape(mask.shape[0], heads * blocks, mask.shape[3], width)
    out = F.scaled_dot_product_attention(queries, keys, values, attn_mask=mask)
    return out.reshape(batch, heads, blocks * size, dim)[:, :, :layout.num_tokens]


def block_local_attention(q: Tensor, k: Tensor, v: Tensor, num_global: int, layout: BlockLayout,
                          key_padding_mask: Optional[Tensor],
                          bias: Optional[PairBias]) -> Tensor:
    """Attention of the local queries over the global keys and their layout's key blocks.

    Args:
        q, k, v: ``[B, H, N, D]`` with ``N = num_global + layout.num_tokens``.
        layout: the block pattern of the ``N - num_global`` local tokens.
        key_padding_mask: optional bool ``[B, N]``, ``True`` at padding keys.
        bias: optional pair bias (see :func:`local_attention_mask`).

    Returns:
        ``[B, H, N - num_global, D]``.
    """
    key_index, key_valid = key_token_index(layout, num_global)  # [M, C]
    mask = local_attention_mask(q, num_global, layout, key_index, key_valid, key_padding_mask, bias)
    return gathered_block_attention(q, k, v, num_global, layout, key_index, mask)


@ATTENTION_OPS.register_module()
class BlockSparseAttention(AttentionOp):
    """SViTT's block-sparse attention: global tokens + local window + random key blocks.

    Args:
        block_size: local tokens per block.
        local_blocks: window of blocks centred on each query block (0 or odd); truncated at the ends.
        random_blocks: further key blocks per query block, drawn without replacement outside the window.
        dense_threshold: run dense attention when the block path would compute at least this fraction of
            the ``N x N`` local pairs (padded slots included, as they cost time); ``float('inf')`` never
            falls back. The default 0.35 is about where the block path stopped paying (forward+backward)
            on a 2-core CPU: 16 frames (4/56 of the pairs) ran ~2x faster than dense, 10-11 blocks of 56
            about even, fewer blocks slower.
        eval_seed: seed of the deterministic evaluation pattern (mixed with the op's ``layer_index``,
            which the backbone sets, and the number of blocks, so that layers see different patterns).

    In training mode every call without an explicit layout draws a fresh pattern (torch's global RNG);
    in eval mode the pattern is a function of ``eval_seed`` and the number of blocks, drawn on the CPU so
    that it is the same on every device.
    """

    def __init__(self, block_size: int = 56, local_blocks: int = 1, random_blocks: int = 3,
                 dense_threshold: float = 0.35, eval_seed: int = 0) -> None:
        super().__init__()
        name = type(self).__name__
        if not isinstance(block_size, int) or block_size < 1:
            raise ValueError(f'{name}: block_size must be a positive int, got {block_size!r}')
        if not isinstance(local_blocks, int) or local_blocks < 0 or (local_blocks and local_blocks % 2 == 0):
            raise ValueError(f'{name}: local_blocks must be 0 or an odd positive int, got {local_blocks!r}')
        if not isinstance(random_blocks, int) or random_blocks < 0:
            raise ValueError(f'{name}: random_blocks must be a non-negative int, got {random_blocks!r}')
        if not dense_threshold > 0:
            raise ValueError(f'{name}: dense_threshold must be > 0, got {dense_threshold!r}')
        self.block_size = block_size
        self.local_blocks = local_blocks
        self.random_blocks = random_blocks
        self.dense_threshold = float(dense_threshold)
        self.eval_seed = int(eval_seed)
        self.dense = DenseAttention()
        self._eval_layouts: Dict[tuple, BlockLayout] = {}

    def extra_repr(self) -> str:
        return (f'block_size={self.block_size}, local_blocks={self.local_blocks}, '
                f'random_blocks={self.random_blocks}, dense_threshold={self.dense_threshold}, '
                f'eval_seed={self.eval_seed}')

    def make_layout(self, num_local_tokens: int, device: Optional[torch.device] = None,
                    generator: Optional[torch.Generator] = None) -> BlockLayout:
        """Draw the block pattern for ``num_local_tokens`` local tokens.

        Args:
            num_local_tokens: ``N - num_global``.
            device: where the block table lives (and is drawn, unless ``generator`` says otherwise).
            generator: random source of the random blocks; torch's global RNG when ``None``.

        Returns:
            A :class:`BlockLayout`; ``is_dense`` when the pattern reaches ``dense_threshold``.
        """
        count = num_blocks(num_local_tokens, self.block_size)
        slots = num_slots(count, self.local_blocks, self.random_blocks)
        fraction = computed_pair_fraction(num_local_tokens, self.block_size, slots)
        if fraction >= self.dense_threshold:
            return BlockLayout(dense_block_index(count, device), self.block_size, num_local_tokens, True)
        draw_device = generator.device if generator is not None else device
        index = sparse_block_index(count, self.local_blocks, self.random_blocks, draw_device, generator)
        if device is not None:
            index = index.to(device)
        return BlockLayout(index, self.block_size, num_local_tokens, False)

    def eval_layout(self, num_local_tokens: int, device: Optional[torch.device] = None) -> BlockLayout:
        """The deterministic pattern used in eval mode: a function of ``eval_seed``, ``layer_index`` and the
        block count. Drawn once per token count and device, then reused (no host-side draw and copy per
        call)."""
        key = (num_local_tokens, None if device is None else torch.device(device), self.eval_seed,
               self.layer_index)
        if key not in self._eval_layouts:
            count = num_blocks(num_local_tokens, self.block_size)
            seed = (self.eval_seed * 1_000_003 + self.layer_index) * 1_000_033 + count
            generator = torch.Generator().manual_seed(seed)
            self._eval_layouts[key] = self.make_layout(num_local_tokens, device=device, generator=generator)
        return self._eval_layouts[key]

    def resolve_layout(self, q: Tensor, num_global: int, layout: Optional[BlockLayout]) -> BlockLayout:
        """Check a given layout against the input, or make one for the current mode."""
        num_local = q.shape[-2] - num_global
        name = type(self).__name__
        if layout is None:
            if self.training:
                return self.make_layout(num_local, device=q.device)
            return self.eval_layout(num_local, device=q.device)
        if not isinstance(layout, BlockLayout):
            raise TypeError(f'{name}: layout must be a BlockLayout from make_layout, '
                            f'got {type(layout).__name__}')
        if layout.num_tokens != num_local or layout.block_size != self.block_size:
            raise ValueError(
                f'{name}: layout was made for {layout.num_tokens} local tokens in blocks of '
                f'{layout.block_size}, but the input has {num_local} local tokens '
                f'(N={q.shape[-2]}, num_global={num_global}) and block_size={self.block_size}')
        return layout

    def forward(self, q: Tensor, k: Tensor, v: Tensor, num_global: int = 1,
                layout: Optional[BlockLayout] = None, key_padding_mask: Optional[Tensor] = None,
                bias: Optional[PairBias] = None) -> Tuple[Tensor, Tensor]:
        """See :mod:`.base`: ``q, k, v [B, H, N, D]`` -> ``(out [B, H, N, D], global_probs [B, H, G, N])``."""
        check_inputs(type(self).__name__, q, k, v, num_global, key_padding_mask)
        layout = self.resolve_layout(q, num_global, layout)
        if layout.is_dense:
            return self.dense(q, k, v, num_global=num_global, key_padding_mask=key_padding_mask,
                              bias=bias)
        return self.sparse_attention(q, k, v, num_global, layout, key_padding_mask, bias)

    def sparse_attention(self, q: Tensor, k: Tensor, v: Tensor, num_global: int, layout: BlockLayout,
                         key_padding_mask: Optional[Tensor],
                         bias: Optional[PairBias]) -> Tuple[Tensor, Tensor]:
        """``(out, global_probs)`` under a sparse ``layout``: the global queries dense over all keys
        (:func:`global_attention`), the local ones through :meth:`local_attention`."""
        out_global, probs = global_attention(q, k, v, num_global, key_padding_mask, bias)
        out_local = self.local_attention(q, k, v, num_global, layout, key_padding_mask, bias)
        return torch.cat([out_global, out_local], dim=2), probs

    def local_attention(self, q: Tensor, k: Tensor, v: Tensor, num_global: int, layout: BlockLayout,
                        key_padding_mask: Optional[Tensor], bias: Optional[PairBias]) -> Tensor:
        """Outputs ``[B, H, N - G, D]`` of the local queries (see :func:`block_local_attention`)."""
        return block_local_attention(q, k, v, num_global, layout, key_padding_mask, bias)


def check_inputs(name: str, q: Tensor, k: Tensor, v: Tensor, num_global: int,
                 key_padding_mask: Optional[Tensor]) -> None:
    """Raise a readable error for inputs that break the operator contract."""
    if q.dim() != 4 or q.shape != k.shape or q.shape != v.shape:
        raise ValueError(f'{name}: q, k, v must share one shape [B, H, N, D], got '
                         f'{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}')
    if not 0 <= num_global <= q.shape[-2]:
        raise ValueError(f'{name}: num_global={num_global} is outside [0, N={q.shape[-2]}]')
    if key_padding_mask is not None and (key_padding_mask.dtype != torch.bool
                                         or key_padding_mask.shape != (q.shape[0], q.shape[-2])):
        raise ValueError(f'{name}: key_padding_mask must be bool [B, N]=[{q.shape[0]}, {q.shape[-2]}], '
                         f'got {key_padding_mask.dtype} {tuple(key_padding_mask.shape)}')
