"""FrameBagEncoder: equals the wrapped encoder run frame by frame, ignores frame order, and the
frame-bag demo config gives order-free retrieval features."""
import pytest
import torch
from mmengine.config import Config

from svitt_mm.registry import BACKBONES, MODELS
from svitt_mm.apis import register_all_modules

ENCODER = dict(type='VideoBEiT', img_size=32, patch_size=8, embed_dims=32, num_layers=2, num_heads=2,
               max_frames=1)


def build_bag(**encoder):
    register_all_modules()
    torch.manual_seed(0)
    bag = BACKBONES.build(dict(type='FrameBagEncoder', encoder={**ENCODER, **encoder})).eval()
    for block in bag.encoder.blocks:  # non-zero position bias, so token positions matter inside a frame
        torch.nn.init.normal_(block.attn.relative_position_bias.table, std=0.5)
    return bag


def test_tubelet_encoders_are_refused():
    with pytest.raises(ValueError, match='tubelet_size=1, got 2'):
        build_bag(max_frames=2, tubelet_size=2)


def test_matches_per_frame_reference_with_pruning():
    bag = build_bag(pruner=dict(type='ClsAttentionPruner', keep_rate=0.5), prune_layers=(0,))
    video = torch.randn(2, 3, 3, 32, 32)
    with torch.no_grad():
        out = bag(video)
        frames = [bag.encoder(video[:, t:t + 1]) for t in range(3)]
    assert bag.embed_dims == 32
    global_token = torch.stack([f.tokens[:, 0] for f in frames]).mean(0)
    local = torch.cat([f.tokens[:, 1:] for f in frames], dim=1)
    torch.testing.assert_close(out.tokens, torch.cat([global_token[:, None], local], dim=1),
                               rtol=0, atol=1e-5)
    torch.testing.assert_close(out.pooled, torch.stack([f.pooled for f in frames]).mean(0), rtol=0,
                               atol=1e-5)
    expected = torch.cat([f.positions.expand(2, -1) + 16 * t for t, f in enumerate(frames)], dim=1)
    assert out.positions.tolist() == expected.tolist()
    assert out.tokens.shape == (2, 1 + 3 * 8, 32)  # 16 patches per frame, 8 kept
    assert out.kept_indices == ()


def test_output_ignores_frame_order():
    bag = build_bag()
    video = torch.randn(2, 4, 3, 32, 32)
    order = [2, 0, 3, 1]
    with torch.no_grad():
        ref = bag(video)
        for permuted, frame_order in ((video.flip(1), [3, 2, 1, 0]), (video[:, order], order)):
            out = bag(permuted)
            torch.testing.assert_close(out.pooled, ref.pooled, rtol=0, atol=1e-6)
            torch.testing.assert_close(out.tokens[:, 0], ref.tokens[:, 0], rtol=0, atol=1e-6)
            # the local tokens are the same per-frame blocks, in the new frame order
            blocks = ref.tokens[:, 1:].unflatten(1, (4, 16))[:, frame_order].flatten(1, 2)
            torch.testing.assert_close(out.tokens[:, 1:], blocks, rtol=0, atol=1e-6)


def test_framebag_demo_retrieval_features_ignore_frame_order():
    register_all_modules()
    cfg = Config.fromfile('configs/demo/framebag_demo.py')
    cfg.model.vision_encoder.encoder.update(embed_dims=32, num_layers=2, num_heads=2)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    model.init_weights()
    assert type(model.vision_encoder).__name__ == 'FrameBagEncoder'
    video = torch.randn(2, 1, 4, 3, 64, 64)
    ids = torch.tensor([[101, 2000, 2001, 2002, 102, 0, 0, 0]] * 2)
    mask = (ids > 0).long()
    with torch.no_grad():
        text = model.encode_text(ids, mask)
        features = [model.encode_video(v) for v in (video, video.flip(2), video[:, :, [1, 3, 0, 2]])]
        logits = [model.match_logits(f.tokens[:, 0], text.states, mask) for f in features]
    for other, other_logits in zip(features[1:], logits[1:]):
        torch.testing.assert_close(other.embedding, features[0].embedding, rtol=0, atol=1e-6)
        torch.testing.assert_close(other_logits, logits[0], rtol=0, atol=1e-5)
