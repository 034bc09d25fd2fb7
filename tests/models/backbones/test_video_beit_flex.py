"""VideoBEiT with FlexBlockSparseAttention computes what it computes with the gather operator (same
patterns, pruning and relative position bias): eval forward on CPU (flex uncompiled), and forward and
gradients in training mode on CUDA (compiled kernels)."""
import warnings

import pytest
import torch

from svitt_mm.registry import BACKBONES

ATTENTION = dict(block_size=4, local_blocks=1, random_blocks=2, dense_threshold=float('inf'))
CFG = dict(type='VideoBEiT', img_size=16, patch_size=4, embed_dims=32, num_layers=3, num_heads=2,
           mlp_ratio=2.0, drop_path_rate=0.0, max_frames=4,
           pruner=dict(type='ClsAttentionPruner', keep_rate=0.7), prune_layers=(1, 2))


def build(attention: dict, device: str):
    torch.manual_seed(0)
    model = BACKBONES.build(dict(CFG, attention=dict(ATTENTION, **attention)))
    with torch.no_grad():  # non-zero bias tables, so that a dropped bias would change the result
        for block in model.blocks:
            block.attn.relative_position_bias.table.normal_(0, 1)
    return model.to(device)


def run(model, video, train: bool):
    model.train(train)
    torch.manual_seed(7)  # the same sparse patterns for both operators
    out = model(video)
    if not train:
        return out, {}
    (out.tokens.square().mean() + out.pooled.sum()).backward()
    return out, {name: p.grad for name, p in model.named_parameters() if p.grad is not None}


def compare(device: str, train: bool, atol: float):
    video = torch.randn(2, 4, 3, 16, 16, generator=torch.Generator().manual_seed(1)).to(device)
    gather = build(dict(type='BlockSparseAttention'), device)
    flex = build(dict(type='FlexBlockSparseAttention', compile=device != 'cpu'), device)
    out, grads = run(gather, video, train)
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='flex_attention called without torch.compile')
        out_flex, grads_flex = run(flex, video, train)
    torch.testing.assert_close(out_flex.tokens, out.tokens, atol=atol, rtol=atol)
    torch.testing.assert_close(out_flex.pooled, out.pooled, atol=atol, rtol=atol)
    for kept, kept_flex in zip(out.kept_indices, out_flex.kept_indices):
        assert torch.equal(kept, kept_flex)
    assert grads.keys() == grads_flex.keys()
    if train:
        assert grads['blocks.0.attn.relative_position_bias.table'].abs().sum() > 0
    for name in grads:
        torch.testing.assert_close(grads_flex[name], grads[name], atol=atol, rtol=atol,
                                   msg=lambda text, name=name: f'gradient of {name}: {text}')


def test_flex_encoder_equals_gather_encoder_in_eval_on_cpu():
    with torch.no_grad():
        compare('cpu', train=False, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason='FlexAttention has no backward on CPU (torch 2.14); needs CUDA')
def test_flex_encoder_equals_gather_encoder_in_training_on_cuda():
    compare('cuda', train=True, atol=2e-3)
