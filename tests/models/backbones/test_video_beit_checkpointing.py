"""VideoBEiT(with_cp=True): same outputs, pruning indices and gradients as without checkpointing, in
training mode with block-sparse attention (fresh random patterns per call), pruning and drop-path."""
import torch

from svitt_mm.registry import BACKBONES

CFG = dict(type='VideoBEiT', img_size=16, patch_size=4, embed_dims=16, num_layers=4, num_heads=2,
           mlp_ratio=2.0, drop_path_rate=0.2, max_frames=4,
           attention=dict(type='BlockSparseAttention', block_size=4, local_blocks=1, random_blocks=1,
                          dense_threshold=float('inf')),
           pruner=dict(type='ClsAttentionPruner', keep_rate=0.7), prune_layers=(1, 2))


def build(with_cp: bool):
    torch.manual_seed(0)
    model = BACKBONES.build(dict(CFG, with_cp=with_cp))
    with torch.no_grad():  # non-zero bias tables, so that a dropped bias would change the result
        for block in model.blocks:
            block.attn.relative_position_bias.table.normal_(0, 1)
    return model.train()


def run(model, video):
    torch.manual_seed(7)  # same sparse patterns and drop-path draws for both models
    out = model(video)
    (out.tokens.square().mean() + out.pooled.sum()).backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return out, grads


def test_checkpointing_keeps_outputs_indices_and_gradients():
    video = torch.randn(2, 4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    plain, checkpointed = build(False), build(True)
    out, grads = run(plain, video)
    out_cp, grads_cp = run(checkpointed, video)
    torch.testing.assert_close(out_cp.tokens, out.tokens, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(out_cp.pooled, out.pooled, atol=1e-6, rtol=1e-5)
    assert len(out.kept_indices) == 2
    for kept, kept_cp in zip(out.kept_indices, out_cp.kept_indices):
        assert torch.equal(kept, kept_cp)
    assert torch.equal(out.positions, out_cp.positions)
    assert grads.keys() == grads_cp.keys()
    table = 'blocks.0.attn.relative_position_bias.table'
    assert table in grads and grads[table].abs().sum() > 0  # the bias takes part in the recomputation
    for name in grads:
        torch.testing.assert_close(grads_cp[name], grads[name], atol=1e-5, rtol=1e-4,
                                   msg=lambda text, name=name: f'gradient of {name}: {text}')


def test_checkpointing_is_off_in_eval_and_under_no_grad():
    model = build(True).eval()
    video = torch.randn(1, 2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = build(False).eval()(video).tokens
        assert torch.equal(model(video).tokens, expected)
