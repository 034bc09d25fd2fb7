"""tools/analysis/caption_contrasts.py: word-pair grouping, accuracy and cosines on hand-made embeddings, the
embeddings equal the model's own, and the tool writes its table and JSON on the demo data."""
import json
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config

import caption_contrasts  # tools/analysis, on sys.path by conftest.py

from svitt_mm.datasets.demo import build_temporal_shapes
from svitt_mm.registry import DATASETS, MODELS
from svitt_mm.apis import register_all_modules
from svitt_mm.utils.errors import UserError

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

TINY = dict(embed_dims=32, num_layers=3, num_heads=2)


def test_contrast_words():
    assert caption_contrasts.contrast_words('a red circle moves left', 'a red circle moves right') == \
        ('left', 'right')
    assert caption_contrasts.contrast_words('a Blue circle grows', 'a red circle grows') == ('blue', 'red')
    assert caption_contrasts.contrast_words('a red circle grows', 'a red circle grows') is None
    assert caption_contrasts.contrast_words('a red circle grows', 'a blue square grows') is None
    assert caption_contrasts.contrast_words('a red circle grows', 'a red circle moves left') is None


def test_table_on_hand_made_embeddings():
    captions = ['a red circle moves left', 'a red circle moves right', 'a blue circle moves left',
                'a blue square moves up']
    # Videos 0 and 1 get the same embedding (an order-blind model), video 2 its own; caption 3 pairs with
    # nothing in one word.
    texts = F.normalize(torch.tensor([[1.0, 0.1, 0.0], [1.0, -0.1, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]),
                        dim=1)
    videos = F.normalize(torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]),
                         dim=1)
    table = {row['words']: row for row in caption_contrasts.contrast_table(captions, [0, 1, 2, 3], texts,
                                                                           videos)}
    assert set(table) == {'left/right', 'blue/red'}
    # Equal similarities are not a win: the order-blind pair scores 0 of 2.
    assert table['left/right']['accuracy'] == 0 and table['left/right']['pairs'] == 1
    assert table['left/right']['video_cos'] == pytest.approx(1.0)
    assert table['left/right']['text_cos'] == pytest.approx(float(texts[0] @ texts[1]))
    assert table['blue/red']['accuracy'] == 100 and table['blue/red']['video_cos'] == pytest.approx(0.0)


def tiny_config_and_model(tmp_path):
    paths = build_temporal_shapes(str(tmp_path / 'demo'), videos_per_caption=1)
    register_all_modules()
    cfg = Config.fromfile(osp.join(ROOT, 'configs/demo/svitt_demo.py'))
    options = {f'model.vision_encoder.{k}': v for k, v in TINY.items()}
    options.update({'test_dataloader.dataset.ann_file': paths['test'],
                    'test_dataloader.dataset.media_root': paths['media_root']})
    cfg.merge_from_dict(options)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    return cfg, model, options


def test_embeddings_are_the_models(tmp_path):
    cfg, model, _ = tiny_config_and_model(tmp_path)
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    captions, caption_video, texts, videos = caption_contrasts.embed_test_set(model, dataset, batch_size=5)
    assert len(captions) == len(dataset) == texts.shape[0] == videos.shape[0] and caption_video[7] == 7
    item = dataset[7]
    batch = model.data_preprocessor(dict(inputs=[item['inputs']], data_samples=[item['data_samples']]), False)
    with torch.no_grad():
        video, text = model.extract_features(batch['inputs'], batch['data_samples'])
    torch.testing.assert_close(videos[7], video.embedding[0, 0])
    torch.testing.assert_close(texts[7], text.embedding[0])
    assert captions[7] == dataset.get_data_info(7)['captions'][0]


def test_tool_writes_table_and_json(tmp_path, capsys):
    _, model, options = tiny_config_and_model(tmp_path)
    checkpoint = tmp_path / 'tiny.pth'
    torch.save({'state_dict': model.state_dict()}, checkpoint)
    out = tmp_path / 'contrasts.json'
    result = caption_contrasts.main(['configs/demo/svitt_demo.py', str(checkpoint), '--out', str(out),
                                     '--cfg-options', *[f'{k}={v}' for k, v in options.items()]])
    printed = capsys.readouterr().out
    assert 'accuracy %' in printed and 'left/right' in printed
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(result)) and saved['captions'] == 72
    words = {row['words']: row for row in saved['contrasts']}
    # 4 colours x 3 shapes: each direction pair (e.g. left/right) separates 12 caption pairs.
    assert words['left/right']['pairs'] == 12 and words['blue/red']['pairs'] == 18
    assert all(0 <= row['accuracy'] <= 100 for row in saved['contrasts'])


def test_refuses_a_missing_checkpoint(tmp_path):
    with pytest.raises(UserError, match='does not exist'):
        caption_contrasts.main(['configs/demo/svitt_demo.py', str(tmp_path / 'none.pth')])


def test_location_clips_differ_only_in_the_side():
    import numpy as np
    from svitt_mm.datasets.demo.temporal_shapes import Event
    event = Event('triangle', 'grows', ('red', 'red'))
    specs = caption_contrasts.location_clip_specs(event, np.random.default_rng(0), 64)
    left, right = specs['left'], specs['right']
    assert left.gradient == right.gradient == (0.0, 0.0)  # a plain background
    assert (left.radii, left.colors, left.tint) == (right.radii, right.colors, right.tint)
    for (lx, ly), (rx, ry) in zip(left.centers, right.centers):
        assert ly == ry and lx < 32 < rx and lx == pytest.approx(64 - rx)
    frames = {side: caption_contrasts.render_clip(spec, 16, 64) for side, spec in specs.items()}
    torch.testing.assert_close(torch.from_numpy(frames['left'][:, :, ::-1].copy()), torch.from_numpy(frames['right']),
                               atol=1, rtol=0)  # mirror images (the shapes are left-right symmetric)
    assert caption_contrasts.location_caption(event, 'left') == 'a red triangle on the left grows'


def test_tool_reports_location_contrasts(tmp_path):
    _, model, options = tiny_config_and_model(tmp_path)
    checkpoint = tmp_path / 'tiny.pth'
    torch.save({'state_dict': model.state_dict()}, checkpoint)
    result = caption_contrasts.main(['configs/demo/svitt_demo.py', str(checkpoint), '--locations',
                                     str(tmp_path / 'locations'), '--cfg-options',
                                     *[f'{k}={v}' for k, v in options.items()]])
    annotations = json.loads((tmp_path / 'locations' / 'locations.json').read_text())
    assert result['location_captions'] == len(annotations) == 96  # 48 events x 2 sides
    assert {a['caption'] for a in annotations[:2]} == {'a red circle on the left moves up',
                                                       'a red circle on the right moves up'}
    words = {row['words']: row for row in result['location_contrasts']}
    assert words['left/right']['pairs'] == 48 and words['down/up']['pairs'] == 24
    # the longest caption is tokenised whole: the two sides give different text embeddings
    assert words['left/right']['text_cos'] < 1 - 1e-6


def test_location_dataset_tokenises_long_captions():
    dataset = dict(type='VideoTextDataset', ann_file='a', media_root='b',
                   pipeline=[dict(type='OpenVideo'), dict(type='TokenizeCaptions', tokenizer='t', max_length=8)])
    built = caption_contrasts.location_dataset_config(dataset, 'x.json', 'videos')
    assert built['ann_file'] == 'x.json' and built['pipeline'][1]['max_length'] == 12
    assert dataset['pipeline'][1]['max_length'] == 8  # the config is not changed
