"""The ``cpu_kernel`` backend beyond the conformance suite: strided q/k/v views, empty rows, the SViTT shape,
and what happens when the kernel cannot be built (a reason, never a silent fallback)."""
import warnings

import pytest
import torch

from svitt_mm.models.attention import BlockSparseAttention
from svitt_mm.models.attention.backends import cpu_kernel
from svitt_mm.testing.attention_conformance import (assert_same_gradients, clone_inputs, layout_token_mask,
                                                    make_inputs, masked_attention, weighted_loss)

needs_kernel = pytest.mark.skipif(cpu_kernel.kernel_build_error() is not None,
                                  reason='the C++ kernel could not be built here (see the warning)')


@needs_kernel
def test_views_of_one_qkv_tensor_match_the_reference():
    # q, k, v as the backbone makes them: strided views [B, H, N, D] of one [B, N, 3, H, D] leaf.
    inputs = make_inputs(2, 2, 41, 16, seed=2, bias_batch=1)
    reference = clone_inputs(inputs)
    fused = torch.stack([inputs[name].detach() for name in ('q', 'k', 'v')]).permute(1, 3, 0, 2, 4)
    fused = fused.contiguous().requires_grad_()
    q, k, v = fused.permute(2, 0, 3, 1, 4).unbind(0)
    assert not k.is_contiguous()
    op = BlockSparseAttention(block_size=8, local_blocks=3, random_blocks=1, dense_threshold=float('inf'),
                              backend='cpu_kernel')
    layout = op.make_layout(40, generator=torch.Generator().manual_seed(3))
    out, probs = op(q, k, v, layout=layout, bias=inputs['bias'])
    allowed = layout_token_mask(layout.block_index, 8, 40, 1)
    ref_out, ref_probs = masked_attention(reference['q'], reference['k'], reference['v'], 1, allowed,
                                          None, reference['bias'])
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(probs, ref_probs, atol=1e-5, rtol=1e-5)
    weighted_loss(out, None, seed=4).backward()
    weighted_loss(ref_out, None, seed=4).backward()
    for index, name in enumerate(('q', 'k', 'v')):
        inputs[name].grad = fused.grad[:, :, index].transpose(1, 2)
    assert_same_gradients(inputs, reference, atol=1e-4)


@needs_kernel
def test_inference_matches_the_gather_backend_at_the_svitt_shape():
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 12, 1 + 196 * 8, 64) for _ in range(3))
    fused = BlockSparseAttention(backend='cpu_kernel').eval()
    gather = BlockSparseAttention(backend='gather').eval()
    with torch.no_grad():
        out, probs = fused(q, k, v)
        expected, expected_probs = gather(q, k, v)
    assert fused.last_backend == 'cpu_kernel' and gather.last_backend == 'gather'
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(probs, expected_probs)
    assert out.transpose(1, 2).is_contiguous()  # token-major, as the output projection reads it


@needs_kernel
def test_every_key_masked_gives_zero_outputs_and_gradients():
    q, k, v = (torch.randn(1, 1, 9, 4, generator=torch.Generator().manual_seed(i)).requires_grad_()
               for i in range(3))
    key_index = torch.full((2, 5), -1, dtype=torch.int32)
    key_index[1] = torch.tensor([0, 5, 6, 7, 8], dtype=torch.int32)
    out = cpu_kernel.CpuLocalAttention.apply(q, k, v, None, key_index, 1, 4)
    assert out.shape == (1, 8, 1, 4)
    assert torch.equal(out[:, :4], torch.zeros(1, 4, 1, 4))  # block 0 reads nothing
    out.sum().backward()
    assert torch.equal(q.grad[:, :, 1:5], torch.zeros(1, 1, 4, 4))
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))


def failing_build(message: str):
    """A stand-in for ``torch.utils.cpp_extension.load`` that fails with ``message``."""
    def load(**kwargs):
        raise RuntimeError(message)
    return load


def test_a_kernel_that_cannot_be_built_is_a_reason_and_one_warning(monkeypatch):
    monkeypatch.setattr('torch.utils.cpp_extension.load', failing_build('Error building extension (no compiler)'))
    monkeypatch.setattr(cpu_kernel, 'ninja_on_path', lambda: True)
    with pytest.warns(UserWarning, match=r'could not build the C\+\+ kernel .*no compiler'):
        error = cpu_kernel.kernel_build_error.__wrapped__()
    assert 'could not be built' in error and 'no compiler' in error
    monkeypatch.setattr(cpu_kernel, 'ninja_on_path', lambda: False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        assert 'pip install ninja' in cpu_kernel.kernel_build_error.__wrapped__()
    assert len(caught) == 1
    # The reason reaches the operator: named explicitly, it raises; 'auto' passes over it to gather.
    monkeypatch.setattr(cpu_kernel, 'kernel_build_error', lambda: 'the C++ kernel could not be built (test)')
    q = torch.randn(1, 1, 21, 16)
    op = BlockSparseAttention(block_size=4, random_blocks=1, dense_threshold=float('inf'), backend='cpu_kernel')
    with pytest.raises(ValueError, match=r"backend 'cpu_kernel' cannot compute .*could not be built \(test\)"):
        op(q, q, q)
    auto = BlockSparseAttention(block_size=4, random_blocks=1, dense_threshold=float('inf'))
    auto(q, q, q)
    assert auto.last_backend == 'gather'


def test_a_long_build_log_is_cut_to_its_end(monkeypatch):
    log = 'x' * 10_000 + 'block_sparse_cpu.cpp:12: error: expected ;'
    monkeypatch.setattr('torch.utils.cpp_extension.load', failing_build(log))
    monkeypatch.setattr(cpu_kernel, 'ninja_on_path', lambda: True)
    with pytest.warns(UserWarning):
        error = cpu_kernel.kernel_build_error.__wrapped__()
    assert 'error: expected ;' in error and len(error) < cpu_kernel.BUILD_LOG_CHARS + 100


def test_loading_the_kernel_is_logged(monkeypatch):
    logged = []
    monkeypatch.setattr('torch.utils.cpp_extension.load', lambda **kwargs: None)
    monkeypatch.setattr(cpu_kernel, 'ninja_on_path', lambda: True)
    monkeypatch.setattr(cpu_kernel, 'print_log', lambda message, **kwargs: logged.append(message))
    assert cpu_kernel.kernel_build_error.__wrapped__() is None
    assert len(logged) == 1 and 'C++ kernel ready in' in logged[0]


def test_key_tables_are_cached_for_the_evaluation_layout():
    op = BlockSparseAttention(block_size=56, random_blocks=3).eval()
    layout = op.eval_layout(56 * 10)
    assert op.key_tables(layout, 1) is op.key_tables(layout, 1)
    fresh = op.make_layout(56 * 10, generator=torch.Generator().manual_seed(1))
    assert op.key_tables(fresh, 1) is not op.key_tables(fresh, 1)
