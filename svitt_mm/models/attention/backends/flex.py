"""The ``flex`` backend: block-sparse attention with PyTorch FlexAttention (fused kernels when compiled).

The global queries' rows are computed explicitly (their probabilities are part of the output, which
``flex_attention`` does not return); the local queries run through one ``flex_attention`` call.

Every layout block is padded to one flex tile (``tile >= block_size`` tokens), so that flex's tiles *are*
the layout's blocks: local queries run as one ``flex_attention`` call over the key sequence
``[M tiles of local keys | global keys padded to whole tiles]``, and the ``BlockMask`` is the block table
itself plus the global tile (no ``N x N`` mask evaluation, and no pairs computed outside the pattern apart
from the padding). GPU kernels need power-of-two tiles of at least 16 tokens: SViTT's blocks of 56 run as
tiles of 64 (14 % of padding), where flex's default 128-token tiles would compute 2.3x the pattern's pairs.
The token-level ``mask_mod`` masks the padding, the ragged tail and the padding keys. On GPUs the tiling,
the mask and the kernel compile into one graph (:func:`compiled_flex_local_attention`).

The pair bias is not called inside ``score_mod``: a :class:`~..base.PairBias` may do arbitrary indexing that
flex cannot trace per pair, so the additive local mask of every computed pair is built once, by the same
:func:`~..logits.local_logit_mask` the other backends use (memory proportional to the kept pairs), and
``score_mod`` looks each pair up in it. Gradients reach the bias through this captured tensor (GPU; CPU flex
has no backward in torch 2.14).

The kernel also computes the tile padding, ``(tile / block_size)^2`` more local pairs (1.31x for 56 -> 64).
"""
from __future__ import annotations

from functools import partial
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.attention.flex_attention import BlockMask, flex_attention

from svitt_mm.utils.arg_checks import ArgumentError

from ..base import PairBias
from ..block_layout import BlockLayout, KeyTables, block_adjacency
from ..logits import local_logit_mask
from .base import AttentionBackend, AttentionCall
from .gather import global_attention

_COMPILED: Dict[str, Callable[..., Tensor]] = {}


def compiled_flex_local_attention(device_type: str) -> Callable[..., Tensor]:
    """:func:`flex_local_attention` compiled for ``device_type``, once per process (recompiled per sequence
    length, dtype and the presence of padding and bias).

    On GPUs the whole function is one graph: the tiling gathers, the block mask and the fused kernel,
    instead of dozens of small launches around the kernel. Inductor's CPU flex template accepts only
    materialised inputs (torch 2.14: "Cannot Append Choice: Pointwise"), so on CPU only the
    ``flex_attention`` call is compiled.
    """
    if device_type not in _COMPILED:
        if device_type == 'cpu':
            _COMPILED[device_type] = partial(flex_local_attention,
                                             attend=torch.compile(flex_attention, dynamic=False))
        else:
            _COMPILED[device_type] = torch.compile(flex_local_attention, dynamic=False)
    return _COMPILED[device_type]


def slot_table(block_index: Tensor) -> Tensor:
    """LongTensor ``[M, M]``: the slot of key block ``j`` in row ``m`` of the table (``0`` if absent)."""
    blocks, slots = block_index.shape
    table = torch.zeros(blocks, blocks + 1, dtype=torch.long, device=block_index.device)
    column = block_index.masked_fill(block_index < 0, blocks)
    table.scatter_(1, column, torch.arange(slots, device=block_index.device).expand(blocks, slots))
    return table[:, :blocks]


