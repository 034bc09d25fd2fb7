"""tools/train.py and tools/test.py under torchrun with 2 gloo processes on CPU: DDP training, the
FlexibleRunner DDP strategy, and a distributed evaluation equal to a single-process one; launchers and
strategies that cannot run here stop with a readable message."""
import importlib.util
import json
import os.path as osp
import subprocess
import sys
import weakref

import pytest
import torch

from svitt_mm.utils.safe_resume import register_safe_checkpoint_globals
from tool_helpers import ROOT, data_options, run_checked, tool_env, write_tiny_config

register_safe_checkpoint_globals()

# 23 test videos: 12 per rank (one padded), in batches [8, 4] on each rank against [8, 8, 7] in one
# process, so the gather must drop the padding and keep the order.
TEST_SIZE = 23


def _torchrun(port: int, *args: str) -> list:
    return [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', f'--master_port={port}',
            *args, '--launcher', 'pytorch']


@pytest.fixture(scope='module')
def setup(small_demo_data, tmp_path_factory):
    root = tmp_path_factory.mktemp('dist')
    with open(small_demo_data['test']) as f:
        annotations = json.load(f)[:TEST_SIZE]
    paths = dict(small_demo_data, test=str(root / 'test_small.json'))
    with open(paths['test'], 'w') as f:
        json.dump(annotations, f)
    config = write_tiny_config(str(root / 'tiny_iter_demo.py'), max_iters=2, test_batch_size=8)
    return root, config, data_options(paths)


@pytest.mark.skipif(torch.cuda.is_available(), reason='tests the CPU (gloo) path')
def test_ddp_training_and_distributed_evaluation_match_single_process(setup):
    root, config, options = setup
    work_dir = str(root / 'ddp')
    train = run_checked(_torchrun(29531, 'tools/train.py', config, '--work-dir', work_dir, '--no-validate',
                                  '--cfg-options', *options))
    log = train.stdout + train.stderr
    assert 'Distributed training: True' in log and 'Iter(train) [2/2]' in log
    checkpoint = osp.join(work_dir, 'iter_2.pth')
    assert torch.load(checkpoint, map_location='cpu', weights_only=True)['meta']['iter'] == 2

    outs = [str(root / 'metrics_dist.json'), str(root / 'metrics_single.json')]
    dist_eval = subprocess.Popen(
        _torchrun(29532, 'tools/test.py', config, checkpoint, '--work-dir', work_dir, '--out', outs[0],
                  '--cfg-options', *options), cwd=ROOT, env=tool_env(), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    run_checked([sys.executable, 'tools/test.py', config, checkpoint, '--work-dir', work_dir, '--out',
                 outs[1], '--cfg-options', *options])
    output, _ = dist_eval.communicate(timeout=300)
    assert dist_eval.returncode == 0, output[-3000:]
    assert f'of {TEST_SIZE} videos and {TEST_SIZE} texts' in output
    distributed, single = (json.load(open(out)) for out in outs)
    assert set(distributed) == set(single) and 't2v/R@1' in single
    # Per-sample features do not depend on the batch they were computed in (seen equal bit for bit);
    # 1e-6 only allows for a BLAS kernel picked by batch size. One rank moved changes R@k by 4.3.
    assert distributed == pytest.approx(single, abs=1e-6)


@pytest.mark.skipif(torch.cuda.is_available(), reason='tests the CPU (gloo) path')
def test_flexible_runner_ddp_strategy_trains(setup):
    root, config, options = setup
    work_dir = str(root / 'flexible')
    train = run_checked(_torchrun(29533, 'tools/train.py', config, '--strategy', 'ddp', '--work-dir',
                                  work_dir, '--no-validate', '--cfg-options', *options))
    log = train.stdout + train.stderr
    assert "runner_type = 'FlexibleRunner'" in log and 'Iter(train) [2/2]' in log
    state = torch.load(osp.join(work_dir, 'iter_2.pth'), map_location='cpu', weights_only=True)
    assert state['meta']['iter'] == 2 and 'rng_state' in state
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert f.read() == osp.join(work_dir, 'iter_2.pth')


@pytest.mark.parametrize('args, message', [
    # On CPU --strategy deepspeed says why it cannot run, whether or not deepspeed is installed.
    (['--strategy', 'deepspeed'], '--strategy deepspeed cannot run on this machine: DeepSpeed\'s ZeRO engine '
                                  'runs on CUDA GPUs here'),
    (['--strategy', 'fsdp'], '--strategy fsdp needs a process group: run tools/train.py under torchrun'),
    (['--launcher', 'slurm'], 'on CPU run the tool under torchrun with --launcher pytorch'),
])
def test_unavailable_strategy_or_launcher_fails_readably(args, message, setup, tmp_path):
    if torch.cuda.is_available() and '--strategy fsdp' not in message:
        pytest.skip('this machine has CUDA: deepspeed and the slurm launcher are allowed')
    _, config, options = setup
    proc = subprocess.run([sys.executable, 'tools/train.py', config, '--work-dir', str(tmp_path), *args,
                           '--cfg-options', *options], cwd=ROOT, env=tool_env(), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode != 0
    assert message in proc.stderr and 'Traceback' not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr  # one line: error: ...


def test_the_runner_is_destroyed_before_the_process_group(setup, tmp_path, monkeypatch):
    """tools/train.py drops its Runner, and finish_distributed collects it (its hooks and loops form
    reference cycles) before the process group goes, so that the DDP model's reducer and the data-loader
    iterators are not left to the interpreter's shutdown (where a 2-process gloo run has aborted)."""
    _, config, options = setup
    spec = importlib.util.spec_from_file_location('train_tool', osp.join(ROOT, 'tools', 'train.py'))
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    runners, alive_after_finish = [], []
    build, finish = train.RUNNERS.build, train.finish_distributed

    def build_and_track(cfg):
        runner = build(cfg)
        runners.append(weakref.ref(runner))
        return runner

    def finish_and_check():
        finish()
        alive_after_finish.append(runners[0]() is not None)

    monkeypatch.setattr(train.RUNNERS, 'build', build_and_track)
    monkeypatch.setattr(train, 'finish_distributed', finish_and_check)
    train.main([config, '--work-dir', str(tmp_path), '--no-validate', '--cfg-options', *options])
    assert alive_after_finish == [False]
