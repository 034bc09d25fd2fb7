"""Index functions of the block-sparse layout, checked on exact small tables."""
import pytest
import torch

from svitt_mm.models.attention import BlockLayout, BlockSparseAttention
from svitt_mm.models.attention.block_layout import (block_adjacency, computed_pair_fraction,
                                                    draw_random_blocks, key_token_index, num_blocks,
                                                    num_slots, query_token_index, random_slots,
                                                    sort_block_rows, sparse_block_index, window_mask)


def test_block_counts_and_slots():
    assert [num_blocks(n, 56) for n in (0, 1, 56, 57, 3136)] == [0, 1, 1, 2, 56]
    assert num_slots(56, 1, 3) == 4
    assert num_slots(3, 1, 3) == 3  # too few blocks: every block, no repeats
    assert num_slots(2, 5, 0) == 2
    # 16 frames: 56 blocks of 56, 4 slots of 56 keys per query -> 4 / 56 of the local pairs.
    assert computed_pair_fraction(3136, 56, 4) == pytest.approx(4 / 56)
    # Ragged: 10 tokens in blocks of 4 pad to 12 queries x 2 slots x 4 keys.
    assert computed_pair_fraction(10, 4, 2) == pytest.approx(12 * 8 / 100)


def test_window_is_truncated_at_the_ends_without_wrapping():
    assert sparse_block_index(4, 1, 0).tolist() == [[0], [1], [2], [3]]
    assert sparse_block_index(5, 3, 0).tolist() == [[0, 1, -1], [0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, -1]]
    assert sparse_block_index(5, 5, 0).tolist() == [
        [0, 1, 2, -1, -1], [0, 1, 2, 3, -1], [0, 1, 2, 3, 4], [1, 2, 3, 4, -1], [2, 3, 4, -1, -1]]
    assert window_mask(3, 0).sum() == 0
    assert sparse_block_index(3, 0, 0).shape == (3, 0)


def test_too_few_blocks_uses_each_block_once():
    assert sparse_block_index(3, 1, 5).tolist() == [[0, 1, 2]] * 3
    # Window of 3 leaves the end rows one free block and the middle row none.
    assert sparse_block_index(3, 3, 2).tolist() == [[0, 1, 2]] * 3
    assert sparse_block_index(4, 3, 2, generator=torch.Generator().manual_seed(0)).tolist() == [
        [0, 1, 2, 3], [0, 1, 2, 3], [0, 1, 2, 3], [0, 1, 2, 3]]
    assert sparse_block_index(0, 1, 3).shape == (0, 0)


@pytest.mark.parametrize('blocks,local,random', [(10, 1, 3), (10, 3, 3), (7, 5, 2), (12, 0, 4), (6, 3, 4)])
def test_random_blocks_are_distinct_and_outside_the_window(blocks, local, random):
    half = (local - 1) // 2
    for seed in range(50):
        table = sparse_block_index(blocks, local, random, generator=torch.Generator().manual_seed(seed))
        assert table.shape == (blocks, min(local + random, blocks))
        for row, entries in enumerate(table.tolist()):
            used = [entry for entry in entries if entry >= 0]
            window = [j for j in range(row - half, row + half + 1) if 0 <= j < blocks]
            assert entries == used + [-1] * (len(entries) - len(used))  # unused slots last
            assert used == sorted(set(used))  # ascending, no repeats
            assert set(window) <= set(used)
            assert len(used) == min(len(window) + random, blocks)


def test_random_blocks_are_uniform_over_free_blocks():
    # Row 0 of 6 blocks with window 1 has free blocks 1..5; over 2500 draws each should appear ~500 times.
    in_window = window_mask(6, 1)
    torch.manual_seed(0)
    counts = torch.zeros(6)
    for _ in range(2500):
        counts.index_add_(0, draw_random_blocks(in_window, 1)[0], torch.ones(1))
    assert counts[0] == 0
    assert ((counts[1:] - 500).abs() < 75).all(), counts


