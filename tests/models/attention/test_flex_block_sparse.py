"""FlexBlockSparseAttention equals dense attention under the equivalent token mask.

On CPU flex runs uncompiled (its eager reference) and has no backward in torch 2.14, so gradients are only
checked on CUDA.
"""
import warnings

import pytest
import torch
from masked_reference import (assert_close_where_valid, clone_inputs, gradients, layout_token_mask,
                              make_inputs, masked_attention, weighted_loss)

from svitt_mm.models.attention import BlockSparseAttention, FlexBlockSparseAttention
from svitt_mm.models.attention.block_layout import key_token_index, query_token_index
from svitt_mm.models.attention.flex_block_sparse import (flex_local_attention, slot_table, tile_block_mask,
                                                         tile_kernel_options, tile_source_index, tiled)
from svitt_mm.registry import ATTENTION_OPS

# (batch, num_global, num_local, block_size, flex_block_size, local_blocks, random_blocks, padded, bias_batch)
CASES = {
    'ragged_bias': (2, 1, 23, 4, None, 1, 2, False, 1),
    'padding_three_global': (2, 3, 21, 4, None, 1, 2, True, 2),
    'window_3_coarse_tiles': (1, 1, 30, 4, 8, 3, 1, True, 1),
    'unaligned_tiles_no_bias': (2, 2, 26, 3, 5, 1, 2, True, None),
}


def padding_mask(batch: int, num_tokens: int, num_global: int) -> torch.Tensor:
    mask = torch.rand(batch, num_tokens, generator=torch.Generator().manual_seed(1)) < 0.3
    mask[:, :num_global] = False
    mask[:, -1] = True
    return mask


@pytest.mark.parametrize('case', sorted(CASES))
def test_forward_matches_masked_dense_reference(case):
    batch, num_global, num_local, size, tile, local, random, padded, bias_batch = CASES[case]
    num_tokens = num_global + num_local
    padding = padding_mask(batch, num_tokens, num_global) if padded else None
    inputs = make_inputs(batch, 3, num_tokens, 8, seed=2, padding=padding, bias_batch=bias_batch)
    op = FlexBlockSparseAttention(block_size=size, flex_block_size=tile, local_blocks=local,
                                  random_blocks=random, dense_threshold=float('inf'), compile=False)
    layout = op.make_layout(num_local, generator=torch.Generator().manual_seed(3))
    allowed = layout_token_mask(layout.block_index, size, num_local, num_global)
    assert not allowed.all()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='flex_attention called without torch.compile')
        out, probs = op(inputs['q'], inputs['k'], inputs['v'], num_global=num_global, layout=layout,
                        key_padding_mask=padding, bias=inputs['bias'])
        ref_out, ref_probs = masked_attention(inputs['q'], inputs['k'], inputs['v'], num_global, allowed,
                                              padding, inputs['bias'])
    assert_close_where_valid(out, ref_out, padding)
    torch.testing.assert_close(probs, ref_probs, atol=1e-5, rtol=1e-5)


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
    op = FlexBlockSparseAttention(block_size=3, flex_block_size=4, random_blocks=1,
                                  dense_threshold=float('inf'), compile=False)
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


