"""Symmetric temporal resize of relative position bias tables, and its use when a state dict of one
frame count loads into a model of another."""
import pytest
import torch

from svitt_mm.models.backbones import VideoBEiT
from svitt_mm.models.backbones.temporal_bias_resize import (resize_temporal_bias, table_frames,
                                                            temporal_resize_weights)

GRID = (2, 2)
SPATIAL = 9  # (2*2-1) * (2*2-1)


def source_offsets(weights: torch.Tensor, src: int, dst: int) -> dict:
    """destination offset -> {source offset: weight} (nonzero weights only)."""
    return {d - (dst - 1): {s - (src - 1): float(w) for s, w in enumerate(row) if w}
            for d, row in enumerate(weights)}


@pytest.mark.parametrize('src, dst', [(4, 8), (8, 16)])
def test_upsampling_stretches_time_symmetrically(src, dst):
    weights = temporal_resize_weights(src, dst)
    mapping = source_offsets(weights, src, dst)
    assert mapping[0] == {0: 1.0}  # 0 -> 0
    assert mapping[1] == {0: 0.5, 1: 0.5} and mapping[-1] == {0: 0.5, -1: 0.5}  # +-1 alike
    assert mapping[2] == {1: 1.0} and mapping[-2] == {-1: 1.0}  # x2: every other offset is exact
    assert mapping[dst - 1] == {src - 1: 1.0} and mapping[-(dst - 1)] == {-(src - 1): 1.0}  # ends
    assert mapping[dst - 2] == {src - 1: 1.0}  # beyond the source's extent: its largest offset
    assert torch.equal(weights, weights.flip(0).flip(1))  # f(+d) == f(-d) mirrored
    assert torch.allclose(weights.sum(dim=1), torch.ones(2 * dst - 1, dtype=torch.float64))


def test_nearest_mode_rounds_half_away_from_zero_on_both_sides():
    mapping = source_offsets(temporal_resize_weights(4, 8, 'nearest'), 4, 8)
    assert mapping[1] == {1: 1.0} and mapping[-1] == {-1: 1.0}  # SViTT's floor maps +1 to 0
    assert mapping[3] == {2: 1.0} and mapping[-3] == {-2: 1.0}
    assert mapping[7] == {3: 1.0} and mapping[0] == {0: 1.0}


def hand_table(values):
    """A table of 1 spatial row per offset (1x1 grid, 1 head) with the given temporal values."""
    return torch.tensor([*values, 100.0, 200.0, 300.0])[:, None]


def test_hand_computed_example():
    # 2 frames: offsets -1, 0, +1 = 1, 3, 7. At 4 frames offset d' reads the 2-frame offset d'/2:
    # -3 -> -1.5 (clamped to -1) = 1, -2 -> -1 = 1, -1 -> -0.5 = (1 + 3) / 2, 0 -> 3, ...
    resized = resize_temporal_bias(hand_table([1.0, 3.0, 7.0]), 2, 4)
    assert resized[:, 0].tolist() == [1.0, 1.0, 2.0, 3.0, 5.0, 7.0, 7.0, 100.0, 200.0, 300.0]


def test_identity_round_trip_and_tiling():
    table = torch.randn((2 * 4 - 1) * SPATIAL + 3, 3)
    same = resize_temporal_bias(table, 4, 4)
    assert torch.equal(same, table) and same is not table
    up = resize_temporal_bias(table, 4, 8)
    assert up.shape == ((2 * 8 - 1) * SPATIAL + 3, 3)
    assert torch.allclose(resize_temporal_bias(up, 8, 4), table, atol=1e-6)  # x2 and back: exact
    assert torch.allclose(resize_temporal_bias(resize_temporal_bias(table, 4, 16), 16, 4), table,
                          atol=1e-6)
    # Offset 0 and the [CLS] rows are copied; spatial rows move with their offset block.
    assert torch.equal(up[7 * SPATIAL:8 * SPATIAL], table[3 * SPATIAL:4 * SPATIAL])
    assert torch.equal(up[-3:], table[-3:])
    flat = torch.randn(SPATIAL + 3, 3)  # a 2-D (1-frame) table is tiled over every offset
    tiled = resize_temporal_bias(flat, 1, 4)
    assert torch.equal(tiled, torch.cat([flat[:-3]] * 7 + [flat[-3:]]))


def test_bad_table_and_arguments_are_reported():
    with pytest.raises(ValueError, match=r'4-frame table needs \(7 \* S \+ 3\) rows.*\(11, 3\)'):
        resize_temporal_bias(torch.zeros(11, 3), 4, 8)
    with pytest.raises(ValueError, match='dst_frames must be an int >= 1, got 0'):
        resize_temporal_bias(torch.zeros(10, 3), 1, 0)
    with pytest.raises(ValueError, match="mode must be one of.*'cubic'"):
        resize_temporal_bias(torch.zeros(10, 3), 1, 2, mode='cubic')
    assert table_frames(7 * SPATIAL + 3, GRID) == 4 and table_frames(SPATIAL + 3, GRID) == 1
    assert table_frames(2 * SPATIAL + 3, GRID) is None and table_frames(7 * SPATIAL + 4, GRID) is None


def tiny_beit(max_frames: int) -> VideoBEiT:
    torch.manual_seed(0)
    return VideoBEiT(img_size=32, patch_size=16, embed_dims=16, num_layers=2, num_heads=2,
                     drop_path_rate=0.0, max_frames=max_frames,
                     attention=dict(type='BlockSparseAttention', block_size=4, local_blocks=1,
                                    random_blocks=1, dense_threshold=float('inf')),
                     pruner=dict(type='ClsAttentionPruner', keep_rate=0.7), prune_layers=(0,)).eval()


def test_state_dict_of_another_frame_count_is_resized_on_load():
    source = tiny_beit(4)
    with torch.no_grad():
        for block in source.blocks:
            block.attn.relative_position_bias.table.normal_()
    target = tiny_beit(8)
    result = target.load_state_dict(source.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    for theirs, ours in zip(source.blocks, target.blocks):
        expected = resize_temporal_bias(theirs.attn.relative_position_bias.table.detach(), 4, 8)
        assert torch.equal(ours.attn.relative_position_bias.table.detach(), expected)
    assert torch.equal(target.blocks[0].attn.qkv.weight, source.blocks[0].attn.qkv.weight)
    out = target(torch.randn(2, 8, 3, 32, 32))
    assert out.tokens.shape == (2, 1 + 23, 16) and torch.isfinite(out.tokens).all()  # ceil(0.7 * 32)


def test_state_dict_of_the_same_frame_count_loads_unchanged():
    source = tiny_beit(4)
    with torch.no_grad():
        for block in source.blocks:
            block.attn.relative_position_bias.table.normal_()
    target = tiny_beit(4)
    target.load_state_dict(source.state_dict())
    video = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(target(video).tokens, source(video).tokens)