def tile_source_index(num_local: int, num_global: int, block_size: int, tile: int, device: torch.device,
                      with_global: bool = False) -> Tensor:
    """LongTensor ``[M * tile]`` (``[M * tile + Gt * tile]`` ``with_global``): which token of the sequence
    ``[G global | num_local local | one zero row]`` fills each position of the tiled sequence.

    Local tokens go in blocks of ``block_size``, each block padded to ``tile`` positions (the last one is
    ragged); ``with_global`` appends the global tokens, padded to whole tiles. Padding positions take the
    zero row (index ``G + num_local``). One gather builds the tiled tensor, so compiled code sees a plain
    ``[B, H, L, D]`` buffer.
    """
    zero_row = num_global + num_local
    position = torch.arange(-(-num_local // block_size) * tile, device=device)
    within = position % tile
    local = position // tile * block_size + within
    index = torch.where((within < block_size) & (local < num_local), num_global + local, zero_row)
    if with_global:
        slots = torch.arange(-(-num_global // tile) * tile, device=device)
        index = torch.cat([index, torch.where(slots < num_global, slots, zero_row)])
    return index


def tiled(x: Tensor, index: Tensor, pad_value: float = 0.0) -> Tensor:
    """``x`` ``[B, H, N, D]`` (or a mask ``[B, N]``) rearranged by a :func:`tile_source_index` table."""
    dim = 2 if x.dim() == 4 else 1
    pad = (0, 0, 0, 1) if dim == 2 else (0, 1)
    return F.pad(x, pad, value=pad_value).index_select(dim, index)


def tile_kernel_options(tile: int) -> Dict[str, int]:
    """Triton tile sizes that divide a ``tile``-token block mask (flex's defaults assume 128).

    The forward reads each query tile against key tiles of half its size: on an H100 (bf16, 16 frames,
    tiles of 64) the kernel took 0.50 ms with ``BLOCK_N=32`` against 0.63 ms with 64.
    """
    if tile >= 128:
        return {}
    half = max(tile // 2, 16)
    return {'BLOCK_M': tile, 'BLOCK_N': half,
            'BLOCK_M1': half, 'BLOCK_N1': tile, 'BLOCK_M2': tile, 'BLOCK_N2': half}


def tile_block_mask(block_index: Tensor, num_global: int, block_size: int, num_local: int, tile: int,
                    key_padding: Optional[Tensor], compute_q_blocks: bool = True) -> BlockMask:
    """Flex ``BlockMask`` of the padded local queries ``[M * tile]`` over the keys
    ``[M local tiles | Gt global tiles]``, for the layout table ``block_index`` ``[M, S]``.

    Query tile ``m`` lists the ``Gt`` global tiles and the key tiles of its layout row (whose valid entries
    come first), so no tile outside the pattern is visited. The ``mask_mod`` states the same pattern per
    pair (flex's contract: the tables only skip work) and removes padding: tile positions past
    ``block_size``, the ragged tail (``num_local`` tokens), global slots past ``num_global``, and the keys
    ``key_padding`` marks (bool ``[B, (M + Gt) * tile]``, optional).

    Args:
        compute_q_blocks: also build the transposed tables the backward pass needs.
    """
    blocks, device = block_index.shape[0], block_index.device
    global_tiles = -(-num_global // tile)
    local_keys = blocks * tile
    global_ids = torch.arange(blocks, blocks + global_tiles, device=device).expand(blocks, global_tiles)
    # One column per key tile, as torch's transposition for the backward expects; unused columns 0.
    unused = torch.zeros(blocks, blocks - block_index.shape[1], dtype=torch.long, device=device)
    kv_indices = torch.cat([global_ids, block_index.clamp(min=0), unused], dim=1).to(torch.int32)
    kv_num_blocks = (block_index >= 0).sum(dim=1, dtype=torch.int32) + global_tiles
    adjacency = block_adjacency(block_index)

    def mask_mod(b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        kv_tile, within = kv_idx // tile, kv_idx % tile
        local = adjacency[q_idx // tile, kv_tile.clamp(max=blocks - 1)] & (within < block_size) \
            & (kv_tile * block_size + within < num_local)
        valid = torch.where(kv_idx >= local_keys, kv_idx - local_keys < num_global, local)
        return valid if key_padding is None else valid & ~key_padding[b, kv_idx]

    return BlockMask.from_kv_blocks(kv_num_blocks[None, None], kv_indices[None, None], BLOCK_SIZE=tile,
                                    mask_mod=mask_mod, compute_q_blocks=compute_q_blocks,
                                    seq_lengths=(local_keys, local_keys + global_tiles * tile))


def flex_local_attention(q: Tensor, k: Tensor, v: Tensor, block_index: Tensor, num_global: int,
                         block_size: int, tile: int, key_padding_mask: Optional[Tensor] = None,
                         pair_bias: Optional[Tensor] = None, kernel_options: Optional[Dict[str, int]] = None,
                         compute_q_blocks: bool = True,
                         attend: Callable[..., Tensor] = flex_attention) -> Tensor:
    """Outputs ``[B, H, N - G, D]`` of the local queries of ``q, k, v`` ``[B, H, N, D]`` under the layout
    table ``block_index`` ``[M, S]``, through one ``flex_attention`` call on tiles of ``tile`` tokens.

    ``pair_bias`` ``[B, H, M, block_size, G + S * block_size]`` holds the additive mask of every computed
    pair in the ``[M, bs] x [M, C]`` index tables of :func:`~..block_layout.key_token_index`
    (:func:`~..logits.local_logit_mask`); ``score_mod`` looks each pair up there. ``attend`` runs the kernel
    (``flex_attention``, or its compiled form; see :func:`compiled_flex_local_attention`).
    """
    blocks = block_index.shape[0]
    num_local = q.shape[2] - num_global
    local_keys = blocks * tile
    query_source = tile_source_index(num_local, num_global, block_size, tile, q.device)
    key_source = tile_source_index(num_local, num_global, block_size, tile, q.device, with_global=True)
    key_padding = None if key_padding_mask is None else tiled(key_padding_mask, key_source, True)
    score_mod = None
    if pair_bias is not None:
        slots = slot_table(block_index)

        def score_mod(score: Tensor, b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
            # Padded positions are masked; clamping keeps their lookups in range.
            q_tile, kv_tile = q_idx // tile, (kv_idx // tile).clamp(max=blocks - 1)
            q_row = (q_idx - q_tile * tile).clamp(max=block_size - 1)
            kv_col = (kv_idx - kv_tile * tile).clamp(max=block_size - 1)
            local_column = num_global + slots[q_tile, kv_tile] * block_size + kv_col
            global_column = (kv_idx - local_keys).clamp(min=0, max=max(num_global - 1, 0))
            column = torch.where(kv_idx >= local_keys, global_column, local_column)
            return score + pair_bias[b, h, q_tile, q_row, column]

    block_mask = tile_block_mask(block_index, num_global, block_size, num_local, tile, key_padding,
                                 compute_q_blocks)
    out = attend(tiled(q, query_source), tiled(k, key_source), tiled(v, key_source),
           score_mod=score_mod, block_mask=block_mask, kernel_options=kernel_options)
    token = torch.arange(num_local, device=q.device)
    return out.index_select(2, token // block_size * tile + token % block_size)


class FlexBackend(AttentionBackend):
    """Local queries through :func:`flex_local_attention`, global ones in PyTorch.

    Args:
        flex_block_size: tokens per flex tile; each layout block is padded to it, so it must be at least
            ``block_size``. ``None``: ``block_size`` on CPU (no padding); on other devices the next power of
            two of at least 16, as their Triton kernels need (56 -> 64), and at least 128 when gradients are
            needed (see :meth:`tile_size`).
        compile: compile the local path (tiling, block mask, fused flex kernels; the first call per sequence
            length compiles for ~20 s on CPU). ``False`` runs flex's eager reference, which materialises the
            full score matrix (for tests).
    """

    name = 'flex'
    devices = {'cuda': '', 'cpu': 'forward only'}
    dtypes = (torch.float32, torch.bfloat16, torch.float16)
    gradient_devices = ('cuda',)
    auto_devices = ('cuda',)
    auto_note = ('on CPU it compiles for ~20 s per sequence length and ran slower than gather '
                 "(docs/benchmarks.md); name backend='flex' to use it")

    def __init__(self, flex_block_size: Optional[int] = None, compile: bool = True) -> None:
        if flex_block_size is not None and (not isinstance(flex_block_size, int) or flex_block_size < 1):
            raise ArgumentError(f"backend 'flex': flex_block_size must be a positive int or None, "
                                f'got {flex_block_size!r}')
        self.flex_block_size = flex_block_size
        self.compile = bool(compile)

    def extra_reasons(self, call: AttentionCall) -> List[str]:
        if self.flex_block_size is not None and self.flex_block_size < call.block_size:
            return [f'flex_block_size={self.flex_block_size} is smaller than block_size={call.block_size} '
                    '(each block is padded to one tile)']
        return []

    def tile_size(self, block_size: int, device: torch.device, needs_grad: bool = False) -> int:
        """Flex tile size on ``device`` (see ``flex_block_size``)."""
        if self.flex_block_size is not None:
            return self.flex_block_size
        if torch.device(device).type == 'cpu':
            return block_size
        tile = max(16, 1 << (block_size - 1).bit_length())
        # The Triton backward of torch 2.11 keeps only its default configurations, whose tiles (up to
        # 128 tokens for bf16) must divide the mask's.
        return max(tile, 128) if needs_grad else tile

    def attention(self, q: Tensor, k: Tensor, v: Tensor, num_global: int, layout: BlockLayout, tables: KeyTables,
                  key_padding_mask: Optional[Tensor], bias: Optional[PairBias]) -> Tuple[Tensor, Tensor]:
        out_global, probs = global_attention(q, k, v, num_global, key_padding_mask, bias)
        needs_grad = torch.is_grad_enabled()
        tile = self.tile_size(layout.block_size, q.device, needs_grad)
        pair_bias = None
        if bias is not None:
            pair_bias = local_logit_mask(q, num_global, layout, tables.index, tables.valid, key_padding_mask, bias)
            pair_bias = pair_bias.expand(q.shape[0], q.shape[1], -1, layout.block_size, -1)
        attend = compiled_flex_local_attention(q.device.type) if self.compile else flex_local_attention
        options = tile_kernel_options(tile) if q.device.type == 'cuda' else {}
        # One graph per sequence length (pruning gives several per clip length), batch and dtype.
        with torch._dynamo.config.patch(cache_size_limit=64):
            out_local = attend(q, k, v, layout.block_index, num_global, layout.block_size, tile,
                               key_padding_mask, pair_bias, options or None, needs_grad)
        return torch.cat([out_global, out_local], dim=2), probs

    def extra_repr(self) -> str:
        return f'flex_block_size={self.flex_block_size}, compile={self.compile}'
