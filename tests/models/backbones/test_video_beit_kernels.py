"""VideoBEiT with a fused-kernel operator computes what it computes with the gather operator (same patterns,
pruning and relative position bias), forward and every parameter gradient in training mode:
TritonBlockSparseAttention on CUDA with the compiled kernels and on CPU in Triton's interpreter,
CpuBlockSparseAttention on CPU with its C++ kernel."""
import pytest
import torch

from svitt_mm.models.attention import cpu_block_sparse, triton_block_sparse
from svitt_mm.models.attention.triton_block_sparse import triton_runs_on
from svitt_mm.registry import BACKBONES

ATTENTION = dict(block_size=4, local_blocks=1, random_blocks=2, dense_threshold=float('inf'))
# (operator, its autograd function, device)
KERNELS = [
    pytest.param('TritonBlockSparseAttention', triton_block_sparse.TritonLocalAttention, 'cpu',
                 marks=pytest.mark.skipif(not triton_runs_on(torch.device('cpu')),
                                          reason='Triton is not installed, or its interpreter is off'),
                 id='triton-cpu'),
    pytest.param('TritonBlockSparseAttention', triton_block_sparse.TritonLocalAttention, 'cuda',
                 marks=pytest.mark.skipif(not torch.cuda.is_available() or not triton_runs_on(torch.device('cuda')),
                                          reason='needs a CUDA device with Triton'),
                 id='triton-cuda'),
    pytest.param('CpuBlockSparseAttention', cpu_block_sparse.CpuLocalAttention, 'cpu',
                 marks=pytest.mark.skipif(not cpu_block_sparse.cpu_kernel_available(),
                                          reason='the C++ kernel could not be built here (see the warning)'),
                 id='cpp-cpu'),
]
CFG = dict(type='VideoBEiT', img_size=16, patch_size=4, embed_dims=32, num_layers=3, num_heads=2,
           mlp_ratio=2.0, drop_path_rate=0.0, max_frames=4,
           pruner=dict(type='ClsAttentionPruner', keep_rate=0.7), prune_layers=(1, 2))


def run(attention: str, device: str, video: torch.Tensor):
    torch.manual_seed(0)
    model = BACKBONES.build(dict(CFG, attention=dict(ATTENTION, type=attention)))
    with torch.no_grad():  # non-zero bias tables, so that a dropped bias would change the result
        for block in model.blocks:
            block.attn.relative_position_bias.table.normal_(0, 1)
    model.to(device).train()
    torch.manual_seed(7)  # the same sparse patterns for both operators
    out = model(video.to(device))
    (out.tokens.square().mean() + out.pooled.sum()).backward()
    return out, {name: p.grad for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize('attention,function,device', KERNELS)
def test_training_step_matches_the_gather_operator(attention, function, device, monkeypatch):
    calls = []
    kernel = function.apply
    monkeypatch.setattr(function, 'apply', lambda *args: calls.append(1) or kernel(*args))
    video = torch.randn(2, 4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    out, grads = run('BlockSparseAttention', device, video)
    assert not calls
    out_fused, grads_fused = run(attention, device, video)
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


@pytest.mark.parametrize('attention,function,device', KERNELS)
def test_evaluation_forward_matches_the_gather_operator(attention, function, device):
    video = torch.randn(2, 4, 3, 16, 16, generator=torch.Generator().manual_seed(2)).to(device)
    outputs = []
    for name in ('BlockSparseAttention', attention):
        torch.manual_seed(0)
        model = BACKBONES.build(dict(CFG, attention=dict(ATTENTION, type=name)))
        with torch.no_grad():
            for block in model.blocks:
                block.attn.relative_position_bias.table.normal_(0, 1)
            outputs.append(model.to(device).eval()(video))
    gather, fused = outputs
    torch.testing.assert_close(fused.tokens, gather.tokens, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(fused.pooled, gather.pooled, atol=1e-4, rtol=1e-4)
    for kept, kept_fused in zip(gather.kept_indices, fused.kept_indices):
        assert torch.equal(kept, kept_fused)
