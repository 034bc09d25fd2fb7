import pytest
import torch

from svitt_mm.models.backbones.relative_position_bias import (RelativePositionBias3D,
                                                              RelativePositionIndex)
from svitt_mm.models.backbones.token_order import token_order

GRID = (3, 2, 3)  # T, Hp, Wp


def check_all_pairs(rpb_row, positions, max_frames):
    """Compare every (query, key) row of the sequence [CLS] + positions with the brute force."""
    index = RelativePositionIndex(positions, GRID[1:], max_frames)
    length = positions.shape[1] + 1
    seq = torch.arange(length)
    rows = index(seq[:, None], seq[None, :])
    assert rows.shape == (positions.shape[0], length, length)
    for p in range(positions.shape[0]):
        seq_pos = [None] + positions[p].tolist()
        for i in range(length):
            for j in range(length):
                assert rows[p, i, j] == rpb_row(seq_pos[i], seq_pos[j], GRID, max_frames), (p, i, j)


@pytest.mark.parametrize('max_frames', [2, 3, 4])
def test_index_matches_coordinate_formula_in_raster_order(rpb_row, max_frames):
    check_all_pairs(rpb_row, torch.arange(GRID[0] * GRID[1] * GRID[2])[None], max_frames)


@pytest.mark.parametrize('order', ['zcurve', 'hilbert'])
def test_index_matches_formula_after_permutation(rpb_row, order):
    positions = token_order(order, GRID)[None]
    assert positions.tolist() != [list(range(positions.shape[1]))]
    check_all_pairs(rpb_row, positions, max_frames=3)


def test_index_matches_formula_after_pruning_per_sample(rpb_row):
    generator = torch.Generator().manual_seed(0)
    order = token_order('hilbert', GRID)
    # each sample keeps a different subset, in the current (hilbert) order
    keep = torch.stack([torch.randperm(order.numel(), generator=generator)[:7].sort().values
                        for _ in range(3)])
    positions = order[keep]
    assert not torch.equal(positions[0], positions[1])
    check_all_pairs(rpb_row, positions, max_frames=2)


def test_hand_computed_rows():
    # grid (2, 2, 2), max_frames 2: 3x3 spatial offsets, 27 patch rows, cls rows 27 / 28 / 29
    index = RelativePositionIndex(torch.arange(8)[None], (2, 2), 2)
    q = torch.tensor([5, 2, 0, 0, 1])  # sequence indices: 5 -> position 4 = (t1, h0, w0)
    k = torch.tensor([4, 5, 3, 0, 0])  # 4 -> position 3 = (t0, h1, w1)
    # (1,0,0)-(0,1,1): dt=1, dh=-1, dw=-1 -> 2*9 + 0*3 + 0 = 18
    # pos 1 = (0,0,1) vs pos 4 = (1,0,0): dt=-1, dh=0, dw=1 -> 0*9 + 1*3 + 2 = 5
    assert index(q, k).tolist() == [[18, 5, 27, 29, 28]]


def test_broadcast_index_shapes_as_sparse_operators_use_them(rpb_row):
    positions = token_order('zcurve', GRID)[None].repeat(2, 1)
    positions[1] = positions[1].flip(0)
    index = RelativePositionIndex(positions, GRID[1:], 3)
    generator = torch.Generator().manual_seed(1)
    q = torch.randint(0, 19, (4, 5, 1), generator=generator)
    k = torch.randint(0, 19, (4, 1, 6), generator=generator)
    rows = index(q, k)
    assert rows.shape == (2, 4, 5, 6)
    for p in range(2):
        seq_pos = [None] + positions[p].tolist()
        for m in range(4):
            for g in range(5):
                for c in range(6):
                    expected = rpb_row(seq_pos[q[m, g, 0]], seq_pos[k[m, 0, c]], GRID, 3)
                    assert rows[p, m, g, c] == expected


def test_table_shape_zero_init_and_bound_bias_values():
    module = RelativePositionBias3D(num_heads=4, max_frames=3, frame_grid=GRID[1:])
    assert module.table.shape == ((2 * 3 - 1) * 3 * 5 + 3, 4)
    assert torch.count_nonzero(module.table) == 0
    with torch.no_grad():
        module.table.copy_(torch.randn_like(module.table))
    positions = token_order('hilbert', GRID)[None]
    index = RelativePositionIndex(positions, GRID[1:], 3)
    q, k = torch.arange(19)[:, None], torch.arange(19)[None, :]
    bias = module.bind(index, torch.float64)(q, k)
    assert bias.shape == (1, 4, 19, 19) and bias.dtype == torch.float64
    rows = index(q, k)[0]
    for head in range(4):
        assert torch.equal(bias[0, head], module.table[rows, head].double())


def test_gradient_reaches_exactly_the_used_rows():
    module = RelativePositionBias3D(num_heads=2, max_frames=2, frame_grid=(2, 2))
    index = RelativePositionIndex(torch.tensor([[0, 7]]), (2, 2), 2)
    seq = torch.arange(3)
    module.bind(index, torch.float32)(seq[:, None], seq[None, :]).sum().backward()
    used = set(index(seq[:, None], seq[None, :]).flatten().tolist())
    touched = set(torch.nonzero(module.table.grad[:, 0]).flatten().tolist())
    assert touched == used and len(used) == 6  # 2 patch-patch offsets (+-), 0 offset, 3 cls rows


def test_invalid_max_frames():
    with pytest.raises(ValueError, match='max_frames'):
        RelativePositionBias3D(num_heads=2, max_frames=0, frame_grid=(2, 2))
