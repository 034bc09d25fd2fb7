"""Frame-bag baseline: a video encoder applied to every frame on its own, blind to frame order."""
from __future__ import annotations

import copy
from typing import Optional

import torch
from mmengine.model import BaseModule
from torch import Tensor

from svitt_mm.registry import BACKBONES
from svitt_mm.utils.arg_checks import ArgumentError

from .video_beit import VideoEncoderOutput


@BACKBONES.register_module()
class FrameBagEncoder(BaseModule):
    """Encode each frame separately (``T = 1`` per call, frames folded into the batch) and combine the
    frames with order-free operations only, so the output does not depend on frame order.

    * ``tokens`` ``[B, 1 + T*N', C]``: the mean over frames of the per-frame [CLS] states (the global
      token the fusion encoder expects first), then every frame's local tokens, frame after frame.
    * ``pooled`` ``[B, C]``: the mean over frames of the per-frame pooled features.
    * ``kept_indices``: ``()`` (per-frame pruning is internal to the wrapped encoder).
    * ``positions`` ``[B, T*N']``: the tokens' positions in the clip, ``t*Hp*Wp + h*Wp + w``.

    Args:
        encoder: ``BACKBONES`` config of the per-frame encoder (e.g. ``VideoBEiT``); it must take
            ``[B, 1, C, H, W]``, return a :class:`VideoEncoderOutput` and expose ``embed_dims`` and
            ``frame_grid``.
        init_cfg: MMEngine init config.
    """

    def __init__(self, encoder: dict, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.encoder = BACKBONES.build(copy.deepcopy(encoder))
        if getattr(self.encoder, 'tubelet_size', 1) != 1:
            raise ArgumentError(f'FrameBagEncoder encodes frames one by one: its encoder must have '
                                f'tubelet_size=1, got {self.encoder.tubelet_size}')
        self.embed_dims = self.encoder.embed_dims
        self.frame_grid = self.encoder.frame_grid

    def forward(self, video: Tensor) -> VideoEncoderOutput:
        """Encode ``video`` ``[B, T, C, H, W]`` frame by frame; see the class docstring."""
        if video.dim() != 5:
            raise ValueError(f'FrameBagEncoder expects a video [B, T, C, H, W], got shape '
                             f'{tuple(video.shape)}')
        batch, frames = video.shape[:2]
        out = self.encoder(video.flatten(0, 1)[:, None])  # [B*T, 1, C, H, W]
        tokens = out.tokens.unflatten(0, (batch, frames))  # [B, T, 1+N', C]
        global_token = tokens[:, :, 0].mean(dim=1, keepdim=True)  # [B, 1, C]
        local = tokens[:, :, 1:].flatten(1, 2)  # [B, T*N', C]
        pooled = out.pooled.unflatten(0, (batch, frames)).mean(dim=1)
        frame_size = self.frame_grid[0] * self.frame_grid[1]
        in_frame = out.positions.expand(batch * frames, -1).unflatten(0, (batch, frames))  # [B, T, N']
        offsets = torch.arange(frames, device=video.device)[None, :, None] * frame_size
        positions = (in_frame + offsets).flatten(1)
        return VideoEncoderOutput(tokens=torch.cat([global_token, local], dim=1), pooled=pooled,
                                  kept_indices=(), positions=positions)
