"""svitt_mm.apis.cli.run_tool: user errors end in one `error:` message and exit status 2, wherever they were
raised (directly, while MMEngine's registry builds a part, in a data-loader worker); bugs keep their traceback;
--debug / SVITT_DEBUG show the traceback of user errors too."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mmengine.registry import Registry
from torch.utils.data import DataLoader, Dataset

from svitt_mm.apis.cli import EXIT_USER_ERROR, run_tool, user_message
from svitt_mm.utils.errors import InputFileError

ROOT = Path(__file__).resolve().parents[2]


def _raise_user_error():
    raise InputFileError('ann.json: entry 3 has no "caption" key')


def test_a_user_error_is_one_line_and_exit_status_2(monkeypatch, capsys):
    monkeypatch.setattr(sys, 'argv', ['tool.py'])
    monkeypatch.delenv('SVITT_DEBUG', raising=False)
    with pytest.raises(SystemExit) as info:
        run_tool(_raise_user_error)
    assert info.value.code == EXIT_USER_ERROR
    assert capsys.readouterr().err == 'error: ann.json: entry 3 has no "caption" key\n'


def test_debug_flag_or_variable_shows_the_traceback_and_is_removed_from_argv(monkeypatch):
    seen = []

    def main():
        seen.append(list(sys.argv))
        _raise_user_error()

    monkeypatch.setattr(sys, 'argv', ['tool.py', 'cfg.py', '--debug'])
    with pytest.raises(InputFileError):
        run_tool(main)
    assert seen == [['tool.py', 'cfg.py']]
    monkeypatch.setattr(sys, 'argv', ['tool.py'])
    monkeypatch.setenv('SVITT_DEBUG', '1')
    with pytest.raises(InputFileError):
        run_tool(main)


def test_bugs_are_not_hidden(monkeypatch):
    monkeypatch.setattr(sys, 'argv', ['tool.py'])
    with pytest.raises(ZeroDivisionError):
        run_tool(lambda: 1 / 0)


def test_message_of_an_error_raised_through_the_registry():
    registry = Registry('thing')

    @registry.register_module()
    class Thing:
        def __init__(self):
            _raise_user_error()

    with pytest.raises(InputFileError) as info:
        registry.build(dict(type='Thing'))
    assert user_message(info.value) == 'ann.json: entry 3 has no "caption" key'


class _Broken(Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, index):
        _raise_user_error()


def test_message_of_an_error_raised_in_a_data_loader_worker():
    with pytest.raises(InputFileError) as info:
        next(iter(DataLoader(_Broken(), num_workers=1)))
    assert 'Original Traceback' in str(info.value)
    assert user_message(info.value) == 'ann.json: entry 3 has no "caption" key'


def test_tools_turn_a_bad_annotation_into_one_line(tmp_path):
    """Through tools/train.py: an annotation entry without a caption stops the run before training, with the
    file, the entry and the key, and no traceback."""
    media = tmp_path / 'media'
    media.mkdir()
    ann = tmp_path / 'ann.json'
    ann.write_text(json.dumps([{'video': 'a.mp4', 'caption': 'a red circle'}, {'video': 'b.mp4'}]))
    env = {**os.environ, 'HF_HUB_OFFLINE': '1'}
    env.pop('SVITT_DEBUG', None)
    proc = subprocess.run(
        [sys.executable, str(ROOT / 'tools' / 'train.py'), str(ROOT / 'configs' / 'demo' / 'svitt_demo.py'),
         '--work-dir', str(tmp_path / 'work'), '--cfg-options', f'train_dataloader.dataset.ann_file={ann}',
         f'train_dataloader.dataset.media_root={media}', f'test_dataloader.dataset.ann_file={ann}',
         f'test_dataloader.dataset.media_root={media}', 'train_dataloader.num_workers=0',
         'train_dataloader.persistent_workers=False', 'train_cfg.max_epochs=1', '--no-validate'],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == EXIT_USER_ERROR, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr
    assert f'error: {ann}: entry 1 has no "caption" key' in proc.stderr


@pytest.mark.parametrize('pair', ['train_cfg.max_epochs=[1,', 'no_equals_sign', '=5', 'a=(1,2'])
def test_malformed_cfg_options_are_one_usage_line(pair, capsys):
    import argparse

    from svitt_mm.apis.cfg_options import CfgOptionsAction
    parser = argparse.ArgumentParser(prog='tool')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(['--cfg-options', pair])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert 'Traceback' not in err and pair in err and 'argument --cfg-options' in err


def test_cfg_options_still_parse_lists_and_numbers():
    import argparse

    from svitt_mm.apis.cfg_options import CfgOptionsAction
    parser = argparse.ArgumentParser(prog='tool')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)
    args = parser.parse_args(['--cfg-options', 'a.b=[1,2]', 'c=0.5', 'd=x'])
    assert args.cfg_options == {'a.b': [1, 2], 'c': 0.5, 'd': 'x'}


def test_every_tool_with_cfg_options_reports_malformed_pairs():
    """Each tool that takes --cfg-options parses it with CfgOptionsAction, not MMEngine's DictAction; a tool
    that only hands the pairs on to another tool (``'--cfg-options', *options``) leaves the parsing to it."""
    tools = [path for path in sorted((ROOT / 'tools').rglob('*.py')) if '--cfg-options' in path.read_text()]
    parsing = [path for path in tools if "'--cfg-options', *" not in path.read_text()]
    assert len(parsing) >= 9
    for path in tools:
        assert 'DictAction' not in path.read_text(), path.relative_to(ROOT)
    for path in parsing:
        assert 'action=CfgOptionsAction' in path.read_text(), path.relative_to(ROOT)


def test_train_tool_names_a_malformed_pair():
    proc = subprocess.run([sys.executable, str(ROOT / 'tools' / 'train.py'), 'configs/demo/svitt_demo.py',
                           '--cfg-options', 'train_cfg.max_epochs=[1,'], cwd=ROOT, capture_output=True,
                          text=True)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert "'train_cfg.max_epochs=[1,'" in proc.stderr and 'unbalanced brackets' in proc.stderr
