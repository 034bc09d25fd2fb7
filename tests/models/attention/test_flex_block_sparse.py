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
from svitt_mm.models.attention.flex_block_sparse import slot_table, tile_overlap
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


def test_tile_overlap_and_slot_table():
    # Blocks of 3 tokens (ids 0, 1, 2 and a trailing global id 3) on tiles of 4 tokens.
    block_of_token = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3])
    assert tile_overlap(block_of_token, 4, 4).tolist() == [
        [True, True, False, False], [False, True, True, False], [False, False, True, True]]
    table = torch.tensor([[0, 2], [1, -1], [0, 1]])
    assert slot_table(table).tolist() == [[0, 0, 1], [0, 0, 0], [0, 1, 0]]


def test_shares_the_layout_of_block_sparse_attention():
    op = ATTENTION_OPS.build(dict(type='FlexBlockSparseAttention', block_size=4, random_blocks=2,
                                  dense_threshold=float('inf'), compile=False, eval_seed=7))
    twin = BlockSparseAttention(block_size=4, random_blocks=2, dense_threshold=float('inf'), eval_seed=7)
    assert torch.equal(op.eval_layout(40).block_index, twin.eval_layout(40).block_index)
    with pytest.raises(ValueError, match='flex_block_size'):
        FlexBlockSparseAttention(flex_block_size=0)
    # Layout-sized tiles on CPU, flex's 128-token tiles on GPUs, unless given.
    assert op.tile_size(torch.device('cpu')) == 4 and op.tile_size(torch.device('cuda')) == 128
    assert FlexBlockSparseAttention(flex_block_size=64).tile_size(torch.device('cpu')) == 64


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason='FlexAttention does not support backward on CPU (torch 2.14); needs CUDA')
def test_forward_and_backward_match_reference_on_cuda():
    batch, num_global, num_local, size = 2, 1, 300, 32
    num_tokens = num_global + num_local
    padding = padding_mask(batch, num_tokens, num_global)
    inputs = make_inputs(batch, 2, num_tokens, 16, seed=4, padding=padding, bias_batch=1)
    reference = clone_inputs(inputs)
    op = FlexBlockSparseAttention(block_size=size, flex_block_size=128, local_blocks=1, random_blocks=2,
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
