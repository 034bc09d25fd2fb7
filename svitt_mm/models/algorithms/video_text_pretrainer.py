"""Video-text pretraining model: the retrieval objectives (ITC + ITM) plus masked language modelling."""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch.nn.functional as F
from torch import Tensor

from svitt_mm.models.text.mlm_masking import IGNORE_INDEX, mask_tokens
from svitt_mm.registry import FUSION_HEADS, MODELS
from svitt_mm.utils.arg_checks import ArgumentError

from .retrieval import VideoTextRetriever

# bert-base-uncased WordPiece ids (shared by every BERT-uncased vocabulary, MiniLM's included).
BERT_UNCASED_PAD, BERT_UNCASED_CLS, BERT_UNCASED_SEP, BERT_UNCASED_MASK = 0, 101, 102, 103


@MODELS.register_module()
class VideoTextPretrainer(VideoTextRetriever):
    """SViTT's pretraining model: :class:`VideoTextRetriever` + an MLM loss conditioned on the video.

    MLM (reference doc, section 4.5): the captions are masked (:func:`mask_tokens`), run through the text
    layers, fused with the same visual tokens as ITM (the caption's own video), and the fused states of the
    masked positions are classified over the vocabulary by a ``LanguageModelHead`` whose projection is tied
    to the text encoder's word embeddings. ``loss_mlm`` is the cross-entropy averaged over the masked
    positions of the batch.

    Args:
        vision_encoder, text_encoder, contrastive_head, matching_head, text_pooling, data_preprocessor,
            init_cfg: as in :class:`VideoTextRetriever`.
        lm_head: ``FUSION_HEADS`` cfg (default ``LanguageModelHead``); ``hidden_size``, ``vocab_size`` and
            ``layer_norm_eps`` are filled in from the text encoder. Set its ``pretrained`` to an HF
            BERT-MLM checkpoint (e.g. the same folder as the text encoder's) to start from BERT's MLM
            head; leave it ``None`` for encoders saved without one (MiniLM).
        loss_weights: weights of ``itc``, ``itm`` and ``mlm`` (each default 1).
        mlm_prob: probability that a caption token is masked (SViTT: 0.5).
        mask_token_id: id of ``[MASK]``.
        special_token_ids: ids never masked (padding, ``[CLS]``, ``[SEP]``).

    ``loss`` returns ``loss_itc``, ``loss_itm`` and ``loss_mlm`` (each already weighted); ``predict`` is the
    retrieval model's.
    """

    def __init__(self, vision_encoder: dict, text_encoder: dict,
                 contrastive_head: Optional[dict] = None, matching_head: Optional[dict] = None,
                 lm_head: Optional[dict] = None, loss_weights: Optional[Dict[str, float]] = None,
                 mlm_prob: float = 0.5, mask_token_id: int = BERT_UNCASED_MASK,
                 special_token_ids: Sequence[int] = (BERT_UNCASED_PAD, BERT_UNCASED_CLS,
                                                     BERT_UNCASED_SEP),
                 text_pooling: str = 'cls', data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(vision_encoder=vision_encoder, text_encoder=text_encoder,
                         contrastive_head=contrastive_head, matching_head=matching_head,
                         loss_weights=dict(dict(mlm=1.0), **(loss_weights or {})),
                         text_pooling=text_pooling, data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        if not 0.0 < mlm_prob <= 1.0:
            raise ArgumentError(f'VideoTextPretrainer: mlm_prob must be in (0, 1], got {mlm_prob}')
        words = self.text_encoder.embeddings.word
        self.lm_head = FUSION_HEADS.build(dict(
            dict(type='LanguageModelHead', hidden_size=words.embedding_dim,
                 vocab_size=words.num_embeddings, layer_norm_eps=self.text_encoder.embeddings.norm.eps),
            **(lm_head or {})))
        self.lm_head.tie_to(words)
        self.mlm_prob = mlm_prob
        self.mask_token_id = mask_token_id
        self.special_token_ids = tuple(special_token_ids)

    def mlm_loss(self, video_tokens: Tensor, masked_ids: Tensor, text_mask: Tensor,
                 labels: Tensor) -> Tensor:
        """Masked-LM cross-entropy, mean over the masked positions (0 when none is masked).

        ``video_tokens [Bt, 1+N, C]``: the visual tokens each caption is fused with; ``masked_ids``,
        ``text_mask``, ``labels`` ``[Bt, L]`` as made by :func:`mask_tokens`.
        """
        states = self.text_encoder.encode_text(masked_ids, text_mask)
        fused = self.text_encoder.fuse(states, text_mask, video_tokens).states
        masked = labels != IGNORE_INDEX
        # Only the masked positions go through the [H -> vocab] projection.
        logits = self.lm_head(fused[masked])
        return F.cross_entropy(logits, labels[masked], reduction='sum') / masked.sum().clamp_min(1)

    def loss(self, inputs: Tensor, data_samples: dict) -> Dict[str, Tensor]:
        text_ids, text_mask = data_samples['text_ids'], data_samples['text_mask']
        video = self.encode_video(inputs)
        losses = self.retrieval_losses(video, self.encode_text(text_ids, text_mask), data_samples)
        masked_ids, labels = mask_tokens(text_ids, text_mask, self.special_token_ids,
                                         self.mask_token_id,
                                         self.text_encoder.embeddings.word.num_embeddings,
                                         self.mlm_prob)
        video_tokens = video.tokens[:, 0][data_samples['text_owner']]
        losses['loss_mlm'] = self.loss_weights['mlm'] * self.mlm_loss(video_tokens, masked_ids,
                                                                       text_mask, labels)
        return losses
