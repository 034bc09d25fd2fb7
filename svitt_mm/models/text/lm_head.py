"""BERT's masked-language-model head, used as the vocabulary classifier of MLM and of answer decoders."""
from __future__ import annotations

import os
from typing import List, Optional, Tuple

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch import Tensor, nn

from svitt_mm.registry import FUSION_HEADS

from .bert_layers import init_bert_style
from .bert_weights import WeightSource, load_lm_head_weights


@FUSION_HEADS.register_module()
class LanguageModelHead(BaseModule):
    """``logits = LayerNorm(GELU(dense(states))) @ decoder.weight.T + bias`` (HF ``BertLMPredictionHead``).

    Args:
        hidden_size: width ``H`` of the states.
        vocab_size: vocabulary size ``V``.
        layer_norm_eps: epsilon of the LayerNorm.
        pretrained: optional HF BERT-MLM checkpoint (folder, hub id, ``package://`` spec) whose
            ``cls.predictions.*`` weights :meth:`init_weights` loads.

    Parameters: ``dense`` (H -> H), ``norm``, ``decoder`` (H -> V, no bias, weight ``[V, H]``; shared with
    a word-embedding table after :meth:`tie_to`), ``bias`` ``[V]`` (the head's own).
    """

    def __init__(self, hidden_size: int, vocab_size: int, layer_norm_eps: float = 1e-12,
                 pretrained: Optional[str] = None) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.act = nn.GELU()  # exact erf GELU, as BERT
        self.norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.decoder = nn.Linear(hidden_size, vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(vocab_size))
        self.pretrained = pretrained
        self._tied_to: Optional[nn.Embedding] = None
        self._init_own_weights()

    @property
    def is_tied(self) -> bool:
        """Whether the vocabulary projection is a word-embedding table's weight (see :meth:`tie_to`)."""
        return self._tied_to is not None

    def tie_to(self, embedding: nn.Embedding) -> None:
        """Share ``embedding.weight`` ``[V, H]`` as the vocabulary projection (one Parameter, so both
        receive the same gradient updates). Raises ``ValueError`` on a shape mismatch."""
        if tuple(embedding.weight.shape) != tuple(self.decoder.weight.shape):
            raise ValueError(f'LanguageModelHead.tie_to: embedding table {tuple(embedding.weight.shape)} '
                             f'does not match the head [vocab_size, hidden_size] = '
                             f'{tuple(self.decoder.weight.shape)}')
        self.decoder.weight = embedding.weight
        # Kept outside the module tree (a plain attribute) so it is not registered twice.
        object.__setattr__(self, '_tied_to', embedding)

    def _init_own_weights(self) -> None:
        # A tied projection belongs to (and is initialised by) the embeddings.
        init_bert_style(self.dense, self.norm, *([] if self.is_tied else [self.decoder]))
        nn.init.zeros_(self.bias)

    def init_weights(self) -> None:
        """BERT initialisation (normal 0.02, zero biases, LayerNorm 1/0; a tied projection is left
        alone), then the ``pretrained`` MLM head weights if set."""
        self._init_own_weights()
        if self.pretrained is not None:
            self.load_pretrained(self.pretrained)
        self._is_init = True

    def load_pretrained(self, source: WeightSource, prefix: str = '') -> Tuple[List[str], List[str]]:
        """Load HF ``cls.predictions.*`` weights (see :func:`~svitt_mm.models.text.bert_weights.
        load_lm_head_weights`); returns ``(missing, unexpected)`` and logs what stayed fresh."""
        missing, unexpected = load_lm_head_weights(self, source, prefix)
        name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else 'state dict'
        print_log(f'LanguageModelHead: loaded {name!r}; freshly initialised: {missing or "none"}',
                  logger='current')
        return missing, unexpected

    def forward(self, states: Tensor) -> Tensor:
        """``states`` ``[B, L, H]`` (any leading dims) -> vocabulary logits ``[B, L, V]``."""
        return self.decoder(self.norm(self.act(self.dense(states)))) + self.bias
