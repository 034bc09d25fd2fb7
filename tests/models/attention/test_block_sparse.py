"""BlockSparseAttention equals dense attention under the equivalent token mask (values and gradients)."""
import pytest
import torch
from masked_reference import (assert_close_where_valid, assert_same_gradients, clone_inputs,
                              layout_token_mask, make_inputs, masked_attention, weighted_loss)

from svitt_mm.models.attention import BlockSparseAttention, DenseAttention
from svitt_mm.registry import ATTENTION_OPS

ATOL = 1e-5


def padding_mask(batch: int, num_tokens: int, num_global: int, seed: int) -> torch.Tensor:
    """Random local padding (global tokens never padded), at least one padded key per sample."""
    mask = torch.rand(batch, num_tokens, generator=torch.Generator().manual_seed(seed)) < 0.3
    mask[:, :num_global] = False
    mask[:, -1] = True
    return mask


# (batch, num_global, num_local, block_size, local_blocks, random_blocks, padded, bias_batch)
CASES = {
    'ragged_last_block': (2, 1, 23, 4, 1, 2, False, 1),
    'key_padding': (2, 1, 24, 4, 1, 2, True, 1),
    'three_global_tokens': (2, 3, 21, 4, 1, 2, True, 2),
    'local_window_3': (1, 1, 30, 4, 3, 1, True, 1),
    'no_random_blocks': (2, 1, 19, 4, 1, 0, False, 1),
    'window_3_no_random': (2, 2, 26, 3, 3, 0, True, None),
    'no_bias': (3, 1, 17, 2, 1, 3, True, None),
}


@pytest.mark.parametrize('case', sorted(CASES))
def test_matches_masked_dense_reference(case):
    batch, num_global, num_local, size, local, random, padded, bias_batch = CASES[case]
    heads, dim, num_tokens = 3, 8, num_global + num_local
    padding = padding_mask(batch, num_tokens, num_global, seed=1) if padded else None
    inputs = make_inputs(batch, heads, num_tokens, dim, seed=2, padding=padding, bias_batch=bias_batch)
    reference_inputs = clone_inputs(inputs)

    op = BlockSparseAttention(block_size=size, local_blocks=local, random_blocks=random,
                              dense_threshold=float('inf'))
    layout = op.make_layout(num_local, generator=torch.Generator().manual_seed(3))
    assert not layout.is_dense
    out, probs = op(inputs['q'], inputs['k'], inputs['v'], num_global=num_global, layout=layout,
                    key_padding_mask=padding, bias=inputs['bias'])
    allowed = layout_token_mask(layout.block_index, size, num_local, num_global)
    assert not allowed.all()  # the case is really sparse
    ref_out, ref_probs = masked_attention(reference_inputs['q'], reference_inputs['k'], reference_inputs['v'],
                                          num_global, allowed, padding, reference_inputs['bias'])

    assert_close_where_valid(out, ref_out, padding)
    torch.testing.assert_close(probs, ref_probs, atol=ATOL, rtol=1e-5)

    weighted_loss(out, padding, seed=4).backward()
    weighted_loss(ref_out, padding, seed=4).backward()
    assert_same_gradients(inputs, reference_inputs)


def test_dense_fallback_equals_dense_attention():
    batch, heads, num_global, num_local, dim = 2, 2, 1, 10, 8
    padding = padding_mask(batch, num_global + num_local, num_global, seed=5)
    inputs = make_inputs(batch, heads, num_global + num_local, dim, seed=6, padding=padding, bias_batch=1)
    reference_inputs = clone_inputs(inputs)
    # 3 blocks of 4 with 1 local + 3 random blocks cover everything: the op must run dense.
    op = BlockSparseAttention(block_size=4, local_blocks=1, random_blocks=3)
    layout = op.make_layout(num_local)
    assert layout.is_dense and layout.block_index.tolist() == [[0, 1, 2]] * 3
    out, probs = op(inputs['q'], inputs['k'], inputs['v'], num_global=num_global,
                    key_padding_mask=padding, bias=inputs['bias'])
    ref_out, ref_probs = masked_attention(reference_inputs['q'], reference_inputs['k'], reference_inputs['v'],
                                          num_global, None, padding, reference_inputs['bias'])
    assert_close_where_valid(out, ref_out, padding)
    torch.testing.assert_close(probs, ref_probs, atol=ATOL, rtol=1e-5)
    weighted_loss(out, padding, seed=7).backward()
    weighted_loss(ref_out, padding, seed=7).backward()
    assert_same_gradients(inputs, reference_inputs)


