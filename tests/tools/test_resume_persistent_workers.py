"""Resume is bit-exact with the shipped loader settings (2 persistent workers, random frame offsets and
crops): killed with SIGKILL during epoch 2 of an epoch-based run, resumed from the epoch-1 checkpoint, the
final weights equal those of an uninterrupted run. Without per-epoch worker seeding the persistent
workers of the uninterrupted run would have carried their random streams into epochs 2 and 3, and the
resumed run's fresh workers would not."""
import os.path as osp
import subprocess
import sys

import torch

from svitt_mm.utils.safe_resume import register_safe_checkpoint_globals
from test_fault_tolerance import _kill_after_first_checkpoint
from tool_helpers import ROOT, TINY_MODEL, data_options, run_checked, tool_env

register_safe_checkpoint_globals()

EPOCHS = 3
# dense_demo.py (2 persistent workers, SampleFrames 'rand', random crops and flips) with a tiny model, a
# checkpoint every epoch and a quarter of the clips per epoch, so that each epoch takes seconds.
TINY_EPOCH_CONFIG = '''
_base_ = [{base!r}]
''' + TINY_MODEL + '''
max_epochs = {epochs}
train_cfg = dict(max_epochs={epochs}, val_interval=1000)
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end={epochs})]
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=3), logger=dict(interval=1))
train_dataloader = dict(batch_size=8, num_workers=2, persistent_workers=True)
'''


def _train_cmd(config, work_dir, paths, *extra):
    return [sys.executable, 'tools/train.py', config, '--work-dir', work_dir, '--no-validate', *extra,
            '--cfg-options', *data_options(paths)]


def test_sigkill_mid_epoch_then_resume_with_persistent_workers(small_demo_data, tmp_path):
    config = str(tmp_path / 'tiny_epoch_demo.py')
    with open(config, 'w') as f:
        f.write(TINY_EPOCH_CONFIG.format(base=osp.join(ROOT, 'configs', 'demo', 'dense_demo.py'), epochs=EPOCHS))
    reference_dir, work_dir = str(tmp_path / 'reference'), str(tmp_path / 'work')
    reference = subprocess.Popen(_train_cmd(config, reference_dir, small_demo_data), cwd=ROOT, env=tool_env(),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    checkpoint = _kill_after_first_checkpoint(_train_cmd(config, work_dir, small_demo_data), work_dir)
    assert checkpoint.endswith('epoch_1.pth')
    resumed = run_checked(_train_cmd(config, work_dir, small_demo_data, '--resume'), timeout=600)
    assert 'resumed epoch: 1' in resumed.stdout + resumed.stderr

    _, stderr = reference.communicate(timeout=600)
    assert reference.returncode == 0, stderr[-3000:]
    final = torch.load(osp.join(work_dir, f'epoch_{EPOCHS}.pth'), map_location='cpu', weights_only=True)
    expected = torch.load(osp.join(reference_dir, f'epoch_{EPOCHS}.pth'), map_location='cpu', weights_only=True)
    assert final['state_dict'].keys() == expected['state_dict'].keys()
    for key, value in final['state_dict'].items():
        torch.testing.assert_close(value, expected['state_dict'][key], rtol=0, atol=0, msg=key)
