"""QAAccuracy: exact match after caption cleaning, per question type, number of questions."""
import pytest

from svitt_mm.evaluation import QAAccuracy
from svitt_mm.registry import METRICS


def prediction(pred, gt, qtype=None):
    return dict(question_id=0, pred_answer=pred, gt_answers=gt, question_type=qtype, sample_idx=0)


def test_overall_and_per_type_accuracy():
    metric = METRICS.build(dict(type='QAAccuracy'))
    metric.process(None, [prediction('left', ['Left!'], 'direction'),      # correct after cleaning
                          prediction('right', ['left'], 'direction'),
                          prediction('up', ['down'], 'direction'),
                          prediction('grow', ['grow', 'shrink'], 'size'),  # any ground truth counts
                          prediction('t shirt', ['t-shirt'], 'size')])
    metrics = metric.evaluate(5)
    assert metrics == {'acc': 60.0, 'acc/direction': pytest.approx(100 / 3), 'acc/size': 100.0,
                       'num_questions': 5}


def test_without_types_only_overall_keys():
    metric = QAAccuracy()
    metric.process(None, [prediction('a', ['a']), prediction('b', ['c']), prediction('c', ['c']),
                          prediction('d', ['e'])])
    assert metric.evaluate(4) == {'acc': 50.0, 'num_questions': 4}


def test_prefix_and_empty_split():
    metric = QAAccuracy(prefix='val')
    metric.process(None, [prediction('a', ['a'])])
    assert metric.evaluate(1) == {'val/acc': 100.0, 'val/num_questions': 1}
    with pytest.raises(ValueError, match='no predictions'):
        QAAccuracy().compute_metrics([])


def test_reports_the_videos_the_dataset_excluded():
    metric = QAAccuracy()
    metric.dataset_meta = dict(excluded_media=3)  # what the evaluator passes from the dataset's metainfo
    metric.process(None, [prediction('a', ['a']), prediction('b', ['c'])])
    assert metric.evaluate(2) == {'acc': 50.0, 'num_questions': 2, 'excluded_videos': 3}
