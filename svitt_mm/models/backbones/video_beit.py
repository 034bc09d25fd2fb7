"""Video BEiT: BEiT applied to all patches of all frames, with a 3-D relative position bias,
pluggable (sparse) attention operators and visual token pruning (SViTT's vision encoder)."""
from __future__ import annotations

import copy
from typing import NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model import BaseModule
from timm.layers import DropPath, Mlp, PatchEmbed, trunc_normal_
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from svitt_mm.registry import ATTENTION_OPS, BACKBONES, TOKEN_PRUNERS
from svitt_mm.utils.arg_checks import ArgumentError, check_arguments, each, int_at_least, number_in, optional

from ..architecture_check import VIDEO_BEIT_SETTINGS
from ..init_info import QuietInitInfo
from ..pruners.proportional_attention import ProportionalAttentionBias
from .beit_config import resolve_beit_architecture
from .beit_weights import load_beit_weights
from .relative_position_bias import RelativePositionBias3D, RelativePositionIndex
from .token_order import check_token_order, token_order


class VideoEncoderOutput(NamedTuple):
    """Output of :class:`VideoBEiT`.

    * ``tokens``: ``[B, 1+N', C]`` final hidden states, [CLS] first, then the surviving local tokens in
      their current order (no final norm).
    * ``pooled``: ``[B, C]`` pooler LayerNorm of the mean of the local tokens.
    * ``kept_indices``: one ``LongTensor[B, N_k]`` per pruning layer, the original raster positions
      ``t*Hp*Wp + h*Wp + w`` of the tokens kept there (``t``: the frame, or the tubelet when
      ``tubelet_size > 1``).
    * ``positions``: ``LongTensor[B or 1, N']`` original positions of the final local tokens.
    * ``token_groups``: one ``LongTensor[B, T*Hp*Wp]`` per pruning layer: for every original token (by
      raster position), the index among that layer's local tokens of the token it ended in, ``-1`` where
      it was dropped. A pruner's groups are single tokens; a merger's
      (:class:`~svitt_mm.models.pruners.TokenMerger`) are the tokens averaged into one, whose entry of
      ``kept_indices`` is the rounded size-weighted mean position of the group (``()`` when nothing
      is reduced).
    """

    tokens: Tensor
    pooled: Tensor
    kept_indices: Tuple[Tensor, ...]
    positions: Tensor
    token_groups: Tuple[Tensor, ...] = ()


class BEiTSelfAttention(nn.Module):
    """Multi-head self-attention with BEiT's projections (q and v biased, k not) and a 3-D relative
    position bias, computed by an attention operator from ``ATTENTION_OPS``.

    The fused ``qkv`` projection with separate ``q_bias`` / ``v_bias`` follows timm's BEiT layout.
    """

    def __init__(self, embed_dims: int, num_heads: int, attention: dict, max_frames: int,
                 frame_grid: Tuple[int, int]) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ArgumentError(f'embed_dims={embed_dims} is not divisible by num_heads={num_heads}')
        self.num_heads = num_heads
        self.qkv = nn.Linear(embed_dims, 3 * embed_dims, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(embed_dims))
        self.v_bias = nn.Parameter(torch.zeros(embed_dims))
        self.relative_position_bias = RelativePositionBias3D(num_heads, max_frames, frame_grid)
        self.op = ATTENTION_OPS.build(copy.deepcopy(attention))
        self.proj = nn.Linear(embed_dims, embed_dims)

    def forward(self, x: Tensor, index: RelativePositionIndex,
                sizes: Optional[Tensor] = None) -> Tuple[Tensor, Tensor, Tensor]:
        """``x`` ``[B, 1+N, C]`` -> (output ``[B, 1+N, C]``, [CLS] attention ``[B, H, 1, 1+N]``,
        head-averaged keys ``[B, 1+N, D]``).

        ``sizes`` ``[B, 1+N]`` (tokens that stand for several merged ones): proportional attention, every
        key's logits get ``log(size)`` through the operator's pair bias.
        """
        batch, length, dims = x.shape
        bias = torch.cat([self.q_bias, torch.zeros_like(self.v_bias), self.v_bias])
        qkv = F.linear(x, self.qkv.weight, bias).reshape(batch, length, 3, self.num_heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, H, 1+N, D]
        pair_bias = self.relative_position_bias.bind(index, q.dtype)
        if sizes is not None:
            pair_bias = ProportionalAttentionBias(sizes, pair_bias)
        out, global_probs = self.op(q, k, v, num_global=1, bias=pair_bias)
        return self.proj(out.transpose(1, 2).reshape(batch, length, dims)), global_probs, k.mean(dim=1)


