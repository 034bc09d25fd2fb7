"""Building blocks of the BERT text/fusion encoder: embeddings, post-LN attention, encoder layer.

All blocks follow BERT's post-LayerNorm residual form ``x = LN(x + Dropout(sublayer(x)))``.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from timm.layers import Mlp
from torch import Tensor, nn

from svitt_mm.models.attention.logits import softmax_rows
from svitt_mm.utils.arg_checks import ArgumentError


def key_padding_bias(key_mask: Optional[Tensor], dtype: torch.dtype) -> Optional[Tensor]:
    """Additive attention bias ``[B, 1, 1, Nk]`` from a bool key mask ``[B, Nk]`` (``True`` = valid).

    Invalid keys get the most negative finite value of ``dtype`` rather than ``-inf`` or ``-10000``: it
    removes them from the softmax exactly and stays finite (no NaN) even if a whole row is masked and in
    half precision. ``None`` (all keys valid) gives ``None``.
    """
    if key_mask is None:
        return None
    bias = torch.zeros(key_mask.shape, dtype=dtype, device=key_mask.device)
    return bias.masked_fill(~key_mask, torch.finfo(dtype).min)[:, None, None, :]


def causal_key_bias(key_mask: Optional[Tensor], length: int, dtype: torch.dtype,
                    device: torch.device) -> Tensor:
    """Additive self-attention bias ``[B or 1, 1, L, L]``: query ``i`` sees keys ``j <= i`` that are
    valid in the bool ``key_mask`` ``[B, L]`` (``None`` = all valid); others get ``finfo(dtype).min``."""
    allowed = torch.ones(length, length, dtype=torch.bool, device=device).tril()[None, None]
    if key_mask is not None:
        allowed = allowed & key_mask[:, None, None, :]
    bias = torch.zeros(allowed.shape, dtype=dtype, device=device)
    return bias.masked_fill(~allowed, torch.finfo(dtype).min)


def cls_attention_probs(q: Tensor, k: Tensor, key_mask: Optional[Tensor]) -> Tensor:
    """Softmax attention of the first query over all keys, averaged over heads.

    ``q`` ``[B, H, L, D]``, ``k`` ``[B, H, Nk, D]``, bool ``key_mask`` ``[B, Nk]`` or ``None`` ->
    float32 ``[B, Nk]``. Only one query row is computed (the full ``[L, Nk]`` probabilities are never
    materialised), in float32 even under autocast so that ranking tokens by it is not blurred by
    half-precision rounding.
    """
    with torch.autocast(device_type=q.device.type, enabled=False):
        mask = key_padding_bias(key_mask, torch.float32)
        return softmax_rows(q[:, :, :1].float(), k.float(), mask).mean(dim=1)[:, 0]


class BertEmbeddings(nn.Module):
    """Word + absolute position + token-type (always type 0) embeddings, then LayerNorm and dropout.

    ``word.weight`` ``[vocab_size, hidden_size]`` is the table an MLM decoder ties to.
    """

    def __init__(self, vocab_size: int, hidden_size: int, max_position_embeddings: int,
                 type_vocab_size: int, layer_norm_eps: float, dropout: float) -> None:
        super().__init__()
        self.word = nn.Embedding(vocab_size, hidden_size)
        self.position = nn.Embedding(max_position_embeddings, hidden_size)
        self.token_type = nn.Embedding(type_vocab_size, hidden_size)
        self.norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, input_ids: Tensor) -> Tensor:
        """``input_ids`` LongTensor ``[B, L]`` -> embeddings ``[B, L, C]``."""
        length = input_ids.shape[1]
        if length > self.position.num_embeddings:
            raise ValueError(f'BertEmbeddings: input_ids has {length} tokens, more than '
                             f'max_position_embeddings={self.position.num_embeddings}')
        positions = torch.arange(length, device=input_ids.device)
        x = self.word(input_ids) + self.position(positions)[None] + self.token_type.weight[0]
        return self.dropout(self.norm(x))


class BertAttention(nn.Module):
    """Multi-head attention sublayer with BERT's residual + LayerNorm.

    Queries come from ``x`` ``[B, L, C]``; keys/values from ``context`` ``[B, Nk, key_width]`` (``x``
    itself for self-attention, visual tokens for cross-attention). q/k/v projections have biases; scores
    are scaled by ``1/sqrt(head_dim)``; ``dropout`` applies to the attention probabilities and to the
    output projection.
    """

    def __init__(self, hidden_size: int, num_heads: int, key_width: int, layer_norm_eps: float,
                 dropout: float) -> None:
        super().__init__()
        if hidden_size % num_heads:
            raise ArgumentError(f'BertAttention: hidden_size={hidden_size} is not divisible by '
                                f'num_heads={num_heads}')
        self.num_heads = num_heads
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(key_width, hidden_size)
        self.value = nn.Linear(key_width, hidden_size)
        self.proj = nn.Linear(hidden_size, hidden_size)
        self.norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.attn_dropout = dropout
        self.dropout = nn.Dropout(dropout)

    def _split_heads(self, x: Tensor) -> Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, -1).transpose(1, 2)

    def forward(self, x: Tensor, context: Tensor, key_mask: Optional[Tensor] = None,
                return_cls_probs: bool = False, causal: bool = False) -> Tuple[Tensor, Optional[Tensor]]:
        """Attend from ``x`` ``[B, L, C]`` to ``context`` ``[B, Nk, Ck]``.

        ``key_mask``: optional bool ``[B, Nk]``, ``True`` = valid key. ``causal`` (self-attention only,
        ``Nk == L``): query ``i`` attends to keys ``<= i`` only. Returns the updated ``x``
        ``[B, L, C]`` and, if ``return_cls_probs``, the softmax probabilities of the first query
        (the [CLS] token) over the keys averaged over heads, float32 ``[B, Nk]`` (before dropout),
        else ``None``.
        """
        q = self._split_heads(self.query(x))
        k = self._split_heads(self.key(context))
        v = self._split_heads(self.value(context))
        if causal:
            bias = causal_key_bias(key_mask, x.shape[1], q.dtype, q.device)
        else:
            bias = key_padding_bias(key_mask, q.dtype)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias, dropout_p=self.attn_dropout if self.training else 0.0)
        cls_probs = None
        if return_cls_probs:
            cls_probs = cls_attention_probs(q, k, key_mask)
        out = out.transpose(1, 2).flatten(2)
        return self.norm(x + self.dropout(self.proj(out))), cls_probs


class BertLayer(nn.Module):
    """One encoder layer: self-attention -> (optional) cross-attention -> GELU feed-forward.

    Text-only layers have ``cross_attn = None``; fusion layers cross-attend to visual tokens of width
    ``visual_width``. ``causal=True`` makes the self-attention causal (decoder layers).
    """

    def __init__(self, hidden_size: int, num_heads: int, intermediate_size: int, layer_norm_eps: float,
                 dropout: float, visual_width: Optional[int] = None, causal: bool = False) -> None:
        super().__init__()
        self.causal = causal
        self.self_attn = BertAttention(hidden_size, num_heads, hidden_size, layer_norm_eps, dropout)
        self.cross_attn = None
        if visual_width is not None:
            self.cross_attn = BertAttention(hidden_size, num_heads, visual_width, layer_norm_eps,
                                            dropout)
        # nn.GELU() is the exact erf GELU; BERT has no dropout after the intermediate activation.
        self.ffn = Mlp(hidden_size, intermediate_size, act_layer=nn.GELU, drop=(0.0, dropout))
        self.ffn_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)

    def forward(self, x: Tensor, text_mask: Tensor, visual_tokens: Optional[Tensor] = None,
                visual_mask: Optional[Tensor] = None,
                return_cls_probs: bool = False) -> Tuple[Tensor, Optional[Tensor]]:
        """``x`` ``[B, L, C]``, bool ``text_mask`` ``[B, L]``; fusion layers also take ``visual_tokens``
        ``[B, Nv, Cv]`` and bool ``visual_mask`` ``[B, Nv]`` (or ``None``). Returns ``x`` ``[B, L, C]`` and
        the head-averaged text-[CLS] cross-attention probabilities ``[B, Nv]`` if ``return_cls_probs``.
        """
        x, _ = self.self_attn(x, x, text_mask, causal=self.causal)
        cls_probs = None
        if self.cross_attn is not None:
            x, cls_probs = self.cross_attn(x, visual_tokens, visual_mask, return_cls_probs)
        return self.ffn_norm(x + self.ffn(x)), cls_probs


def init_bert_style(*modules: nn.Module) -> None:
    """BERT's initialisation of every submodule of ``modules``, in order: ``Linear`` and ``Embedding``
    weights normal (std 0.02), ``Linear`` biases zero, ``LayerNorm`` weight 1 and bias 0.

    Pass only the modules the caller owns: a weight shared with another module (a tied vocabulary
    projection, shared embeddings) is that module's to initialise.
    """
    for module in (m for part in modules for m in part.modules()):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
