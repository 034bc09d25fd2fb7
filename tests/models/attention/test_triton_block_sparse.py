"""TritonBlockSparseAttention equals dense attention under the equivalent token mask (values and gradients).

On CUDA the kernels run compiled; on CPU they run in Triton's interpreter (``tests/conftest.py`` sets
``TRITON_INTERPRET=1`` where there is no GPU), so the same kernel code is checked on every machine.
"""
import pytest
import torch
from masked_reference import (assert_close_where_valid, assert_same_gradients, clone_inputs,
                              layout_token_mask, make_inputs, masked_attention, weighted_loss)

from svitt_mm.models.attention import BlockSparseAttention, TritonBlockSparseAttention
from svitt_mm.models.attention.block_layout import key_tables
from svitt_mm.models.attention.triton_block_sparse import triton_runs_on
from svitt_mm.registry import ATTENTION_OPS

DEVICES = [pytest.param('cpu', marks=pytest.mark.skipif(
               not triton_runs_on(torch.device('cpu')),
               reason='Triton is not installed, or its interpreter is off (TRITON_INTERPRET=1)')),
           pytest.param('cuda', marks=pytest.mark.skipif(
               not torch.cuda.is_available() or not triton_runs_on(torch.device('cuda')),
               reason='needs a CUDA device with Triton'))]

# (batch, num_global, num_local, block_size, local_blocks, random_blocks, padded, bias_batch, block_n)
CASES = {
    'ragged_bias': (2, 1, 23, 4, 1, 2, False, 1, None),
    'padding_three_global': (2, 3, 21, 4, 1, 2, True, 2, None),
    'no_bias_narrow_columns': (2, 2, 26, 3, 1, 2, True, None, 16),
    'two_query_tiles_per_block': (1, 1, 200, 70, 1, 1, True, 1, 32),
}


def padding_mask(batch: int, num_tokens: int, num_global: int) -> torch.Tensor:
    mask = torch.rand(batch, num_tokens, generator=torch.Generator().manual_seed(1)) < 0.3
    mask[:, :num_global] = False
    mask[:, -1] = True
    return mask


def to_device(inputs: dict, device: str) -> dict:
    """Independent copies of :func:`make_inputs`' tensors and bias on ``device`` (the originals stay)."""
    moved = clone_inputs(inputs)
    for name in ('q', 'k', 'v'):
        moved[name] = moved[name].detach().to(device).requires_grad_()
    padding = inputs['key_padding_mask']
    moved['key_padding_mask'] = None if padding is None else padding.to(device)
    if moved['bias'] is not None:
        moved['bias'].to(device)
    return moved


def build_case(case: str, seed: int, device: str):
    """``(inputs on CPU, their copies on device, op, num_global, num_local)`` of a :data:`CASES` entry."""
    batch, num_global, num_local, size, local, random, padded, bias_batch, block_n = CASES[case]
    num_tokens = num_global + num_local
    padding = padding_mask(batch, num_tokens, num_global) if padded else None
    inputs = make_inputs(batch, 2, num_tokens, 16, seed=seed, padding=padding, bias_batch=bias_batch)
    op = TritonBlockSparseAttention(block_size=size, local_blocks=local, random_blocks=random, block_n=block_n,
                                    dense_threshold=float('inf'))
    return inputs, to_device(inputs, device), op, num_global, num_local


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('case', sorted(CASES))
def test_forward_and_gradients_match_masked_dense_reference(case, device, monkeypatch):
    inputs, ours, op, num_global, num_local = build_case(case, seed=2, device=device)
    reference = clone_inputs(inputs)
    padding, size = inputs['key_padding_mask'], op.block_size
    layout = op.make_layout(num_local, generator=torch.Generator().manual_seed(3))
    allowed = layout_token_mask(layout.block_index, size, num_local, num_global)
    assert not allowed.all()
    # The kernels, not the gather path of the parent class, must compute the local queries.
    monkeypatch.setattr(BlockSparseAttention, 'local_attention', lambda *args: pytest.fail('gather path used'))
    layout = type(layout)(layout.block_index.to(device), layout.block_size, layout.num_tokens, layout.is_dense)
    out, probs = op(ours['q'], ours['k'], ours['v'], num_global=num_global, layout=layout,
                    key_padding_mask=ours['key_padding_mask'], bias=ours['bias'])
    ref_out, ref_probs = masked_attention(reference['q'], reference['k'], reference['v'], num_global, allowed,
                                          padding, reference['bias'])
    assert_close_where_valid(out.cpu(), ref_out, padding)
    torch.testing.assert_close(probs.cpu(), ref_probs, atol=1e-5, rtol=1e-5)

    weighted_loss(out.cpu(), padding, seed=4).backward()
    weighted_loss(ref_out, padding, seed=4).backward()
    for name in ('q', 'k', 'v'):
        inputs[name].grad = ours[name].grad.cpu()
    if ours['bias'] is not None:
        inputs['bias'].table.grad = ours['bias'].table.grad.cpu()
    assert_same_gradients(inputs, reference, atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available() or not triton_runs_on(torch.device('cuda')),
                    reason='needs a CUDA device with Triton')
