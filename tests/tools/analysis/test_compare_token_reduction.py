"""tools/analysis/compare_token_reduction.py without training: the equal-FLOPs claim of its default configs
(counted as tools/benchmark.py counts), the summary over seeds, the table and the plot from run records."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

import compare_token_reduction as compare  # tools/analysis, on sys.path by conftest.py
from svitt_mm.apis import count_flops, register_all_modules
from svitt_mm.registry import BACKBONES

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def encoder_gflops(config):
    cfg = Config.fromfile(osp.join(ROOT, config))
    encoder = BACKBONES.build(dict(cfg.model.vision_encoder.to_dict(), pretrained=None)).eval()
    video = torch.randn(1, cfg.num_frames, 3, encoder.img_size, encoder.img_size)
    with torch.no_grad():
        return count_flops(lambda: encoder(video)) / 1e9


def test_default_reducing_configs_match_flops_within_one_percent():
    register_all_modules()
    flops = {compare.name_of(c): encoder_gflops(c) for c in compare.DEFAULT_CONFIGS}
    reference = flops['cls_pruning']
    for name in ('random_pruning', 'token_merging'):
        assert abs(flops[name] / reference - 1) < 0.01, (name, flops)
    assert flops['no_reduction'] > 1.1 * reference  # reduction saves something


def run(seed, r1, r1_reversed, train_s=60.0):
    metrics = {'t2v/R@1': r1, 'itc/t2v/R@1': r1 + 1, 'R_mean': 2 * r1}
    reversed_ = {'t2v/R@1': r1_reversed, 'itc/t2v/R@1': r1_reversed, 'R_mean': 2 * r1_reversed}
    return dict(seed=seed, train_s=train_s, in_order=metrics, reversed=reversed_)


def test_summary_table_and_plot(tmp_path):
    rows = {}
    for name, gflops, runs in [('no_reduction', 0.25, [run(0, 6.0, 5.0), run(1, 8.0, 8.0)]),
                               ('token_merging', 0.2, [run(0, 4.0, 1.0), run(1, 6.0, 2.0)])]:
        rows[name] = dict(cost=dict(forward_gflops=gflops, forward_backward_gflops=3 * gflops, forward_ms=2.0),
                          runs=runs, summary=compare.summarise(runs))
    summary = rows['token_merging']['summary']
    assert summary['t2v/R@1']['mean'] == pytest.approx(5.0)
    assert summary['t2v/R@1']['std'] == pytest.approx(2 ** 0.5)
    assert summary['t2v/R@1 drop']['values'] == [3.0, 4.0]
    assert summary['train_min']['mean'] == pytest.approx(1.0)
    table = compare.format_table(rows, 'no_reduction').splitlines()
    assert table[0].startswith('| config | video GFLOPs fwd | vs no_reduction |')
    cells = [c.strip() for c in table[3].split('|')[1:-1]]
    assert cells[:3] == ['token_merging', '0.2000', '0.800'] and cells[6] == '5.0 ± 1.4' and cells[9] == '3.5 ± 0.7'
    single = {'x': dict(rows['no_reduction'], summary=compare.summarise(rows['no_reduction']['runs'][:1]))}
    assert compare.format_table(single, 'x').splitlines()[2].split('|')[7].strip() == '6.0'  # no ± for one seed
    compare.plot(rows, str(tmp_path / 'plot.png'), 'test')
    assert (tmp_path / 'plot.png').stat().st_size > 0


def test_missing_config_is_a_user_error(tmp_path):
    with pytest.raises(compare.MissingFileError, match='no config file'):
        compare.main(['--configs', str(tmp_path / 'nope.py'), '--work-dir', str(tmp_path)])
