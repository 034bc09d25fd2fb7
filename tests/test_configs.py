"""Every shipped config parses and its model builds (paper-scale weights replaced by random init)."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from svitt_mm.registry import MODELS
from svitt_mm.utils import register_all_modules

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in p)


def test_configs_found():
    assert any(p.endswith('dense_4f.py') for p in CONFIGS)
    assert any(p.endswith('svitt_4f.py') for p in CONFIGS)


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, ROOT))
def test_config_builds(path):
    register_all_modules()
    cfg = Config.fromfile(path)
    for key in ('vision_encoder', 'text_encoder'):
        pretrained = cfg.model[key].get('pretrained')
        if pretrained and not pretrained.startswith('package://'):
            cfg.model[key].pretrained = None  # paper weights are not shipped; build the architecture
    model = MODELS.build(cfg.model)
    assert model.vision_encoder.embed_dims > 0
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[loader].dataset.type == 'VideoTextDataset'
    frames = cfg.num_frames
    pipeline = cfg.train_dataloader.dataset.pipeline
    sampler = next(t for t in pipeline if t['type'] == 'SampleFrames')
    assert sampler['num_frames'] == frames
    if 'svitt' in osp.basename(path):
        assert model.vision_encoder.pruner is not None
