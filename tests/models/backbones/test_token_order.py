import itertools

import pytest
import torch

from svitt_mm.models.backbones.token_order import (TOKEN_ORDERS, hilbert_codes, morton_codes,
                                                   token_order)

GRIDS = [(1, 4, 4), (2, 3, 5), (4, 14, 14), (8, 4, 4)]


def coords_of(positions, grid):
    return [tuple(divmod_3d(int(p), grid)) for p in positions]


def divmod_3d(position, grid):
    t, rest = divmod(position, grid[1] * grid[2])
    return (t, *divmod(rest, grid[2]))


@pytest.mark.parametrize('name', sorted(TOKEN_ORDERS))
@pytest.mark.parametrize('grid', GRIDS)
def test_every_order_is_a_permutation(name, grid):
    order = token_order(name, grid)
    assert order.dtype == torch.long
    assert sorted(order.tolist()) == list(range(grid[0] * grid[1] * grid[2]))


@pytest.mark.parametrize('grid', GRIDS)
def test_raster_is_identity(grid):
    assert token_order('raster', grid).tolist() == list(range(grid[0] * grid[1] * grid[2]))


@pytest.mark.parametrize('grid', [(2, 3, 5), (4, 14, 14)])
def test_morton_codes_interleave_bits_with_time_most_significant(grid):
    bits = (max(grid) - 1).bit_length()
    expected = []
    for t, h, w in itertools.product(*(range(n) for n in grid)):
        code = 0
        for level in range(bits):
            code |= ((t >> level) & 1) << (3 * level + 2)
            code |= ((h >> level) & 1) << (3 * level + 1)
            code |= ((w >> level) & 1) << (3 * level)
        expected.append(code)
    assert morton_codes(grid).tolist() == expected
    assert token_order('zcurve', grid).tolist() == sorted(range(len(expected)), key=expected.__getitem__)


@pytest.mark.parametrize('side', [2, 4, 8])
def test_zcurve_visits_aligned_2x2x2_cubes_in_turn(side):
    grid = (side, side, side)
    coords = coords_of(token_order('zcurve', grid), grid)
    for start in range(0, len(coords), 8):
        cube = coords[start:start + 8]
        corner = tuple(c - c % 2 for c in cube[0])
        assert sorted(cube) == sorted(itertools.product(*((c, c + 1) for c in corner)))


@pytest.mark.parametrize('side', [2, 4, 8])
def test_hilbert_consecutive_tokens_are_3d_neighbours(side):
    grid = (side, side, side)
    coords = coords_of(token_order('hilbert', grid), grid)
    assert coords[0] == (0, 0, 0)
    for a, b in zip(coords, coords[1:]):
        assert sum(abs(x - y) for x, y in zip(a, b)) == 1, (a, b)


def test_hilbert_codes_are_a_bijection_onto_the_cube():
    assert sorted(hilbert_codes((4, 4, 4)).tolist()) == list(range(64))


def test_hilbert_differs_from_zcurve():
    assert token_order('hilbert', (4, 4, 4)).tolist() != token_order('zcurve', (4, 4, 4)).tolist()


def test_unknown_order_lists_valid_names():
    with pytest.raises(ValueError, match=r"'spiral'.*\['hilbert', 'raster', 'zcurve'\]"):
        token_order('spiral', (1, 2, 2))
