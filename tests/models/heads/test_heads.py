import math

import pytest
import torch

from svitt_mm.models.heads import ContrastiveHead, MatchingHead
from svitt_mm.models.heads.contrastive import positive_targets


def test_positive_targets_share_mass_among_duplicates():
    targets = positive_targets(torch.tensor([0, 1, 0]), torch.tensor([0, 1, 0]))
    assert torch.allclose(targets, torch.tensor([[.5, 0, .5], [0, 1, 0], [.5, 0, .5]]))


def test_contrastive_loss_matches_hand_computation():
    torch.manual_seed(0)
    head = ContrastiveHead(vision_width=8, text_width=6, embed_dim=4, temperature=0.1)
    v = head.embed_video(torch.randn(3, 8))
    t = head.embed_text(torch.randn(3, 6))
    ids = torch.tensor([0, 1, 2])
    loss, logits = head.loss(v, t, ids, ids)
    sim = v @ t.t() / 0.1
    expected = (torch.nn.functional.cross_entropy(sim, ids) +
                torch.nn.functional.cross_entropy(sim.t(), ids)) / 2
    assert torch.allclose(loss, expected, atol=1e-6)
    assert torch.allclose(logits, sim, atol=1e-6)


def test_temperature_is_clamped():
    head = ContrastiveHead(4, 4, embed_dim=4, temperature=5.0)
    head.logits(torch.randn(2, 4), torch.randn(2, 4))
    assert math.isclose(head.temperature.item(), 0.5)


def test_hard_negatives_never_positive_and_follow_similarity():
    logits = torch.tensor([[0.0, 10.0, -10.0], [5.0, 0.0, -5.0], [0.0, 0.0, 0.0]])
    positives = torch.eye(3, dtype=torch.bool)
    positives[2] = True  # row 2: everything is a positive
    gen = torch.Generator().manual_seed(0)
    draws = [MatchingHead(4).sample_negatives(logits, positives, gen) for _ in range(200)]
    for index, has_negative in draws:
        assert has_negative.tolist() == [True, True, False]
        assert not positives[0, index[0]] and not positives[1, index[1]]
    first = torch.stack([d[0][0] for d in draws])
    assert (first == 1).float().mean() > 0.95  # the hardest negative dominates


def test_random_negative_ratio_draws_that_share_uniformly():
    logits = torch.tensor([[0.0, 30.0, -30.0, -30.0]]).repeat(4000, 1)  # by similarity: always column 1
    positives = torch.zeros_like(logits, dtype=torch.bool)
    positives[:, 0] = True
    gen = torch.Generator().manual_seed(0)
    index, has_negative = MatchingHead(4, random_negative_ratio=0.5).sample_negatives(logits, positives, gen)
    assert has_negative.all() and not (index == 0).any()
    share = torch.bincount(index, minlength=4).float() / len(index)
    # half the rows hard (column 1), half uniform over columns 1-3: 1/2 + 1/6, 1/6, 1/6
    assert torch.allclose(share[1:], torch.tensor([2 / 3, 1 / 6, 1 / 6]), atol=0.03)
    hard, _ = MatchingHead(4).sample_negatives(logits, positives, gen)
    assert (hard == 1).all()


def test_random_negative_ratio_is_checked():
    from svitt_mm.utils.arg_checks import ArgumentError
    with pytest.raises(ArgumentError, match=r'MatchingHead.random_negative_ratio: 1.5 must be a number in \[0, 1\]'):
        MatchingHead(4, random_negative_ratio=1.5)


def test_matching_loss_ignores_pairs_without_negative():
    head = MatchingHead(hidden_size=4)
    cls = torch.randn(3, 4)
    labels = torch.tensor([1, 0, 0])
    full = head.loss(cls, labels, torch.tensor([1.0, 1.0, 0.0]))
    partial = head.loss(cls[:2], labels[:2], torch.ones(2))
    assert torch.allclose(full, partial)
