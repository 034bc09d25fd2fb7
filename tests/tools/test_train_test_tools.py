"""tools/train.py and tools/test.py end to end on a tiny model and a small build of the demo data:
training runs and logs, resume under torch's safe loading continues from the checkpoint, test.py writes
the metric JSON, and a paper config without its data stops with a readable message."""
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from svitt_mm.datasets.demo import build_temporal_shapes

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = [
    'model.vision_encoder.embed_dims=32', 'model.vision_encoder.num_layers=2',
    'model.vision_encoder.num_heads=2', 'model.text_encoder.fusion_layer=5',
    'train_dataloader.batch_size=24', 'val_dataloader.batch_size=24',
    'train_dataloader.num_workers=0', 'val_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False', 'val_dataloader.persistent_workers=False',
    'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False',
    'default_hooks.logger.interval=1',
]


def run_tool(*args, check=True):
    env = dict(os.environ, HF_HUB_OFFLINE='1', PYTHONUNBUFFERED='1')
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f'{args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}')
    return proc


@pytest.fixture(scope='module')
def demo_data(tmp_path_factory):
    return build_temporal_shapes(str(tmp_path_factory.mktemp('demo')), videos_per_caption=1)


# The same --cfg-options that `make demo` uses to point a demo config at a build of the data.
_spec = importlib.util.spec_from_file_location('run_demo', osp.join(ROOT, 'tools', 'run_demo.py'))
_run_demo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_run_demo)
data_options = _run_demo.data_options


def test_train_resume_and_test(demo_data, tmp_path):
    work = str(tmp_path / 'work')
    options = ['--cfg-options', *TINY, *data_options(demo_data), 'train_cfg.max_epochs=1',
               'train_cfg.val_interval=1', 'default_hooks.checkpoint.interval=1']
    first = run_tool('tools/train.py', 'configs/demo/dense_demo.py', '--work-dir', work, *options)
    log = first.stdout + first.stderr
    assert 'loss_itc' in log and 'loss_itm' in log
    assert 't2v/R@1' in log  # validation ran and the table hook printed
    checkpoint = osp.join(work, 'epoch_1.pth')
    assert osp.isfile(checkpoint)

    # Resume (safe loading stays on) and train one more epoch.
    options[options.index('train_cfg.max_epochs=1')] = 'train_cfg.max_epochs=2'
    second = run_tool('tools/train.py', 'configs/demo/dense_demo.py', '--work-dir', work, '--resume',
                      *options)
    log = second.stdout + second.stderr
    assert 'resumed epoch: 1' in log
    assert 'Epoch(train) [2]' in log
    state = torch.load(osp.join(work, 'epoch_2.pth'), map_location='cpu', weights_only=False)
    assert state['meta']['epoch'] == 2

    out = str(tmp_path / 'metrics.json')
    run_tool('tools/test.py', 'configs/demo/dense_demo.py', osp.join(work, 'epoch_2.pth'), '--work-dir',
             work, '--out', out, '--cfg-options', *TINY, *data_options(demo_data))
    with open(out) as f:
        metrics = json.load(f)
    for key in ('t2v/R@1', 't2v/R@5', 't2v/R@10', 't2v/MdR', 't2v/MnR', 'v2t/R@1', 'v2t/R@5',
                'v2t/R@10', 'v2t/MdR', 'v2t/MnR', 'R_mean'):
        assert key in metrics
    assert 0.0 <= metrics['t2v/R@1'] <= 100.0

    # Evaluation is reproducible: the same checkpoint gives the same metrics.
    out2 = str(tmp_path / 'metrics2.json')
    run_tool('tools/test.py', 'configs/demo/dense_demo.py', osp.join(work, 'epoch_2.pth'), '--work-dir',
             work, '--out', out2, '--cfg-options', *TINY, *data_options(demo_data))
    with open(out2) as f:
        assert json.load(f) == metrics


@pytest.mark.parametrize('config', ['configs/dense_4f.py', 'configs/svitt_4f.py'])
def test_paper_config_without_data_fails_fast_and_readably(config, tmp_path):
    proc = run_tool('tools/train.py', config, '--work-dir', str(tmp_path), check=False)
    assert proc.returncode != 0
    assert 'Traceback' not in proc.stderr
    message = proc.stderr
    assert 'train_dataloader.dataset.ann_file' in message
    assert 'model.vision_encoder.pretrained' in message
    assert 'huggingface-cli download' in message


def test_amp_on_cpu_is_refused_readably(tmp_path):
    if torch.cuda.is_available():
        pytest.skip('this machine has a GPU: --amp is allowed')
    proc = run_tool('tools/train.py', 'configs/demo/dense_demo.py', '--amp', '--work-dir', str(tmp_path),
                    check=False)
    assert proc.returncode != 0 and '--amp needs a CUDA GPU' in proc.stderr
    assert 'Traceback' not in proc.stderr