def test_bfloat16_on_cuda_stays_close_to_the_float32_gather_path():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 12, 1 + 196 * 4, 64, device='cuda') for _ in range(3))
    op = TritonBlockSparseAttention().cuda().eval()
    reference = BlockSparseAttention().cuda().eval()
    out, probs = op(q.bfloat16(), k.bfloat16(), v.bfloat16())
    ref_out, ref_probs = reference(q, k, v)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref_out, atol=3e-2, rtol=3e-2)
    torch.testing.assert_close(probs.float(), ref_probs, atol=1e-3, rtol=3e-2)


def test_runs_the_gather_path_where_triton_does_not_run(monkeypatch):
    monkeypatch.setenv('TRITON_INTERPRET', '0')
    assert not triton_runs_on(torch.device('cpu'))
    inputs = make_inputs(2, 2, 1 + 20, 16, seed=2, bias_batch=1)
    triton_op = TritonBlockSparseAttention(block_size=4, random_blocks=2, dense_threshold=float('inf'))
    gather_op = BlockSparseAttention(block_size=4, random_blocks=2, dense_threshold=float('inf'))
    layout = triton_op.make_layout(20, generator=torch.Generator().manual_seed(0))
    out, _ = triton_op(inputs['q'], inputs['k'], inputs['v'], layout=layout, bias=inputs['bias'])
    expected, _ = gather_op(inputs['q'], inputs['k'], inputs['v'], layout=layout, bias=inputs['bias'])
    assert torch.equal(out, expected)


def test_key_index_marks_unused_slots_and_is_cached_for_eval_layouts():
    op = TritonBlockSparseAttention(block_size=4, local_blocks=1, random_blocks=1,
                                    dense_threshold=float('inf')).eval()
    layout = op.eval_layout(10)  # blocks [0-3 | 4-7 | 8-9 ragged]
    index = key_tables(layout, num_global=1).kernel
    assert index.dtype == torch.int32 and index.shape == (3, 1 + 2 * 4)
    assert (index[:, 0] == 0).all()  # the global key first
    assert index[2, 1:5].tolist() == [1, 2, 3, 4] or index[2, 1:5].tolist() == [5, 6, 7, 8]
    assert index[2, 5:].tolist() == [9, 10, -1, -1]  # its own ragged block, padding marked -1
    assert op.key_tables(layout, 1) is op.key_tables(layout, 1)
    fresh = op.make_layout(10, generator=torch.Generator().manual_seed(1))
    assert op.key_tables(fresh, 1) is not op.key_tables(fresh, 1)


