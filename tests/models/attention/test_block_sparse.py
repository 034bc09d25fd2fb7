"""BlockSparseAttention, the one operator: patterns, layouts, dense fallback, evaluation caching, arguments.

Numerical agreement of every pattern on every backend with masked dense attention is in
``test_conformance.py``; here are the operator's own behaviours.
"""
import pytest
import torch

from svitt_mm.models.attention import (BlockLayout, BlockPattern, BlockSparseAttention, CpuBlockSparseAttention,
                                       DenseAttention, FlexBlockSparseAttention, LocalRandomBlocks, StridedBlocks,
                                       TritonBlockSparseAttention)
from svitt_mm.models.attention.block_layout import sparse_block_index
from svitt_mm.registry import ATTENTION_OPS
from svitt_mm.testing.attention_conformance import (assert_close_where_valid, assert_same_gradients, clone_inputs,
                                                    make_inputs, masked_attention, padding_mask, weighted_loss)

ATOL = 1e-5


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
    assert op.last_backend == 'dense'
    ref_out, ref_probs = masked_attention(reference_inputs['q'], reference_inputs['k'], reference_inputs['v'],
                                          num_global, None, padding, reference_inputs['bias'])
    assert_close_where_valid(out, ref_out, padding)
    torch.testing.assert_close(probs, ref_probs, atol=ATOL, rtol=1e-5)
    weighted_loss(out, padding, seed=7).backward()
    weighted_loss(ref_out, padding, seed=7).backward()
    assert_same_gradients(inputs, reference_inputs)


def test_a_dense_answer_leaves_the_random_state_untouched():
    # LocalRandomBlocks knows its width without drawing, so a dense layout draws nothing (as before patterns
    # were plugins: the random state, hence dropout and later draws, is unchanged).
    op = BlockSparseAttention(block_size=4, random_blocks=3)
    torch.manual_seed(0)
    assert op.make_layout(10).is_dense
    after = torch.rand(1)
    torch.manual_seed(0)
    assert torch.equal(torch.rand(1), after)


def test_too_few_blocks_counts_every_key_once():
    # 3 blocks cannot hold 1 local + 5 random distinct blocks: every block once, which is dense attention
    # (the reference SViTT code repeated blocks here and counted their keys twice).
    inputs = make_inputs(2, 2, 11, 8, seed=18, bias_batch=1)
    q, k, v = (inputs[name].detach() for name in ('q', 'k', 'v'))
    op = BlockSparseAttention(block_size=4, local_blocks=1, random_blocks=5, dense_threshold=float('inf'),
                              backend='gather')
    layout = op.make_layout(10)
    assert not layout.is_dense and layout.block_index.tolist() == [[0, 1, 2]] * 3
    out, probs = op(q, k, v, layout=layout, bias=inputs['bias'])
    dense_out, dense_probs = DenseAttention()(q, k, v, bias=inputs['bias'])
    torch.testing.assert_close(out, dense_out, atol=ATOL, rtol=1e-5)
    torch.testing.assert_close(probs, dense_probs, atol=ATOL, rtol=1e-5)


def test_ragged_padding_slots_get_no_attention_mass():
    # 9 local tokens in blocks of 4: the last block holds 1 token and 3 zero-padded slots. A query whose
    # scores are all negative would give zero-score padded keys most of the mass if they were not masked.
    num_global, num_local, dim = 1, 9, 4
    q = -torch.ones(1, 1, num_global + num_local, dim)
    k = torch.ones(1, 1, num_global + num_local, dim)
    v = torch.arange(num_global + num_local, dtype=torch.float).view(1, 1, -1, 1).expand(-1, -1, -1, dim)
    op = BlockSparseAttention(block_size=4, local_blocks=1, random_blocks=0, dense_threshold=float('inf'),
                              backend='gather')
    out, _ = op(q, k, v.contiguous(), num_global=num_global, layout=op.make_layout(num_local))
    torch.testing.assert_close(out[0, 0, -1], torch.full((dim,), (0.0 + 9.0) / 2))
    torch.testing.assert_close(out[0, 0, 1], torch.full((dim,), (0.0 + 1 + 2 + 3 + 4) / 5))


def test_local_random_blocks_draws_exactly_as_before():
    # The pattern consumes the generator as the operator did before patterns were plugins (same tables).
    op = BlockSparseAttention(block_size=4, local_blocks=3, random_blocks=2, dense_threshold=float('inf'))
    layout = op.make_layout(50, generator=torch.Generator().manual_seed(9))
    expected = sparse_block_index(13, 3, 2, generator=torch.Generator().manual_seed(9))
    assert torch.equal(layout.block_index, expected)
    torch.manual_seed(3)
    drawn = op.train().make_layout(50).block_index
    torch.manual_seed(3)
    assert torch.equal(drawn, sparse_block_index(13, 3, 2))


def test_eval_pattern_is_deterministic_per_seed_layer_and_settings():
    op = BlockSparseAttention(block_size=4, random_blocks=2, dense_threshold=float('inf'), eval_seed=3)
    first = op.eval_layout(40)
    assert op.eval_layout(40) is first and op.eval_layout(36) is not first
    fresh = BlockSparseAttention(block_size=4, random_blocks=2, dense_threshold=float('inf'), eval_seed=3)
    assert torch.equal(fresh.eval_layout(40).block_index, first.block_index)
    other_seed = BlockSparseAttention(block_size=4, random_blocks=2, dense_threshold=float('inf'), eval_seed=4)
    assert not torch.equal(other_seed.eval_layout(40).block_index, first.block_index)
    op.layer_index = 2  # set by the backbone after construction: the cached layer-0 pattern must not leak
    fresh.layer_index = 2
    assert torch.equal(op.eval_layout(40).block_index, fresh.eval_layout(40).block_index)
    assert not torch.equal(op.eval_layout(40).block_index, first.block_index)
    op.random_blocks = 1  # as the curriculum does: a new pattern, not the cached one
    assert op.eval_layout(40).block_index.shape[1] == 2


