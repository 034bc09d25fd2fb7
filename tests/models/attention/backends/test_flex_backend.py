"""The ``flex`` backend's tiling, block mask and kernel options (the conformance suite checks its outputs;
on CPU flex runs forward only in torch 2.14)."""
import warnings

import pytest
import torch

from svitt_mm.models.attention import BlockSparseAttention
from svitt_mm.models.attention.backends.flex import (FlexBackend, flex_local_attention, slot_table,
                                                     tile_block_mask, tile_kernel_options, tile_source_index, tiled)
from svitt_mm.models.attention.block_layout import key_tables
from svitt_mm.models.attention.logits import local_logit_mask
from svitt_mm.testing.attention_conformance import make_inputs, padding_mask


def test_tile_source_index_tiled_and_slot_table():
    # 2 global + 7 local tokens, blocks of 3 padded to tiles of 4: [2 3 4 _ | 5 6 7 _ | 8 _ _ _], then the
    # global tile [0 1 _ _]; "_" is the zero row 9.
    index = tile_source_index(7, 2, 3, 4, torch.device('cpu'), with_global=True)
    assert index.tolist() == [2, 3, 4, 9, 5, 6, 7, 9, 8, 9, 9, 9, 0, 1, 9, 9]
    assert tile_source_index(7, 2, 3, 4, torch.device('cpu')).tolist() == index[:12].tolist()
    x = torch.arange(1, 10, dtype=torch.float).view(1, 1, 9, 1)
    assert tiled(x, index).flatten().tolist() == [3, 4, 5, 0, 6, 7, 8, 0, 9, 0, 0, 0, 1, 2, 0, 0]
    mask = torch.zeros(2, 9, dtype=torch.bool)
    assert tiled(mask, index, True)[0].tolist() == [False] * 3 + [True] + [False] * 3 + [True] + [False] + \
        [True] * 3 + [False] * 2 + [True] * 2
    table = torch.tensor([[0, 2], [1, -1], [0, 1]])
    assert slot_table(table).tolist() == [[0, 0, 1], [0, 0, 0], [0, 1, 0]]


def test_block_mask_lists_exactly_the_layout_blocks_and_the_global_tiles():
    op = BlockSparseAttention(block_size=3, random_blocks=1, dense_threshold=float('inf'))
    layout = op.make_layout(20, generator=torch.Generator().manual_seed(0))  # 7 blocks, the last ragged
    mask = tile_block_mask(layout.block_index, num_global=5, block_size=3, num_local=20, tile=4,
                           key_padding=None)  # 2 global tiles: 7 and 8
    counts, indices = mask.kv_num_blocks[0, 0], mask.kv_indices[0, 0]
    for row, blocks in enumerate(layout.block_index.tolist()):
        listed = indices[row, :counts[row]].tolist()
        assert sorted(listed) == sorted({b for b in blocks if b >= 0} | {7, 8}) and len(set(listed)) == len(listed)
    # Pair validity for query 5 (block 1): its blocks' first 3 of 4 slots, 20 local tokens, 5 of the 8
    # global slots.
    q_idx, kv_idx = torch.full((36,), 5), torch.arange(36)
    valid = mask.mask_mod(q_idx, q_idx, q_idx, kv_idx)
    row = set(layout.block_index[1].tolist())
    local = [i // 4 in row and i % 4 < 3 and (i // 4) * 3 + i % 4 < 20 for i in range(28)]
    assert valid.tolist() == local + [True] * 5 + [False] * 3


def test_kernel_tiles_divide_the_block_mask_tile():
    assert tile_kernel_options(128) == {}
    for tile in (16, 32, 64):
        options = tile_kernel_options(tile)
        assert all(tile % options[key] == 0 for key in options)
        assert options['BLOCK_N1'] % options['BLOCK_M1'] == 0 and options['BLOCK_M2'] % options['BLOCK_N2'] == 0


def test_tile_sizes_and_their_declared_limit():
    # Layout-sized tiles on CPU; on GPUs the next power of two of at least 16, unless given.
    backend = FlexBackend()
    assert backend.tile_size(4, torch.device('cpu')) == 4 and backend.tile_size(4, torch.device('cuda')) == 16
    assert backend.tile_size(4, torch.device('cuda'), needs_grad=True) == 128
    assert backend.tile_size(56, torch.device('cuda')) == 64
    assert FlexBackend(flex_block_size=64).tile_size(4, torch.device('cpu')) == 64
    op = BlockSparseAttention(block_size=8, random_blocks=1, dense_threshold=float('inf'), backend='flex',
                              backend_options=dict(flex=dict(flex_block_size=4, compile=False)))
    q = torch.randn(1, 1, 41, 16)
    with torch.no_grad(), pytest.raises(ValueError, match='flex_block_size=4 is smaller than block_size=8'):
        op(q, q, q)
    with pytest.raises(ValueError, match='has no backward on cpu'):
        op(q.requires_grad_(), q, q)


@pytest.mark.parametrize('padded', [False, True])
def test_local_path_traces_as_one_graph(padded):
    # On GPUs the whole local path (tiling, block mask, kernel) is compiled as one graph; a graph break
    # would split it back into eager launches. Dynamo's capture is device-independent, so check it here.
    batch, num_global, num_local, size = 2, 1, 61, 8
    num_tokens = num_global + num_local
    padding = padding_mask(batch, num_tokens, num_global, seed=1) if padded else None
    inputs = make_inputs(batch, 2, num_tokens, 16, seed=2, padding=padding, bias_batch=1 if padded else None)
    q, k, v = (inputs[name].detach() for name in ('q', 'k', 'v'))
    op = BlockSparseAttention(block_size=size, random_blocks=2, dense_threshold=float('inf'))
    layout = op.make_layout(num_local, generator=torch.Generator().manual_seed(3))
    pair_bias = None
    if padded:
        tables = key_tables(layout, num_global)
        pair_bias = local_logit_mask(q, num_global, layout, tables.index, tables.valid, padding, inputs['bias'])
        pair_bias = pair_bias.detach().expand(batch, 2, -1, size, -1)
    args = (q, k, v, layout.block_index, num_global, size, 16, padding, pair_bias, tile_kernel_options(16), True)
    torch._dynamo.reset()
    traced = torch.compile(flex_local_attention, backend='aot_eager', fullgraph=True, dynamic=False)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='flex_attention called without torch.compile')
        torch.testing.assert_close(traced(*args), flex_local_attention(*args), atol=0, rtol=0)