class BEiTBlock(nn.Module):
    """Pre-LN BEiT block: ``x + DropPath(gamma_1 * Attn(LN(x)))``, then
    ``x + DropPath(gamma_2 * MLP(LN(x)))``."""

    def __init__(self, embed_dims: int, num_heads: int, mlp_ratio: float, layer_scale_init: float,
                 drop_path: float, norm_eps: float, attention: dict, max_frames: int,
                 frame_grid: Tuple[int, int]) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.attn = BEiTSelfAttention(embed_dims, num_heads, attention, max_frames, frame_grid)
        self.norm2 = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.mlp = Mlp(embed_dims, int(embed_dims * mlp_ratio), act_layer=nn.GELU)
        self.gamma_1 = nn.Parameter(torch.full((embed_dims,), float(layer_scale_init)))
        self.gamma_2 = nn.Parameter(torch.full((embed_dims,), float(layer_scale_init)))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor, index: RelativePositionIndex,
                sizes: Optional[Tensor] = None) -> Tuple[Tensor, Tensor, Tensor]:
        """``x`` ``[B, 1+N, C]`` (token ``sizes`` ``[B, 1+N]`` or ``None``) -> (``[B, 1+N, C]``, [CLS]
        attention ``[B, H, 1, 1+N]``, head-averaged keys ``[B, 1+N, D]``)."""
        attended, global_probs, keys = self.attn(self.norm1(x), index, sizes=sizes)
        x = x + self.drop_path(self.gamma_1 * attended)
        x = x + self.drop_path(self.gamma_2 * self.mlp(self.norm2(x)))
        return x, global_probs, keys


