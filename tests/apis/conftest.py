"""A tiny SViTT retrieval model trained for a few iterations on the demo data (by tools/train.py), for the
tests of the inference API and of the tools that use it."""
import os
import os.path as osp
import subprocess
import sys

import pytest

from svitt_mm.datasets.demo import build_temporal_shapes

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# svitt_demo.py (block-sparse attention, token pruning, text-guided pruning) with a 2-layer video
# encoder and a randomly initialised 2-layer text encoder, trained by iterations; the data paths are in
# the config itself, as a user's would be.
TINY_CONFIG = '''
_base_ = [{base!r}]
model = dict(
    vision_encoder=dict(embed_dims=32, num_layers=2, num_heads=2, prune_layers=(1,)),
    text_encoder=dict(pretrained=None, hidden_size=32, num_layers=3, num_heads=2, intermediate_size=64,
                      fusion_layer=1),
    contrastive_head=dict(embed_dim=16))
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=24, val_interval=1000)
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=3)]
default_hooks = dict(checkpoint=dict(interval=24, by_epoch=False), logger=dict(interval=8))
log_processor = dict(by_epoch=False)
train_dataloader = dict(batch_size=8, num_workers=0, persistent_workers=False,
                        dataset=dict(ann_file={train!r}, media_root={media!r}))
val_dataloader = dict(batch_size=16, num_workers=0, persistent_workers=False,
                      dataset=dict(ann_file={test!r}, media_root={media!r}))
test_dataloader = val_dataloader
val_cfg = dict(k_test=8)
test_cfg = dict(k_test=8)
'''


def tool_env() -> dict:
    return dict(os.environ, HF_HUB_OFFLINE='1', PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1')


def run_tool(args, cwd=ROOT, timeout=600, check=True) -> subprocess.CompletedProcess:
    """Run ``python ARGS`` (a tool) and fail with its output's tail when ``check`` and it fails."""
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=tool_env(), capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}')
    return proc


@pytest.fixture(scope='session')
def trained_model(tmp_path_factory) -> dict:
    """``config``, ``checkpoint`` and the demo data's ``paths`` (``train``, ``test``, ``media_root``)."""
    root = tmp_path_factory.mktemp('inference')
    paths = build_temporal_shapes(str(root / 'data'), videos_per_caption=1)
    config = str(root / 'tiny_svitt.py')
    with open(config, 'w') as f:
        f.write(TINY_CONFIG.format(base=osp.join(ROOT, 'configs', 'demo', 'svitt_demo.py'),
                                   train=paths['train'], test=paths['test'], media=paths['media_root']))
    work_dir = str(root / 'work')
    run_tool([osp.join(ROOT, 'tools', 'train.py'), config, '--work-dir', work_dir])
    return dict(config=config, checkpoint=osp.join(work_dir, 'iter_24.pth'), paths=paths, root=root)
