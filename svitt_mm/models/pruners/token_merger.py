"""Token merging (ToMe's bipartite soft matching, Bolya et al., ICLR 2023) as a video token reducer.

Instead of dropping the local tokens [CLS] attends to least, a merging step averages the most similar ones:

1. The local tokens are split alternately, in their current order, into a set A (even indices) and a set
   B (odd indices); [CLS] is never merged.
2. Similarity is the cosine similarity of the layer's attention keys, averaged over heads.
3. Every A token draws an edge to its most similar B token; the ``r`` A tokens with the most similar
   edges are merged into their B token (several A tokens may join the same B token).
4. A merged token is the size-weighted average of its members (``size``: how many original tokens it
   stands for) and its size is their sum; attention then adds ``log(size)`` to its logits as a key
   (:mod:`.proportional_attention`), so it counts as that many identical tokens.

The tokens left keep their current order (the unmerged A tokens and the B tokens, each where it was), so a
block-sparse operator re-blocks the merged sequence in token order. A merged token's position (for the
relative position bias and the block assignment) is the size-weighted mean of its members' ``(t, h, w)``,
rounded to the nearest grid cell (``torch.round``: halves to even); the members are the tokens merged at
this step, each weighted by its size, so a token merged twice is rounded twice.

Unlike ToMe, which merges between the attention and the MLP of every layer, the merger runs where the
pruners do: on a layer's output, after the layers in ``prune_layers``; the three reducers then differ only
in which tokens they combine or drop.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from svitt_mm.registry import TOKEN_PRUNERS
from svitt_mm.utils.arg_checks import ArgumentError, check_arguments, int_at_least, number_in, optional

from .base import TokenPruner, TokenReduction


@TOKEN_PRUNERS.register_module()
class TokenMerger(TokenPruner):
    """Merge ``r`` local tokens per reduction step, or so many that a ``keep_rate`` share remains.

    Args:
        keep_rate: share of the ``N`` local tokens left, ``ceil(keep_rate * N)`` (as the pruners keep);
            at least 0.5, the most one bipartite step can merge.
        r: number of tokens merged away per step instead (capped at ``ceil(N / 2)``, the size of set A).

    Give exactly one. Setting ``keep_rate`` later (as a curriculum stage does) switches a merger configured
    with ``r`` to the keep rate. Matching takes no gradient (the keys are detached); the merged values do.
    """

    argument_checks = dict(keep_rate=optional(number_in(0.5, 1)), r=optional(int_at_least(1)))

    def __init__(self, keep_rate: Optional[float] = None, r: Optional[int] = None) -> None:
        check_arguments(self, keep_rate=keep_rate, r=r)
        if (keep_rate is None) == (r is None):
            raise ArgumentError(f'TokenMerger: give exactly one of keep_rate and r, got keep_rate={keep_rate!r}, '
                                f'r={r!r}')
        super().__init__(1.0 if keep_rate is None else keep_rate)
        self.r = r
        if r is not None:
            self._keep_rate = None

    @property
    def keep_rate(self) -> Optional[float]:
        """Share of local tokens left per step (``None`` when the merger is configured with ``r``)."""
        return self._keep_rate

    @keep_rate.setter
    def keep_rate(self, value: float) -> None:
        check_arguments(self, keep_rate=value)
        self._keep_rate = float(value)
        self.r = None

    def num_merge(self, num_tokens: int) -> int:
        """How many of ``num_tokens`` local tokens one step merges away."""
        if self.r is not None:
            return min(self.r, math.ceil(num_tokens / 2)) if num_tokens > 1 else 0
        return num_tokens - self.num_keep(num_tokens)

    def extra_repr(self) -> str:
        return f'r={self.r}' if self.r is not None else f'keep_rate={self.keep_rate}'

    def reduce(self, x: Tensor, positions: Tensor, sizes: Optional[Tensor], global_probs: Tensor, keys: Tensor,
               frame_grid: Tuple[int, int]) -> TokenReduction:
        """Merge the local tokens of ``x`` by bipartite soft matching of ``keys``; see :meth:`TokenPruner.reduce`
        for the arguments. ``global_probs`` is not used."""
        batch, length, dims = x.shape
        num_local = length - 1
        positions = positions.expand(batch, -1)
        if sizes is None:
            sizes = x.new_ones(batch, length)
        num_merged = self.num_merge(num_local)
        destination = self.destination(keys[:, 1:], num_merged)  # [B, N]
        num_left = num_local - num_merged
        local_sizes = sizes[:, 1:]
        new_sizes = local_sizes.new_zeros(batch, num_left).scatter_add(1, destination, local_sizes)
        weighted = (x[:, 1:] * local_sizes[..., None].to(x.dtype))
        summed = weighted.new_zeros(batch, num_left, dims).scatter_add(
            1, destination[..., None].expand(-1, -1, dims), weighted)
        local = summed / new_sizes[..., None].to(x.dtype)
        new_positions = merged_positions(positions, local_sizes, destination, new_sizes, frame_grid)
        return TokenReduction(torch.cat([x[:, :1], local], dim=1), new_positions,
                              torch.cat([sizes[:, :1], new_sizes], dim=1), destination)

    @staticmethod
    def destination(keys: Tensor, num_merged: int) -> Tensor:
        """Bipartite soft matching: for each of the ``N`` local tokens (keys ``[B, N, D]``), the index of
        the token it ends in among the ``N - num_merged`` left, which keep their order (``LongTensor[B, N]``)."""
        batch, num_local = keys.shape[:2]
        device = keys.device
        index = torch.arange(num_local, device=device)
        if num_merged == 0:
            return index.expand(batch, -1).clone()
        metric = F.normalize(keys.detach().float(), dim=-1)
        scores = metric[:, ::2] @ metric[:, 1::2].transpose(1, 2)  # [B, |A|, |B|] cosine similarities
        best, match = scores.max(dim=-1)  # each A token's most similar B token
        order = best.argsort(dim=-1, descending=True, stable=True)
        merged_a = order[:, :num_merged]  # A tokens (A-indices) merged away
        survives = torch.ones(batch, num_local, dtype=torch.bool, device=device)
        survives.scatter_(1, 2 * merged_a, False)
        new_index = survives.long().cumsum(dim=1) - 1  # index among the tokens left, for the survivors
        partner = new_index.gather(1, 2 * match + 1)  # [B, |A|]: where each A token's best B token went
        destination = new_index.clone()
        destination[:, ::2] = torch.where(survives[:, ::2], new_index[:, ::2], partner)
        return destination


def merged_positions(positions: Tensor, sizes: Tensor, destination: Tensor, new_sizes: Tensor,
                     frame_grid: Tuple[int, int]) -> Tensor:
    """Raster positions ``[B, K]`` of merged tokens: the size-weighted mean of their members' ``(t, h, w)``
    (members ``positions`` ``[B, N]`` with ``sizes`` ``[B, N]``, going to ``destination``), rounded."""
    height, width = frame_grid
    t = positions.div(height * width, rounding_mode='floor')
    rest = positions % (height * width)
    coords = torch.stack([t, rest.div(width, rounding_mode='floor'), rest % width], dim=-1)  # [B, N, 3]
    weighted = coords.double() * sizes[..., None].double()
    summed = weighted.new_zeros(new_sizes.shape[0], new_sizes.shape[1], 3).scatter_add(
        1, destination[..., None].expand(-1, -1, 3), weighted)
    mean = (summed / new_sizes[..., None].double()).round().long()
    return mean[..., 0] * (height * width) + mean[..., 1] * width + mean[..., 2]