def test_shares_the_layout_of_block_sparse_attention():
    op = ATTENTION_OPS.build(dict(type='FlexBlockSparseAttention', block_size=4, random_blocks=2,
                                  dense_threshold=float('inf'), compile=False, eval_seed=7))
    twin = BlockSparseAttention(block_size=4, random_blocks=2, dense_threshold=float('inf'), eval_seed=7)
    assert torch.equal(op.eval_layout(40).block_index, twin.eval_layout(40).block_index)
    for bad in (0, 3, 2.5):
        with pytest.raises(ValueError, match='flex_block_size'):
            FlexBlockSparseAttention(block_size=4, flex_block_size=bad)
    # Layout-sized tiles on CPU; on GPUs the next power of two of at least 16, unless given.
    assert op.tile_size(torch.device('cpu')) == 4 and op.tile_size(torch.device('cuda')) == 16
    assert op.tile_size(torch.device('cuda'), needs_grad=True) == 128
    assert FlexBlockSparseAttention(block_size=56).tile_size(torch.device('cuda')) == 64
    assert FlexBlockSparseAttention(block_size=4, flex_block_size=64).tile_size(torch.device('cpu')) == 64


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason='FlexAttention does not support backward on CPU (torch 2.14); needs CUDA')
@pytest.mark.parametrize('size,tile,num_global', [(56, None, 1), (24, None, 3)])  # tiles of 64 and 32
def test_forward_and_backward_match_reference_on_cuda(size, tile, num_global):
    batch, num_local = 2, 300
    num_tokens = num_global + num_local
    padding = padding_mask(batch, num_tokens, num_global)
    inputs = make_inputs(batch, 2, num_tokens, 16, seed=4, padding=padding, bias_batch=1)
    reference = clone_inputs(inputs)
    op = FlexBlockSparseAttention(block_size=size, flex_block_size=tile, local_blocks=1, random_blocks=2,
                                  dense_threshold=float('inf'), compile=True)
    layout = op.make_layout(num_local, device='cuda', generator=torch.Generator().manual_seed(5))
    allowed = layout_token_mask(layout.block_index.cpu(), size, num_local, num_global)
    q, k, v = (inputs[name].detach().cuda().requires_grad_() for name in ('q', 'k', 'v'))
    bias = inputs['bias'].cuda()
    out, probs = op(q, k, v, num_global=num_global, layout=layout, key_padding_mask=padding.cuda(), bias=bias)
    ref_out, ref_probs = masked_attention(reference['q'], reference['k'], reference['v'], num_global, allowed,
                                          padding, reference['bias'])
    assert_close_where_valid(out.cpu(), ref_out, padding, atol=2e-3)
    torch.testing.assert_close(probs.cpu(), ref_probs, atol=2e-3, rtol=1e-3)
    weighted_loss(out.cpu(), padding, seed=6).backward()
    weighted_loss(ref_out, padding, seed=6).backward()
    ours = {'q': q.grad, 'k': k.grad, 'v': v.grad, 'bias': bias.table.grad}
    for name, grad in gradients(reference).items():
        torch.testing.assert_close(ours[name].cpu(), grad, atol=2e-3, rtol=1e-3)


@pytest.mark.parametrize('padded', [False, True])
def test_local_path_traces_as_one_graph(padded):
    # On GPUs the whole local path (tiling, block mask, kernel) is compiled as one graph; a graph break
    # would split it back into eager launches. Dynamo's capture is device-independent, so check it here.
    batch, num_global, num_local, size = 2, 1, 61, 8
    num_tokens = num_global + num_local
    padding = padding_mask(batch, num_tokens, num_global) if padded else None
    inputs = make_inputs(batch, 2, num_tokens, 16, seed=2, padding=padding, bias_batch=1 if padded else None)
    q, k, v = (inputs[name].detach() for name in ('q', 'k', 'v'))
    op = FlexBlockSparseAttention(block_size=size, random_blocks=2, dense_threshold=float('inf'))
    layout = op.make_layout(num_local, generator=torch.Generator().manual_seed(3))
    pair_bias = None
    if padded:
        key_index, _ = key_token_index(layout, num_global)
        query_index = query_token_index(layout, num_global)
        pair_bias = inputs['bias'](query_index[:, :, None], key_index[:, None, :]).detach()
        pair_bias = pair_bias.expand(batch, 2, -1, -1, -1)
    args = (q, k, v, layout.block_index, num_global, size, 16, padding, pair_bias, tile_kernel_options(16), True)
    torch._dynamo.reset()
    traced = torch.compile(flex_local_attention, backend='aot_eager', fullgraph=True, dynamic=False)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='flex_attention called without torch.compile')
        torch.testing.assert_close(traced(*args), flex_local_attention(*args), atol=0, rtol=0)
