"""tools/analysis/visualize_tokens.py with a token merger: the groups it reports are the encoder's, merged
patches are tinted with their group's colour and patches on their own are left as they are."""
import os

import numpy as np
import torch
from mmengine.config import Config

os.environ.setdefault('HF_HUB_OFFLINE', '1')
import visualize_tokens  # noqa: E402  (tools/analysis, on sys.path by conftest.py)

from svitt_mm.apis import register_all_modules  # noqa: E402
from svitt_mm.registry import MODELS  # noqa: E402
from test_visualize_tokens import CONFIG, FRAME_SIDE, TINY, read_png  # noqa: E402


def test_merge_groups_are_drawn_and_written(tmp_path):
    register_all_modules()
    cfg = Config.fromfile(CONFIG)
    cfg.model.vision_encoder.update(TINY, pruner=dict(type='TokenMerger', keep_rate=0.7))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    frames = np.random.default_rng(0).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
    report = visualize_tokens.analyse(model, frames)
    with torch.no_grad():
        out = model.vision_encoder(visualize_tokens.normalise(model, frames))
    assert [s.groups for s in report.stages] == [g[0].tolist() for g in out.token_groups]
    tokens = visualize_tokens.write_outputs(report, str(tmp_path), {})
    first = tokens['stages'][0]
    assert first['num_kept'] == 45 and sum(first['merged_group_sizes']) - len(first['merged_group_sizes']) == 64 - 45
    assert 'merged from' in report.stages[0].title

    image = read_png(tmp_path / 'stage1_layer1.png')
    merged = report.stages[0].merged_groups()
    colour_of = {}
    for i, token in enumerate(sorted(merged)):
        for position in merged[token]:
            colour_of[position] = np.array(visualize_tokens.GROUP_COLOURS[i % 20]) * 255
    gap = visualize_tokens.GAP
    for position in range(64):
        t, h, w = position // 16, position % 16 // 4, position % 4
        patch = image[h * 64:(h + 1) * 64, t * (FRAME_SIDE + gap) + w * 64:][:, :64].astype(float)
        source = frames[t, h * 16:(h + 1) * 16, w * 16:(w + 1) * 16].repeat(4, 0).repeat(4, 1).astype(float)
        if position in colour_of:
            expected = np.round(source * 0.5 + colour_of[position] * 0.5)
            assert np.abs(patch - expected).max() <= 1, position
        else:
            assert np.array_equal(patch, source), position