def test_too_few_blocks_counts_every_key_once():
    # 3 blocks cannot hold 1 local + 5 random distinct blocks: every block once, which is dense attention
    # (the reference SViTT code repeated blocks here and counted their keys twice).
    batch, heads, num_global, num_local, dim = 2, 2, 1, 10, 8
    inputs = make_inputs(batch, heads, num_global + num_local, dim, seed=18, bias_batch=1)
    q, k, v = (inputs[name].detach() for name in ('q', 'k', 'v'))
    op = BlockSparseAttention(block_size=4, local_blocks=1, random_blocks=5, dense_threshold=float('inf'))
    layout = op.make_layout(num_local)
    assert not layout.is_dense and layout.block_index.tolist() == [[0, 1, 2]] * 3
    out, probs = op(q, k, v, layout=layout, bias=inputs['bias'])
    dense_out, dense_probs = DenseAttention()(q, k, v, bias=inputs['bias'])
    torch.testing.assert_close(out, dense_out, atol=ATOL, rtol=1e-5)
    torch.testing.assert_close(probs, dense_probs, atol=ATOL, rtol=1e-5)


def test_padded_keys_get_no_attention_mass():
    batch, heads, num_global, num_local, dim = 2, 2, 1, 22, 8
    padding = padding_mask(batch, num_global + num_local, num_global, seed=8)
    inputs = make_inputs(batch, heads, num_global + num_local, dim, seed=9, padding=padding, bias_batch=1)
    op = BlockSparseAttention(block_size=4, local_blocks=1, random_blocks=2, dense_threshold=float('inf'))
    layout = op.make_layout(num_local, generator=torch.Generator().manual_seed(10))
    with torch.no_grad():
        out, probs = op(inputs['q'], inputs['k'], inputs['v'], num_global=num_global, layout=layout,
                        key_padding_mask=padding, bias=inputs['bias'])
        probe_k = inputs['k'].masked_fill(padding[:, None, :, None], 50.0)
        probe_v = inputs['v'].masked_fill(padding[:, None, :, None], 1e6)
        probe_out, probe_probs = op(inputs['q'], probe_k, probe_v, num_global=num_global, layout=layout,
                                    key_padding_mask=padding, bias=inputs['bias'])
    assert_close_where_valid(probe_out, out, padding)
    torch.testing.assert_close(probe_probs, probs)
    assert (probs.masked_select(padding[:, None, None, :]) == 0).all()


def test_ragged_padding_slots_get_no_attention_mass():
    # 9 local tokens in blocks of 4: the last block holds 1 token and 3 zero-padded slots. A query whose
    # scores are all negative would give zero-score padded keys most of the mass if they were not masked.
    num_global, num_local, dim = 1, 9, 4
    q = -torch.ones(1, 1, num_global + num_local, dim)
    k = torch.ones(1, 1, num_global + num_local, dim)
    v = torch.arange(num_global + num_local, dtype=torch.float).view(1, 1, -1, 1).expand(-1, -1, -1, dim)
    op = BlockSparseAttention(block_size=4, local_blocks=1, random_blocks=0, dense_threshold=float('inf'))
    out, _ = op(q, k, v.contiguous(), num_global=num_global, layout=op.make_layout(num_local))
    # All kept keys have equal scores: each local query averages the global token and its own block.
    expected_last = (0.0 + 9.0) / 2
    torch.testing.assert_close(out[0, 0, -1], torch.full((dim,), expected_last))
    torch.testing.assert_close(out[0, 0, 1], torch.full((dim,), (0.0 + 1 + 2 + 3 + 4) / 5))


def test_training_draws_fresh_patterns_from_global_rng():
    num_local = 40
    op = BlockSparseAttention(block_size=4, local_blocks=1, random_blocks=2, dense_threshold=float('inf'))
    op.train()
    inputs = make_inputs(1, 2, num_local + 1, 8, seed=11)
    q, k, v = (inputs[name].detach() for name in ('q', 'k', 'v'))
    torch.manual_seed(12)
    first, _ = op(q, k, v)
    second, _ = op(q, k, v)
    assert not torch.allclose(first, second)
    torch.manual_seed(12)
    replay, _ = op(q, k, v, layout=op.make_layout(num_local))
    torch.testing.assert_close(replay, first, atol=0, rtol=0)


