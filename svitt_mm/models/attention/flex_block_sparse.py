"""Block-sparse attention computed with PyTorch FlexAttention (fused kernels when compiled).

Same pattern, layout and contract as :class:`~.block_sparse.BlockSparseAttention`; only the local queries'
attention differs. The global queries' rows are computed explicitly (their probabilities are part of the
output, which ``flex_attention`` does not return).

Local queries run as one ``flex_attention`` call over the key sequence ``[local keys padded to M * bs |
global keys]``, so that layout blocks start on multiples of ``bs`` and the global keys share one trailing
block. The ``BlockMask`` is built straight from the block table (no ``N x N`` mask evaluation): layout blocks
are mapped onto flex's tile grid (``flex_block_size``, by default the layout's block size; GPU kernels need a
multiple of 16, e.g. 64 or 128) and every listed tile is partial, so the token-level ``mask_mod`` (a lookup
of the block table, the ragged tail and the key padding) decides each pair exactly.

The pair bias is not called inside ``score_mod``: a :class:`~.base.PairBias` may do arbitrary indexing that
flex cannot trace per pair, so it is evaluated once on the same ``[M, bs] x [M, C]`` index tables as the
gather operator (memory proportional to the kept pairs) and ``score_mod`` looks the value of each pair up
in that tensor. Gradients reach the bias through this captured tensor (GPU; CPU flex has no backward).
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.attention.flex_attention import BlockMask, flex_attention

from svitt_mm.registry import ATTENTION_OPS

from .base import PairBias
from .block_layout import BlockLayout, block_adjacency, key_token_index, query_token_index
from .block_sparse import BlockSparseAttention

_COMPILED_FLEX: Optional[Callable[..., Tensor]] = None


def compiled_flex_attention() -> Callable[..., Tensor]:
    """``torch.compile(flex_attention)``, compiled once per process (recompiles per sequence length)."""
    global _COMPILED_FLEX
    if _COMPILED_FLEX is None:
        _COMPILED_FLEX = torch.compile(flex_attention, dynamic=False)
    return _COMPILED_FLEX


def tile_overlap(block_of_token: Tensor, num_blocks: int, tile_size: int) -> Tensor:
    """Bool ``[T, num_blocks]``: ``True`` where flex tile ``t`` holds a token of block ``b``.

    Args:
        block_of_token: LongTensor ``[L]``, the block id of every position of the sequence.
        num_blocks: number of block ids.
        tile_size: flex tile length; ``T = ceil(L / tile_size)``.
    """
    length = block_of_token.shape[0]
    tiles = -(-length // tile_size)
    overlap = torch.zeros(tiles, num_blocks, dtype=torch.bool, device=block_of_token.device)
    tile = torch.arange(length, device=block_of_token.device) // tile_size
    overlap[tile, block_of_token] = True
    return overlap


def slot_table(block_index: Tensor) -> Tensor:
    """LongTensor ``[M, M]``: the slot of key block ``j`` in row ``m`` of the table (``0`` if absent)."""
    blocks, slots = block_index.shape
    table = torch.zeros(blocks, blocks + 1, dtype=torch.long, device=block_index.device)
    column = block_index.masked_fill(block_index < 0, blocks)
    table.scatter_(1, column, torch.arange(slots, device=block_index.device).expand(blocks, slots))
    return table[:, :blocks]


@ATTENTION_OPS.register_module()
class FlexBlockSparseAttention(BlockSparseAttention):
    """:class:`BlockSparseAttention` whose local queries run through ``flex_attention``.

    Args:
        flex_block_size: flex tile size. ``None``: the layout's ``block_size`` on CPU, 128 (flex's
            default) on other devices, whose Triton kernels need tiles that are multiples of their own
            64/128-token tiles. The mask stays exact for any tile size; tiles that do not match the layout
            only compute more masked pairs.
        compile: run ``torch.compile(flex_attention)`` (fused kernels; the first call per sequence length
            compiles for ~20 s on CPU). ``False`` runs flex's eager reference, which materialises the full
            score matrix (for tests). On CPU, torch 2.14 has no flex backward.
        **kwargs: the arguments of :class:`BlockSparseAttention`.
    """

    def __init__(self, flex_block_size: Optional[int] = None, compile: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        if flex_block_size is not None and (not isinstance(flex_block_size, int) or flex_block_size < 1):
            raise ValueError(f'{type(self).__name__}: flex_block_size must be a positive int or None, '
                             f'got {flex_block_size!r}')
        self.flex_block_size = flex_block_size
        self.compile = bool(compile)

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, flex_block_size={self.flex_block_size}, compile={self.compile}'

    def tile_size(self, device: torch.device) -> int:
        """Flex tile size on ``device`` (see ``flex_block_size``)."""
        if self.flex_block_size is not None:
            return self.flex_block_size
        return self.block_size if device.type == 'cpu' else 128

    def block_mask(self, layout: BlockLayout, num_global: int,
                   key_valid: Tensor) -> BlockMask:
        """Flex ``BlockMask`` of the local queries ``[M * bs]`` over keys ``[M * bs | G]``.

        Args:
            layout: the block pattern.
            num_global: ``G``.
            key_valid: bool ``[B, M * bs + G]``, ``False`` at ragged padding and padding keys.
        """
        device = layout.block_index.device
        blocks, size, tile = layout.num_blocks, layout.block_size, self.tile_size(device)
        query_block = torch.arange(blocks * size, device=device) // size
        key_block = torch.cat([query_block, query_block.new_full((num_global,), blocks)])
        # Query block m sees its layout blocks and the global block (id M).
        adjacency = torch.cat([block_adjacency(layout.block_index),
                               torch.ones(blocks, 1, dtype=torch.bool, device=device)], dim=1)
        query_tiles = tile_overlap(query_block, blocks, tile).float()
        key_tiles = tile_overlap(key_block, blocks + 1, tile).float()
        tile_adjacency = (query_tiles @ adjacency.float() @ key_tiles.T) > 0
        kv_num_blocks = tile_adjacency.sum(dim=1, dtype=torch.int32)
        kv_indices = torch.sort((~tile_adjacency).to(torch.int8), dim=1, stable=True).indices

        def mask_mod(b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
            return key_valid[b, kv_idx] & adjacency[query_block[q_idx], key_block[kv_idx]]

        return BlockMask.from_kv_blocks(kv_num_blocks[None, None], kv_indices.to(torch.int32)[None, None],
                                        BLOCK_SIZE=tile, mask_mod=mask_mod,
                                        seq_lengths=(blocks * size, blocks * size + num_global))

    def local_attention(self, q: Tensor, k: Tensor, v: Tensor, num_global: int, layout: BlockLayout,
                        key_padding_mask: Optional[Tensor], bias: Optional[PairBias]) -> Tensor:
        """Outputs ``[B, H, N - G, D]`` of the local queries, through ``flex_attention``."""
        batch, heads = q.shape[:2]
        blocks, size = layout.num_blocks, layout.block_size
        pad = blocks * size - layout.num_tokens

        def padded_local(x: Tensor) -> Tensor:
            return F.pad(x[:, :, num_global:], (0, 0, 0, pad))

        queries = padded_local(q)
        keys = torch.cat([padded_local(k), k[:, :, :num_global]], dim=2)
        values = torch.cat([padded_local(v), v[:, :, :num_global]], dim=2)

        key_valid = torch.ones(blocks * size + num_global, dtype=torch.bool, device=q.device)
        key_valid[layout.num_tokens:blocks * size] = False  # ragged padding
        key_valid = key_valid.expand(batch, -1)
        if key_padding_mask is not None:
            padding = torch.cat([F.pad(key_padding_mask[:, num_global:], (0, pad)),
                                 key_padding_mask[:, :num_global]], dim=1)
            key_valid = key_valid & ~padding

        score_mod = None
        if bias is not None:
            key_index, _ = key_token_index(layout, num_global)
            query_index = query_token_index(layout, num_global)
            pair_bias = bias(query_index[:, :, None], key_index[:, None, :]).to(q.dtype)  # [B|1,H,M,bs,C]
            pair_bias = pair_bias.expand(batch, heads, -1, -1, -1)
            slots = slot_table(layout.block_index)
            local_keys = blocks * size

            def score_mod(score: Tensor, b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
                q_block, kv_block = q_idx // size, kv_idx // size
                is_global = kv_idx >= local_keys
                local_column = num_global + slots[q_block, kv_block.clamp(max=blocks - 1)] * size \
                    + kv_idx - kv_block * size
                column = torch.where(is_global, kv_idx - local_keys, local_column)
                return score + pair_bias[b, h, q_block, q_idx - q_block * size, column]

        block_mask = self.block_mask(layout, num_global, key_valid)
        attend = compiled_flex_attention() if self.compile else flex_attention
        out = attend(queries, keys, values, score_mod=score_mod, block_mask=block_mask)
        return out[:, :, :layout.num_tokens]
