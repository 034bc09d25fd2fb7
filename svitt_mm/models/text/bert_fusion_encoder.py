"""SViTT's text + fusion encoder: a BERT whose last layers cross-attend to visual tokens.

Layers ``[0, fusion_layer)`` encode text alone; layers ``[fusion_layer, num_layers)`` add a
cross-attention to the visual tokens between self-attention and feed-forward (self-attention stays
bidirectional, unlike a stock HF BERT with cross-attention). Optionally, after one fusion layer the
visual tokens are pruned to those the text [CLS] attended to most (text-guided node sparsity).
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Tuple, Union

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from svitt_mm.models.pruners import TokenPruner
from svitt_mm.registry import BACKBONES, TOKEN_PRUNERS
from svitt_mm.utils.arg_checks import ArgumentError, check_arguments, int_at_least, number_in

from ..architecture_check import BERT_FUSION_SETTINGS
from ..init_info import QuietInitInfo
from .bert_layers import BertEmbeddings, BertLayer, init_bert_style
from .bert_weights import load_bert_weights, read_bert_config


class FusionOutput(NamedTuple):
    """Output of :meth:`BertFusionEncoder.fuse`.

    ``states``: text states after the fusion layers ``[B, L, C]``. ``kept_visual_indices``: one
    LongTensor ``[B, K + 1]`` per pruning step (empty without a pruner), ascending positions in the
    ``visual_tokens`` passed to ``fuse`` of the tokens later fusion layers saw; index 0 (visual [CLS])
    is always first.
    """
    states: Tensor
    kept_visual_indices: Tuple[Tensor, ...]


def _bool_mask(mask: Tensor, expected: Tuple[int, int], name: str) -> Tensor:
    if tuple(mask.shape) != tuple(expected):
        raise ValueError(f'BertFusionEncoder: {name} has shape {tuple(mask.shape)}, expected '
                         f'{tuple(expected)}')
    return mask.bool()


@BACKBONES.register_module()
class BertFusionEncoder(QuietInitInfo, BaseModule):
    """BERT text encoder with cross-attention fusion layers and optional text-guided visual pruning.

    Args:
        vocab_size, hidden_size, num_layers, num_heads, intermediate_size, max_position_embeddings,
        type_vocab_size, layer_norm_eps: BERT architecture; all replaced by the HF config when
            ``pretrained`` is given.
        dropout: hidden and attention-probability dropout.
        fusion_layer: index of the first layer with cross-attention (``num_layers`` = text only).
        visual_width: channel width ``Cv`` of the visual tokens.
        pruner: optional ``TOKEN_PRUNERS`` config (or module) with a ``layer`` attribute, e.g.
            ``dict(type='TextGuidedPruner', keep_rate=0.1, layer=0)``: after fusion layer ``layer``
            (0 = first fusion layer) keep the visual [CLS] and ``pruner.num_keep(Nv - 1)`` local visual
            tokens ranked by the text [CLS] query's head-averaged cross-attention.
        pretrained: local HF BERT folder, hub id or ``package://`` spec; its weights are loaded by
            :meth:`init_weights`.
        strict: refuse ``pretrained`` weights built for another architecture, naming the first setting
            that differs; ``False`` loads the weights that fit. Keys that did not match are logged in a
            WARNING table either way.
        with_cp: activation checkpointing: in training, every layer's activations are recomputed in the
            backward pass (non-reentrant ``torch.utils.checkpoint``, dropout replayed from the saved RNG
            state); the text-guided pruning indices are computed outside the checkpointed layers.

    Attributes: ``hidden_size``, ``num_layers``, ``fusion_layer``; ``embeddings.word.weight``
    ``[vocab_size, hidden_size]`` is the word-embedding table to tie an MLM decoder to.
    """

    architecture_settings = BERT_FUSION_SETTINGS  # what strict loading compares (architecture_check)
    argument_checks = dict(hidden_size=int_at_least(1), num_layers=int_at_least(1), num_heads=int_at_least(1),
                           fusion_layer=int_at_least(0), dropout=number_in(0, 1, high_open=True))

    def __init__(self, vocab_size: int = 30522, hidden_size: int = 768, num_layers: int = 12,
                 num_heads: int = 12, intermediate_size: int = 3072,
                 max_position_embeddings: int = 512, type_vocab_size: int = 2,
                 layer_norm_eps: float = 1e-12, dropout: float = 0.1, fusion_layer: int = 9,
                 visual_width: int = 768, pruner: Optional[Union[dict, TokenPruner]] = None,
                 pretrained: Optional[str] = None, with_cp: bool = False, strict: bool = True) -> None:
        super().__init__()
        check_arguments(self, hidden_size=hidden_size, num_layers=num_layers, num_heads=num_heads,
                        fusion_layer=fusion_layer, dropout=dropout)
        arch = dict(vocab_size=vocab_size, hidden_size=hidden_size, num_layers=num_layers,
                    num_heads=num_heads, intermediate_size=intermediate_size,
                    max_position_embeddings=max_position_embeddings, type_vocab_size=type_vocab_size,
                    layer_norm_eps=layer_norm_eps)
        if pretrained is not None:
            arch.update(read_bert_config(pretrained))
        if not 0 <= fusion_layer <= arch['num_layers']:
            source = f' (from pretrained {pretrained!r})' if pretrained is not None else ''
            raise ArgumentError(f'BertFusionEncoder: fusion_layer={fusion_layer} must be in '
                                f'[0, num_layers={arch["num_layers"]}]{source}')
        self.pretrained = pretrained
        self.strict = strict
        self.with_cp = bool(with_cp)
        self.hidden_size = arch['hidden_size']
        self.num_layers = arch['num_layers']
        self.fusion_layer = fusion_layer
        self.visual_width = visual_width
        self.embeddings = BertEmbeddings(arch['vocab_size'], self.hidden_size,
                                         arch['max_position_embeddings'], arch['type_vocab_size'],
                                         arch['layer_norm_eps'], dropout)
        self.layers = nn.ModuleList(
            BertLayer(self.hidden_size, arch['num_heads'], arch['intermediate_size'],
                      arch['layer_norm_eps'], dropout,
                      visual_width=visual_width if index >= fusion_layer else None)
            for index in range(self.num_layers))
        self.pruner = self._build_pruner(pruner)
        init_bert_style(self)

    def _build_pruner(self, pruner: Optional[Union[dict, TokenPruner]]) -> Optional[TokenPruner]:
        if pruner is None:
            return None
        pruner = pruner if isinstance(pruner, nn.Module) else TOKEN_PRUNERS.build(pruner)
        num_fusion = self.num_layers - self.fusion_layer
        if not hasattr(pruner, 'layer'):
            raise ValueError(f'BertFusionEncoder: pruner {type(pruner).__name__} has no `layer` (the '
                             f'fusion layer to prune after); use TextGuidedPruner')
        if not 0 <= pruner.layer < num_fusion - 1:
            raise ValueError(
                f'BertFusionEncoder: pruner layer={pruner.layer} would prune nothing: only fusion layers '
                f'after it see the pruned tokens, so it must be below {num_fusion - 1} (there are '
                f'{num_fusion} fusion layers, fusion_layer={self.fusion_layer}, '
                f'num_layers={self.num_layers})')
        return pruner

    def init_weights(self) -> None:
        """BERT initialisation (normal std 0.02, zero biases, LayerNorm 1/0), then the ``pretrained``
        weights if set. Cross-attention stays freshly initialised unless the checkpoint has SViTT's
        ``crossattention`` weights.
        """
        init_bert_style(self)
        if self.pretrained is not None:
            load_bert_weights(self, self.pretrained, strict=self.strict)  # mismatches: a WARNING table
            print_log(f'BertFusionEncoder: loaded {self.pretrained!r}', logger='current')
        self._is_init = True

    def encode_text(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Embeddings + text-only layers ``[0, fusion_layer)``.

        ``input_ids`` LongTensor ``[B, L]``, ``attention_mask`` ``[B, L]`` (1 = token, 0 = padding)
        -> text states ``[B, L, C]``.
        """
        text_mask = _bool_mask(attention_mask, input_ids.shape, 'attention_mask')
        x = self.embeddings(input_ids)
        for layer in self.layers[:self.fusion_layer]:
            x, _ = self._run_layer(layer, x, text_mask)
        return x

    def fuse(self, text_states: Tensor, attention_mask: Tensor, visual_tokens: Tensor,
             visual_mask: Optional[Tensor] = None) -> FusionOutput:
        """Fusion layers ``[fusion_layer, num_layers)`` on encoded text.

        ``text_states`` ``[B, L, C]``, ``attention_mask`` ``[B, L]`` (1 = token), ``visual_tokens``
        ``[B, Nv, Cv]`` with the visual [CLS] at index 0, ``visual_mask`` bool ``[B, Nv]`` (``True`` =
        valid, ``None`` = all valid). Row ``b`` of the text attends to row ``b`` of the visual tokens,
        so pruning is per (text, video) pair.
        """
        text_mask = _bool_mask(attention_mask, text_states.shape[:2], 'attention_mask')
        if visual_tokens.dim() != 3 or visual_tokens.shape[0] != text_states.shape[0] \
                or visual_tokens.shape[2] != self.visual_width:
            raise ValueError(f'BertFusionEncoder: visual_tokens has shape {tuple(visual_tokens.shape)}, '
                             f'expected [B={text_states.shape[0]}, Nv, visual_width={self.visual_width}]')
        if visual_mask is not None:
            visual_mask = _bool_mask(visual_mask, visual_tokens.shape[:2], 'visual_mask')
        if self.pruner is not None and visual_tokens.shape[1] < 2:
            raise ValueError('BertFusionEncoder: text-guided pruning needs visual tokens besides the '
                             f'[CLS], got Nv={visual_tokens.shape[1]}')
        x = text_states
        kept = []
        for index, layer in enumerate(self.layers[self.fusion_layer:]):
            prune_here = self.pruner is not None and index == self.pruner.layer
            x, cls_probs = self._run_layer(layer, x, text_mask, visual_tokens, visual_mask,
                                           return_cls_probs=prune_here)
            if prune_here:
                keep = self._select_visual(cls_probs, visual_mask)
                visual_tokens = visual_tokens.gather(
                    1, keep[..., None].expand(-1, -1, visual_tokens.shape[-1]))
                visual_mask = None if visual_mask is None else visual_mask.gather(1, keep)
                kept.append(keep)
        return FusionOutput(x, tuple(kept))

    def _run_layer(self, layer: nn.Module, *args, **kwargs):
        """``layer(*args, **kwargs)``, checkpointed when ``with_cp`` and training with gradients."""
        if self.with_cp and self.training and torch.is_grad_enabled():
            return checkpoint(layer, *args, use_reentrant=False, **kwargs)
        return layer(*args, **kwargs)

    def _select_visual(self, cls_probs: Tensor, visual_mask: Optional[Tensor]) -> Tensor:
        """Kept visual positions ``[B, K + 1]`` (``[CLS]`` = 0 first) from text-[CLS] probs ``[B, Nv]``."""
        local_valid = None if visual_mask is None else visual_mask[:, 1:]
        local = self.pruner.select(cls_probs[:, 1:], local_valid)
        cls = torch.zeros_like(local[:, :1])
        return torch.cat([cls, local + 1], dim=1)

    def forward(self, input_ids: Tensor, attention_mask: Tensor, visual_tokens: Tensor,
                visual_mask: Optional[Tensor] = None) -> FusionOutput:
        """All layers (text then fusion); arguments as in :meth:`encode_text` and :meth:`fuse`."""
        text_states = self.encode_text(input_ids, attention_mask)
        return self.fuse(text_states, attention_mask, visual_tokens, visual_mask)
