"""The built-in block patterns' tables, on exact small cases."""
import pytest
import torch

from svitt_mm.models.attention import LocalRandomBlocks, StridedBlocks
from svitt_mm.models.attention.block_layout import block_table
from svitt_mm.registry import ATTENTION_PATTERNS


def test_strided_blocks_table():
    table = block_table(StridedBlocks(stride=3, local_blocks=1).block_index(8, training=True))
    assert table.tolist() == [[0, 3, 6], [1, 4, 7], [2, 5, -1], [0, 3, 6], [1, 4, 7], [2, 5, -1], [0, 3, 6],
                              [1, 4, 7]]
    window = block_table(StridedBlocks(stride=4, local_blocks=3).block_index(6, training=False))
    assert window.tolist() == [[0, 1, 4, -1], [0, 1, 2, 5], [1, 2, 3, -1], [2, 3, 4, -1], [0, 3, 4, 5],
                               [1, 4, 5, -1]]


def test_local_random_blocks_table():
    pattern = LocalRandomBlocks(local_blocks=3, random_blocks=2)
    table = block_table(pattern.block_index(10, training=True, generator=torch.Generator().manual_seed(0)),
                        pattern.max_slots(10))
    assert table.shape == (10, 5) and pattern.max_slots(3) == 3
    for row, blocks in enumerate(table.tolist()):
        window = {b for b in range(row - 1, row + 2) if 0 <= b < 10}
        assert window <= set(blocks) and len(set(blocks) - window - {-1}) == 2


@pytest.mark.parametrize('build,message', [
    (dict(type='StridedBlocks', stride=1), 'StridedBlocks.stride: 1 must be an int >= 2'),
    (dict(type='StridedBlocks', local_blocks=2), 'StridedBlocks.local_blocks: 2 must be 0 or an odd int'),
    (dict(type='LocalRandomBlocks', random_blocks=-1), 'LocalRandomBlocks.random_blocks: -1 must be an int >= 0'),
])
def test_patterns_check_their_settings(build, message):
    with pytest.raises(ValueError, match=message):
        ATTENTION_PATTERNS.build(build)
