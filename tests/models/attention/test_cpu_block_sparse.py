"""CpuBlockSparseAttention's C++ kernel equals dense attention under the equivalent token mask (values and
gradients), and the operator falls back to the gather path wherever the kernel does not run."""
import warnings

import pytest
import torch
from masked_reference import (assert_close_where_valid, assert_same_gradients, clone_inputs,
                              layout_token_mask, make_inputs, masked_attention, weighted_loss)

from svitt_mm.models.attention import BlockSparseAttention, CpuBlockSparseAttention, cpu_block_sparse
from svitt_mm.registry import ATTENTION_OPS

needs_kernel = pytest.mark.skipif(not cpu_block_sparse.cpu_kernel_available(),
                                  reason='the C++ kernel could not be built here (see the warning)')

# (batch, num_global, num_local, block_size, local_blocks, random_blocks, padded, bias_batch, fused_qkv)
CASES = {
    'ragged_bias': (2, 1, 23, 4, 1, 2, False, 1, False),
    'padding_three_global_per_sample_bias': (2, 3, 21, 4, 1, 2, True, 2, False),
    'padding_no_bias': (2, 2, 26, 3, 1, 2, True, None, False),
    'views_of_one_qkv_tensor': (2, 1, 40, 8, 3, 1, False, 1, True),
    'no_global_tokens': (1, 0, 30, 5, 1, 2, False, None, False),
}


def padding_mask(batch: int, num_tokens: int, num_global: int) -> torch.Tensor:
    mask = torch.rand(batch, num_tokens, generator=torch.Generator().manual_seed(1)) < 0.3
    mask[:, :num_global] = False
    mask[:, -1] = True
    return mask


def as_qkv_views(inputs: dict) -> dict:
    """q, k, v as the backbone makes them: strided views ``[B, H, N, D]`` of one ``[B, N, 3, H, D]`` leaf."""
    q = inputs['q']
    fused = torch.stack([inputs[name].detach() for name in ('q', 'k', 'v')], dim=0)  # [3, B, H, N, D]
    fused = fused.permute(1, 3, 0, 2, 4).contiguous().requires_grad_()  # [B, N, 3, H, D]
    views = dict(inputs, fused=fused)
    views['q'], views['k'], views['v'] = fused.permute(2, 0, 3, 1, 4).unbind(0)
    assert views['q'].shape == q.shape and not views['k'].is_contiguous()
    return views


@needs_kernel
@pytest.mark.parametrize('case', sorted(CASES))
def test_forward_and_gradients_match_masked_dense_reference(case, monkeypatch):
    batch, num_global, num_local, size, local, random, padded, bias_batch, fused_qkv = CASES[case]
    num_tokens = num_global + num_local
    padding = padding_mask(batch, num_tokens, num_global) if padded else None
    inputs = make_inputs(batch, 2, num_tokens, 16, seed=2, padding=padding, bias_batch=bias_batch)
    reference = clone_inputs(inputs)
    ours = as_qkv_views(inputs) if fused_qkv else inputs
    op = CpuBlockSparseAttention(block_size=size, local_blocks=local, random_blocks=random,
                                 dense_threshold=float('inf'))
    layout = op.make_layout(num_local, generator=torch.Generator().manual_seed(3))
    allowed = layout_token_mask(layout.block_index, size, num_local, num_global)
    assert not allowed.all()
    # The kernel, not the gather path of the parent class, must compute the local queries.
    monkeypatch.setattr(BlockSparseAttention, 'local_attention', lambda *args: pytest.fail('gather path used'))
    out, probs = op(ours['q'], ours['k'], ours['v'], num_global=num_global, layout=layout,
                    key_padding_mask=padding, bias=ours['bias'])
    ref_out, ref_probs = masked_attention(reference['q'], reference['k'], reference['v'], num_global, allowed,
                                          padding, reference['bias'])
    assert out.shape == ref_out.shape
    assert_close_where_valid(out, ref_out, padding)
    torch.testing.assert_close(probs, ref_probs, atol=1e-5, rtol=1e-5)

    weighted_loss(out, padding, seed=4).backward()
    weighted_loss(ref_out, padding, seed=4).backward()
    if fused_qkv:
        for index, name in enumerate(('q', 'k', 'v')):
            inputs[name].grad = ours['fused'].grad[:, :, index].transpose(1, 2)
    assert_same_gradients(inputs, reference, atol=1e-4)


@needs_kernel
def test_inference_matches_the_gather_operator_at_the_svitt_shape():
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 12, 1 + 196 * 8, 64) for _ in range(3))
    fused = CpuBlockSparseAttention().eval()
    gather = BlockSparseAttention().eval()
    assert not fused.eval_layout(196 * 8).is_dense
    with torch.no_grad():
        out, probs = fused(q, k, v)
        expected, expected_probs = gather(q, k, v)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(probs, expected_probs)
    assert out.transpose(1, 2).is_contiguous()  # token-major, as the output projection reads it


