"""tools/data converters on tiny made-up inputs: exact outputs, and the CLIs write loadable files."""
import csv
import importlib.util
import json
import os.path as osp
import subprocess
import sys

import pytest

from svitt_mm.datasets import VideoTextDataset

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def load(name):
    spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, 'tools', 'data', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_didemo_groups_moments_in_time_order():
    convert = load('convert_didemo').convert_didemo
    moments = [
        {'video': 'a.mov', 'description': 'the dog jumps ', 'times': [[3, 4], [3, 3]]},
        {'video': 'b.avi', 'description': 'a car', 'times': [[0, 0]]},
        {'video': 'a.mov', 'description': 'a dog sits', 'times': [[1, 2]]},
    ]
    assert convert(moments, '.mp4') == [
        {'video': 'a.mov.mp4', 'caption': ['a dog sits', 'the dog jumps']},
        {'video': 'b.avi.mp4', 'caption': ['a car']}]
    with pytest.raises(ValueError, match='moment 0 has no "times"'):
        convert([{'video': 'a', 'description': 'x'}])


def test_anet_orders_sentences_by_start_time():
    convert = load('convert_anet_captions').convert_anet_captions
    annotations = {'v_x': {'duration': 9.0, 'timestamps': [[5.0, 9.0], [0.0, 5.0]],
                           'sentences': ['Then he leaves. ', 'A man enters.']}}
    assert convert(annotations) == [{'video': 'v_x.mp4', 'caption': ['A man enters.', 'Then he leaves.']}]
    with pytest.raises(ValueError, match="'v_y': 1 timestamps but 2 sentences"):
        convert({'v_y': {'timestamps': [[0, 1]], 'sentences': ['a', 'b']}})


def test_charades_uses_the_script_and_skips_empty_ones():
    convert = load('convert_charades').convert_charades
    rows = [{'id': '46GP8', 'script': 'A person  cooks\nfood.', 'scene': 'Kitchen'},
            {'id': 'N11GT', 'script': ' '}]
    assert convert(rows) == [{'video': '46GP8.mp4', 'caption': 'A person cooks food.'}]
    with pytest.raises(ValueError, match='row 0 has no "script" column'):
        convert([{'id': 'x'}])


@pytest.mark.parametrize('kind, caption', [('label', 'putting a cup on a table'),
                                           ('template', 'Putting something on something')])
def test_ssv2_label_and_template(kind, caption):
    convert = load('convert_ssv2').convert_ssv2
    records = [{'id': '78687', 'label': 'putting a cup on a table',
                'template': 'Putting [something] on [something]', 'placeholders': ['cup', 'table']}]
    assert convert(records, kind) == [{'video': '78687.webm', 'caption': caption}]
    with pytest.raises(ValueError, match='caption must be one of'):
        convert(records, 'placeholders')


def test_charades_cli_output_loads_as_a_dataset(tmp_path):
    source = tmp_path / 'Charades_v1_test.csv'
    with open(source, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=['id', 'script'])
        writer.writeheader()
        writer.writerows([{'id': 'AAA', 'script': 'opens a door'}, {'id': 'BBB', 'script': 'sits'}])
    output = tmp_path / 'charades_script_test.json'
    subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'data', 'convert_charades.py'), str(source),
                    str(output)], check=True, capture_output=True)
    assert json.loads(output.read_text())[1] == {'video': 'BBB.mp4', 'caption': 'sits'}
    dataset = VideoTextDataset(str(output), str(tmp_path), mode='eval', check_media=False)
    assert [info['captions'] for info in (dataset.get_data_info(i) for i in range(2))] == [
        ['opens a door'], ['sits']]
