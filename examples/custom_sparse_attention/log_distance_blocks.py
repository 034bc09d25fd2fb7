"""A block pattern registered into svitt_mm from outside the package (see README.md)."""
from typing import Optional

import torch

from svitt_mm.models.attention import BlockPattern
from svitt_mm.registry import ATTENTION_PATTERNS


@ATTENTION_PATTERNS.register_module()
class LogDistanceBlocks(BlockPattern):
    """Query block ``m`` sees itself and the blocks at distances 1, 2, 4, ... up to ``max_distance`` on both
    sides (LogSparse attention, Li et al. 2019, at block granularity). Deterministic."""

    def __init__(self, max_distance: int = 8) -> None:
        if not isinstance(max_distance, int) or max_distance < 1:
            raise ValueError(f'LogDistanceBlocks: max_distance must be a positive int, got {max_distance!r}')
        self.max_distance = max_distance

    def block_index(self, num_blocks: int, training: bool, generator: Optional[torch.Generator] = None,
                    device: Optional[torch.device] = None) -> torch.Tensor:
        distances = [1 << i for i in range(self.max_distance.bit_length())]
        offsets = torch.tensor([0] + distances + [-d for d in distances], device=device)
        blocks = torch.arange(num_blocks, device=device)[:, None] + offsets  # [M, slots]
        return blocks.where((blocks >= 0) & (blocks < num_blocks), -1)
