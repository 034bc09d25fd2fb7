"""tools/train.py survives SIGKILL: killed mid-epoch after a checkpoint exists, `--resume` continues
from the last checkpoint's iteration and ends with the weights of an uninterrupted run."""
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import torch

from svitt_mm.utils.safe_resume import register_safe_checkpoint_globals
from tool_helpers import ROOT, data_options, run_checked, tool_env, write_tiny_config

register_safe_checkpoint_globals()  # the checkpoints are read with weights_only=True, as on resume

MAX_ITERS = 4  # 72 training videos in batches of 8: all four iterations lie in the first epoch


def _train_cmd(config, work_dir, paths, *extra):
    return [sys.executable, 'tools/train.py', config, '--work-dir', work_dir, '--no-validate', *extra,
            '--cfg-options', *data_options(paths)]


def _kill_after_first_checkpoint(cmd, work_dir, timeout=180.0):
    """Start ``cmd``, SIGKILL it as soon as `last_checkpoint` names a checkpoint; return that path."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=tool_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    pointer = osp.join(work_dir, 'last_checkpoint')
    deadline = time.time() + timeout
    try:
        while not osp.exists(pointer):
            assert proc.poll() is None, f'training exited ({proc.returncode}) before its first checkpoint'
            assert time.time() < deadline, 'no checkpoint within the time limit'
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    with open(pointer) as f:
        return f.read().strip()


def test_sigkill_then_resume_matches_an_uninterrupted_run(small_demo_data, tmp_path):
    # One loader worker: MMEngine seeds workers from (seed, rank, worker id), so the random frame
    # offsets of the batches it re-reads to skip the trained part are those of the first run; with
    # num_workers=0 that replay would draw from the main process's restored numpy stream instead.
    config = write_tiny_config(str(tmp_path / 'tiny_iter_demo.py'), MAX_ITERS, num_workers=1)
    reference_dir, work_dir = str(tmp_path / 'reference'), str(tmp_path / 'work')
    reference = subprocess.Popen(_train_cmd(config, reference_dir, small_demo_data), cwd=ROOT,
                                 env=tool_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 text=True)

    checkpoint = _kill_after_first_checkpoint(_train_cmd(config, work_dir, small_demo_data), work_dir)
    resumed_from = torch.load(checkpoint, map_location='cpu', weights_only=True)['meta']['iter']
    assert 0 < resumed_from < MAX_ITERS  # killed mid-run, after a complete checkpoint

    resumed = run_checked(_train_cmd(config, work_dir, small_demo_data, '--resume'))
    log = resumed.stdout + resumed.stderr
    assert f'resumed epoch: 0, iter: {resumed_from}' in log
    assert f'Advance dataloader {resumed_from} steps' in log
    assert f'Iter(train) [{resumed_from + 1}/{MAX_ITERS}]' in log
    assert f'Iter(train) [{resumed_from}/{MAX_ITERS}]' not in log

    _, stderr = reference.communicate(timeout=300)
    assert reference.returncode == 0, stderr[-3000:]
    final = torch.load(osp.join(work_dir, f'iter_{MAX_ITERS}.pth'), map_location='cpu', weights_only=True)
    expected = torch.load(osp.join(reference_dir, f'iter_{MAX_ITERS}.pth'), map_location='cpu',
                          weights_only=True)
    assert final['meta']['iter'] == MAX_ITERS
    assert final['state_dict'].keys() == expected['state_dict'].keys()
    for key, value in final['state_dict'].items():
        torch.testing.assert_close(value, expected['state_dict'][key], rtol=0, atol=0, msg=key)
