"""tools/analysis/label_probe.py: scores on hand-made predictions, rendered labels, an order-blind encoder
scores exactly 0 order sensitivity, and the tool's table and JSON on a tiny build."""
import json
import os.path as osp

import numpy as np
import pytest
import torch

import label_probe  # tools/analysis, on sys.path by conftest.py

from svitt_mm.datasets.demo.temporal_shapes import MOTIONS
from svitt_mm.models import VideoTextDataPreprocessor

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
LEFT, RIGHT, UP, DOWN, GROWS, SHRINKS = range(6)


def test_score_on_hand_made_predictions():
    assert [MOTIONS[i] for i in (LEFT, RIGHT, UP, DOWN, GROWS, SHRINKS)] == [
        'moves left', 'moves right', 'moves up', 'moves down', 'grows', 'shrinks']
    labels = torch.tensor([[0, 0, LEFT], [1, 1, UP], [2, 2, GROWS], [0, 3, DOWN]])
    in_order = dict(shape=torch.tensor([0, 1, 0, 0]), colour=torch.tensor([0, 1, 2, 3]),
                    motion=torch.tensor([LEFT, DOWN, GROWS, LEFT]))
    # reversed frames: clip 0 flips (order used), clip 1 flips its wrong answer, clip 2 answers the same
    # (order-blind), clip 3 answers another axis
    reversed_ = dict(shape=in_order['shape'], colour=in_order['colour'],
                     motion=torch.tensor([RIGHT, UP, GROWS, GROWS]))
    scores = label_probe.score(in_order, reversed_, labels)
    assert scores == pytest.approx(dict(shape=0.75, colour=1.0, motion=0.5, axis=0.75,
                                        order_sensitivity=0.5))


def test_rendered_labels_follow_the_events():
    frames, labels = label_probe.render_set(2, 64, seed=0)
    assert frames.shape == (144, 16, 64, 64, 3) and frames.dtype == np.uint8
    assert labels.shape == (144, 3)
    # events come shape-major, then colour, then motion, 2 clips each (all_events' order)
    assert labels[:12, 2].tolist() == [m for m in range(6) for _ in range(2)]
    assert labels[:48, 0].unique().tolist() == [0] and labels[48:96, 0].unique().tolist() == [1]
    assert labels[:12, 1].unique().tolist() == [0] and labels[12:24, 1].unique().tolist() == [1]
    # the red left-moving clips: the red shape's centre goes left
    for clip in frames[:2].astype(int):
        red = (clip[..., 0] > 180) & (clip[..., 1] < 110) & (clip[..., 2] < 110)  # [T, H, W]
        columns = [np.nonzero(frame)[1].mean() for frame in red]
        assert columns[-1] < columns[0] - 10


def test_order_blind_encoder_has_zero_order_sensitivity():
    """An encoder that averages its frames cannot tell a clip from its reversal: whatever its heads
    learned, the reversed clip gets the same motion, which is never the reversal of itself."""
    torch.manual_seed(0)
    frames, labels = label_probe.render_set(1, 16, seed=3)
    weight = torch.randn(3 * 16 * 16, 8)
    heads = torch.nn.ModuleDict({name: torch.nn.Linear(8, len(classes))
                                 for name, classes in label_probe.HEADS.items()})

    def frame_mean(video):
        return video.mean(1).flatten(1) @ weight

    def frame_difference(video):  # reads the order: last frame minus first
        return (video[:, -1] - video[:, 0]).flatten(1) @ weight

    preprocessor = VideoTextDataPreprocessor(mean=(127.5,) * 3, std=(127.5,) * 3)
    index = np.array([1, 5, 9, 13])
    blind = label_probe.evaluate(frame_mean, heads, frames, labels, index,
                                 lambda f: label_probe.to_video(f, preprocessor), batch_size=32)
    assert blind['order_sensitivity'] == 0.0
    with torch.no_grad():  # motion weights antisymmetric in the reversal pairs: f -> -f flips the answer
        heads['motion'].weight[1::2] = -heads['motion'].weight[0::2]
        heads['motion'].bias.zero_()
    sighted = label_probe.evaluate(frame_difference, heads, frames, labels, index,
                                   lambda f: label_probe.to_video(f, preprocessor), batch_size=32)
    assert sighted['order_sensitivity'] == 1.0


def test_tool_table_and_json(tmp_path, capsys):
    out = tmp_path / 'probe.json'
    options = ['model.vision_encoder.embed_dims=32', 'model.vision_encoder.num_layers=3',
               'model.vision_encoder.num_heads=2']
    report = label_probe.main([osp.join(ROOT, 'configs/demo/svitt_tubelet_demo.py'), '--steps', '4',
                               '--eval-every', '2', '--clips-per-event', '1', '--batch-size', '8',
                               '--out', str(out), '--cfg-options', *options])
    written = json.loads(out.read_text())
    assert written == json.loads(json.dumps(report))
    assert written['num_frames'] == 8 and written['test_clips'] == 6 * 72
    assert [e['step'] for e in written['evaluations']] == [2, 4]
    for evaluation in written['evaluations']:
        for key in ('shape', 'colour', 'motion', 'axis', 'order_sensitivity'):
            assert 0.0 <= evaluation[key] <= 1.0
    printed = capsys.readouterr().out
    assert 'order sens.' in printed and 'rendered 72 training and 432 test clips' in printed


def test_bad_arguments_are_readable(capsys):
    with pytest.raises(SystemExit):
        label_probe.main([osp.join(ROOT, 'configs/demo/svitt_demo.py'), '--steps', '0'])
    assert '--steps must be >= 1, got 0' in capsys.readouterr().err
