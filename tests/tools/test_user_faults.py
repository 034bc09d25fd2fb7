"""Faults a user causes, reproduced through the real command lines on files made here: each ends in one
`error:` message naming the file, entry, key or value, exit status 2, and no traceback (README, "Bad data,
bad configs, crashes"). Checkpoint faults: test_checkpoint_safety.py; killed runs: test_fault_tolerance.py
and test_resume_persistent_workers.py; broken videos: tests/datasets/test_broken_media.py."""
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch

from svitt_mm.testing import write_gray_video
from tool_helpers import ROOT, tool_env

CONFIG = osp.join(ROOT, 'configs', 'demo', 'svitt_demo.py')
GOOD = [{'video': 'a.mp4', 'caption': 'a red circle moves left'},
        {'video': 'b.mp4', 'caption': 'a blue square grows'}]


@pytest.fixture(scope='module')
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp('fault_media')
    for name in ('a.mp4', 'b.mp4'):
        write_gray_video(str(root / 'videos' / name), 8)
    return root


def _annotation(folder, content) -> str:
    path = folder / 'ann.json'
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def _run(tool, *args, options=()):
    cmd = [sys.executable, osp.join(ROOT, 'tools', tool), *args]
    if options:
        cmd += ['--cfg-options', *options]
    env = tool_env()
    env.pop('SVITT_DEBUG', None)
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def _assert_user_error(proc, *expected):
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error: ')]
    assert len(errors) == 1, proc.stderr[-3000:]
    message = proc.stderr[proc.stderr.index('error: '):]
    for text in expected:
        assert text in message, message


def _data_options(ann, media):
    return [f'{loader}.dataset.{key}={value}' for loader in ('train_dataloader', 'test_dataloader')
            for key, value in (('ann_file', ann), ('media_root', media / 'videos'))] + [
        'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
        'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False']


ANNOTATION_FAULTS = {
    'invalid JSON': ('[{"video": "a.mp4", "caption": ', 'malformed JSON'),
    'a dict at the top level': ({'videos': GOOD}, 'expected a JSON list'),
    'a missing caption': (GOOD + [{'video': 'a.mp4'}], 'entry 2 has no "caption" key'),
    'an empty caption': (GOOD + [{'video': 'b.mp4', 'caption': '  '}], 'entry 2: "caption" must be a non-empty'),
    'a path outside the media root': (GOOD + [{'video': '../x.mp4', 'caption': 'x'}],
                                      'entry 2: "video" \'../x.mp4\' is outside the media root'),
}


@pytest.mark.parametrize('fault', sorted(ANNOTATION_FAULTS))
def test_bad_annotation_through_train_and_test(fault, media, tmp_path):
    content, expected = ANNOTATION_FAULTS[fault]
    ann = _annotation(tmp_path, content)
    proc = _run('train.py', CONFIG, '--work-dir', str(tmp_path / 'train'), '--no-validate',
                options=_data_options(ann, media))
    _assert_user_error(proc, ann, expected)
    checkpoint = tmp_path / 'model.pth'
    torch.save({'state_dict': {}}, checkpoint)
    proc = _run('test.py', CONFIG, str(checkpoint), '--work-dir', str(tmp_path / 'test'),
                options=_data_options(ann, media))
    _assert_user_error(proc, ann, expected)


@pytest.mark.parametrize('options,expected', [
    (['model.vision_encoder.attention.local_blocks=-1', 'model.vision_encoder.attention.random_blocks=-2'],
     ['model.vision_encoder.attention.local_blocks: -1 must be None or 0 or an odd int',
      'model.vision_encoder.attention.random_blocks: -2 must be None or an int >= 0']),
    (['model.vision_encoder.pruner.keep_rate=1.5'], ['model.vision_encoder.pruner.keep_rate: 1.5 must be']),
    (['model.vision_encoder.attention.type=BlockSparseAtention'], ["did you mean 'BlockSparseAttention'?"]),
    # checked by the constructor, when the dataset builds its pipeline
    (['train_dataloader.dataset.pipeline.3.size=-1'],
     ['ClipResize: size must be a positive int or (height, width), got -1']),
])
def test_bad_config_values_are_one_line_errors(options, expected, media, tmp_path):
    ann = _annotation(tmp_path, GOOD)
    proc = _run('train.py', CONFIG, '--work-dir', str(tmp_path / 'train'), '--no-validate',
                options=_data_options(ann, media) + options)
    _assert_user_error(proc, *expected)


def test_missing_files_named_on_the_command_line(tmp_path):
    _assert_user_error(_run('train.py', str(tmp_path / 'nope.py')), f"config file '{tmp_path / 'nope.py'}' "
                                                                     f"does not exist")
    broken = tmp_path / 'broken.py'
    broken.write_text("model = dict(type='VideoTextRetriever'\n")
    _assert_user_error(_run('train.py', str(broken)), f'{broken}, line 1: ', 'was never closed')
    _assert_user_error(_run('test.py', CONFIG, str(tmp_path / 'none.pth')),
                       f"checkpoint '{tmp_path / 'none.pth'}' does not exist")
    _assert_user_error(_run('search.py', CONFIG, str(tmp_path / 'none.pth'), '--index',
                            str(tmp_path / 'none.safetensors'), '--query', 'a red circle'),
                       f"safetensors file not found: {tmp_path / 'none.safetensors'}")


def test_resume_from_a_truncated_checkpoint(media, tmp_path):
    ann = _annotation(tmp_path, GOOD)
    checkpoint = tmp_path / 'epoch_1.pth'
    torch.save({'state_dict': {'w': torch.zeros(4096)}}, checkpoint)
    checkpoint.write_bytes(checkpoint.read_bytes()[:3000])
    proc = _run('train.py', CONFIG, '--work-dir', str(tmp_path / 'train'), '--no-validate', '--resume',
                str(checkpoint), options=_data_options(ann, media) + ['train_dataloader.batch_size=2'])
    _assert_user_error(proc, f'{checkpoint}: cannot read checkpoint', 'truncated')


def test_a_training_set_smaller_than_one_batch(media, tmp_path):
    ann = _annotation(tmp_path, GOOD)
    proc = _run('train.py', CONFIG, '--work-dir', str(tmp_path / 'train'), '--no-validate',
                options=_data_options(ann, media))
    _assert_user_error(proc, 'train_dataloader: its 2 samples fill no batch of 16 (drop_last=True)')
