import torch
from torch import nn

from svitt_mm.engine.retrieval_scoring import (contrastive_scores, group_by_caption, ownership_positives,
                                               rerank, stack_features)


class LookupMatcher(nn.Module):
    """match_logits = table[video id, text id, clip]: video tokens carry (video, clip) ids, text states
    carry text ids, so the test knows every pair's logit."""

    def __init__(self, table):
        super().__init__()
        self.table = table
        self.dummy = nn.Parameter(torch.zeros(1))

    def match_logits(self, video_tokens, text_states, text_mask):
        video = video_tokens[:, 0, 0].long()
        clip = video_tokens[:, 0, 1].long()
        text = text_states[:, 0, 0].long()
        return self.table[video, text, clip]


def make_features(num_videos=4, texts_per_video=(1, 2, 1, 1), clips=2):
    samples, text_id = [], 0
    for v in range(num_videos):
        tokens = torch.zeros(clips, 3, 2)
        tokens[:, 0, 0] = v
        tokens[:, 0, 1] = torch.arange(clips)
        n = texts_per_video[v]
        states = torch.zeros(n, 2, 1)
        states[:, 0, 0] = torch.arange(text_id, text_id + n)
        text_id += n
        samples.append(dict(sample_idx=v, video_tokens=tokens,
                            video_emb=nn.functional.normalize(torch.randn(clips, 3), dim=-1),
                            text_states=states, text_mask=torch.ones(n, 2, dtype=torch.long),
                            text_emb=nn.functional.normalize(torch.randn(n, 3), dim=-1)))
    return samples, text_id


def test_stack_features_orders_by_sample_and_maps_texts_to_videos():
    torch.manual_seed(0)
    samples, _ = make_features()
    features = stack_features(list(reversed(samples)))
    assert features.text_video.tolist() == [0, 1, 1, 2, 3]
    assert features.video_tokens[:, 0, 0, 0].tolist() == [0, 1, 2, 3]
    expected = torch.einsum('vke,te->vt', features.video_emb, features.text_emb) / 2
    assert torch.allclose(contrastive_scores(features), expected, atol=1e-6)


def test_rerank_scores_topk_with_matcher_and_keeps_stage1_order_below():
    torch.manual_seed(0)
    samples, num_texts = make_features()
    features = stack_features(samples)
    table = torch.randn(4, num_texts, 2)
    model = LookupMatcher(table)
    stage1 = torch.randn(4, num_texts)
    final = rerank(model, features, stage1, videos_are_queries=True, k_test=2,
                   aggregation='mean', batch_size=3, show_progress=False)
    top = stage1.topk(2, dim=1).indices
    for v in range(4):
        for t in range(num_texts):
            if t in top[v]:
                assert torch.isclose(final[v, t], table[v, t].mean())
        rest = [t for t in range(num_texts) if t not in top[v]]
        assert final[v, rest].max() < final[v, top[v]].min()
        # Outside the top-k the stage-1 order is kept.
        assert torch.equal(final[v, rest].argsort(), stage1[v, rest].argsort())


def test_rerank_text_queries_and_aggregations():
    torch.manual_seed(1)
    samples, num_texts = make_features()
    features = stack_features(samples)
    table = torch.randn(4, num_texts, 2)
    model = LookupMatcher(table)
    stage1 = torch.randn(num_texts, 4)
    for name, fn in [('max', lambda x: x.amax(-1)), ('lse', lambda x: x.logsumexp(-1))]:
        final = rerank(model, features, stage1, videos_are_queries=False, k_test=10,
                       aggregation=name, batch_size=5, show_progress=False)
        assert torch.allclose(final, fn(table).t())  # k_test clamps to all 4 videos


def test_group_by_caption_makes_one_query_per_caption_with_every_video_positive():
    features = stack_features(make_features(texts_per_video=(1, 2, 1, 1))[0])
    captions = [['push a cup'], ['lift a box', 'push a cup'], ['lift a box'], ['spin a top']]
    grouped, positives = group_by_caption(features, captions)
    # texts in order: push(v0), lift(v1), push(v1), lift(v2), spin(v3) -> first of each caption kept
    assert grouped.text_states[:, 0, 0].tolist() == [0, 1, 4]
    assert positives.tolist() == [[True, True, False, False],
                                  [False, True, True, False],
                                  [False, False, False, True]]
    assert ownership_positives(features).sum(dim=1).tolist() == [1] * 5


def test_itc_plus_itm_adds_the_contrastive_logit_to_the_matching_logit():
    torch.manual_seed(2)
    samples, num_texts = make_features()
    features = stack_features(samples)
    table = torch.randn(4, num_texts, 2)
    model = LookupMatcher(table)
    stage1 = torch.rand(num_texts, 4) * 2 - 1  # cosines
    itm = rerank(model, features, stage1, videos_are_queries=False, k_test=2, aggregation='mean',
                 show_progress=False)
    both = rerank(model, features, stage1, videos_are_queries=False, k_test=2, aggregation='mean',
                  show_progress=False, score='itc+itm', temperature=0.05)
    top = stage1.topk(2, dim=1).indices
    for t in range(num_texts):
        for v in top[t]:
            assert torch.isclose(itm[t, v], table[v, t].mean())
            assert torch.isclose(both[t, v], stage1[t, v] / 0.05 + table[v, t].mean())
        rest = [v for v in range(4) if v not in top[t]]
        assert both[t, rest].max() < both[t, top[t]].min()
    # The two scores can order a query's candidates differently: that is the point of the switch.
    assert not torch.equal(itm.argsort(dim=1), both.argsort(dim=1))


def test_an_unknown_second_stage_score_is_an_argument_error():
    import pytest

    from svitt_mm.utils.arg_checks import ArgumentError
    samples, num_texts = make_features()
    with pytest.raises(ArgumentError, match="'itm\\+itc'.*choose from \\['itc\\+itm', 'itm'\\]"):
        rerank(LookupMatcher(torch.zeros(4, num_texts, 2)), stack_features(samples), torch.zeros(4, num_texts),
               True, 2, score='itm+itc')
