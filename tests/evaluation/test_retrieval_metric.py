import pytest
import torch

from svitt_mm.evaluation import RetrievalMetric
from svitt_mm.evaluation.retrieval_metric import best_positive_rank


def test_best_positive_rank_uses_best_ground_truth():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.3],
                           [0.8, 0.7, 0.6, 0.5]])
    positives = torch.tensor([[False, False, True, True],   # best GT 0.5 -> rank 1 (0-based)
                              [True, False, False, False]])  # rank 0
    assert best_positive_rank(scores, positives).tolist() == [1, 0]


def test_query_without_ground_truth_is_an_error():
    with pytest.raises(ValueError, match='no ground-truth'):
        best_positive_rank(torch.zeros(2, 2), torch.tensor([[True, False], [False, False]]))


def test_metric_values_by_hand():
    # 3 videos, 4 texts (texts 2 and 3 both describe video 2).
    positives = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1]]).bool()
    t2v = torch.tensor([[0.9, 0.1, 0.0],    # rank 1
                        [0.9, 0.5, 0.0],    # rank 2
                        [0.0, 0.5, 0.1],    # rank 2
                        [0.0, 0.0, 0.9]])   # rank 1
    v2t = torch.tensor([[0.1, 0.9, 0.0, 0.0],   # video 0: its text 0 ranks 2
                        [0.0, 0.9, 0.0, 0.0],   # rank 1
                        [0.9, 0.0, 0.1, 0.5]])  # best of texts 2,3 -> 0.5 ranks 2
    metric = RetrievalMetric(recall_at=(1, 2))
    metric.process(None, [dict(t2v_scores=t2v, v2t_scores=v2t, positives=positives)])
    m = metric.evaluate(1)
    assert m['t2v/R@1'] == pytest.approx(50.0)
    assert m['t2v/R@2'] == pytest.approx(100.0)
    assert m['t2v/MdR'] == pytest.approx(1.0)  # torch.median takes the lower middle of [1, 1, 2, 2]
    assert m['t2v/MnR'] == pytest.approx(1.5)
    assert m['v2t/R@1'] == pytest.approx(100 / 3)
    assert m['v2t/MnR'] == pytest.approx(5 / 3)
    assert m['R_mean'] == pytest.approx((50 + 100 + 100 / 3 + 100) / 4)


def test_excluded_videos_are_reported_only_when_given():
    positives = torch.eye(2).bool()
    scores = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    metric = RetrievalMetric()
    metric.process(None, [dict(t2v_scores=scores, v2t_scores=scores, positives=positives, excluded_videos=3)])
    m = metric.evaluate(1)
    assert m['excluded_videos'] == 3 and m['t2v/R@1'] == pytest.approx(100.0)
    metric.process(None, [dict(t2v_scores=scores, v2t_scores=scores, positives=positives)])
    assert 'excluded_videos' not in metric.evaluate(1)
