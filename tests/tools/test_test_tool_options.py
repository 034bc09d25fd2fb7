"""tools/test.py and svitt_mm.apis.build_test_config: the config check runs before the Runner, and
--on-broken-media reaches the dataset."""
import importlib.util
import os.path as osp

import pytest

from svitt_mm.apis import ConfigCheckError, build_test_config, run_config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
_spec = importlib.util.spec_from_file_location('test_tool', osp.join(ROOT, 'tools', 'test.py'))
test_tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(test_tool)
CONFIG = osp.join(ROOT, 'configs', 'demo', 'dense_demo.py')


@pytest.fixture
def checkpoint(tmp_path):
    path = tmp_path / 'epoch_1.pth'
    path.write_bytes(b'')
    return str(path)


def test_on_broken_media_flag_sets_the_test_dataset_policy(checkpoint, tmp_path, monkeypatch):
    monkeypatch.setattr(run_config, 'check_required_inputs', lambda cfg, config: None)  # no demo data needed
    args = test_tool.parse_args([CONFIG, checkpoint, '--on-broken-media', 'exclude'])
    cfg = build_test_config(CONFIG, checkpoint, str(tmp_path), None, 'none', args.on_broken_media)
    assert cfg.test_dataloader.dataset.on_broken_media == 'exclude'
    default = build_test_config(CONFIG, checkpoint, str(tmp_path))
    assert 'on_broken_media' not in default.test_dataloader.dataset  # the dataset's default: 'raise'
    with pytest.raises(SystemExit):
        test_tool.parse_args([CONFIG, checkpoint, '--on-broken-media', 'skip'])  # never in evaluation


def test_misspelled_type_stops_before_the_runner(checkpoint, tmp_path):
    with pytest.raises(ConfigCheckError, match=r"test_evaluator\.type: 'RetrivalMetric' is not a registered metric; "
                                         r"did you mean 'RetrievalMetric'\?"):
        build_test_config(CONFIG, checkpoint, str(tmp_path), {'test_evaluator.type': 'RetrivalMetric'})
