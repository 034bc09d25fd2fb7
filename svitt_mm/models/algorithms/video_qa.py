"""Video question answering by generative answer ranking (SViTT / ALBEF style, no classifier)."""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
from mmengine.model import BaseModel
from torch import Tensor, nn

from svitt_mm.models.clip_aggregation import CLIP_AGGREGATIONS
from svitt_mm.models.text.answer_decoder import decoder_arch_from
from svitt_mm.registry import BACKBONES, DECODERS, MODELS
from svitt_mm.utils.arg_checks import ArgumentError
from svitt_mm.utils.text import clean_caption, load_tokenizer, read_answer_list

from ..init_info import QuietInitInfo


def aggregate_clips(scores: Tensor, aggregation: str) -> Tensor:
    """``scores [B, K, ...]`` over K clips -> ``[B, ...]`` by ``mean``, ``max`` or ``lse`` (logsumexp)."""
    return CLIP_AGGREGATIONS[aggregation](scores.movedim(1, -1))


@MODELS.register_module()
class VideoQuestionAnswering(QuietInitInfo, BaseModel):
    """SViTT's video QA model: video encoder -> question encoder (text layers, then fusion layers that
    cross-attend to the video tokens, with text-guided pruning as configured) -> answer decoder.

    Args:
        vision_encoder: BACKBONES cfg of the video encoder (e.g. ``VideoBEiT``); must expose
            ``embed_dims`` and return ``tokens``.
        text_encoder: BACKBONES cfg of the question encoder (``BertFusionEncoder``); ``visual_width``
            defaults to the video encoder's width.
        answer_decoder: DECODERS cfg of the decoder (default ``AnswerDecoder`` with 3 layers); the
            architecture arguments default to the question encoder's (:func:`decoder_arch_from`).
        answer_list: JSON list of candidate answers ranked by :meth:`predict`; tokenised once here.
            ``None`` = a training-only model.
        tokenizer: tokenizer (folder, ``package://`` spec, hub id) for the answer list; must be the one
            of the dataset's ``TokenizeQA``.
        max_answer_len: answer tokens including [CLS] and [SEP] (SViTT: 5).
        k_test: candidates kept by the first-token stage of :meth:`predict` (SViTT: 128).
        clip_aggregation: how a video's clip scores combine at test time: ``mean``, ``max`` or ``lse``.
        decoder_init: ``'fusion_layers'`` (SViTT): :meth:`init_weights` copies the question encoder's
            last fusion layers and embeddings into the decoder; ``None``: keep the decoder's own init.
        share_embeddings: the decoder uses the question encoder's embeddings (and ties its LM head to
            their word table) instead of its own copy (SViTT copies): a vocabulary-sized table fewer to
            train.
        data_preprocessor: MODELS cfg (default ``VideoQADataPreprocessor``).

    ``forward(inputs, data_samples, mode)``: ``inputs`` float ``[B, K, T, 3, H, W]`` (K clips per video,
    1 in training), ``data_samples`` the dict made by ``VideoQADataPreprocessor``.
    """

    def __init__(self, vision_encoder: dict, text_encoder: dict, answer_decoder: Optional[dict] = None,
                 answer_list: Optional[str] = None, tokenizer: Optional[str] = None,
                 max_answer_len: int = 5, k_test: int = 128, clip_aggregation: str = 'lse',
                 decoder_init: Optional[str] = 'fusion_layers', share_embeddings: bool = False,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor or dict(type='VideoQADataPreprocessor'),
                         init_cfg=init_cfg)
        if clip_aggregation not in CLIP_AGGREGATIONS:
            raise ArgumentError(f'VideoQuestionAnswering: clip_aggregation must be one of '
                                f'{sorted(CLIP_AGGREGATIONS)}, got {clip_aggregation!r}')
        if decoder_init not in ('fusion_layers', None):
            raise ArgumentError(f"VideoQuestionAnswering: decoder_init must be 'fusion_layers' or None, got "
                                f'{decoder_init!r}')
        if k_test < 1:
            raise ArgumentError(f'VideoQuestionAnswering: k_test must be >= 1, got {k_test}')
        self.vision_encoder = BACKBONES.build(vision_encoder)
        vision_width = self.vision_encoder.embed_dims
        # QA reads the video tokens only: a pooler would get no gradient (and stall DDP).
        if isinstance(getattr(self.vision_encoder, 'pooler_norm', None), nn.Module):
            self.vision_encoder.pooler_norm.requires_grad_(False)
        self.vision_norm = nn.LayerNorm(vision_width, eps=1e-12)
        self.text_encoder = BACKBONES.build(dict(dict(visual_width=vision_width), **text_encoder))
        self.answer_decoder = DECODERS.build(dict(
            dict(type='AnswerDecoder', num_layers=3, **decoder_arch_from(self.text_encoder)),
            **(answer_decoder or {})))
        if share_embeddings:
            self.answer_decoder.share_embeddings(self.text_encoder.embeddings)
        self.k_test = k_test
        self.clip_aggregation = clip_aggregation
        self.decoder_init = decoder_init
        self.answers: List[str] = []
        self.bos_id = 0
        self.register_buffer('candidate_ids', torch.zeros(0, max_answer_len, dtype=torch.long),
                             persistent=False)
        self.register_buffer('candidate_mask', torch.zeros(0, max_answer_len, dtype=torch.long),
                             persistent=False)
        if answer_list is not None:
            self._tokenize_answer_list(answer_list, tokenizer, max_answer_len)

    def _tokenize_answer_list(self, answer_list: str, tokenizer: Optional[str], max_answer_len: int) -> None:
        if tokenizer is None:
            raise ValueError('VideoQuestionAnswering: answer_list is set but tokenizer is not; set '
                             'model.tokenizer to the tokenizer of the dataset\'s TokenizeQA')
        self.answers = read_answer_list(answer_list)
        tok = load_tokenizer(tokenizer, 'model.tokenizer')
        encoded = tok([clean_caption(answer) for answer in self.answers], padding='max_length',
                      truncation=True, max_length=max_answer_len, return_tensors='pt')
        self.candidate_ids = encoded['input_ids'].long()
        self.candidate_mask = encoded['attention_mask'].long()
        self.bos_id = int(tok.cls_token_id)

    def init_weights(self) -> None:
        """Children's own initialisation (pretrained encoders, LM head), then SViTT's decoder copy."""
        super().init_weights()
        if self.decoder_init == 'fusion_layers':
            self.answer_decoder.init_from_fusion_layers(self.text_encoder)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        # A checkpoint without decoder weights (SViTT pretraining or retrieval) initialises the decoder as
        # SViTT does, from the checkpoint's question-encoder fusion layers and embeddings (and its MLM
        # head `lm_head.*`, if any); PyTorch lets a module amend the dict before its children read it.
        decoder = prefix + 'answer_decoder.'
        if self.decoder_init == 'fusion_layers' and not any(k.startswith(decoder) for k in state_dict):
            parts = {name: {k[len(prefix + name):]: v for k, v in state_dict.items()
                            if k.startswith(prefix + name)} for name in ('text_encoder.', 'lm_head.')}
            if parts['text_encoder.']:
                weights, _ = self.answer_decoder.weights_from_encoder(
                    parts['text_encoder.'], self.text_encoder.num_layers, parts['lm_head.'] or None)
                state_dict.update({decoder + name: value for name, value in weights.items()})
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ------------------------------------------------------------------ encoders
    def encode_question(self, video: Tensor, question_ids: Tensor, question_mask: Tensor) -> Tensor:
        """Question states fused with each clip: ``video [B, K, T, 3, H, W]``, ``question_ids`` /
        ``question_mask [B, Lq]`` -> ``[B, K, Lq, C]``."""
        if video.dim() != 6:
            raise ValueError(f'expected a video batch [B, K, T, 3, H, W], got shape {tuple(video.shape)}')
        batch, clips = video.shape[:2]
        tokens = self.vision_norm(self.vision_encoder(video.flatten(0, 1)).tokens)
        fused = self.text_encoder(question_ids.repeat_interleave(clips, 0),
                                  question_mask.repeat_interleave(clips, 0), tokens)
        return fused.states.unflatten(0, (batch, clips))

    # ------------------------------------------------------------------ modes
    def forward(self, inputs: Tensor, data_samples: Optional[dict] = None, mode: str = 'tensor'):
        modes = dict(loss=self.loss, predict=self.predict, tensor=self.extract_features)
        if mode not in modes:
            raise ValueError(f'unknown mode {mode!r}; expected one of {sorted(modes)}')
        return modes[mode](inputs, data_samples)

    def extract_features(self, inputs: Tensor, data_samples: dict) -> Tensor:
        """Question states ``[B, K, Lq, C]``."""
        return self.encode_question(inputs, data_samples['question_ids'], data_samples['question_mask'])

    def loss(self, inputs: Tensor, data_samples: dict) -> Dict[str, Tensor]:
        """Teacher-forced answer loss: ``sum_b sum_a w_a * (-log p(answer a | question b)) / B`` over
        each question's distinct answers ``a`` with weight ``w_a`` = share of the annotators' answers."""
        if inputs.shape[1] != 1:
            raise ValueError(f'training takes one clip per video, got num_clips={inputs.shape[1]}; '
                             'set num_clips=1 in the train pipeline')
        states = self.extract_features(inputs, data_samples)[:, 0]
        owner = data_samples['answer_owner']
        log_likelihood = self.answer_decoder.sequence_log_likelihood(
            data_samples['answer_ids'], data_samples['answer_mask'], states[owner],
            data_samples['question_mask'][owner])
        loss = -(data_samples['answer_weights'] * log_likelihood).sum() / inputs.shape[0]
        return dict(loss_qa=loss)

    def score_answers(self, states: Tensor, question_mask: Tensor) -> Tuple[Tensor, Tensor]:
        """The ``k = min(k_test, answers)`` candidate answers per question and their scores.

        ``states [B, K, Lq, C]`` (question fused with each of K clips), ``question_mask [B, Lq]`` ->
        (candidates LongTensor ``[B, k]`` into ``self.answers``, scores ``[B, k]``). (i) One decoder step
        on ``[CLS]`` gives each candidate's first-token log-probability per clip; aggregated over clips,
        it picks the ``k_test`` best candidates. (ii) Their scores are their full teacher-forced
        log-likelihoods (every token once) per clip, aggregated over clips.
        """
        if not self.answers:
            raise ValueError('VideoQuestionAnswering: no answer list to rank; set model.answer_list (and '
                             'model.tokenizer) in the config')
        batch, clips = states.shape[:2]
        flat_states, flat_mask = states.flatten(0, 1), question_mask.repeat_interleave(clips, 0)
        first = self.answer_decoder.first_token_log_probs(self.bos_id, flat_states, flat_mask)
        first = first[:, self.candidate_ids[:, 1]].view(batch, clips, -1)
        k = min(self.k_test, len(self.answers))
        top = aggregate_clips(first, self.clip_aggregation).topk(k, dim=1).indices  # [B, k]
        candidates = top.repeat_interleave(clips, 0).flatten()  # rows ordered (b, clip, j)
        log_likelihood = self.answer_decoder.sequence_log_likelihood(
            self.candidate_ids[candidates], self.candidate_mask[candidates],
            flat_states.repeat_interleave(k, 0), flat_mask.repeat_interleave(k, 0))
        return top, aggregate_clips(log_likelihood.view(batch, clips, k), self.clip_aggregation)

    def rank_answers(self, states: Tensor, question_mask: Tensor) -> Tensor:
        """Index of the best candidate answer per question (the highest score of
        :meth:`score_answers`): ``[B, K, Lq, C]``, ``[B, Lq]`` -> LongTensor ``[B]`` into ``self.answers``."""
        top, scores = self.score_answers(states, question_mask)
        return top.gather(1, scores.argmax(dim=1, keepdim=True)).squeeze(1)

    def predict(self, inputs: Tensor, data_samples: dict) -> List[dict]:
        """One dict per question: ``question_id``, ``pred_answer`` (an entry of the answer list),
        ``gt_answers`` (as annotated), ``question_type`` (``None`` when the data has none) and
        ``sample_idx``."""
        states = self.extract_features(inputs, data_samples)
        best = self.rank_answers(states, data_samples['question_mask']).tolist()
        return [dict(question_id=meta['question_id'], pred_answer=self.answers[index],
                     gt_answers=meta['answers'], question_type=meta['question_type'],
                     sample_idx=meta['sample_idx'])
                for index, meta in zip(best, data_samples['meta'])]
