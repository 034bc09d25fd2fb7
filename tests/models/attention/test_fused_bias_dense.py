"""FusedBiasDenseAttention (the strong dense baseline) equals DenseAttention: outputs, the [CLS] rows'
probabilities and the gradients of q, k, v and the relative position bias table, with padding, with
per-sample (pruned) and shared token positions; the chunked backend on CPU, flex's forward on CPU and
flex forward+backward on CUDA."""
import logging

import pytest
import torch
from mmengine.logging import MMLogger

from svitt_mm.models.attention import DenseAttention, FusedBiasDenseAttention
from svitt_mm.models.attention.flop_counting import flop_counting
from svitt_mm.models.backbones.relative_position_bias import RelativePositionBias3D, RelativePositionIndex
from svitt_mm.testing.attention_conformance import make_inputs
from svitt_mm.utils.arg_checks import ArgumentError

HEADS, DIM, FRAMES, GRID = 3, 8, 3, (3, 4)


def make_case(batch: int, per_sample: bool, padding: bool, device='cpu', seed: int = 0):
    """q, k, v, a random relative position table bound to (shuffled, partly pruned) token positions and an
    optional padding mask; [CLS] first, as in VideoBEiT."""
    generator = torch.Generator().manual_seed(seed)
    bias = RelativePositionBias3D(HEADS, FRAMES, GRID).to(device)
    with torch.no_grad():
        bias.table.copy_(torch.randn(bias.table.shape, generator=generator))
    patches = FRAMES * GRID[0] * GRID[1]
    samples = batch if per_sample else 1
    positions = torch.stack([torch.randperm(patches, generator=generator)[:patches - 5] for _ in range(samples)])
    index = RelativePositionIndex(positions.to(device), GRID, FRAMES)
    tokens = positions.shape[1] + 1
    q, k, v = (torch.randn(batch, HEADS, tokens, DIM, generator=generator).to(device).requires_grad_()
               for _ in range(3))
    mask = None
    if padding:
        mask = torch.zeros(batch, tokens, dtype=torch.bool)
        mask[0, [2, 7, tokens - 1]] = True
        mask = mask.to(device)
    return q, k, v, bias, index, mask


def run(op, case, backward: bool = True):
    """Outputs (zeroed at padding queries), [CLS] probabilities and gradients of q, k, v and the table."""
    q, k, v, bias, index, mask = case
    for tensor in (q, k, v, bias.table):
        tensor.grad = None
    out, probs = op(q, k, v, num_global=1, key_padding_mask=mask, bias=bias.bind(index, q.dtype))
    if mask is not None:
        out = out.masked_fill(mask[:, None, :, None], 0.0)
    results = {'out': out.detach(), 'probs': probs.detach()}
    if backward:
        weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(7)).to(out.device)
        ((out * weights).sum() + (probs * 3).sum()).backward()
        results.update(q=q.grad, k=k.grad, v=v.grad, table=bias.table.grad)
    return results


def assert_equal_results(ours, reference, tol=1e-5):
    assert ours.keys() == reference.keys()
    for name in ours:
        torch.testing.assert_close(ours[name], reference[name], atol=tol, rtol=tol, msg=name)


@pytest.mark.parametrize('per_sample', [False, True], ids=['shared_positions', 'per_sample_positions'])
@pytest.mark.parametrize('padding', [False, True], ids=['no_padding', 'padding'])
@pytest.mark.parametrize('chunk_rows', [1, 5, 1000])
def test_chunked_matches_dense_values_and_gradients(per_sample, padding, chunk_rows):
    case = make_case(2, per_sample, padding)
    row_bytes = 2 * HEADS * case[0].shape[-2] * 4
    op = FusedBiasDenseAttention(backend='chunked', chunk_bytes=chunk_rows * row_bytes)
    assert_equal_results(run(op, case), run(DenseAttention(), case))


def test_auto_runs_chunked_on_cpu_and_needs_no_bias_table_gradient_path_of_dense():
    op = FusedBiasDenseAttention()
    assert op.resolve_backend(torch.device('cpu')) == 'chunked'
    assert op.resolve_backend(torch.device('cuda')) == 'flex'
    case = make_case(1, False, False)
    assert_equal_results(run(op, case), run(DenseAttention(), case))


def test_without_bias_equals_dense():
    q, k, v = (torch.randn(2, HEADS, 9, DIM) for _ in range(3))
    ours, theirs = FusedBiasDenseAttention()(q, k, v), DenseAttention()(q, k, v)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b)


def test_flex_forward_on_cpu_matches_dense():
    # CPU flex_attention has no backward (torch 2.14): the forward checks the score_mod's row arithmetic.
    case = make_case(2, True, True)
    with torch.no_grad():
        ours = run(FusedBiasDenseAttention(backend='flex'), case, backward=False)
        reference = run(DenseAttention(), case, backward=False)
    assert_equal_results(ours, reference)
    with pytest.raises(ArgumentError, match="no CPU backward"):
        run(FusedBiasDenseAttention(backend='flex'), case)


def test_pair_bias_without_table_is_materialised_with_a_warning():
    padding = torch.zeros(2, 11, dtype=torch.bool)
    padding[1, 4] = True
    inputs = make_inputs(2, HEADS, 11, DIM, seed=3, padding=padding, bias_batch=2)  # no as_table()
    op = FusedBiasDenseAttention()
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        out, probs = op(inputs['q'], inputs['k'], inputs['v'], key_padding_mask=padding, bias=inputs['bias'])
    finally:
        logger.removeHandler(handler)
    assert any('offers no as_table()' in record.getMessage() for record in records)
    ref_out, ref_probs = DenseAttention()(inputs['q'], inputs['k'], inputs['v'], key_padding_mask=padding,
                                          bias=inputs['bias'])
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(probs, ref_probs)


def test_flop_count_runs_chunked_with_one_recomputed_product_in_backward():
    from svitt_mm.apis import count_flops
    case = make_case(1, False, False)
    q = case[0]
    batch, heads, tokens, dim = q.shape
    op = FusedBiasDenseAttention(backend='flex')  # flex cannot be counted: the count runs chunked
    with flop_counting():
        ours = run(op, case)
    assert_equal_results(ours, run(DenseAttention(), case))
    forward = count_flops(lambda: run(op, case, backward=False))
    step = count_flops(lambda: run(op, case))
    dense_step = count_flops(lambda: run(DenseAttention(), case))
    assert forward == count_flops(lambda: run(DenseAttention(), case, backward=False))
    assert step == dense_step + 2 * batch * heads * tokens * tokens * dim


@pytest.mark.parametrize('kwargs', [dict(backend='triton'), dict(chunk_bytes=0)])
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ArgumentError, match='FusedBiasDenseAttention'):
        FusedBiasDenseAttention(**kwargs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='flex_attention backward runs on CUDA only')
@pytest.mark.parametrize('per_sample', [False, True], ids=['shared_positions', 'per_sample_positions'])
@pytest.mark.parametrize('padding', [False, True], ids=['no_padding', 'padding'])
def test_flex_on_cuda_matches_dense_values_and_gradients(per_sample, padding):
    case = make_case(2, per_sample, padding, device='cuda')
    op = FusedBiasDenseAttention(backend='flex')
    assert_equal_results(run(op, case), run(DenseAttention(), case), tol=2e-5)
