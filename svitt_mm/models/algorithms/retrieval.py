"""Video-text retrieval model: dual encoders + contrastive (ITC) and matching (ITM) objectives."""
from __future__ import annotations

from typing import Dict, List, NamedTuple, Optional

import torch
from mmengine.model import BaseModel
from torch import Tensor, nn

from svitt_mm.registry import BACKBONES, EMBEDDING_HEADS, FUSION_HEADS, MODELS
from svitt_mm.utils.arg_checks import ArgumentError

from ..init_info import QuietInitInfo


def masked_mean(states: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``states [B, L, D]`` over the positions where ``mask [B, L]`` is non-zero."""
    weights = mask.to(states.dtype).unsqueeze(-1)
    return (states * weights).sum(1) / weights.sum(1).clamp_min(1.0)


TEXT_POOLINGS = {
    'cls': lambda states, mask: states[:, 0],
    'mean': masked_mean,
}


class VideoFeatures(NamedTuple):
    """``tokens [B, K, 1+N, C]``: layer-normalised visual tokens for the fusion encoder;
    ``embedding [B, K, E]``: unit-norm contrastive embeddings (K clips per video)."""
    tokens: Tensor
    embedding: Tensor


class TextFeatures(NamedTuple):
    """``states [B, L, D]`` after the text-only layers, ``mask [B, L]``, ``embedding [B, E]``."""
    states: Tensor
    mask: Tensor
    embedding: Tensor


@MODELS.register_module()
class VideoTextRetriever(QuietInitInfo, BaseModel):
    """SViTT's retrieval model (and its dense baseline: the difference lives in the encoder configs).

    Args:
        vision_encoder: BACKBONES cfg of the video encoder (e.g. ``VideoBEiT``); must expose
            ``embed_dims`` and return ``tokens``/``pooled``.
        text_encoder: BACKBONES cfg of the text + fusion encoder (e.g. ``BertFusionEncoder``); its
            ``visual_width`` defaults to the video encoder's width.
        contrastive_head: EMBEDDING_HEADS cfg (default ``ContrastiveHead``); its input widths are filled in.
        matching_head: FUSION_HEADS cfg (default ``MatchingHead``); its input width is filled in.
        loss_weights: weights of the ``itc`` and ``itm`` losses.
        text_pooling: how a caption's token states are summarised, both after the text layers (the
            contrastive head's input) and after the fusion layers (the matching head's input):
            ``'cls'`` (the [CLS] state, as SViTT does with BERT) or ``'mean'`` (mean over the caption's
            tokens; the right choice for sentence-embedding models such as MiniLM, whose [CLS] state is
            nearly constant).
        data_preprocessor: MODELS cfg (default ``VideoTextDataPreprocessor``).

    ``forward(inputs, data_samples, mode)``: ``inputs`` is a float video batch ``[B, K, T, 3, H, W]``
    (K clips per video), ``data_samples`` the dict made by the data preprocessor.
    """

    def __init__(self, vision_encoder: dict, text_encoder: dict,
                 contrastive_head: Optional[dict] = None, matching_head: Optional[dict] = None,
                 loss_weights: Optional[Dict[str, float]] = None, text_pooling: str = 'cls',
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor or dict(type='VideoTextDataPreprocessor'),
                         init_cfg=init_cfg)
        self.vision_encoder = BACKBONES.build(vision_encoder)
        vision_width = self.vision_encoder.embed_dims
        self.vision_norm = nn.LayerNorm(vision_width, eps=1e-12)
        self.text_encoder = BACKBONES.build(dict(dict(visual_width=vision_width), **text_encoder))
        text_width = self.text_encoder.hidden_size
        self.contrastive_head = EMBEDDING_HEADS.build(dict(
            dict(type='ContrastiveHead', vision_width=vision_width, text_width=text_width),
            **(contrastive_head or {})))
        self.matching_head = FUSION_HEADS.build(dict(
            dict(type='MatchingHead', hidden_size=text_width), **(matching_head or {})))
        if text_pooling not in TEXT_POOLINGS:
            raise ArgumentError(f'text_pooling must be one of {sorted(TEXT_POOLINGS)}, got {text_pooling!r}')
        self.text_pooling = TEXT_POOLINGS[text_pooling]
        self.loss_weights = {**dict(itc=1.0, itm=1.0), **(loss_weights or {})}

    # ------------------------------------------------------------------ encoders
    def encode_video(self, video: Tensor) -> VideoFeatures:
        if video.dim() != 6:
            raise ValueError(f'expected a video batch [B, K, T, 3, H, W], got shape {tuple(video.shape)}')
        batch, clips = video.shape[:2]
        out = self.vision_encoder(video.flatten(0, 1))
        tokens = self.vision_norm(out.tokens)
        embedding = self.contrastive_head.embed_video(out.pooled)
        return VideoFeatures(tokens.unflatten(0, (batch, clips)), embedding.unflatten(0, (batch, clips)))

    def encode_text(self, text_ids: Tensor, text_mask: Tensor) -> TextFeatures:
        states = self.text_encoder.encode_text(text_ids, text_mask)
        pooled = self.text_pooling(states, text_mask)
        return TextFeatures(states, text_mask, self.contrastive_head.embed_text(pooled))

    def match_logits(self, video_tokens: Tensor, text_states: Tensor, text_mask: Tensor) -> Tensor:
        """ITM positive-class logits ``[P]`` for P (video clip, text) pairs."""
        fused = self.text_encoder.fuse(text_states, text_mask, video_tokens)
        return self.matching_head.match_logit(self.text_pooling(fused.states, text_mask))

    # ------------------------------------------------------------------ modes
    def forward(self, inputs: Tensor, data_samples: Optional[dict] = None, mode: str = 'tensor'):
        modes = dict(loss=self.loss, predict=self.predict, tensor=self.extract_features)
        if mode not in modes:
            raise ValueError(f'unknown mode {mode!r}; expected one of {sorted(modes)}')
        return modes[mode](inputs, data_samples)

    def extract_features(self, inputs: Tensor, data_samples: Optional[dict] = None):
        video = self.encode_video(inputs)
        if data_samples is None:
            return video
        return video, self.encode_text(data_samples['text_ids'], data_samples['text_mask'])

    def loss(self, inputs: Tensor, data_samples: dict) -> Dict[str, Tensor]:
        video = self.encode_video(inputs)
        text = self.encode_text(data_samples['text_ids'], data_samples['text_mask'])
        return self.retrieval_losses(video, text, data_samples)

    def retrieval_losses(self, video: VideoFeatures, text: TextFeatures,
                         data_samples: dict) -> Dict[str, Tensor]:
        """Weighted ``loss_itc`` and ``loss_itm`` of encoded one-clip videos and their captions."""
        if video.tokens.shape[1] != 1:
            raise ValueError(f'training takes one clip per video, got num_clips={video.tokens.shape[1]}; '
                             'set num_clips=1 in the train pipeline')
        video_tokens, video_emb = video.tokens[:, 0], video.embedding[:, 0]
        video_ids = data_samples['video_ids']
        owner = data_samples['text_owner']
        text_video_ids = video_ids[owner]

        loss_itc, logits = self.contrastive_head.loss(video_emb, text.embedding, video_ids,
                                                      text_video_ids)
        positives = video_ids[:, None] == text_video_ids[None, :]
        neg_text, video_has_neg = self.matching_head.sample_negatives(logits, positives)
        neg_video, text_has_neg = self.matching_head.sample_negatives(logits.t(), positives.t())

        pair_video = torch.cat([video_tokens[owner], video_tokens[neg_video], video_tokens])
        pair_text = torch.cat([text.states, text.states, text.states[neg_text]])
        pair_mask = torch.cat([text.mask, text.mask, text.mask[neg_text]])
        num_text, num_video = len(owner), len(video_ids)
        labels = torch.cat([owner.new_ones(num_text), owner.new_zeros(num_text + num_video)])
        weights = torch.cat([torch.ones_like(text_has_neg, dtype=torch.float),
                             text_has_neg.float(), video_has_neg.float()])
        fused = self.text_encoder.fuse(pair_text, pair_mask, pair_video)
        loss_itm = self.matching_head.loss(self.text_pooling(fused.states, pair_mask), labels, weights)
        return dict(loss_itc=self.loss_weights['itc'] * loss_itc,
                    loss_itm=self.loss_weights['itm'] * loss_itm)

    def predict(self, inputs: Tensor, data_samples: dict) -> List[dict]:
        """Per-sample features for the retrieval loop.

        Each dict holds ``sample_idx``, ``video_tokens [K, 1+N, C]``, ``video_emb [K, E]`` and, for the
        sample's captions, ``text_states [n, L, D]``, ``text_mask [n, L]``, ``text_emb [n, E]``.
        """
        video = self.encode_video(inputs)
        text = self.encode_text(data_samples['text_ids'], data_samples['text_mask'])
        owner = data_samples['text_owner']
        results = []
        for b, sample_idx in enumerate(data_samples['sample_idx'].tolist()):
            mine = owner == b
            results.append(dict(sample_idx=sample_idx, video_tokens=video.tokens[b],
                                video_emb=video.embedding[b], text_states=text.states[mine],
                                text_mask=text.mask[mine], text_emb=text.embedding[mine]))
        return results
