"""mask_tokens: which positions are chosen, how they are corrupted, and the labels."""
import pytest
import torch

from svitt_mm.models.text import IGNORE_INDEX, mask_tokens

PAD, CLS, SEP, MASK, VOCAB = 0, 101, 102, 103, 30522


def captions(batch=4000, length=16, seed=0):
    """[CLS] words [SEP] [PAD]...: row b has 4 + b % 10 words."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, 3000, (batch, length), generator=gen)
    mask = torch.zeros(batch, length, dtype=torch.long)
    for b in range(batch):
        words = 4 + b % 10
        ids[b, 0], ids[b, words + 1] = CLS, SEP
        ids[b, words + 2:] = PAD
        mask[b, :words + 2] = 1
    return ids, mask


def run(ids, mask, prob=0.5, seed=1):
    return mask_tokens(ids, mask, (PAD, CLS, SEP), MASK, VOCAB, prob,
                       generator=torch.Generator().manual_seed(seed))


def test_special_tokens_and_padding_are_never_chosen():
    ids, mask = captions()
    masked, labels = run(ids, mask, prob=1.0)
    special = (ids == CLS) | (ids == SEP) | (mask == 0)
    assert (labels[special] == IGNORE_INDEX).all()
    assert torch.equal(masked[special], ids[special])
    # with mask_prob=1 every real word is chosen
    assert torch.equal(labels[~special], ids[~special])


def test_labels_hold_the_original_ids_of_exactly_the_chosen_positions():
    ids, mask = captions(batch=200)
    masked, labels = run(ids, mask)
    chosen = labels != IGNORE_INDEX
    assert torch.equal(labels[chosen], ids[chosen])
    # every corrupted position is a chosen one
    assert not (masked != ids)[~chosen].any()


def test_proportions():
    ids, mask = captions()
    masked, labels = run(ids, mask, prob=0.5)
    real = (mask == 1) & (ids != CLS) & (ids != SEP)
    chosen = labels != IGNORE_INDEX
    n_real, n_chosen = real.sum().item(), chosen.sum().item()
    assert abs(n_chosen / n_real - 0.5) < 0.01  # ~34k real tokens: std of the ratio ~0.003
    to_mask = (masked == MASK) & chosen
    unchanged = (masked == ids) & chosen
    # a random replacement can hit the original id (prob 1/VOCAB): negligible here
    to_random = chosen & ~to_mask & ~unchanged
    assert abs(to_mask.sum().item() / n_chosen - 0.8) < 0.01
    assert abs(to_random.sum().item() / n_chosen - 0.1) < 0.01
    assert abs(unchanged.sum().item() / n_chosen - 0.1) < 0.01
    # random replacements spread over the whole vocabulary, not just the ids of the captions
    assert masked[to_random].max() > 20000 and masked[to_random].min() < 1000


def test_deterministic_with_a_generator_and_varies_with_the_seed():
    ids, mask = captions(batch=50)
    first, second, other = run(ids, mask, seed=3), run(ids, mask, seed=3), run(ids, mask, seed=4)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert not torch.equal(first[1], other[1])


def test_bad_inputs_are_named():
    ids, mask = captions(batch=2)
    with pytest.raises(ValueError, match='attention_mask'):
        mask_tokens(ids, mask[:, :3], (PAD,), MASK, VOCAB)
    with pytest.raises(ValueError, match='mask_prob'):
        mask_tokens(ids, mask, (PAD,), MASK, VOCAB, mask_prob=1.5)