def test_curriculum_settings_write_through_to_the_pattern():
    op = BlockSparseAttention(block_size=4, local_blocks=1, random_blocks=3)
    op.local_blocks, op.random_blocks = 3, 0
    assert isinstance(op.pattern, LocalRandomBlocks) and (op.pattern.local_blocks, op.pattern.random_blocks) == (3, 0)
    with pytest.raises(ValueError, match=r'local_blocks: 2 must be .*0 or an odd'):
        op.local_blocks = 2
    strided = BlockSparseAttention(pattern=dict(type='StridedBlocks', stride=3))
    with pytest.raises(AttributeError, match='has no random_blocks'):
        strided.random_blocks = 1


class ScrambledBlocks(BlockPattern):
    """Each row lists its own block three times and a neighbour, in descending order: the operator sorts
    and de-duplicates."""

    def block_index(self, num_blocks, training, generator=None, device=None):
        block = torch.arange(num_blocks, device=device)
        return torch.stack([(block + 1) % num_blocks, block, block, block, torch.full_like(block, -1)], dim=1)


def test_pattern_rows_are_sorted_and_deduplicated():
    op = BlockSparseAttention(block_size=2, pattern=ScrambledBlocks(), dense_threshold=float('inf'))
    assert op.make_layout(10).block_index.tolist() == [[0, 1], [1, 2], [2, 3], [3, 4], [0, 4]]


class BrokenBlocks(BlockPattern):
    def __init__(self, answer):
        self.answer = answer

    def block_index(self, num_blocks, training, generator=None, device=None):
        return self.answer(num_blocks)


@pytest.mark.parametrize('answer,message', [
    (lambda m: torch.zeros(m, 2), r'integer tensor \[5, slots\], got \(5, 2\)'),
    (lambda m: torch.zeros(m + 1, 2, dtype=torch.long), r'integer tensor \[5, slots\], got \(6, 2\)'),
    (lambda m: torch.full((m, 1), m), r'block ids must lie in \[0, 5\)'),
])
def test_a_broken_pattern_is_a_readable_error(answer, message):
    op = BlockSparseAttention(block_size=2, pattern=BrokenBlocks(answer), dense_threshold=float('inf'))
    with pytest.raises(ValueError, match=message):
        op.make_layout(10)


def test_built_from_registry_and_checks_its_arguments():
    op = ATTENTION_OPS.build(dict(type='BlockSparseAttention', block_size=8, random_blocks=1))
    assert isinstance(op.pattern, LocalRandomBlocks) and op.block_size == 8 and op.random_blocks == 1
    assert op.local_blocks == 1 and op.backend == 'auto'
    strided = ATTENTION_OPS.build(dict(type='BlockSparseAttention', pattern=dict(type='StridedBlocks', stride=3)))
    assert isinstance(strided.pattern, StridedBlocks) and 'StridedBlocks(stride=3, local_blocks=1)' in repr(strided)
    with pytest.raises(ValueError, match=r'local_blocks: 2 must be .*0 or an odd'):
        BlockSparseAttention(local_blocks=2)
    with pytest.raises(ValueError, match='block_size'):
        BlockSparseAttention(block_size=0)
    with pytest.raises(ValueError, match='dense_threshold'):
        BlockSparseAttention(dense_threshold=0)
    with pytest.raises(ValueError, match='shorthand'):
        BlockSparseAttention(pattern=dict(type='StridedBlocks'), random_blocks=2)
    with pytest.raises(ValueError, match="'trtion' is not a backend.*did you mean 'triton'"):
        BlockSparseAttention(backend='trtion')
    with pytest.raises(ValueError, match="backend_options key 'flx'"):
        BlockSparseAttention(backend_options=dict(flx=dict()))
    with pytest.raises(TypeError, match='BlockPattern'):
        BlockSparseAttention(pattern='StridedBlocks')


def test_former_operator_names_only_set_the_backend():
    for alias, backend in ((CpuBlockSparseAttention, 'cpu_kernel'), (TritonBlockSparseAttention, 'triton'),
                           (FlexBlockSparseAttention, 'flex')):
        op = ATTENTION_OPS.build(dict(type=alias.__name__, block_size=56, random_blocks=2))
        assert isinstance(op, BlockSparseAttention) and op.backend == backend and op.random_blocks == 2
        assert list(op.state_dict()) == list(BlockSparseAttention().state_dict())  # checkpoints load unchanged
    triton = TritonBlockSparseAttention(block_n=32)
    assert triton.backends['triton'].kernel_options['block_n'] == 32 and 'block_n=32' in repr(triton)
    with pytest.raises(ValueError, match='block_n must be a power of two'):
        TritonBlockSparseAttention(block_n=24)
    with pytest.raises(ValueError, match='flex_block_size'):
        FlexBlockSparseAttention(flex_block_size=0)


def test_rejects_a_layout_for_another_sequence():
    op = BlockSparseAttention(block_size=4, dense_threshold=float('inf'))
    q = torch.randn(1, 1, 21, 8)
    with pytest.raises(ValueError, match='made for 16 local tokens'):
        op(q, q, q, num_global=1, layout=op.make_layout(16))
    with pytest.raises(TypeError, match='BlockLayout'):
        op(q, q, q, num_global=1, layout=torch.zeros(5, 2, dtype=torch.long))
    with pytest.raises(ValueError, match='key_padding_mask'):
        op(q, q, q, key_padding_mask=torch.zeros(1, 20, dtype=torch.bool))
    assert isinstance(op.make_layout(20), BlockLayout)
