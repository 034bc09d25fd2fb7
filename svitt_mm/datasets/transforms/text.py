"""Pipeline steps for text: caption cleaning (SViTT's ``pre_text`` normalisation, see
:func:`svitt_mm.utils.text.clean_caption`) and BERT WordPiece tokenisation."""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np
from mmcv.transforms import BaseTransform

from svitt_mm.registry import TRANSFORMS
from svitt_mm.utils.arg_checks import ArgumentError
from svitt_mm.utils.text import clean_caption, load_tokenizer


@TRANSFORMS.register_module()
class CleanCaptions(BaseTransform):
    """Apply :func:`clean_caption` to every string in ``results['captions']``."""

    def transform(self, results: Dict) -> Dict:
        results['captions'] = [clean_caption(caption) for caption in results['captions']]
        return results


@TRANSFORMS.register_module()
class TokenizeCaptions(BaseTransform):
    """Tokenise ``results['captions']`` (list of ``nc`` strings) to fixed-length id arrays.

    The tokenizer is built on first use, i.e. inside each dataloader worker, so the pipeline config
    stays a plain string and nothing large is pickled to the workers.

    Added keys: ``text_ids`` and ``text_mask``, int64 ``[nc, max_length]`` (padded with [PAD] / 0,
    truncated to ``max_length`` tokens including [CLS] and [SEP]).

    Args:
        tokenizer: local folder, ``package://module/path`` spec or Hugging Face hub id.
        max_length: tokens per caption.
    """

    def __init__(self, tokenizer: str, max_length: int) -> None:
        if not isinstance(max_length, int) or max_length < 2:
            raise ArgumentError(f'TokenizeCaptions: max_length must be an int >= 2 ([CLS] and [SEP]), '
                                f'got {max_length!r}')
        self.tokenizer_spec = tokenizer
        self.max_length = max_length
        self._tokenizer: Optional[object] = None

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(
                self.tokenizer_spec,
                f'the `tokenizer` argument of {type(self).__name__} in the dataset pipeline config')
        return self._tokenizer

    def transform(self, results: Dict) -> Dict:
        encoded = self.tokenizer(list(results['captions']), padding='max_length', truncation=True,
                                 max_length=self.max_length, return_tensors='np')
        results['text_ids'] = encoded['input_ids'].astype(np.int64)
        results['text_mask'] = encoded['attention_mask'].astype(np.int64)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(tokenizer={self.tokenizer_spec!r}, max_length={self.max_length})'


@TRANSFORMS.register_module()
class TokenizeQA(TokenizeCaptions):
    """Clean (:func:`~svitt_mm.utils.text.clean_caption`) and tokenise ``results['question']`` and
    ``results['answers']``.

    Answers that are equal after cleaning are merged; each distinct answer is weighted by its share of
    the annotators' answers (SViTT's loss weighting).

    Added keys: ``question_ids``, ``question_mask`` int64 ``[max_question_len]``; ``answer_ids``,
    ``answer_mask`` int64 ``[n, max_answer_len]`` (``[CLS] answer [SEP]``, padded) for the ``n`` distinct
    answers in order of first appearance; ``answer_weights`` float32 ``[n]`` (count / number of answers,
    summing to 1).

    Args:
        tokenizer: local folder, ``package://module/path`` spec or Hugging Face hub id.
        max_question_len: question tokens including [CLS] and [SEP] (SViTT: 25).
        max_answer_len: answer tokens including [CLS] and [SEP] (SViTT: 5).
    """

    def __init__(self, tokenizer: str, max_question_len: int = 25, max_answer_len: int = 5) -> None:
        super().__init__(tokenizer, max_question_len)
        if not isinstance(max_answer_len, int) or max_answer_len < 3:
            raise ArgumentError(f'TokenizeQA: max_answer_len must be an int >= 3 ([CLS], a token, [SEP]), '
                                f'got {max_answer_len!r}')
        self.max_answer_len = max_answer_len

    def transform(self, results: Dict) -> Dict:
        question = self.tokenizer([clean_caption(results['question'])], padding='max_length',
                                  truncation=True, max_length=self.max_length, return_tensors='np')
        cleaned = [clean_caption(answer) for answer in results['answers']]
        distinct = list(dict.fromkeys(cleaned))
        answers = self.tokenizer(distinct, padding='max_length', truncation=True,
                                 max_length=self.max_answer_len, return_tensors='np')
        results['question_ids'] = question['input_ids'][0].astype(np.int64)
        results['question_mask'] = question['attention_mask'][0].astype(np.int64)
        results['answer_ids'] = answers['input_ids'].astype(np.int64)
        results['answer_mask'] = answers['attention_mask'].astype(np.int64)
        results['answer_weights'] = np.array([cleaned.count(answer) for answer in distinct],
                                             np.float32) / len(cleaned)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(tokenizer={self.tokenizer_spec!r}, max_question_len='
                f'{self.max_length}, max_answer_len={self.max_answer_len})')
