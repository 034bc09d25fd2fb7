"""Checkpoints are always read safely, through MMEngine's paths too: a pickle that would run code is refused
(even with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1) with an error naming the file and the refused global, and a
truncated or foreign file is named as such; no traceback, and nothing in the file runs."""
import os
import subprocess
import sys

import pytest
import torch
from mmengine.runner import CheckpointLoader

import svitt_mm.engine  # noqa: F401  (registers the safe local checkpoint loader)
from svitt_mm.utils.errors import InputFileError
from svitt_mm.utils.safe_load import UnsafeCheckpointError
from tool_helpers import ROOT, data_options, tool_env


class _Mkdir:
    """Unpickling this calls os.makedirs(path): the stand-in for code a malicious checkpoint would run."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.makedirs, (self.path,)


@pytest.fixture
def evil(tmp_path):
    marker = tmp_path / 'the_pickle_ran'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'meta': _Mkdir(str(marker))}, path)
    return path, marker


@pytest.fixture
def truncated(tmp_path):
    path = tmp_path / 'truncated.pth'
    torch.save({'state_dict': {'w': torch.zeros(1000)}}, path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return path


def test_mmengine_reads_local_checkpoints_through_the_safe_loader(evil, truncated, tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    path, marker = evil
    with pytest.raises(UnsafeCheckpointError, match=r'evil\.pth: refusing to load checkpoint.*os\.makedirs|'
                                                   r'evil\.pth: refusing to load checkpoint.*posix'):
        CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    assert not marker.exists()
    with pytest.raises(InputFileError, match=r'truncated\.pth: cannot read checkpoint .* truncated'):
        CheckpointLoader.load_checkpoint(str(truncated), map_location='cpu')
    (tmp_path / 'notes.pth').write_text('not a checkpoint')
    with pytest.raises(InputFileError, match=r'notes\.pth: cannot read checkpoint: it is not a PyTorch'):
        CheckpointLoader.load_checkpoint(str(tmp_path / 'notes.pth'), map_location='cpu')
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': {'w': torch.ones(2)}}, good)
    assert torch.equal(CheckpointLoader.load_checkpoint(str(good), map_location='cpu')['state_dict']['w'],
                       torch.ones(2))


def _test_tool(config, checkpoint, paths, tmp_path, **env):
    return subprocess.run(
        [sys.executable, 'tools/test.py', config, str(checkpoint), '--work-dir', str(tmp_path / 'work'),
         '--cfg-options', *data_options(paths)],
        cwd=ROOT, env={**tool_env(), **env}, capture_output=True, text=True, timeout=600)


def test_test_tool_refuses_unsafe_and_truncated_checkpoints(evil, truncated, small_demo_data, tmp_path):
    config = os.path.join(ROOT, 'configs', 'demo', 'dense_demo.py')
    path, marker = evil
    proc = _test_tool(config, path, small_demo_data, tmp_path, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD='1')
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr and not marker.exists()
    error = [line for line in proc.stderr.splitlines() if line.startswith('error: ')]
    assert len(error) == 1 and f'{path}: refusing to load checkpoint' in error[0]
    assert 'makedirs' in error[0] or 'posix' in error[0]
    proc = _test_tool(config, truncated, small_demo_data, tmp_path)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    assert f'error: {truncated}: cannot read checkpoint' in proc.stderr and 'truncated' in proc.stderr
