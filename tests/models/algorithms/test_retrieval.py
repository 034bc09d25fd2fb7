"""VideoTextRetriever assembled from the demo configs (tiny widths): losses, gradients, pair construction,
sparse eval determinism and the predict contract."""
import pytest
import torch
from mmengine.config import Config

from svitt_mm.registry import MODELS
from svitt_mm.apis import register_all_modules

TINY_VISION = dict(embed_dims=32, num_layers=3, num_heads=2)


def build(config, **vision):
    register_all_modules()
    cfg = Config.fromfile(config)
    cfg.model.vision_encoder.update(TINY_VISION, **vision)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def batch(num_videos=4, captions_per_video=1, clips=1, seed=0):
    gen = torch.Generator().manual_seed(seed)
    video = torch.randn(num_videos, clips, 4, 3, 64, 64, generator=gen)
    num_texts = num_videos * captions_per_video
    ids = torch.randint(1000, 3000, (num_texts, 8), generator=gen)
    ids[:, 0] = 101
    mask = torch.ones(num_texts, 8, dtype=torch.long)
    mask[::2, 6:] = 0
    samples = dict(text_ids=ids, text_mask=mask,
                   text_owner=torch.arange(num_videos).repeat_interleave(captions_per_video),
                   video_ids=torch.arange(num_videos), sample_idx=torch.arange(num_videos))
    return video, samples


@pytest.mark.parametrize('config', ['configs/demo/dense_demo.py', 'configs/demo/svitt_demo.py'])
def test_loss_is_finite_and_trains_every_part(config):
    model = build(config)
    video, samples = batch()
    losses = model(video, samples, mode='loss')
    assert set(losses) == {'loss_itc', 'loss_itm'}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    for name in ('vision_encoder.blocks.0.attn.relative_position_bias.table', 'vision_encoder.cls_token',
                 'text_encoder.layers.4.cross_attn.key.weight', 'matching_head.classifier.weight',
                 'contrastive_head.vision_proj.weight', 'contrastive_head.temperature'):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_itm_pairs_positives_and_mined_negatives(monkeypatch):
    model = build('configs/demo/dense_demo.py')
    video, samples = batch(num_videos=3)
    samples['video_ids'] = torch.tensor([0, 1, 1])  # videos 1 and 2 are the same video: no negatives
    seen = {}

    def spy(fused_cls, labels, weights):
        seen.update(labels=labels, weights=weights, pairs=len(fused_cls))
        return fused_cls.sum() * 0

    monkeypatch.setattr(model.matching_head, 'loss', spy)
    model(video, samples, mode='loss')
    assert seen['pairs'] == 9
    assert seen['labels'].tolist() == [1, 1, 1, 0, 0, 0, 0, 0, 0]
    assert seen['weights'][:3].tolist() == [1, 1, 1]


def test_sparse_model_eval_is_deterministic_and_predict_contract():
    model = build('configs/demo/svitt_demo.py').eval()
    video, samples = batch(num_videos=2, captions_per_video=2, clips=2)
    with torch.no_grad():
        first = model(video, samples, mode='predict')
        torch.manual_seed(123)  # the global RNG must not matter in evaluation
        second = model(video, samples, mode='predict')
    assert len(first) == 2
    for a, b in zip(first, second):
        assert a['video_tokens'].shape[0] == 2  # two clips
        assert a['text_emb'].shape[0] == 2  # two captions of this video
        # 64 patches -> 45 -> 32 after the two pruning layers, plus [CLS]
        assert a['video_tokens'].shape[1] == 33
        torch.testing.assert_close(a['video_tokens'], b['video_tokens'], atol=0, rtol=0)
        torch.testing.assert_close(a['video_emb'], b['video_emb'], atol=0, rtol=0)


def test_training_requires_one_clip():
    model = build('configs/demo/dense_demo.py')
    video, samples = batch(clips=2)
    with pytest.raises(ValueError, match='num_clips=2'):
        model(video, samples, mode='loss')


def test_unknown_mode_and_pooling_are_readable_errors():
    model = build('configs/demo/dense_demo.py')
    with pytest.raises(ValueError, match='unknown mode'):
        model(*batch(), mode='nope')
    register_all_modules()
    cfg = Config.fromfile('configs/demo/dense_demo.py')
    cfg.model.text_pooling = 'max'
    with pytest.raises(ValueError, match='text_pooling'):
        MODELS.build(cfg.model)
