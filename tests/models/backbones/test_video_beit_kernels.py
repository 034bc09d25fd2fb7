"""VideoBEiT with a fused-kernel backend computes what it computes with the gather backend (same patterns,
pruning and relative position bias), forward and every parameter gradient in training mode:
backend 'triton' on CUDA with the compiled kernels and on CPU in Triton's interpreter, 'cpu_kernel' on CPU
with its C++ kernel."""
import pytest
import torch

from svitt_mm.models.attention.backends import cpu_kernel, triton
from svitt_mm.registry import BACKBONES

ATTENTION = dict(type='BlockSparseAttention', block_size=4, local_blocks=1, random_blocks=2,
                 dense_threshold=float('inf'))
# (backend, its autograd function, device)
KERNELS = [
    pytest.param('triton', triton.TritonLocalAttention, 'cpu',
                 marks=pytest.mark.skipif(not triton.triton_installed() or not triton.triton_interpreter_on(),
                                          reason='Triton is not installed, or its interpreter is off'),
                 id='triton-cpu'),
    pytest.param('triton', triton.TritonLocalAttention, 'cuda',
                 marks=pytest.mark.skipif(not torch.cuda.is_available() or not triton.triton_installed(),
                                          reason='needs a CUDA device with Triton'),
                 id='triton-cuda'),
    pytest.param('cpu_kernel', cpu_kernel.CpuLocalAttention, 'cpu',
                 marks=pytest.mark.skipif(cpu_kernel.kernel_build_error() is not None,
                                          reason='the C++ kernel could not be built here (see the warning)'),
                 id='cpp-cpu'),
]
CFG = dict(type='VideoBEiT', img_size=16, patch_size=4, embed_dims=32, num_layers=3, num_heads=2,
           mlp_ratio=2.0, drop_path_rate=0.0, max_frames=4,
           pruner=dict(type='ClsAttentionPruner', keep_rate=0.7), prune_layers=(1, 2))


def run(backend: str, device: str, video: torch.Tensor):
    torch.manual_seed(0)
    model = BACKBONES.build(dict(CFG, attention=dict(ATTENTION, backend=backend)))
    with torch.no_grad():  # non-zero bias tables, so that a dropped bias would change the result
        for block in model.blocks:
            block.attn.relative_position_bias.table.normal_(0, 1)
    model.to(device).train()
    torch.manual_seed(7)  # the same sparse patterns for both operators
    out = model(video.to(device))
    (out.tokens.square().mean() + out.pooled.sum()).backward()
    return out, {name: p.grad for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize('backend,function,device', KERNELS)
def test_training_step_matches_the_gather_backend(backend, function, device, monkeypatch):
    calls = []
    kernel = function.apply
    monkeypatch.setattr(function, 'apply', lambda *args: calls.append(1) or kernel(*args))
    video = torch.randn(2, 4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    out, grads = run('gather', device, video)
    assert not calls
    out_fused, grads_fused = run(backend, device, video)
    assert len(calls) == CFG['num_layers']  # every layer ran the kernels
    torch.testing.assert_close(out_fused.tokens, out.tokens, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out_fused.pooled, out.pooled, atol=1e-4, rtol=1e-4)
    for kept, kept_fused in zip(out.kept_indices, out_fused.kept_indices):
        assert torch.equal(kept, kept_fused)
    assert grads.keys() == grads_fused.keys()
    assert grads['blocks.0.attn.relative_position_bias.table'].abs().sum() > 0
    for name, grad in grads.items():
        torch.testing.assert_close(grads_fused[name], grad, atol=1e-4, rtol=1e-4,
                                   msg=lambda text, name=name: f'{name}: {text}')


@pytest.mark.parametrize('backend,function,device', KERNELS)
def test_evaluation_forward_matches_the_gather_backend(backend, function, device):
    video = torch.randn(2, 4, 3, 16, 16, generator=torch.Generator().manual_seed(2)).to(device)
    outputs = []
    for name in ('gather', backend):
        torch.manual_seed(0)
        model = BACKBONES.build(dict(CFG, attention=dict(ATTENTION, backend=name)))
        with torch.no_grad():
            for block in model.blocks:
                block.attn.relative_position_bias.table.normal_(0, 1)
            outputs.append(model.to(device).eval()(video))
    gather, fused = outputs
    torch.testing.assert_close(fused.tokens, gather.tokens, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(fused.pooled, gather.pooled, atol=1e-4, rtol=1e-4)
    for kept, kept_fused in zip(gather.kept_indices, fused.kept_indices):
        assert torch.equal(kept, kept_fused)
