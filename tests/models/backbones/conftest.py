import pytest
import torch

import svitt_mm.models.attention  # noqa: F401  (registers DenseAttention)
import svitt_mm.models.pruners  # noqa: F401  (registers the pruners)


def brute_force_row(q_pos, k_pos, grid, max_frames):
    """Bias-table row for original positions (``None`` = [CLS]), from explicit (t, h, w) coordinates:
    clamped temporal offset, query minus key, time outermost; [CLS] rows last (cls->patch, patch->cls,
    cls->cls)."""
    _, height, width = grid
    spatial = (2 * height - 1) * (2 * width - 1)
    num_rows = (2 * max_frames - 1) * spatial
    if q_pos is None and k_pos is None:
        return num_rows + 2
    if q_pos is None:
        return num_rows
    if k_pos is None:
        return num_rows + 1
    tq, hq, wq = q_pos // (height * width), q_pos % (height * width) // width, q_pos % width
    tk, hk, wk = k_pos // (height * width), k_pos % (height * width) // width, k_pos % width
    dt = max(-(max_frames - 1), min(max_frames - 1, tq - tk))
    return ((dt + max_frames - 1) * spatial + (hq - hk + height - 1) * (2 * width - 1)
            + (wq - wk + width - 1))


def explicit_bias(table, seq_positions, grid, max_frames):
    """Bias ``[H, L, L]`` of a sequence of original positions (``None`` = [CLS])."""
    rows = [[brute_force_row(q, k, grid, max_frames) for k in seq_positions] for q in seq_positions]
    return table[torch.tensor(rows)].permute(2, 0, 1)


@pytest.fixture
def rpb_row():
    return brute_force_row


@pytest.fixture
def bias_reference():
    return explicit_bias