@needs_kernel
def test_every_key_masked_gives_zero_outputs_and_gradients():
    q, k, v = (torch.randn(1, 1, 9, 4, generator=torch.Generator().manual_seed(i)).requires_grad_()
               for i in range(3))
    key_index = torch.full((2, 5), -1, dtype=torch.int32)
    key_index[1] = torch.tensor([0, 5, 6, 7, 8], dtype=torch.int32)
    out = cpu_block_sparse.CpuLocalAttention.apply(q, k, v, None, key_index, 1, 4)
    assert out.shape == (1, 8, 1, 4)
    assert torch.equal(out[:, :4], torch.zeros(1, 4, 1, 4))  # block 0 reads nothing
    out.sum().backward()
    assert torch.equal(q.grad[:, :, 1:5], torch.zeros(1, 1, 4, 4))
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))


@pytest.mark.parametrize('reason', ['dtype', 'unavailable', 'counting_flops', 'compiling'])
def test_takes_the_gather_path_where_the_kernel_does_not_run(reason, monkeypatch):
    inputs = make_inputs(2, 2, 1 + 20, 16, seed=2, bias_batch=1)
    q, k, v = inputs['q'], inputs['k'], inputs['v']
    if reason == 'dtype':
        q, k, v = q.double(), k.double(), v.double()
        inputs['bias'].double()
    elif reason == 'unavailable':
        monkeypatch.setattr(cpu_block_sparse, 'cpu_kernel_available', lambda: False)
    elif reason == 'counting_flops':
        monkeypatch.setattr(cpu_block_sparse, 'counting_flops', lambda: True)
    else:  # torch.compile traces the gather path: the kernel has no meta (fake-tensor) implementation
        monkeypatch.setattr(torch.compiler, 'is_compiling', lambda: True)
    monkeypatch.setattr(cpu_block_sparse.CpuLocalAttention, 'apply', lambda *args: pytest.fail('kernel used'))
    fused = CpuBlockSparseAttention(block_size=4, random_blocks=2, dense_threshold=float('inf'))
    gather = BlockSparseAttention(block_size=4, random_blocks=2, dense_threshold=float('inf'))
    layout = fused.make_layout(20, generator=torch.Generator().manual_seed(0))
    out, _ = fused(q, k, v, layout=layout, bias=inputs['bias'])
    expected, _ = gather(q, k, v, layout=layout, bias=inputs['bias'])
    assert torch.equal(out, expected)


def failing_build(message: str):
    """A stand-in for ``torch.utils.cpp_extension.load`` that fails with ``message``."""
    def load(**kwargs):
        raise RuntimeError(message)
    return load


def test_a_kernel_that_cannot_be_built_is_one_warning(monkeypatch):
    monkeypatch.setattr('torch.utils.cpp_extension.load', failing_build('Error building extension (no compiler)'))
    monkeypatch.setattr(cpu_block_sparse, 'ninja_on_path', lambda: True)
    with pytest.warns(UserWarning, match=r'could not build the C\+\+ kernel .*no compiler.*gather path'):
        assert cpu_block_sparse.cpu_kernel_available.__wrapped__() is False
    monkeypatch.setattr(cpu_block_sparse, 'ninja_on_path', lambda: False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        assert cpu_block_sparse.cpu_kernel_available.__wrapped__() is False
    assert len(caught) == 1 and 'pip install ninja' in str(caught[0].message)


def test_a_long_build_log_is_cut_to_its_end(monkeypatch):
    log = 'x' * 10_000 + 'block_sparse_cpu.cpp:12: error: expected ;'
    monkeypatch.setattr('torch.utils.cpp_extension.load', failing_build(log))
    monkeypatch.setattr(cpu_block_sparse, 'ninja_on_path', lambda: True)
    with pytest.warns(UserWarning) as caught:
        assert cpu_block_sparse.cpu_kernel_available.__wrapped__() is False
    message = str(caught[0].message)
    assert 'error: expected ;' in message and len(message) < cpu_block_sparse.BUILD_LOG_CHARS + 500


def test_loading_the_kernel_is_logged(monkeypatch):
    logged = []
    monkeypatch.setattr('torch.utils.cpp_extension.load', lambda **kwargs: None)
    monkeypatch.setattr(cpu_block_sparse, 'ninja_on_path', lambda: True)
    monkeypatch.setattr(cpu_block_sparse, 'print_log', lambda message, **kwargs: logged.append(message))
    assert cpu_block_sparse.cpu_kernel_available.__wrapped__() is True
    assert len(logged) == 1 and 'C++ kernel ready in' in logged[0]


def test_built_from_the_registry():
    op = ATTENTION_OPS.build(dict(type='CpuBlockSparseAttention', block_size=56, random_blocks=3))
    assert isinstance(op, BlockSparseAttention) and op.block_size == 56
    layout = op.eval().eval_layout(56 * 10)
    assert op.key_tables(layout, 1) is op.key_tables(layout, 1)  # cached for the evaluation layout
