"""BERT-style token masking for masked language modelling (MLM)."""
from __future__ import annotations

from typing import Iterable, Optional, Tuple

import torch
from torch import Tensor

IGNORE_INDEX = -100  # label of the positions the MLM loss skips (``F.cross_entropy``'s default)


def mask_tokens(input_ids: Tensor, attention_mask: Tensor, special_ids: Iterable[int],
                mask_token_id: int, vocab_size: int, mask_prob: float = 0.5,
                generator: Optional[torch.Generator] = None) -> Tuple[Tensor, Tensor]:
    """Choose tokens to predict and corrupt them as BERT does.

    Every real token (``attention_mask`` non-zero and id not in ``special_ids``) is chosen independently
    with probability ``mask_prob``. A chosen token becomes ``mask_token_id`` with probability 0.8, a
    token id drawn uniformly from ``[0, vocab_size)`` with probability 0.1, and stays unchanged
    otherwise. Unlike SViTT's code, ``[SEP]`` is never chosen when it is listed in ``special_ids``.

    Args:
        input_ids: LongTensor ``[B, L]``.
        attention_mask: ``[B, L]``, non-zero = token, 0 = padding.
        special_ids: ids never chosen, e.g. ``(pad, [CLS], [SEP])``.
        mask_token_id: id of ``[MASK]``.
        vocab_size: number of token ids (range of the random replacements).
        mask_prob: probability that a real token is chosen.
        generator: RNG on ``input_ids``' device; ``None`` uses the global one.

    Returns:
        ``(masked_ids, labels)``, both LongTensor ``[B, L]``: ``masked_ids`` is the corrupted copy of
        ``input_ids``; ``labels`` holds the original id at chosen positions and ``-100`` elsewhere.
    """
    if input_ids.shape != attention_mask.shape:
        raise ValueError(f'mask_tokens: input_ids {tuple(input_ids.shape)} and attention_mask '
                         f'{tuple(attention_mask.shape)} differ in shape')
    if not 0.0 <= mask_prob <= 1.0:
        raise ValueError(f'mask_tokens: mask_prob must be in [0, 1], got {mask_prob}')
    specials = torch.tensor(sorted(set(special_ids)), dtype=input_ids.dtype, device=input_ids.device)
    maskable = attention_mask.bool() & ~torch.isin(input_ids, specials)
    draws = torch.rand((2, *input_ids.shape), generator=generator, device=input_ids.device)
    chosen = maskable & (draws[0] < mask_prob)
    # The second draw splits the chosen tokens: [0, 0.8) -> [MASK], [0.8, 0.9) -> random id, rest kept.
    to_mask = chosen & (draws[1] < 0.8)
    to_random = chosen & (draws[1] >= 0.8) & (draws[1] < 0.9)
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator,
                               device=input_ids.device, dtype=input_ids.dtype)
    masked_ids = torch.where(to_mask, torch.full_like(input_ids, mask_token_id), input_ids)
    masked_ids = torch.where(to_random, random_ids, masked_ids)
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    return masked_ids, labels
