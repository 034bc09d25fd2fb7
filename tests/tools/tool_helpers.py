"""Helpers of the fault-tolerance and distributed tests of tools/train.py and tools/test.py: a tiny
iteration-based variant of configs/demo/dense_demo.py and running the tools."""
import importlib.util
import os
import os.path as osp
import subprocess
from typing import List

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# A 2-layer, 32-wide video encoder and a randomly initialised 2-layer, 32-wide text encoder (one fusion layer).
TINY_MODEL = '''
model = dict(
    vision_encoder=dict(embed_dims=32, num_layers=2, num_heads=2),
    text_encoder=dict(pretrained=None, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
                      fusion_layer=1),
    contrastive_head=dict(embed_dim=16))
'''
# dense_demo.py with the tiny model, trained by iterations with checkpoints every 2.
TINY_ITER_CONFIG = '''
_base_ = [{base!r}]
''' + TINY_MODEL + '''
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters={max_iters}, val_interval=1000)
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=3)]
default_hooks = dict(checkpoint=dict(interval=2, by_epoch=False, max_keep_ckpts=2), logger=dict(interval=1))
log_processor = dict(by_epoch=False)
train_dataloader = dict(batch_size=8, num_workers={num_workers}, persistent_workers=False)
val_dataloader = dict(batch_size={test_batch_size}, num_workers=0, persistent_workers=False)
test_dataloader = val_dataloader
val_cfg = dict(k_test=4)
test_cfg = dict(k_test=4)
'''

_spec = importlib.util.spec_from_file_location('run_demo', osp.join(ROOT, 'tools', 'run_demo.py'))
_run_demo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_run_demo)


def write_tiny_config(path: str, max_iters: int = 4, num_workers: int = 0, test_batch_size: int = 8) -> str:
    """Write the tiny iteration-based demo config to ``path`` and return ``path``."""
    with open(path, 'w') as f:
        f.write(TINY_ITER_CONFIG.format(base=osp.join(ROOT, 'configs', 'demo', 'dense_demo.py'),
                                        max_iters=max_iters, num_workers=num_workers,
                                        test_batch_size=test_batch_size))
    return path


def data_options(paths: dict) -> List[str]:
    """--cfg-options pointing every split at a build of the demo data (run_demo's own helper)."""
    return _run_demo.data_options(paths)


def tool_env() -> dict:
    # PYTHONFAULTHANDLER: a tool that dies of a signal prints every thread's Python stack.
    return dict(os.environ, HF_HUB_OFFLINE='1', PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1', PYTHONFAULTHANDLER='1')


def run_checked(cmd: List[str], timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``cmd`` in the repository root; fail the test with its output's tail if it fails."""
    proc = subprocess.run(cmd, cwd=ROOT, env=tool_env(), capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        # A process killed by a signal prints its thread stacks (faulthandler) before a long module list
        # that would push them out of the tail: show them too.
        fatal = proc.stderr.find('Fatal Python error')
        stacks = '' if fatal < 0 else f'\n--- first fatal error ---\n{proc.stderr[fatal:fatal + 4000]}'
        raise AssertionError(f'{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}{stacks}')
    return proc
