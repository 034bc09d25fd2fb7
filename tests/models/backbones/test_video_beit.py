import math

import pytest
import torch
import torch.nn.functional as F

from svitt_mm.models.backbones import VideoBEiT
from svitt_mm.models.backbones.token_order import token_order
from svitt_mm.registry import BACKBONES

TINY = dict(img_size=16, patch_size=4, embed_dims=16, num_layers=4, num_heads=2, mlp_ratio=2.0,
            drop_path_rate=0.0, max_frames=4)


def tiny_model(seed=0, **overrides):
    """A tiny VideoBEiT with random (non-zero) bias tables and q/v biases, in eval mode."""
    torch.manual_seed(seed)
    model = BACKBONES.build(dict(type='VideoBEiT', **{**TINY, **overrides}))
    with torch.no_grad():
        for block in model.blocks:
            block.attn.relative_position_bias.table.normal_(0, 1)
            block.attn.q_bias.normal_(0, 0.5)
            block.attn.v_bias.normal_(0, 0.5)
            block.gamma_1.normal_(1, 0.1)
            block.gamma_2.normal_(1, 0.1)
        model.cls_token.normal_(0, 1)
    return model.eval()


def clip(batch, frames, seed=1):
    return torch.randn(batch, frames, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


def reference_forward(model, video, bias_reference, keep_rate=None):
    """Per-sample, per-head explicit re-computation of VideoBEiT (incl. [CLS]-attention pruning); the
    patch embedding is a Conv3d over (time, height, width) with kernel and stride (tubelet, p, p)."""
    size, patch = model.tubelet_size, model.patch_size
    grid = (video.shape[1] // size, *model.frame_grid)
    # model weight [C', s*3, p, p] (channels frame-major) -> Conv3d weight [C', 3, s, p, p]
    weight = model.patch_embed.proj.weight.unflatten(1, (size, 3)).transpose(1, 2)
    tokens, pooled, kept = [], [], []
    for sample in video:
        patches = F.conv3d(sample.transpose(0, 1)[None], weight, model.patch_embed.proj.bias,
                           stride=(size, patch, patch))[0]  # [C', T/s, Hp, Wp]
        patches = patches.permute(1, 2, 3, 0).reshape(-1, model.embed_dims)  # raster order
        positions = token_order(model.token_order, grid).tolist()
        x = torch.cat([model.cls_token[0], patches[positions]])
        sample_kept = []
        for layer, block in enumerate(model.blocks):
            attn = block.attn
            h = block.norm1(x)
            w_q, w_k, w_v = attn.qkv.weight.chunk(3)
            q, k, v = h @ w_q.T + attn.q_bias, h @ w_k.T, h @ w_v.T + attn.v_bias
            table = attn.relative_position_bias.table
            bias = bias_reference(table, [None] + positions, grid, model.max_tubelets)
            heads, probs = [], []
            for head, (qh, kh, vh) in enumerate(zip(q.chunk(2, -1), k.chunk(2, -1), v.chunk(2, -1))):
                p = (qh @ kh.T / math.sqrt(qh.shape[-1]) + bias[head]).softmax(-1)
                heads.append(p @ vh)
                probs.append(p[0])
            x = x + block.gamma_1 * attn.proj(torch.cat(heads, -1))
            x = x + block.gamma_2 * block.mlp(block.norm2(x))
            if layer in model.prune_layers:
                scores = torch.stack(probs).mean(0)[1:]
                keep = sorted(scores.topk(math.ceil(keep_rate * len(positions))).indices.tolist())
                x = torch.cat([x[:1], x[1:][keep]])
                positions = [positions[i] for i in keep]
                sample_kept.append(positions)
        tokens.append(x)
        pooled.append(model.pooler_norm(x[1:].mean(0)))
        kept.append(sample_kept)
    return torch.stack(tokens), torch.stack(pooled), kept


@pytest.mark.parametrize('frames, order, tubelet', [
    (1, 'raster', 1), (2, 'hilbert', 1), (4, 'zcurve', 1), (8, 'raster', 1), (4, 'raster', 2),
    (8, 'zcurve', 4)])
def test_matches_explicit_reference_without_pruning(bias_reference, frames, order, tubelet):
    model = tiny_model(token_order=order, tubelet_size=tubelet)
    video = clip(2, frames)
    with torch.no_grad():
        out = model(video)
        tokens, pooled, _ = reference_forward(model, video, bias_reference)
    assert out.tokens.shape == (2, 1 + 16 * frames // tubelet, 16)
    torch.testing.assert_close(out.tokens, tokens, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.pooled, pooled, atol=1e-5, rtol=0)
    assert out.kept_indices == ()
    assert out.positions.tolist() == [token_order(order, (frames // tubelet, 4, 4)).tolist()]


@pytest.mark.parametrize('frames, order, tubelet', [(2, 'raster', 1), (8, 'hilbert', 1), (8, 'raster', 2)])
def test_matches_explicit_reference_with_pruning(bias_reference, frames, order, tubelet):
    model = tiny_model(token_order=order, pruner=dict(type='ClsAttentionPruner', keep_rate=0.6),
                       prune_layers=(0, 1, 2), tubelet_size=tubelet)
    video = clip(3, frames)
    with torch.no_grad():
        out = model(video)
        tokens, pooled, kept = reference_forward(model, video, bias_reference, keep_rate=0.6)
    torch.testing.assert_close(out.tokens, tokens, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.pooled, pooled, atol=1e-5, rtol=0)
    for layer in range(3):
        assert out.kept_indices[layer].tolist() == [sample[layer] for sample in kept]
    assert torch.equal(out.positions, out.kept_indices[-1])


def test_tubelets_see_frame_order_before_any_attention():
    """With the bias tables at their initial zeros the model has no temporal position at all: a clip and
    its reversal give the same outputs when every frame is its own token, but not with 2-frame
    tubelets, whose patch embedding sees the frames of a tubelet in order."""
    video = clip(2, 4)
    for tubelet, order_blind in ((1, True), (2, False)):
        torch.manual_seed(0)
        model = VideoBEiT(**{**TINY, 'tubelet_size': tubelet}).eval()
        with torch.no_grad():
            forward, backward = model(video).pooled, model(video.flip(1)).pooled
        assert torch.allclose(forward, backward, atol=1e-5) == order_blind


def test_kept_indices_compose_top_k_of_head_averaged_cls_attention():
    keep_rate = 0.5
    model = tiny_model(token_order='hilbert', pruner=dict(type='ClsAttentionPruner', keep_rate=keep_rate),
                       prune_layers=(1, 2, 3))
    captured = {}
    for layer, block in enumerate(model.blocks):
        block.attn.op.register_forward_hook(
            lambda module, args, output, layer=layer: captured.__setitem__(layer, output[1]))
    with torch.no_grad():
        out = model(clip(2, 4))
    positions = [token_order('hilbert', (4, 4, 4)).tolist()] * 2
    for step, layer in enumerate((1, 2, 3)):
        scores = captured[layer][:, :, 0, 1:].mean(1)  # DenseAttention's [CLS] probabilities
        assert scores.shape == (2, len(positions[0]))
        num_keep = math.ceil(keep_rate * len(positions[0]))
        keep = [sorted(s.topk(num_keep).indices.tolist()) for s in scores]
        positions = [[pos[i] for i in idx] for pos, idx in zip(positions, keep)]
        assert out.kept_indices[step].tolist() == positions
    assert [len(p) for p in positions] == [8, 8]  # 64 -> 32 -> 16 -> 8


def test_keep_rate_one_equals_unpruned_model():
    dense = tiny_model()
    pruned = tiny_model(pruner=dict(type='ClsAttentionPruner', keep_rate=1.0), prune_layers=(0, 2))
    video = clip(2, 3)
    with torch.no_grad():
        a, b = dense(video), pruned(video)
    torch.testing.assert_close(b.tokens, a.tokens, atol=1e-6, rtol=0)
    torch.testing.assert_close(b.pooled, a.pooled, atol=1e-6, rtol=0)
    assert [k.tolist() for k in b.kept_indices] == [[list(range(48))] * 2] * 2


def test_random_pruner_train_redraws_and_eval_is_reproducible():
    model = tiny_model(pruner=dict(type='RandomPruner', keep_rate=0.5), prune_layers=(1,),
                       drop_path_rate=0.2)
    video = clip(1, 2)
    model.train()
    with torch.no_grad():
        draws = {tuple(model(video).kept_indices[0][0].tolist()) for _ in range(5)}
    assert len(draws) > 1
    model.eval()
    with torch.no_grad():
        first, second = model(video), model(video)
    assert torch.equal(first.tokens, second.tokens)
    assert torch.equal(first.kept_indices[0], second.kept_indices[0])


def test_gradients_reach_every_bias_table():
    model = tiny_model(pruner=dict(type='ClsAttentionPruner', keep_rate=0.7), prune_layers=(1,)).train()
    out = model(clip(2, 2))
    (out.pooled.pow(2).sum() + out.tokens[:, 0].sum()).backward()
    for block in model.blocks:
        grad = block.attn.relative_position_bias.table.grad
        assert grad is not None and grad.abs().sum() > 0
    assert model.cls_token.grad.abs().sum() > 0


def test_autocast_bfloat16_close_to_float32():
    model = tiny_model()
    video = clip(2, 2)
    with torch.no_grad():
        full = model(video)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            half = model(video)
    assert torch.isfinite(half.tokens).all()
    torch.testing.assert_close(half.pooled.float(), full.pooled, atol=0.1, rtol=0)


def test_autocast_bfloat16_with_pruning_keeps_consistent_positions():
    model = tiny_model(pruner=dict(type='ClsAttentionPruner', keep_rate=0.5), prune_layers=(0, 2))
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        out = model(clip(3, 4))
    first, second = out.kept_indices
    assert first.shape == (3, 32) and second.shape == (3, 16)
    for a, b in zip(first.tolist(), second.tolist()):
        assert set(b) <= set(a) and len(set(a)) == 32
    assert torch.equal(out.positions, second)
    assert out.tokens.shape == (3, 17, 16) and torch.isfinite(out.tokens).all()


def test_default_initialisation():
    model = VideoBEiT(**{**TINY, 'layer_scale_init': 0.3})
    block = model.blocks[1]
    assert torch.count_nonzero(block.attn.relative_position_bias.table) == 0
    assert torch.all(block.gamma_1 == 0.3) and torch.all(block.gamma_2 == 0.3)
    assert torch.all(block.attn.q_bias == 0) and torch.all(block.attn.proj.bias == 0)
    assert torch.all(block.norm1.weight == 1) and torch.all(block.norm1.bias == 0)
    assert block.attn.qkv.bias is None
    assert block.attn.qkv.weight.std().item() == pytest.approx(0.02, rel=0.1)  # 768 draws of N(0, .02)


def test_one_attention_operator_per_layer_and_linear_drop_path():
    model = VideoBEiT(**{**TINY, 'drop_path_rate': 0.3})
    ops = [block.attn.op for block in model.blocks]
    assert len({id(op) for op in ops}) == 4 and type(ops[0]).__name__ == 'DenseAttention'
    rates = [getattr(block.drop_path, 'drop_prob', 0.0) for block in model.blocks]
    assert rates == pytest.approx([0.0, 0.1, 0.2, 0.3])


def test_per_layer_attention_configs():
    model = tiny_model(attention=[dict(type='DenseAttention')] * 4)
    reference = tiny_model()
    video = clip(1, 2)
    with torch.no_grad():
        assert torch.equal(model(video).tokens, reference(video).tokens)
    with pytest.raises(ValueError, match=r'attention: expected one config or 4 \(num_layers\), got 2'):
        VideoBEiT(**{**TINY, 'attention': [dict(type='DenseAttention')] * 2})


@pytest.mark.parametrize('shape, message', [
    ((2, 3, 16, 16), r'\[B, T, 3, 16, 16\].*\(2, 3, 16, 16\)'),
    ((1, 2, 1, 16, 16), r'3 channels.*\(1, 2, 1, 16, 16\)'),
    ((1, 2, 3, 20, 16), r'16x16 frames.*4x4 grid.*\(1, 2, 3, 20, 16\)'),
    ((1, 3, 3, 16, 16), r'tubelet_size=2: clips need a multiple of 2 frames, got 3'),
])
def test_bad_input_shapes_raise_readable_errors(shape, message):
    tubelet = 2 if shape[1] == 3 else 1
    with pytest.raises(ValueError, match=message):
        VideoBEiT(**{**TINY, 'tubelet_size': tubelet})(torch.zeros(shape))


@pytest.mark.parametrize('overrides, message', [
    (dict(img_size=18), 'img_size=18 is not divisible by patch_size=4'),
    (dict(prune_layers=(1,)), 'needs a pruner'),
    (dict(pruner=dict(type='ClsAttentionPruner', keep_rate=0.5), prune_layers=(4,)), r'\[0, 3\]'),
    (dict(token_order='snake'), 'valid orders'),
    (dict(num_heads=3), 'not divisible by num_heads=3'),
    (dict(tubelet_size=3), 'tubelet_size=3 must divide max_frames=4'),
    (dict(tubelet_size=0), 'VideoBEiT.tubelet_size: 0 must be an int >= 1'),
    (dict(max_frames=0), 'VideoBEiT.max_frames: 0 must be an int >= 1'),
    (dict(prune_layers=(1, -2)), r'VideoBEiT.prune_layers: \(1, -2\) must be a list whose every item is an int >= 0'),
])
def test_bad_configs_raise_readable_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        VideoBEiT(**{**TINY, **overrides})


def test_each_layer_gets_its_own_deterministic_sparse_pattern():
    model = VideoBEiT(img_size=32, patch_size=8, embed_dims=16, num_layers=3, num_heads=2, max_frames=4,
                      attention=dict(type='BlockSparseAttention', block_size=4, local_blocks=1,
                                     random_blocks=1, dense_threshold=float('inf'))).eval()
    ops = [block.attn.op for block in model.blocks]
    assert [op.layer_index for op in ops] == [0, 1, 2]
    tables = [op.eval_layout(64).block_index for op in ops]
    assert not torch.equal(tables[0], tables[1]) or not torch.equal(tables[1], tables[2])
