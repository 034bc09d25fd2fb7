"""AtomicCheckpointHook: a crash while a checkpoint is being written leaves the previous checkpoint and
the `last_checkpoint` pointer valid, and resuming continues from them."""
import os
import os.path as osp

import pytest
import torch
from mmengine.fileio import LocalBackend

from svitt_mm.engine.hooks.atomic_checkpoint_hook import replace_atomically, write_text_atomically


class SimulatedCrash(RuntimeError):
    pass


def test_write_text_atomically_replaces_content_and_leaves_no_temporary(tmp_path):
    path = tmp_path / 'last_checkpoint'
    write_text_atomically(str(path), 'first')
    write_text_atomically(str(path), 'second')
    assert path.read_text() == 'second'
    assert sorted(os.listdir(tmp_path)) == ['last_checkpoint']


def test_replace_atomically_moves_files_and_directories(tmp_path):
    (tmp_path / 'a.tmp').write_bytes(b'new')
    (tmp_path / 'a').write_bytes(b'old')
    replace_atomically(str(tmp_path / 'a.tmp'), str(tmp_path / 'a'))
    assert (tmp_path / 'a').read_bytes() == b'new' and not (tmp_path / 'a.tmp').exists()
    (tmp_path / 'shards.tmp').mkdir()
    (tmp_path / 'shards.tmp' / 'rank0.pt').write_bytes(b'x')
    (tmp_path / 'shards').mkdir()
    (tmp_path / 'shards' / 'stale.pt').write_bytes(b'y')
    replace_atomically(str(tmp_path / 'shards.tmp'), str(tmp_path / 'shards'))
    assert os.listdir(tmp_path / 'shards') == ['rank0.pt']


def _checkpoint_files(work_dir):
    return sorted(f for f in os.listdir(work_dir) if f.endswith('.pth'))


def _half_write_then_crash(monkeypatch, crash_on_call):
    """Make the `crash_on_call`-th checkpoint write put half of its bytes on disk, then raise."""
    real_put = LocalBackend.put
    calls = []

    def put(self, obj, filepath):
        calls.append(filepath)
        if len(calls) == crash_on_call:
            with open(filepath, 'wb') as f:
                f.write(obj[:len(obj) // 2])
            raise SimulatedCrash(f'killed while writing {filepath}')
        return real_put(self, obj, filepath)

    monkeypatch.setattr(LocalBackend, 'put', put)


def _half_pickle_then_crash(monkeypatch, crash_on_call):
    """Make the `crash_on_call`-th torch.save write half of the pickle, then raise."""
    real_save = torch.save
    calls = []

    def save(obj, f, *args, **kwargs):
        calls.append(f)
        if len(calls) == crash_on_call:
            real_save(obj, f, *args, **kwargs)
            f.seek(0)
            f.truncate(f.getbuffer().nbytes // 2)
            raise SimulatedCrash('killed inside torch.save')
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, 'save', save)


@pytest.mark.parametrize('crash', [_half_write_then_crash, _half_pickle_then_crash])
def test_crash_while_saving_keeps_previous_checkpoint_and_resume_uses_it(crash, make_toy_runner,
                                                                          monkeypatch):
    reference = make_toy_runner(4, custom_hooks=[dict(type='RNGStateHook')])
    reference.train()
    expected = {k: v.clone() for k, v in reference.model.state_dict().items()}
    work_dir = reference.work_dir
    for name in os.listdir(work_dir):
        if name.endswith('.pth') or name == 'last_checkpoint':
            os.remove(osp.join(work_dir, name))

    # Checkpoints at iterations 2 and 4 (max_keep_ckpts=1); the second write dies half-way.
    with monkeypatch.context() as patch:
        crash(patch, crash_on_call=2)
        crashed = make_toy_runner(4, custom_hooks=[dict(type='RNGStateHook')])
        with pytest.raises(SimulatedCrash):
            crashed.train()
    # CheckpointHook would have deleted iter_2.pth before writing iter_4.pth.
    assert _checkpoint_files(work_dir) == ['iter_2.pth']
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert f.read() == osp.join(work_dir, 'iter_2.pth')
    state = torch.load(osp.join(work_dir, 'iter_2.pth'), map_location='cpu', weights_only=True)
    assert state['meta']['iter'] == 2

    resumed = make_toy_runner(4, resume=True, custom_hooks=[dict(type='RNGStateHook')])
    resumed.train()
    assert resumed.iter == 4
    assert _checkpoint_files(work_dir) == ['iter_4.pth']  # the half-written temporary was replaced
    assert not any(name.endswith('.tmp') for name in os.listdir(work_dir))
    for key, value in resumed.model.state_dict().items():
        torch.testing.assert_close(value, expected[key], rtol=0, atol=0)


def test_outdated_checkpoints_are_deleted_after_the_new_one_is_written(make_toy_runner):
    runner = make_toy_runner(6, checkpoint=dict(type='AtomicCheckpointHook', interval=2, by_epoch=False,
                                                max_keep_ckpts=2))
    runner.train()
    assert _checkpoint_files(runner.work_dir) == ['iter_4.pth', 'iter_6.pth']
    with open(osp.join(runner.work_dir, 'last_checkpoint')) as f:
        assert f.read() == osp.join(runner.work_dir, 'iter_6.pth')
    state = torch.load(osp.join(runner.work_dir, 'iter_6.pth'), map_location='cpu', weights_only=True)
    assert state['message_hub']['runtime_info']['keep_ckpt_ids'] == [4, 6]