def test_built_from_registry_and_checks_its_arguments():
    op = ATTENTION_OPS.build(dict(type='TritonBlockSparseAttention', block_size=56, block_n=32))
    assert isinstance(op, BlockSparseAttention) and op.kernel_options['block_n'] == 32
    assert 'block_n=32' in repr(op)
    with pytest.raises(ValueError, match='block_n must be a power of two'):
        TritonBlockSparseAttention(block_n=24)
    with pytest.raises(ValueError, match='num_warps must be a positive int'):
        TritonBlockSparseAttention(num_warps=0)


@pytest.mark.parametrize('device', DEVICES)
def test_head_dim_the_kernels_cannot_tile_is_a_readable_error(device):
    q = torch.randn(1, 2, 1 + 12, 24, device=device)
    op = TritonBlockSparseAttention(block_size=4, random_blocks=1, dense_threshold=float('inf'))
    with pytest.raises(ValueError, match='head_dim must be a power of two >= 16, got 24'):
        op(q, q, q)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('case', sorted(CASES))
def test_inference_runs_global_and_local_queries_in_one_launch(case, device, monkeypatch):
    inputs, ours, op, num_global, num_local = build_case(case, seed=5, device=device)
    padding = inputs['key_padding_mask']
    op.eval()
    layout = op.eval_layout(num_local, device=device)
    allowed = layout_token_mask(layout.block_index.cpu(), op.block_size, num_local, num_global)
    from svitt_mm.models.attention import block_sparse
    monkeypatch.setattr(block_sparse, 'global_attention', lambda *args: pytest.fail('PyTorch global rows used'))
    monkeypatch.setattr(BlockSparseAttention, 'local_attention', lambda *args: pytest.fail('gather path used'))
    with torch.no_grad():
        out, probs = op(ours['q'], ours['k'], ours['v'], num_global=num_global,
                        key_padding_mask=ours['key_padding_mask'], bias=ours['bias'])
        ref_out, ref_probs = masked_attention(inputs['q'], inputs['k'], inputs['v'], num_global, allowed, padding,
                                              inputs['bias'])
    assert out.shape == inputs['q'].shape and probs.shape == (*inputs['q'].shape[:2], num_global, out.shape[2])
    assert_close_where_valid(out.cpu(), ref_out, padding)
    torch.testing.assert_close(probs.cpu(), ref_probs, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('device', DEVICES)
def test_inference_without_global_tokens(device):
    inputs = make_inputs(1, 2, 20, 16, seed=6)
    op = TritonBlockSparseAttention(block_size=4, random_blocks=1, dense_threshold=float('inf')).eval()
    q, k, v = (inputs[name].detach().to(device) for name in ('q', 'k', 'v'))
    with torch.no_grad():
        out, probs = op(q, k, v, num_global=0)
    allowed = layout_token_mask(op.eval_layout(20).block_index, 4, 20, 0)
    ref_out, _ = masked_attention(inputs['q'], inputs['k'], inputs['v'], 0, allowed)
    assert probs.shape == (1, 2, 0, 20)
    torch.testing.assert_close(out.cpu(), ref_out.detach(), atol=1e-5, rtol=1e-5)


def test_reverse_table_lists_the_query_blocks_of_every_key_group():
    from svitt_mm.models.attention.triton_block_sparse_kernels import reverse_table
    # 3 query blocks of 4 tokens after 1 global token; block 1 reads blocks 0 and 1, etc.
    block_index = torch.tensor([[0, 2], [0, 1], [2, -1]])
    query, column, count = reverse_table(block_index, num_global=1, block_size=4)
    assert count.tolist() == [3, 2, 1, 2]  # global keys: every query block; block 0: query blocks 0 and 1 ...
    listed = {group: sorted(zip(query[group, :n].tolist(), column[group, :n].tolist()))
              for group, n in enumerate(count.tolist())}
    # column = G + slot * block_size: where the group starts in the query block's row of the key table
    assert listed == {0: [(0, 0), (1, 0), (2, 0)], 1: [(0, 1), (1, 1)], 2: [(1, 5)], 3: [(0, 5), (2, 1)]}
    assert reverse_table(block_index, num_global=0, block_size=4)[2].tolist() == [0, 2, 1, 2]
