"""The ``triton`` backend beyond the conformance suite: its key table, reverse table, the inference launch
that computes global and local queries at once, and its declared limits.

On CUDA the kernels run compiled; on CPU in Triton's interpreter (``tests/conftest.py`` sets
``TRITON_INTERPRET=1`` where there is no GPU).
"""
import copy

import pytest
import torch

from svitt_mm.models.attention import BlockSparseAttention
from svitt_mm.models.attention.backends import gather, triton
from svitt_mm.models.attention.block_layout import key_tables
from svitt_mm.testing.attention_conformance import (assert_close_where_valid, layout_token_mask, make_inputs,
                                                    masked_attention, padding_mask)

DEVICES = [pytest.param('cpu', marks=pytest.mark.skipif(
               not triton.triton_installed() or not triton.triton_interpreter_on(),
               reason='Triton is not installed, or its interpreter is off (TRITON_INTERPRET=1)')),
           pytest.param('cuda', marks=pytest.mark.skipif(
               not torch.cuda.is_available() or not triton.triton_installed(), reason='needs CUDA and Triton'))]


@pytest.mark.parametrize('device', DEVICES)
def test_inference_runs_global_and_local_queries_in_one_launch(device, monkeypatch):
    num_global, num_local = 2, 26
    padding = padding_mask(2, num_global + num_local, num_global, seed=1)
    inputs = make_inputs(2, 2, num_global + num_local, 16, seed=5, padding=padding, bias_batch=1)
    op = BlockSparseAttention(block_size=3, random_blocks=2, dense_threshold=float('inf'), backend='triton',
                              backend_options=dict(triton=dict(block_n=16))).eval()
    monkeypatch.setattr(triton, 'global_attention', lambda *args: pytest.fail('PyTorch global rows used'))
    q, k, v = (inputs[name].detach().to(device) for name in ('q', 'k', 'v'))
    bias = copy.deepcopy(inputs['bias']).to(device)  # Module.to moves in place; the reference stays on CPU
    with torch.no_grad():
        out, probs = op(q, k, v, num_global=num_global, key_padding_mask=padding.to(device), bias=bias)
    allowed = layout_token_mask(op.eval_layout(num_local).block_index, 3, num_local, num_global)
    ref_out, ref_probs = masked_attention(*(inputs[name].detach() for name in ('q', 'k', 'v')), num_global,
                                          allowed, padding, inputs['bias'])
    assert_close_where_valid(out.cpu(), ref_out.detach(), padding)
    torch.testing.assert_close(probs.cpu(), ref_probs.detach(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('device', DEVICES)
def test_inference_without_global_tokens(device):
    inputs = make_inputs(1, 2, 20, 16, seed=6)
    op = BlockSparseAttention(block_size=4, random_blocks=1, dense_threshold=float('inf'), backend='triton').eval()
    q, k, v = (inputs[name].detach().to(device) for name in ('q', 'k', 'v'))
    with torch.no_grad():
        out, probs = op(q, k, v, num_global=0)
    allowed = layout_token_mask(op.eval_layout(20).block_index, 4, 20, 0)
    ref_out, _ = masked_attention(inputs['q'], inputs['k'], inputs['v'], 0, allowed)
    assert probs.shape == (1, 2, 0, 20)
    torch.testing.assert_close(out.cpu(), ref_out.detach(), atol=1e-5, rtol=1e-5)


def test_declared_limits_are_reasons_not_fallbacks(monkeypatch):
    q = torch.randn(1, 2, 13, 24)
    op = BlockSparseAttention(block_size=4, random_blocks=1, dense_threshold=float('inf'), backend='triton')
    with pytest.raises(ValueError, match='head_dim must be a power of two >= 16, got 24'):
        op(q, q, q)
    monkeypatch.setenv('TRITON_INTERPRET', '0')
    q = torch.randn(1, 2, 13, 16)
    with pytest.raises(ValueError, match="needs Triton's interpreter"):
        op(q, q, q)
    monkeypatch.setenv('TRITON_INTERPRET', '1')
    monkeypatch.setattr(gather, 'gathered_block_attention', lambda *args: pytest.fail('gather path used'))
    with pytest.raises(ValueError, match='computes float32 only'):
        op(q.bfloat16(), q.bfloat16(), q.bfloat16())
    many_global = torch.randn(1, 2, 17 + 12, 16, requires_grad=True)
    with pytest.raises(ValueError, match='at most 16 global tokens'):
        op(many_global, many_global, many_global, num_global=17)


def test_key_index_marks_unused_slots():
    op = BlockSparseAttention(block_size=4, local_blocks=1, random_blocks=1, dense_threshold=float('inf')).eval()
    layout = op.eval_layout(10)  # blocks [0-3 | 4-7 | 8-9 ragged]
    index = key_tables(layout, num_global=1).kernel
    assert index.dtype == torch.int32 and index.shape == (3, 1 + 2 * 4)
    assert (index[:, 0] == 0).all()  # the global key first
    assert index[2, 1:5].tolist() in ([1, 2, 3, 4], [5, 6, 7, 8])
    assert index[2, 5:].tolist() == [9, 10, -1, -1]  # its own ragged block, padding marked -1


@pytest.mark.skipif(not triton.triton_installed(), reason='Triton is not installed')
def test_reverse_table_lists_the_query_blocks_of_every_key_group():
    from svitt_mm.models.attention.backends.triton_kernels import reverse_table
    # 3 query blocks of 4 tokens after 1 global token; block 1 reads blocks 0 and 1, etc.
    block_index = torch.tensor([[0, 2], [0, 1], [2, -1]])
    query, column, count = reverse_table(block_index, num_global=1, block_size=4)
    assert count.tolist() == [3, 2, 1, 2]  # global keys: every query block; block 0: query blocks 0 and 1 ...
    listed = {group: sorted(zip(query[group, :n].tolist(), column[group, :n].tolist()))
              for group, n in enumerate(count.tolist())}
    # column = G + slot * block_size: where the group starts in the query block's row of the key table
    assert listed == {0: [(0, 0), (1, 0), (2, 0)], 1: [(0, 1), (1, 1)], 2: [(1, 5)], 3: [(0, 5), (2, 1)]}
    assert reverse_table(block_index, num_global=0, block_size=4)[2].tolist() == [0, 2, 1, 2]


@pytest.mark.skipif(not torch.cuda.is_available() or not triton.triton_installed(), reason='needs CUDA and Triton')
def test_bfloat16_on_cuda_stays_close_to_the_float32_gather_backend():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 12, 1 + 196 * 4, 64, device='cuda') for _ in range(3))
    op = BlockSparseAttention(backend='triton').eval()
    reference = BlockSparseAttention(backend='gather').eval()
    out, probs = op(q.bfloat16(), k.bfloat16(), v.bfloat16())
    ref_out, ref_probs = reference(q, k, v)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref_out, atol=3e-2, rtol=3e-2)
    torch.testing.assert_close(probs.float(), ref_probs, atol=1e-3, rtol=3e-2)
