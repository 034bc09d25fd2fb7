"""Orders of the video patch tokens along 3-D space-filling curves.

A token order is a permutation ``order`` ``LongTensor[T*Hp*Wp]`` of the frame-major raster positions
``t*Hp*Wp + h*Wp + w``: the ``i``-th token of the reordered sequence is the token at raster position
``order[i]``.  The order only decides which tokens are neighbours in the sequence (and so share a block
of a block-sparse attention operator); the relative position bias always uses raster positions.

* ``'raster'``: the identity.
* ``'zcurve'``: ascending Morton code of ``(t, h, w)`` (bits interleaved, ``t`` most significant).
* ``'hilbert'``: ascending index along the 3-D Hilbert curve of the smallest power-of-two cube holding
  the grid (Skilling's transpose construction, "Programming the Hilbert curve", AIP Conf. Proc. 707, 2004).

For non-cubic or non-power-of-two grids the curve of the enclosing cube is restricted to the grid.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

import torch
from torch import Tensor

Grid = Tuple[int, int, int]


def grid_coordinates(grid: Grid, device: Optional[torch.device] = None) -> Tuple[Tensor, Tensor, Tensor]:
    """Coordinates ``(t, h, w)``, each ``LongTensor[T*Hp*Wp]``, of the raster positions of ``grid``."""
    positions = torch.arange(grid[0] * grid[1] * grid[2], device=device)
    return torch.unravel_index(positions, grid)


def _bits_per_axis(grid: Grid) -> int:
    """Bits needed for the largest coordinate of ``grid`` (at least 1)."""
    return max(1, (max(grid) - 1).bit_length())


def raster_order(grid: Grid, device: Optional[torch.device] = None) -> Tensor:
    """Identity permutation ``LongTensor[T*Hp*Wp]``."""
    return torch.arange(grid[0] * grid[1] * grid[2], device=device)


def morton_codes(grid: Grid, device: Optional[torch.device] = None) -> Tensor:
    """Morton (Z-order) code ``LongTensor[T*Hp*Wp]`` of every raster position; per bit level the
    ``t`` bit is the most significant, then ``h``, then ``w``."""
    coords = grid_coordinates(grid, device)
    codes = torch.zeros_like(coords[0])
    for level in range(_bits_per_axis(grid)):
        for axis, coord in enumerate(coords):
            codes |= ((coord >> level) & 1) << (3 * level + 2 - axis)
    return codes


def hilbert_codes(grid: Grid, device: Optional[torch.device] = None) -> Tensor:
    """3-D Hilbert curve index ``LongTensor[T*Hp*Wp]`` of every raster position (axes ``t, h, w``).

    Consecutive indices of a ``2^b`` cube are face neighbours (L1 distance 1); index 0 is the origin.
    """
    bits = _bits_per_axis(grid)
    x = [c.clone() for c in grid_coordinates(grid, device)]
    num_axes = len(x)
    # Skilling's AxesToTranspose: undo the curve's rotations/reflections level by level ...
    q = 1 << (bits - 1)
    while q > 1:
        p = q - 1
        for i in range(num_axes):
            high = (x[i] & q) != 0
            swap = (x[0] ^ x[i]) & p
            x0_invert = x[0] ^ p
            x0_swap = x[0] ^ swap
            xi_swap = x[i] ^ swap
            if i == 0:
                x[0] = torch.where(high, x0_invert, x[0])
            else:
                x[i] = torch.where(high, x[i], xi_swap)
                x[0] = torch.where(high, x0_invert, x0_swap)
        q >>= 1
    # ... then Gray-encode.
    for i in range(1, num_axes):
        x[i] = x[i] ^ x[i - 1]
    flip = torch.zeros_like(x[0])
    q = 1 << (bits - 1)
    while q > 1:
        flip = torch.where((x[num_axes - 1] & q) != 0, flip ^ (q - 1), flip)
        q >>= 1
    x = [xi ^ flip for xi in x]
    # The transposed form holds the index bits column-wise: interleave them, axis 0 most significant.
    codes = torch.zeros_like(x[0])
    for level in range(bits):
        for axis in range(num_axes):
            codes |= ((x[axis] >> level) & 1) << (num_axes * level + num_axes - 1 - axis)
    return codes


def zcurve_order(grid: Grid, device: Optional[torch.device] = None) -> Tensor:
    """Raster positions sorted by Morton code: ``LongTensor[T*Hp*Wp]``."""
    return torch.argsort(morton_codes(grid, device), stable=True)


def hilbert_order(grid: Grid, device: Optional[torch.device] = None) -> Tensor:
    """Raster positions sorted by 3-D Hilbert index: ``LongTensor[T*Hp*Wp]``."""
    return torch.argsort(hilbert_codes(grid, device), stable=True)


TOKEN_ORDERS: Dict[str, Callable[[Grid, Optional[torch.device]], Tensor]] = {
    'raster': raster_order,
    'zcurve': zcurve_order,
    'hilbert': hilbert_order,
}


def check_token_order(name: str) -> None:
    """Raise a ``ValueError`` listing the valid names if ``name`` is not a known token order."""
    if name not in TOKEN_ORDERS:
        raise ValueError(f'token_order={name!r} is not supported; valid orders: {sorted(TOKEN_ORDERS)}')


def token_order(name: str, grid: Grid, device: Optional[torch.device] = None) -> Tensor:
    """Permutation ``LongTensor[T*Hp*Wp]`` of the raster positions of ``grid = (T, Hp, Wp)`` for
    the order ``name`` (one of :data:`TOKEN_ORDERS`)."""
    check_token_order(name)
    return TOKEN_ORDERS[name](grid, device)
