"""Proportional attention: a token of size s attends and is attended to as s identical tokens would be.

Every operator and backend gets the log-size term through its pair bias, so each is checked against an
explicit softmax over the *unmerged* sequence, in which every token is repeated ``size`` times (with the
pair bias and, for block-sparse attention, the block pattern of the merged sequence carried over to the
copies): outputs, [CLS] probabilities (summed over copies) and gradients of q, k, v and the bias table.
"""
import math

import pytest
import torch

from svitt_mm.models.attention import BlockSparseAttention, DenseAttention
from svitt_mm.models.attention.backends import describe_call
from svitt_mm.models.attention.block_layout import block_adjacency
from svitt_mm.models.pruners import ProportionalAttentionBias

B, H, D, N = 2, 2, 16, 12  # N local tokens after merging, one global token
SIZES = torch.tensor([[1, 2, 1, 3, 1, 1, 2, 1, 1, 4, 1, 2, 1], [1, 1, 1, 1, 2, 2, 1, 3, 1, 1, 1, 1, 2]])


class TableBias:
    """A pair bias read from a dense table ``[1, H, 1+N, 1+N]`` (a stand-in for the position bias)."""

    def __init__(self, table):
        self.table = table

    def __call__(self, q_index, k_index):
        return self.table[:, :, q_index, k_index]


def inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(B, H, 1 + N, D, generator=g, requires_grad=True) for _ in range(3))
    table = torch.randn(1, H, 1 + N, 1 + N, generator=g, requires_grad=True)
    weight = torch.randn(B, H, 1 + N, D, generator=g)
    return q, k, v, table, weight


def allowed_pairs(op, layout):
    """Bool ``[1+N, 1+N]`` of the pairs the operator computes (every pair for dense attention)."""
    allowed = torch.ones(1 + N, 1 + N, dtype=torch.bool)
    if layout is not None:
        block = torch.arange(N) // op.block_size
        allowed[1:, 1:] = block_adjacency(layout.block_index)[block][:, block]
    return allowed


def duplicated_reference(q, k, v, table, weight, allowed):
    """Explicit attention over the sequence with every token repeated SIZES times, per sample; returns the
    outputs of one copy per merged query, the [CLS] probabilities summed over the copies of each key, and the
    loss on those outputs."""
    outs, probs = [], []
    for b in range(B):
        copies = torch.repeat_interleave(torch.arange(1 + N), SIZES[b])  # expanded index -> merged token
        first = torch.cumsum(SIZES[b], 0) - SIZES[b]  # one copy of each merged token
        qe, ke, ve = q[b][:, copies], k[b][:, copies], v[b][:, copies]
        logits = qe @ ke.transpose(-1, -2) / math.sqrt(D) + table[0][:, copies][:, :, copies]
        logits = logits.masked_fill(~allowed[copies][:, copies], float('-inf'))
        p = logits.softmax(dim=-1)
        outs.append((p @ ve)[:, first])
        probs.append(torch.zeros(H, 1 + N).index_add(1, copies, p[:, 0]))
    out = torch.stack(outs)
    return out, torch.stack(probs)[:, :, None], (out * weight).sum()


def operators():
    yield 'dense', DenseAttention()
    for backend in ('gather', 'cpu_kernel', 'triton', 'flex'):
        yield backend, BlockSparseAttention(block_size=4, local_blocks=1, random_blocks=1, dense_threshold=2.0,
                                            backend=backend)


@pytest.mark.parametrize('name, op', list(operators()), ids=[name for name, _ in operators()])
def test_merged_tokens_attend_as_their_duplicates(name, op):
    op.eval()
    layout = op.eval_layout(N) if isinstance(op, BlockSparseAttention) else None
    if layout is not None:
        assert not block_adjacency(layout.block_index).all()  # a real sparse pattern
    q, k, v, table, weight = inputs()
    bias = ProportionalAttentionBias(SIZES.float(), TableBias(table))
    with_grad = True
    if isinstance(op, BlockSparseAttention):
        reasons = op.backends[name].not_supported_reasons(describe_call(q, k, v, 1, op.block_size, None, bias))
        if reasons:  # e.g. flex has no backward on CPU: check its forward
            with torch.no_grad():
                reasons = op.backends[name].not_supported_reasons(
                    describe_call(q, k, v, 1, op.block_size, None, bias))
            with_grad = False
        if reasons:
            pytest.skip(f'{name} cannot run here: {"; ".join(reasons)}')
    with torch.set_grad_enabled(with_grad):
        out, probs = op(q, k, v, num_global=1, layout=layout, bias=bias)
    if isinstance(op, BlockSparseAttention):
        assert op.last_backend == name
    expected_out, expected_probs, loss = duplicated_reference(q, k, v, table, weight, allowed_pairs(op, layout))
    torch.testing.assert_close(out, expected_out, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(probs, expected_probs, atol=2e-6, rtol=1e-4)
    if with_grad:
        grads = torch.autograd.grad((out * weight).sum(), (q, k, v, table))
        expected_grads = torch.autograd.grad(loss, (q, k, v, table))
        for what, grad, expected in zip('q k v table'.split(), grads, expected_grads):
            torch.testing.assert_close(grad, expected, atol=5e-5, rtol=1e-4,
                                       msg=lambda text, what=what: f'{what}: {text}')


def test_unit_sizes_add_nothing_and_without_inner_bias_it_is_the_log_size():
    q_index, k_index = torch.arange(1 + N)[:, None], torch.arange(1 + N)[None]
    ones = ProportionalAttentionBias(torch.ones(B, 1 + N))
    assert ones(q_index, k_index).shape == (B, 1, 1 + N, 1 + N) and not ones(q_index, k_index).any()
    alone = ProportionalAttentionBias(SIZES.float())(q_index, k_index)
    torch.testing.assert_close(alone, SIZES.float().log()[:, None, None, :].expand(-1, -1, 1 + N, -1))
    # a 1-D key index broadcasts like the others (the key axis stays last)
    torch.testing.assert_close(ProportionalAttentionBias(SIZES.float())(q_index, torch.arange(1 + N)), alone)