@BACKBONES.register_module()
class VideoBEiT(QuietInitInfo, BaseModule):
    """BEiT over the patches of all frames of a clip, with a 3-D relative position bias.

    Every frame is cut into ``patch_size`` patches by one shared patch embedding; the tokens of all
    frames (frame-major raster order ``t*Hp*Wp + h*Wp + w``, then permuted by ``token_order``) follow one
    learnable [CLS].  With ``tubelet_size = s > 1`` a token embeds the same patch of ``s`` consecutive
    frames (a space-time "tubelet", as a Conv3d with kernel and stride ``(s, p, p)`` would), and ``t``
    counts tubelets.  By default (as in SViTT) there is no absolute position embedding: positions enter only
    through the per-layer relative position bias (:mod:`.relative_position_bias`), so one model takes any
    number of frames.  Two switches add position embeddings to the patch tokens before the first layer,
    looked up by each token's original ``(t, h, w)``, so they are the same for every ``token_order``:
    ``use_abs_pos_emb`` (where a token is in its frame) and ``use_temporal_emb`` (which frame or tubelet
    it comes from).

    Args:
        img_size: frame height and width (pixels).
        patch_size: patch side (pixels).
        in_channels: channels per frame.
        embed_dims, num_layers, num_heads, mlp_ratio: transformer sizes.
            The eight architecture settings (``img_size`` to ``mlp_ratio`` and ``norm_eps``) default to
            ``None``: read from the Hugging Face ``config.json`` beside the ``pretrained`` weights when
            there is one (an explicit value that contradicts it is refused unless ``strict=False``), else
            BEiT-base's (224, 16,
            3, 768, 12, 12, 4.0, 1e-12).
        layer_scale_init: initial value of the per-channel layer scales ``gamma_1``, ``gamma_2``.
        drop_path_rate: stochastic depth of the last layer (linearly increasing from 0 at the first).
        norm_eps: LayerNorm epsilon (1e-12 for HF BEiT weights, 1e-6 for timm's).
        max_frames: temporal extent of the relative position tables, in frames (``max_frames /
            tubelet_size`` tubelets); longer clips clamp the offsets.
        tubelet_size: consecutive frames embedded together in one token (1: every frame on its own, as
            in SViTT). Its patch embedding sees how a patch changes between those frames, so it can tell
            the direction of motion without any attention. Clips must have a multiple of it in frames.
        attention: ``ATTENTION_OPS`` config, built once per layer, or a list of ``num_layers`` configs
            (e.g. to give every layer of a sparse operator its own evaluation seed).
        pruner: optional ``TOKEN_PRUNERS`` config applied after each layer of ``prune_layers``, ranking
            the local tokens by that layer's head-averaged [CLS] attention.
        prune_layers: 0-based layers after which tokens are pruned (SViTT: ``(3, 6, 9)``).
        token_order: ``'raster'``, ``'zcurve'`` or ``'hilbert'`` (:mod:`.token_order`).
        use_abs_pos_emb: add BEiT's absolute position embedding ``pos_embed`` ``[1, 1+Hp*Wp, C]``: slot 0
            to the [CLS] token, slot ``1 + h*Wp + w`` to every token at ``(h, w)`` of every frame or
            tubelet (spatial only, shared across time). Zero-initialised; loaded from BEiT weights that
            have one (Hugging Face ``use_absolute_position_embeddings``, timm ``use_abs_pos_emb``),
            resized bicubically when their grid differs (:mod:`.beit_weights`).
        use_temporal_emb: add a learned embedding ``temporal_embed`` ``[1, max_frames/tubelet_size, C]``
            to every token of frame (tubelet) ``t``. Initialised small and random as the [CLS] token
            (truncated normal, std 0.02), not with zeros, so that the encoder is not symmetric in time
            from the start; clips longer than ``max_frames`` are refused. BEiT weights have none: it
            keeps its start.
        temporal_init_std: > 0 draws the temporal slices (``dt != 0``) of every layer's relative position
            bias table from ``N(0, std^2)`` instead of zeros
            (:meth:`.RelativePositionBias3D.init_temporal_slices`). Pretrained BEiT weights, inflated
            from 2-D, overwrite them with time-symmetric values.
        pretrained: BEiT weights (HF model directory or weights file) loaded by :meth:`init_weights`.
        strict: refuse ``pretrained`` weights built for another architecture (another layer count,
            width, heads, patch or tubelet size), naming the first setting that differs; ``False`` loads
            the weights that fit. Either way the keys that did not match are logged in a WARNING table.
        with_cp: activation checkpointing: in training, each block's activations are recomputed in the
            backward pass instead of stored (non-reentrant ``torch.utils.checkpoint``; the relative position
            bias, the token positions and the random sparse pattern, replayed from the saved RNG state,
            take part in the recomputation, so outputs and gradients equal those without it).
        init_cfg: MMEngine init config.
    """

    architecture_settings = VIDEO_BEIT_SETTINGS  # what strict loading compares (architecture_check)
    # architecture values may be left to a pretrained folder's config.json (None)
    argument_checks = dict(
        img_size=optional(int_at_least(1)), patch_size=optional(int_at_least(1)),
        embed_dims=optional(int_at_least(1)), num_layers=optional(int_at_least(1)),
        num_heads=optional(int_at_least(1)), max_frames=int_at_least(1), tubelet_size=int_at_least(1),
        prune_layers=each(int_at_least(0)), drop_path_rate=number_in(0, 1, high_open=True),
        temporal_init_std=number_in(0, float('inf')))

    def __init__(self, img_size: Optional[int] = None, patch_size: Optional[int] = None,
                 in_channels: Optional[int] = None, embed_dims: Optional[int] = None,
                 num_layers: Optional[int] = None, num_heads: Optional[int] = None,
                 mlp_ratio: Optional[float] = None, layer_scale_init: float = 0.1,
                 drop_path_rate: float = 0.1, norm_eps: Optional[float] = None, max_frames: int = 4,
                 tubelet_size: int = 1, attention: Union[dict, Sequence[dict], None] = None,
                 pruner: Optional[dict] = None, prune_layers: Sequence[int] = (),
                 token_order: str = 'raster', pretrained: Optional[str] = None, with_cp: bool = False,
                 strict: bool = True, use_abs_pos_emb: bool = False, use_temporal_emb: bool = False,
                 temporal_init_std: float = 0.0, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        check_arguments(self, img_size=img_size, patch_size=patch_size, embed_dims=embed_dims,
                        num_layers=num_layers, num_heads=num_heads, max_frames=max_frames,
                        tubelet_size=tubelet_size, prune_layers=prune_layers, drop_path_rate=drop_path_rate,
                        temporal_init_std=temporal_init_std)
        arch = resolve_beit_architecture(dict(
            img_size=img_size, patch_size=patch_size, in_channels=in_channels, embed_dims=embed_dims,
            num_layers=num_layers, num_heads=num_heads, mlp_ratio=mlp_ratio, norm_eps=norm_eps), pretrained,
            strict)
        img_size, patch_size, in_channels = arch['img_size'], arch['patch_size'], arch['in_channels']
        embed_dims, num_layers, num_heads = arch['embed_dims'], arch['num_layers'], arch['num_heads']
        mlp_ratio, norm_eps = arch['mlp_ratio'], arch['norm_eps']
        if img_size % patch_size:
            raise ArgumentError(f'img_size={img_size} is not divisible by patch_size={patch_size}')
        check_token_order(token_order)
        if max_frames % tubelet_size:
            raise ArgumentError(f'tubelet_size={tubelet_size!r} must divide max_frames={max_frames}')
        prune_layers = tuple(sorted(set(int(i) for i in prune_layers)))
        if prune_layers and pruner is None:
            raise ArgumentError(f'prune_layers={prune_layers} needs a pruner config (pruner=None)')
        if any(not 0 <= i < num_layers for i in prune_layers):
            raise ArgumentError(f'prune_layers={prune_layers} must lie in [0, {num_layers - 1}] '
                                f'(num_layers={num_layers})')
        self.img_size = img_size
        self.patch_size = patch_size
        self.in_channels = in_channels
        self.embed_dims = embed_dims
        self.max_frames = max_frames
        self.tubelet_size = tubelet_size
        self.max_tubelets = max_frames // tubelet_size  # temporal extent of the relative position tables
        self.frame_grid = (img_size // patch_size, img_size // patch_size)
        self.token_order = token_order
        self.prune_layers = prune_layers
        self.pretrained = pretrained
        self.strict = strict
        self.with_cp = bool(with_cp)

        self.patch_embed = PatchEmbed(img_size, patch_size, in_channels * tubelet_size, embed_dims)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        attention = attention if attention is not None else dict(type='DenseAttention')
        per_layer = [attention] * num_layers if isinstance(attention, dict) else list(attention)
        if len(per_layer) != num_layers:
            raise ArgumentError(f'attention: expected one config or {num_layers} (num_layers), got '
                                f'{len(per_layer)}')
        rates = torch.linspace(0, drop_path_rate, num_layers).tolist()
        self.blocks = nn.ModuleList(
            BEiTBlock(embed_dims, num_heads, mlp_ratio, layer_scale_init, rate, norm_eps, layer_attention,
                      self.max_tubelets, self.frame_grid)
            for rate, layer_attention in zip(rates, per_layer))
        for layer_index, block in enumerate(self.blocks):
            block.attn.op.layer_index = layer_index  # distinct deterministic sparse patterns per layer
        self.pooler_norm = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.pruner = TOKEN_PRUNERS.build(pruner) if pruner is not None else None
        self._init_linear_weights()
        # Optional position embeddings, after the default initialisation so that it draws the same numbers.
        self.use_abs_pos_emb = bool(use_abs_pos_emb)
        self.use_temporal_emb = bool(use_temporal_emb)
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.frame_grid[0] * self.frame_grid[1],
                                                  embed_dims)) if self.use_abs_pos_emb else None
        self.temporal_embed = nn.Parameter(trunc_normal_(torch.zeros(1, self.max_tubelets, embed_dims),
                                                         std=0.02)) if self.use_temporal_emb else None
        for block in self.blocks:
            block.attn.relative_position_bias.init_temporal_slices(temporal_init_std)

    def _init_linear_weights(self) -> None:
        """Truncated normal (std 0.02) for linear maps (patch projection included) and the [CLS], zero
        biases.  The other parameters start as constructed: zero q/v biases and bias tables, LayerNorm
        1/0, layer scales ``layer_scale_init``."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        trunc_normal_(self.cls_token, std=0.02)

    def _embed_positions(self, x: Tensor) -> Tensor:
        """Add the optional position embeddings to the patch tokens ``x`` ``[B, T', Hp*Wp, C]`` (raster
        order, ``T'`` frames or tubelets); the result is ``[B, T'*Hp*Wp, C]``."""
        if self.temporal_embed is not None:
            if x.shape[1] > self.max_tubelets:
                raise ValueError(f'VideoBEiT has a temporal embedding for {self.max_tubelets} frames/tubelets '
                                 f'(max_frames={self.max_frames}); got a clip of {x.shape[1]}')
            x = x + self.temporal_embed[:, :x.shape[1], None]
        if self.pos_embed is not None:
            x = x + self.pos_embed[:, None, 1:]
        return x.flatten(1, 2)

    def init_weights(self) -> None:
        """MMEngine init (``init_cfg``), then the BEiT weights of ``pretrained``, if any."""
        super().init_weights()
        if self.pretrained is not None:
            load_beit_weights(self, self.pretrained, strict=self.strict)  # mismatches: a WARNING table
            print_log(f'VideoBEiT: loaded {self.pretrained!r}', logger='current')

    def _check_input(self, video: Tensor) -> None:
        expected = f'[B, T, {self.in_channels}, {self.img_size}, {self.img_size}]'
        if video.dim() != 5:
            raise ValueError(f'VideoBEiT expects a video {expected}, got shape {tuple(video.shape)}')
        if video.shape[2] != self.in_channels:
            raise ValueError(f'VideoBEiT expects {self.in_channels} channels, i.e. {expected}; got shape '
                             f'{tuple(video.shape)}')
        if video.shape[1] % self.tubelet_size:
            raise ValueError(f'VideoBEiT has tubelet_size={self.tubelet_size}: clips need a multiple of '
                             f'{self.tubelet_size} frames, got {video.shape[1]} (shape {tuple(video.shape)})')
        if tuple(video.shape[-2:]) != (self.img_size, self.img_size):
            raise ValueError(
                f'VideoBEiT is configured for {self.img_size}x{self.img_size} frames (a '
                f'{self.frame_grid[0]}x{self.frame_grid[1]} grid of {self.patch_size}-pixel patches), i.e. '
                f'{expected}; got shape {tuple(video.shape)}')

    def _prune(self, x: Tensor, positions: Tensor, sizes: Optional[Tensor], global_probs: Tensor, keys: Tensor,
               groups: Tensor) -> Tuple[Tensor, Tensor, Optional[Tensor], Tensor]:
        """Reduce the local tokens with the pruner (:meth:`~svitt_mm.models.pruners.TokenPruner.reduce`:
        pruners keep tokens, a merger averages them).

        ``x`` ``[B, 1+N, C]``, ``positions`` ``[B or 1, N]``, ``sizes`` ``[B, 1+N]`` or ``None``,
        ``global_probs`` ``[B, H, 1, 1+N]``, ``keys`` ``[B, 1+N, D]``, ``groups`` ``[B or 1, T*Hp*Wp]`` (the
        current token of every original one, ``-1``: dropped) -> (``[B, 1+K, C]``, positions ``[B, K]``,
        sizes, groups ``[B, T*Hp*Wp]``).
        """
        reduced = self.pruner.reduce(x, positions, sizes, global_probs, keys, self.frame_grid)
        groups = groups.expand(x.shape[0], -1)
        groups = torch.where(groups >= 0, reduced.destination.gather(1, groups.clamp_min(0)), -1)
        return reduced.tokens, reduced.positions, reduced.sizes, groups

    def forward(self, video: Tensor) -> VideoEncoderOutput:
        """Encode ``video`` ``[B, T, C, H, W]`` (any multiple ``T`` of ``tubelet_size``); see
        :class:`VideoEncoderOutput`."""
        self._check_input(video)
        batch, frames = video.shape[:2]
        tubelets = frames // self.tubelet_size
        # [B, T, C, H, W] -> [B*T/s, s*C, H, W]: the frames of a tubelet side by side as channels
        x = self.patch_embed(video.reshape(batch * tubelets, -1, *video.shape[-2:]))
        x = self._embed_positions(x.reshape(batch, tubelets, -1, self.embed_dims))  # raster order
        positions = token_order(self.token_order, (tubelets, *self.frame_grid), x.device)[None]  # [1, N]
        if self.token_order != 'raster':
            x = x[:, positions[0]]
        cls = self.cls_token if self.pos_embed is None else self.cls_token + self.pos_embed[:, :1]
        x = torch.cat([cls.expand(batch, -1, -1), x], dim=1)
        index = RelativePositionIndex(positions, self.frame_grid, self.max_tubelets)
        kept, token_groups = [], []
        sizes = None  # token sizes [B, 1+N] once a merger has run (proportional attention)
        groups = torch.empty_like(positions).scatter_(1, positions, torch.arange(
            positions.shape[1], device=positions.device)[None])  # [1, N]: original -> current token
        for layer, block in enumerate(self.blocks):
            if self.with_cp and self.training and torch.is_grad_enabled():
                x, global_probs, keys = checkpoint(block, x, index, sizes, use_reentrant=False)
            else:
                x, global_probs, keys = block(x, index, sizes)
            if layer in self.prune_layers:
                x, positions, sizes, groups = self._prune(x, positions, sizes, global_probs, keys, groups)
                kept.append(positions)
                token_groups.append(groups)
                index = RelativePositionIndex(positions, self.frame_grid, self.max_tubelets)
        local = x[:, 1:]
        if sizes is None:
            pooled = self.pooler_norm(local.mean(dim=1))
        else:  # the mean over the original tokens: merged ones weigh their size
            weights = sizes[:, 1:, None].to(local.dtype)
            pooled = self.pooler_norm((local * weights).sum(dim=1) / weights.sum(dim=1))
        return VideoEncoderOutput(tokens=x, pooled=pooled, kept_indices=tuple(kept), positions=positions,
                                  token_groups=tuple(token_groups))
