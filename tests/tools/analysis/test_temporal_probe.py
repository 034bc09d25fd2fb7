"""tools/analysis/temporal_probe.py on tiny models and a small build of the demo data: its "in order"
numbers are tools/test.py's, its "reversed" numbers are tools/test.py's on a config whose test pipeline
reverses the frames, the JSON drops follow from the metrics, and a frame-bag model shows no drop for
reversed or shuffled frames."""
import contextlib
import importlib.util
import io
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from svitt_mm.datasets.demo import build_temporal_shapes
from svitt_mm.registry import MODELS
from svitt_mm.apis import register_all_modules

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
LOADER = ['test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False',
          'test_dataloader.batch_size=16']
TINY = {'configs/demo/dense_demo.py': 'model.vision_encoder',
        'configs/demo/framebag_demo.py': 'model.vision_encoder.encoder'}


def load_tool(path, name):
    spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


probe_tool = load_tool('tools/analysis/temporal_probe.py', 'temporal_probe_under_test')
test_tool = load_tool('tools/test.py', 'test_tool_under_test')


@pytest.fixture(scope='module')
def small_data(tmp_path_factory):
    """The demo data with 16 test videos (a red and a blue shape, every motion)."""
    root = tmp_path_factory.mktemp('demo')
    paths = build_temporal_shapes(str(root), videos_per_caption=1)
    with open(paths['test']) as f:
        entries = json.load(f)
    small = str(root / 'test_small.json')
    with open(small, 'w') as f:
        json.dump(entries[:16], f)
    return [f'test_dataloader.dataset.ann_file={small}',
            f'test_dataloader.dataset.media_root={paths["media_root"]}']


def tiny_model_options(config):
    key = TINY[config]
    return {f'{key}.embed_dims': 32, f'{key}.num_layers': 2, f'{key}.num_heads': 2,
            'model.text_encoder.fusion_layer': 5}


def tiny_options(config):
    return [f'{k}={v}' for k, v in tiny_model_options(config).items()] + LOADER


def tiny_checkpoint(config, path):
    register_all_modules()
    cfg = Config.fromfile(osp.join(ROOT, config))
    cfg.merge_from_dict(tiny_model_options(config))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    for name, param in model.named_parameters():  # a non-zero time bias makes the model order-aware
        if name.endswith('relative_position_bias.table'):
            torch.nn.init.normal_(param, std=1.0)
    torch.save({'state_dict': model.state_dict()}, path)
    return str(path)


def test_in_order_matches_test_tool_and_reversed_matches_explicit_pipeline(small_data, tmp_path):
    config = 'configs/demo/dense_demo.py'
    checkpoint = tiny_checkpoint(config, tmp_path / 'dense.pth')
    options = ['--cfg-options', *tiny_options(config), *small_data]
    test_out, probe_out = str(tmp_path / 'test.json'), str(tmp_path / 'probe.json')
    test_tool.main([osp.join(ROOT, config), checkpoint, '--work-dir', str(tmp_path / 'w'),
                    '--out', test_out, *options])
    printed = io.StringIO()  # not capsys: the Runners' log handlers outlive the test and must not hit
    with contextlib.redirect_stdout(printed):  # a closed stream
        probe_tool.main([osp.join(ROOT, config), checkpoint, '--work-dir', str(tmp_path / 'w'),
                         '--out', probe_out, *options])
    printed = printed.getvalue()
    with open(test_out) as f:
        reference = json.load(f)
    with open(probe_out) as f:
        probe = json.load(f)
    assert list(probe['metrics']) == ['in order', 'reversed', 'shuffled', 'frozen']
    assert probe['modes'] == dict(zip(probe['metrics'], ['none', 'reverse', 'shuffle', 'freeze']))
    assert probe['metrics']['in order'] == reference

    # The same model under tools/test.py with a hand-written reversing test pipeline.
    cfg = Config.fromfile(osp.join(ROOT, config))
    pipeline = list(cfg.test_dataloader.dataset.pipeline)
    pipeline.insert(3, dict(type='ReorderFrames', mode='reverse'))
    assert pipeline[2]['type'] == 'DecodeVideoFrames'
    reversed_config = tmp_path / 'reversed_demo.py'
    reversed_config.write_text(f'_base_ = [{osp.join(ROOT, config)!r}]\n'
                               f'test_dataloader = dict(dataset=dict(pipeline={pipeline!r}))\n')
    reversed_metrics = test_tool.main([str(reversed_config), checkpoint, '--work-dir',
                                       str(tmp_path / 'w'), *options])
    assert probe['metrics']['reversed'] == reversed_metrics

    for name, metrics in probe['metrics'].items():
        for key in probe_tool.RETRIEVAL_METRICS:
            assert probe['drops'][name][key] == pytest.approx(reference[key] - metrics[key], abs=1e-9)
    row = next(line for line in printed.splitlines() if line.startswith('t2v/R@1 '))
    drop = reference['t2v/R@1'] - probe['metrics']['frozen']['t2v/R@1']
    assert row.split()[1] == f'{reference["t2v/R@1"]:.2f}'
    assert row.endswith(f'{probe["metrics"]["frozen"]["t2v/R@1"]:.2f} ({drop:+.2f})')


def test_frame_bag_model_shows_no_drop_for_reversed_or_shuffled(small_data, tmp_path):
    config = 'configs/demo/framebag_demo.py'
    checkpoint = tiny_checkpoint(config, tmp_path / 'bag.pth')
    results = probe_tool.main([osp.join(ROOT, config), checkpoint, '--work-dir', str(tmp_path / 'w'),
                               '--cfg-options', *tiny_options(config), *small_data])
    drops = probe_tool.probe_drops(results)
    for name in ('reversed', 'shuffled'):
        assert drops[name] == {key: 0.0 for key in probe_tool.RETRIEVAL_METRICS}, name


def test_qa_results_are_probed_by_accuracy_and_its_per_type_breakdown():
    results = {'in order': {'acc': 80.0, 'acc/direction': 70.0, 'acc/size': 90.0, 'num_questions': 10},
               'reversed': {'acc': 50.0, 'acc/direction': 40.0, 'acc/size': 60.0, 'num_questions': 10}}
    assert probe_tool.probe_metrics(results) == ['acc', 'acc/direction', 'acc/size']
    assert probe_tool.probe_drops(results)['reversed'] == {'acc': 30.0, 'acc/direction': 30.0,
                                                           'acc/size': 30.0}
    table = probe_tool.format_probe_table(results)
    assert 'acc/direction' in table and '40.00 (+30.00)' in table and 'num_questions' not in table
