"""Generative answer decoder for video QA: a causal BERT that cross-attends to the question states.

As in SViTT/ALBEF, answers are not classified but scored as token sequences: the decoder reads
``[CLS] answer tokens [SEP]`` (``[CLS]`` = begin-of-sequence, ``[SEP]`` = end-of-sequence) and predicts
each next token with a masked-LM style head tied to its own word embeddings.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch import Tensor, nn

from svitt_mm.registry import DECODERS
from svitt_mm.utils.arg_checks import ArgumentError

from .bert_fusion_encoder import BertFusionEncoder
from .bert_layers import BertEmbeddings, BertLayer, init_bert_style
from .lm_head import LanguageModelHead


def decoder_arch_from(encoder: BertFusionEncoder) -> Dict[str, Any]:
    """The :class:`AnswerDecoder` architecture arguments that make it layer-compatible with ``encoder``
    (vocabulary, widths, heads, positions, LayerNorm eps, dropout; ``context_width`` = the encoder's
    hidden size, since the decoder attends to the question states)."""
    layer = encoder.layers[0]
    return dict(vocab_size=encoder.embeddings.word.num_embeddings, hidden_size=encoder.hidden_size,
                num_heads=layer.self_attn.num_heads, intermediate_size=layer.ffn.fc1.out_features,
                max_position_embeddings=encoder.embeddings.position.num_embeddings,
                type_vocab_size=encoder.embeddings.token_type.num_embeddings,
                layer_norm_eps=encoder.embeddings.norm.eps, dropout=encoder.embeddings.dropout.p,
                context_width=encoder.hidden_size)


@DECODERS.register_module()
class AnswerDecoder(BaseModule):
    """``num_layers`` x (causal self-attention -> cross-attention to the context -> FFN) + LM head.

    Args:
        vocab_size, hidden_size, num_layers, num_heads, intermediate_size, max_position_embeddings,
        type_vocab_size, layer_norm_eps, dropout: BERT architecture (see :func:`decoder_arch_from`).
        context_width: width of the states cross-attended to (default ``hidden_size``).
        pretrained_head: optional HF BERT-MLM checkpoint for the LM head's ``cls.predictions.*``.

    Modules: ``embeddings`` (:class:`BertEmbeddings`), ``layers`` (causal :class:`BertLayer` with
    cross-attention), ``head`` (``LanguageModelHead`` tied to ``embeddings.word``).
    """

    def __init__(self, vocab_size: int = 30522, hidden_size: int = 768, num_layers: int = 3,
                 num_heads: int = 12, intermediate_size: int = 3072, max_position_embeddings: int = 512,
                 type_vocab_size: int = 2, layer_norm_eps: float = 1e-12, dropout: float = 0.1,
                 context_width: Optional[int] = None, pretrained_head: Optional[str] = None) -> None:
        super().__init__()
        if num_layers < 1:
            raise ArgumentError(f'AnswerDecoder: num_layers must be >= 1, got {num_layers}')
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.embeddings = BertEmbeddings(vocab_size, hidden_size, max_position_embeddings,
                                         type_vocab_size, layer_norm_eps, dropout)
        self.layers = nn.ModuleList(
            BertLayer(hidden_size, num_heads, intermediate_size, layer_norm_eps, dropout,
                      visual_width=context_width or hidden_size, causal=True)
            for _ in range(num_layers))
        self.head = LanguageModelHead(hidden_size, vocab_size, layer_norm_eps, pretrained=pretrained_head)
        self.head.tie_to(self.embeddings.word)
        self.embeddings_shared = False
        self._init_own_weights()

    def _init_own_weights(self) -> None:
        # The head initialises itself (never its tied projection, i.e. the word table); shared embeddings
        # belong to (and are initialised by) their owner.
        init_bert_style(self.layers, *([] if self.embeddings_shared else [self.embeddings]))

    def init_weights(self) -> None:
        """BERT initialisation, then the head's ``pretrained_head`` weights if set."""
        self._init_own_weights()
        self.head.init_weights()
        self._is_init = True

    def share_embeddings(self, embeddings: BertEmbeddings) -> None:
        """Use ``embeddings`` (e.g. the question encoder's) as this decoder's input embeddings, and tie
        the LM head to its word table: one set of parameters for both (call it before building the
        optimizer). Raises ``ValueError`` when the tables' shapes differ."""
        if embeddings.word.weight.shape != self.embeddings.word.weight.shape:
            raise ValueError(f'AnswerDecoder.share_embeddings: word table '
                             f'{tuple(embeddings.word.weight.shape)} does not match the decoder\'s '
                             f'{tuple(self.embeddings.word.weight.shape)}')
        self.embeddings = embeddings
        self.embeddings_shared = True
        self.head.tie_to(embeddings.word)

    def init_from_fusion_layers(self, encoder: BertFusionEncoder,
                                head: Optional[nn.Module] = None) -> List[str]:
        """Copy SViTT's decoder initialisation from a question encoder.

        Decoder layer ``i`` takes encoder layer ``num_layers_enc - num_layers + i`` (the last fusion
        layers: self-attention, cross-attention, FFN), the embeddings (hence the tied projection) are
        copied, and ``head``'s dense/norm/bias too when given (e.g. a pretraining MLM head). Tensors
        whose shapes differ (cross-attention keys/values when the visual width differs from the text
        width) keep their current values; their names are returned and logged.
        """
        num_fusion = encoder.num_layers - encoder.fusion_layer
        if self.num_layers > num_fusion:
            raise ValueError(f'AnswerDecoder: {self.num_layers} decoder layers cannot start from the last '
                             f'fusion layers of an encoder with only {num_fusion} (fusion_layer='
                             f'{encoder.fusion_layer}, num_layers={encoder.num_layers}); lower '
                             f'answer_decoder.num_layers or text_encoder.fusion_layer')
        weights, kept = self.weights_from_encoder(
            encoder.state_dict(), encoder.num_layers, None if head is None else head.state_dict())
        own = self.state_dict()
        with torch.no_grad():
            for name, value in weights.items():
                own[name].copy_(value)
        print_log(f'AnswerDecoder: initialised from the last {self.num_layers} fusion layers and the '
                  f'embeddings of the question encoder; kept (shape differs): {kept or "none"}',
                  logger='current')
        return kept

    def weights_from_encoder(self, encoder_state: Mapping[str, Tensor], encoder_layers: int,
                             head_state: Optional[Mapping[str, Tensor]] = None
                             ) -> Tuple[Dict[str, Tensor], List[str]]:
        """SViTT's decoder initialisation as a state-dict mapping (also usable on checkpoints).

        ``encoder_state``: a question encoder's state dict (``layers.{j}.*``, ``embeddings.*``) with
        ``encoder_layers`` layers; ``head_state``: an optional MLM head's (``dense.*``, ``norm.*``,
        ``bias``). Encoder layer ``encoder_layers - num_layers + i`` -> decoder ``layers.{i}``,
        ``embeddings.*`` -> ``embeddings.*`` (the word table also as the tied ``head.decoder.weight``),
        head -> ``head.*``. Returns ``(weights, kept)``: our names -> tensors whose shapes match this
        decoder, and our names whose source has another shape (they keep their values).
        """
        first = encoder_layers - self.num_layers
        sources: Dict[str, Tensor] = {}
        for key, value in encoder_state.items():
            layer, _, rest = key.removeprefix('layers.').partition('.')
            if key.startswith('layers.') and int(layer) >= first:
                sources[f'layers.{int(layer) - first}.{rest}'] = value
            elif key.startswith('embeddings.'):
                sources[key] = value
        if 'embeddings.word.weight' in sources:
            sources['head.decoder.weight'] = sources['embeddings.word.weight']
        for key, value in (head_state or {}).items():
            if key != 'decoder.weight':  # the tied projection is the word table above
                sources[f'head.{key}'] = value
        own = self.state_dict()
        weights = {name: value for name, value in sources.items()
                   if name in own and own[name].shape == value.shape}
        return weights, sorted(name for name in sources if name in own and name not in weights)

    def forward(self, input_ids: Tensor, attention_mask: Tensor, context: Tensor,
                context_mask: Optional[Tensor] = None) -> Tensor:
        """Next-token logits.

        ``input_ids`` LongTensor ``[P, La]`` (``[CLS] tokens [SEP] [PAD]...``), ``attention_mask``
        ``[P, La]`` (1 = token), ``context`` ``[P, Lq, Cc]`` (question states), ``context_mask``
        ``[P, Lq]`` (1 = valid, ``None`` = all valid) -> logits ``[P, La, V]``; position ``t`` predicts
        token ``t + 1``.
        """
        text_mask = attention_mask.bool()
        context_mask = None if context_mask is None else context_mask.bool()
        x = self.embeddings(input_ids)
        for layer in self.layers:
            x, _ = layer(x, text_mask, context, context_mask)
        return self.head(x)

    def sequence_log_likelihood(self, input_ids: Tensor, attention_mask: Tensor, context: Tensor,
                                context_mask: Optional[Tensor] = None) -> Tensor:
        """Teacher-forced ``sum_t log p(token_t | tokens_<t, context)`` over every token after the
        leading ``[CLS]`` where ``attention_mask`` is 1, each token counted once (arguments as in
        :meth:`forward`) -> ``[P]`` (float32)."""
        logits = self(input_ids, attention_mask, context, context_mask)[:, :-1].float()
        log_probs = logits.log_softmax(-1).gather(-1, input_ids[:, 1:, None]).squeeze(-1)
        return (log_probs * attention_mask[:, 1:].to(log_probs.dtype)).sum(1)

    def first_token_log_probs(self, bos_id: int, context: Tensor,
                              context_mask: Optional[Tensor] = None) -> Tensor:
        """Log-probabilities of the first answer token after ``[CLS]`` = ``bos_id``: ``context``
        ``[P, Lq, Cc]``, ``context_mask`` ``[P, Lq]`` -> ``[P, V]`` (float32)."""
        bos = torch.full((context.shape[0], 1), bos_id, dtype=torch.long, device=context.device)
        logits = self(bos, torch.ones_like(bos), context, context_mask)[:, 0].float()
        return logits.log_softmax(-1)