def test_draw_marks_rows_with_too_few_free_blocks():
    assert random_slots(4, 3, 3) == 2  # end rows: 2 free blocks, middle rows: 1
    assert random_slots(4, 1, 2) == 2 and random_slots(3, 1, 5) == 2 and random_slots(2, 5, 1) == 0
    drawn = draw_random_blocks(window_mask(4, 3), 2, torch.Generator().manual_seed(1))
    assert drawn.shape == (4, 2)
    assert (drawn[1:3] == -1).sum(dim=1).tolist() == [1, 1]
    assert set(drawn[0].tolist()) == {2, 3} and set(drawn[3].tolist()) == {0, 1}


def test_sort_block_rows_puts_unused_last():
    table = torch.tensor([[3, -1, 0, 2], [-1, 1, -1, 3], [-1, -1, -1, 2], [1, 0, -1, -1]])
    assert sort_block_rows(table, 3).tolist() == [[0, 2, 3], [1, 3, -1], [2, -1, -1], [0, 1, -1]]


def test_block_adjacency():
    table = torch.tensor([[0, 2], [1, -1], [0, 2]])
    assert block_adjacency(table).tolist() == [[True, False, True], [False, True, False], [True, False, True]]


def test_token_index_tables_for_a_ragged_last_block():
    # 10 local tokens in blocks of 4 (last block: tokens 8, 9 and two padding slots), 2 global tokens.
    layout = BlockLayout(torch.tensor([[0, 2], [1, -1], [2, 0]]), block_size=4, num_tokens=10, is_dense=False)
    assert query_token_index(layout, 2).tolist() == [[2, 3, 4, 5], [6, 7, 8, 9], [10, 11, 11, 11]]
    index, valid = key_token_index(layout, 2)
    assert index.tolist() == [
        [0, 1, 2, 3, 4, 5, 10, 11, 0, 0],
        [0, 1, 6, 7, 8, 9, 0, 0, 0, 0],
        [0, 1, 10, 11, 0, 0, 2, 3, 4, 5]]
    assert valid.tolist() == [
        [True] * 8 + [False] * 2,
        [True] * 6 + [False] * 4,
        [True] * 4 + [False] * 2 + [True] * 4]


def test_make_layout_dense_fallback_threshold():
    op = BlockSparseAttention(block_size=56, local_blocks=1, random_blocks=3, dense_threshold=0.5)
    sparse = op.make_layout(3136)  # 4 of 56 blocks
    assert not sparse.is_dense and sparse.block_index.shape == (56, 4)
    assert op.make_layout(392).is_dense  # 7 blocks, 4 slots: 57 % of the pairs
    assert op.make_layout(100).is_dense  # 2 blocks: every block
    dense = op.make_layout(300)
    assert dense.block_index.tolist() == [list(range(6))] * 6
    default = BlockSparseAttention()  # 8 frames, keep 0.6: 941 tokens stay sparse, 565 and 339 go dense
    assert [default.make_layout(n).is_dense for n in (1568, 941, 565, 339)] == [False, False, True, True]
    never = BlockSparseAttention(block_size=56, random_blocks=3, dense_threshold=float('inf'))
    assert not never.make_layout(100).is_dense


def test_make_layout_uses_the_given_generator_and_device():
    op = BlockSparseAttention(block_size=4, local_blocks=1, random_blocks=2, dense_threshold=float('inf'))
    first = op.make_layout(40, generator=torch.Generator().manual_seed(5))
    again = op.make_layout(40, generator=torch.Generator().manual_seed(5))
    other = op.make_layout(40, generator=torch.Generator().manual_seed(6))
    assert torch.equal(first.block_index, again.block_index)
    assert not torch.equal(first.block_index, other.block_index)
    assert first.block_index.device == torch.device('cpu') and first.num_blocks == 10