def test_eval_pattern_is_deterministic_and_per_seed():
    num_local = 40
    op = BlockSparseAttention(block_size=4, local_blocks=1, random_blocks=2, dense_threshold=float('inf'),
                              eval_seed=3).eval()
    inputs = make_inputs(1, 2, num_local + 1, 8, seed=13)
    q, k, v = (inputs[name].detach() for name in ('q', 'k', 'v'))
    torch.manual_seed(0)
    first, _ = op(q, k, v)
    torch.manual_seed(1)
    second, _ = op(q, k, v)
    torch.testing.assert_close(first, second, atol=0, rtol=0)
    torch.testing.assert_close(op(q, k, v, layout=op.eval_layout(num_local))[0], first, atol=0, rtol=0)
    other = BlockSparseAttention(block_size=4, local_blocks=1, random_blocks=2, dense_threshold=float('inf'),
                                 eval_seed=4)
    assert not torch.equal(other.eval_layout(num_local).block_index, op.eval_layout(num_local).block_index)
    next_layer = BlockSparseAttention(block_size=4, local_blocks=1, random_blocks=2,
                                      dense_threshold=float('inf'), eval_seed=3)
    next_layer.layer_index = 1
    assert not torch.equal(next_layer.eval_layout(num_local).block_index,
                           op.eval_layout(num_local).block_index)


def test_eval_layout_is_drawn_once_per_token_count_and_layer():
    op = BlockSparseAttention(block_size=4, random_blocks=2, dense_threshold=float('inf'), eval_seed=3)
    first = op.eval_layout(40)
    assert op.eval_layout(40) is first and op.eval_layout(36) is not first
    fresh = BlockSparseAttention(block_size=4, random_blocks=2, dense_threshold=float('inf'), eval_seed=3)
    assert torch.equal(fresh.eval_layout(40).block_index, first.block_index)
    op.layer_index = 2  # set by the backbone after construction: the cached layer-0 pattern must not leak
    fresh.layer_index = 2
    assert torch.equal(op.eval_layout(40).block_index, fresh.eval_layout(40).block_index)
    assert not torch.equal(op.eval_layout(40).block_index, first.block_index)


def test_keeps_reduced_precision_dtype():
    num_global, num_local = 1, 30
    inputs = make_inputs(2, 2, num_global + num_local, 8, seed=14, bias_batch=1)
    op = BlockSparseAttention(block_size=4, local_blocks=1, random_blocks=2, dense_threshold=float('inf'))
    layout = op.make_layout(num_local)
    q, k, v = (inputs[name].detach() for name in ('q', 'k', 'v'))
    bias = inputs['bias']
    out32, probs32 = op(q, k, v, layout=layout, bias=bias)
    out16, probs16 = op(q.bfloat16(), k.bfloat16(), v.bfloat16(), layout=layout, bias=bias)
    assert out16.dtype == probs16.dtype == torch.bfloat16
    torch.testing.assert_close(out16.float(), out32, atol=3e-2, rtol=3e-2)
    torch.testing.assert_close(probs16.float(), probs32, atol=1e-2, rtol=3e-2)


def test_built_from_registry_and_checks_its_arguments():
    op = ATTENTION_OPS.build(dict(type='BlockSparseAttention', block_size=8, random_blocks=1))
    assert isinstance(op, BlockSparseAttention) and op.block_size == 8 and op.random_blocks == 1
    with pytest.raises(ValueError, match='local_blocks'):
        BlockSparseAttention(local_blocks=2)
    with pytest.raises(ValueError, match='block_size'):
        BlockSparseAttention(block_size=0)
    with pytest.raises(ValueError, match='dense_threshold'):
        BlockSparseAttention(dense_threshold=0)


def test_rejects_a_layout_for_another_sequence():
    op = BlockSparseAttention(block_size=4, dense_threshold=float('inf'))
    q = torch.randn(1, 1, 21, 8)
    with pytest.raises(ValueError, match='made for 16 local tokens'):
        op(q, q, q, num_global=1, layout=op.make_layout(16))
    with pytest.raises(TypeError, match='BlockLayout'):
        op(q, q, q, num_global=1, layout=torch.zeros(5, 2, dtype=torch.long))
    with pytest.raises(ValueError, match='key_padding_mask'):
        op(q, q, q, key_padding_mask=torch.zeros(1, 20, dtype=torch.bool))

