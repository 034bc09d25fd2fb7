"""tools/analysis/attention_stats.py: the recomputed probabilities are exactly those the operators use,
the distances are right on hand-made attention, and the tool writes its table, JSON and plot."""
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config

import attention_stats  # tools/analysis, on sys.path by conftest.py

from svitt_mm.datasets.demo import build_temporal_shapes
from svitt_mm.registry import MODELS
from svitt_mm.apis import register_all_modules

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

TINY = dict(embed_dims=32, num_layers=3, num_heads=2)


def tiny_model(config):
    register_all_modules()
    cfg = Config.fromfile(osp.join(ROOT, config))
    cfg.model.vision_encoder.update(TINY)
    model = MODELS.build(cfg.model).eval()
    for block in model.vision_encoder.blocks:  # non-zero bias tables, so the bias path is exercised
        torch.nn.init.normal_(block.attn.relative_position_bias.table, std=0.5)
    return cfg, model


@pytest.mark.parametrize('config', ['configs/demo/svitt_demo.py', 'configs/demo/dense_demo.py'])
def test_recomputed_probabilities_reproduce_the_operators(config):
    _, model = tiny_model(config)
    captured = []

    def pre_hook(attn, args):
        captured.append(dict(attn=attn, probs=attention_stats.attention_probs(attn, *args)))

    def op_hook(op, args, kwargs, output):
        captured[-1].update(v=args[2], out=output[0], global_probs=output[1])

    handles = []
    for block in model.vision_encoder.blocks:
        handles.append(block.attn.register_forward_pre_hook(pre_hook))
        handles.append(block.attn.op.register_forward_hook(op_hook, with_kwargs=True))
    with torch.no_grad():
        model.vision_encoder(torch.randn(2, 4, 3, 64, 64))
    for handle in handles:
        handle.remove()
    assert len(captured) == 3
    for layer in captured:
        torch.testing.assert_close(layer['probs'] @ layer['v'], layer['out'], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(layer['probs'][:, :, :1], layer['global_probs'], atol=1e-6, rtol=1e-5)
    if 'svitt' in config:
        assert attention_stats.allowed_pairs(captured[0]['attn'].op, 65) is not None  # really sparse
        assert [layer['probs'].shape[-1] for layer in captured] == [65, 65, 46]  # pruned after layers 1 and 2


def test_distances_on_hand_made_attention():
    grid = (2, 2)  # 4 patches per frame
    positions = torch.tensor([[0, 3, 4, 7]])  # (t,h,w): (0,0,0) (0,1,1) (1,0,0) (1,1,1)
    probs = torch.zeros(1, 1, 5, 5)
    probs[0, 0, 1:, 0] = 0.5  # half of every local query's attention goes to [CLS]
    probs[0, 0, 1, 4] = 0.5  # (0,0,0) -> (1,1,1): 1 frame, sqrt(2) patches
    probs[0, 0, 2, 2] = 0.5  # (0,1,1) -> itself
    probs[0, 0, 3, 1] = 0.5  # (1,0,0) -> (0,0,0): 1 frame, 0 patches
    probs[0, 0, 4, 2] = 0.5  # (1,1,1) -> (0,1,1): 1 frame, 0 patches
    stats = attention_stats.layer_statistics(probs, positions, grid)
    assert stats['time'] == pytest.approx(3 / 4)
    assert stats['space'] == pytest.approx((2 ** 0.5 + 0 + 0 + 0) / 4)
    assert stats['global_share'] == pytest.approx(0.5)
    # with 2-frame tubelets, positions count tubelets: one step apart is two frames apart
    tubelets = attention_stats.layer_statistics(probs, positions, grid, tubelet_size=2)
    assert tubelets['time'] == pytest.approx(2 * 3 / 4)
    assert tubelets['space'] == stats['space']


def test_tool_writes_table_json_and_plot(tmp_path, capsys):
    paths = build_temporal_shapes(str(tmp_path / 'demo'), videos_per_caption=1)
    cfg, model = tiny_model('configs/demo/svitt_demo.py')
    checkpoint = tmp_path / 'tiny.pth'
    torch.save({'state_dict': model.state_dict()}, checkpoint)
    out, plot = tmp_path / 'stats.json', tmp_path / 'stats.png'
    options = [f'model.vision_encoder.{k}={v}' for k, v in TINY.items()]
    options += [f'test_dataloader.dataset.ann_file={paths["test"]}',
                f'test_dataloader.dataset.media_root={paths["media_root"]}']
    result = attention_stats.main(['configs/demo/svitt_demo.py', str(checkpoint), '--num-videos', '3',
                                   '--out', str(out), '--plot', str(plot), '--cfg-options', *options])
    assert 'time dist (frames)' in capsys.readouterr().out
    saved = json.loads(out.read_text())
    assert saved['videos'] == 3 and saved['attention'] == 'BlockSparseAttention'
    assert [round(layer['tokens']) for layer in saved['layers']] == [65, 65, 46]
    for layer in saved['layers']:
        assert 0 <= layer['global_share'] <= 1 and 0 <= layer['time'] <= 3
    assert saved == json.loads(json.dumps(result))
    assert plot.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
