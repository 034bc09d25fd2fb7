"""The metrics table: retrieval recalls or QA accuracy per question type."""
from svitt_mm.engine.hooks.metrics_table_hook import format_metrics_table


def test_retrieval_metrics_give_the_recall_table():
    metrics = {f'{d}/{c}': v for d in ('t2v', 'v2t') for c, v in
               zip(['R@1', 'R@5', 'R@10', 'MdR', 'MnR'], [10.0, 50.0, 70.0, 5.0, 6.5])}
    metrics['R_mean'] = 43.33
    lines = format_metrics_table(metrics, 'test').splitlines()
    assert lines[0] == 'test retrieval (%)'
    assert lines[2].split() == ['t2v', '10.00', '50.00', '70.00', '5.00', '6.50']
    assert lines[-1] == 'R_mean 43.33'


def test_qa_metrics_give_accuracy_per_type():
    table = format_metrics_table({'acc': 40.28, 'acc/size': 50.0, 'acc/direction': 35.42,
                                  'num_questions': 72}, 'test')
    assert table.splitlines() == ['test QA accuracy (%)', 'all                40.28',
                                  'direction          35.42', 'size               50.00', '(72 questions)']


def test_other_metrics_give_no_table():
    assert format_metrics_table({'loss': 1.0}, 'val') is None
