"""Safe loading of outside weights: a code-running pickle is refused (and runs nothing), safetensors and
plain tensor pickles load, shape mismatches are listed key by key."""
import pickle

import pytest
import torch
from safetensors.torch import save_file

from svitt_mm.utils.safe_load import UnsafeCheckpointError, check_shapes, load_weights_file


class CreatesAFile:
    """Unpickling this calls ``open(path, 'w')``: a harmless stand-in for a malicious payload."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (self.path, 'w')


@pytest.mark.parametrize('writer', ['torch', 'pickle'])
def test_code_running_pickle_is_refused_and_runs_nothing(tmp_path, writer):
    marker = tmp_path / 'pwned.txt'
    payload = {'model': {'w': torch.zeros(2)}, 'config': CreatesAFile(str(marker))}
    path = tmp_path / 'ckpt.pth'
    if writer == 'torch':
        torch.save(payload, path)
    else:
        with open(path, 'wb') as f:
            pickle.dump(payload, f)
    # the payload does what it says when unpickled without safety
    with open(path, 'rb') as f:
        if writer == 'pickle':
            pickle.load(f)
            assert marker.exists()
            marker.unlink()
    with pytest.raises(UnsafeCheckpointError) as info:
        load_weights_file(str(path), 'SViTT checkpoint')
    assert not marker.exists()
    message = str(info.value)
    assert message.startswith(f'{path}: refusing to load SViTT checkpoint: the file holds pickled Python')
    assert 'Unsupported' in message and 'could run arbitrary code' in message and 'save_file' in message
    assert '\n' not in message


def test_tensor_pickles_and_safetensors_load(tmp_path):
    state = {'a': torch.arange(3.0), 'b': torch.ones(2, 2)}
    torch.save({'model': state, 'config': {'num_frames': 4, 'name': 'x'}}, tmp_path / 'ok.pth')
    loaded = load_weights_file(str(tmp_path / 'ok.pth'))
    assert loaded['config'] == {'num_frames': 4, 'name': 'x'} and torch.equal(loaded['model']['b'], state['b'])
    save_file(state, str(tmp_path / 'ok.safetensors'))
    assert torch.equal(load_weights_file(str(tmp_path / 'ok.safetensors'))['a'], state['a'])


def test_unreadable_files_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='weights not found: .*none.pth'):
        load_weights_file(str(tmp_path / 'none.pth'))
    (tmp_path / 'w.npz').write_bytes(b'x')
    with pytest.raises(ValueError, match=r"w\.npz: unsupported weights file type '\.npz'"):
        load_weights_file(str(tmp_path / 'w.npz'))
    torch.save({'w': torch.zeros(100)}, tmp_path / 'whole.pth')
    data = (tmp_path / 'whole.pth').read_bytes()
    (tmp_path / 'broken.pth').write_bytes(data[:len(data) // 2])  # a truncated download
    with pytest.raises(ValueError, match=r'broken\.pth: cannot read weights'):
        load_weights_file(str(tmp_path / 'broken.pth'))


def test_shape_mismatches_listed_key_by_key():
    check_shapes([('a', (2,), (2,))], 'Model')
    with pytest.raises(ValueError) as info:
        check_shapes([('a', (2,), (3,)), ('b', (1,), (1,)), ('c', (4, 4), (4, 5))], 'Model')
    assert str(info.value) == ('Model: 2 weight(s) have the wrong shape:\n'
                               '  a: checkpoint (2,) vs model (3,)\n  c: checkpoint (4, 4) vs model (4, 5)')
