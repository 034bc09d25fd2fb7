"""BrokenMediaHook: each broken file logged once, per-epoch counts, and a stop above the fraction."""
from types import SimpleNamespace

import pytest

from svitt_mm.datasets import BrokenMediaError
from svitt_mm.registry import HOOKS


class RecordingLogger:
    def __init__(self):
        self.warnings, self.infos = [], []

    def warning(self, message):
        self.warnings.append(message)

    def info(self, message):
        self.infos.append(message)


def fake_runner(dataset_size=100, epoch=0):
    return SimpleNamespace(logger=RecordingLogger(), epoch=epoch,
                           train_dataloader=SimpleNamespace(dataset=[None] * dataset_size))


def batch(*skipped_per_sample):
    """A collated batch: one data sample per argument, each with the given skipped paths."""
    samples = []
    for paths in skipped_per_sample:
        sample = dict(video_id=0)
        if paths:
            sample['skipped'] = [dict(path=p, reason=f'reason of {p}') for p in paths]
        samples.append(sample)
    return dict(inputs=[None] * len(samples), data_samples=samples)


def test_each_file_is_logged_once_and_counts_are_logged_per_epoch():
    hook = HOOKS.build(dict(type='BrokenMediaHook', max_skip_fraction=0.5))
    runner = fake_runner()
    hook.before_train_epoch(runner)
    hook.after_train_iter(runner, 0, batch([], ['a.mp4'], []))
    hook.after_train_iter(runner, 1, batch(['a.mp4', 'b.mp4'], [], []))
    hook.after_train_epoch(runner)
    assert runner.logger.warnings == [
        'skipped broken media file (replaced by a random other sample): a.mp4: reason of a.mp4',
        'skipped broken media file (replaced by a random other sample): b.mp4: reason of b.mp4']
    assert runner.logger.infos == ['epoch 1: skipped 3 broken samples of 9 fetched; 3 skipped in this run, '
                                   '2 distinct broken files']
    runner.epoch = 1
    hook.before_train_epoch(runner)
    hook.after_train_iter(runner, 0, batch(['a.mp4'], []))
    hook.after_train_epoch(runner)
    assert len(runner.logger.warnings) == 2  # a.mp4 was reported already
    assert runner.logger.infos[-1] == ('epoch 2: skipped 1 broken samples of 3 fetched; 4 skipped in this '
                                       'run, 2 distinct broken files')


def test_a_clean_epoch_logs_nothing():
    hook = HOOKS.build(dict(type='BrokenMediaHook'))
    runner = fake_runner()
    hook.before_train_epoch(runner)
    hook.after_train_iter(runner, 0, batch([], []))
    hook.after_train_epoch(runner)
    assert runner.logger.warnings == runner.logger.infos == []


def test_too_many_failures_stop_training_at_epoch_end_with_examples():
    hook = HOOKS.build(dict(type='BrokenMediaHook', max_skip_fraction=0.25, max_examples=2))
    runner = fake_runner(dataset_size=100)
    hook.before_train_epoch(runner)
    # 3 skipped of 3 + 6 fetched = 33% > 25%, but too few for the mid-epoch check (needs > 33 of 100)
    hook.after_train_iter(runner, 0, batch(['a.mp4'], ['b.mp4'], ['c.mp4'], [], [], []))
    with pytest.raises(BrokenMediaError, match=r'3 of 9 sample fetches in epoch 1 \(33.3%\) failed, more than '
                                               r'max_skip_fraction=0.25') as info:
        hook.after_train_epoch(runner)
    assert info.value.broken == [('a.mp4', 'reason of a.mp4'), ('b.mp4', 'reason of b.mp4')]
    assert 'a.mp4: reason of a.mp4' in str(info.value) and 'c.mp4' not in str(info.value)


def test_fraction_at_the_limit_passes():
    hook = HOOKS.build(dict(type='BrokenMediaHook', max_skip_fraction=0.25))
    runner = fake_runner()
    hook.before_train_epoch(runner)
    hook.after_train_iter(runner, 0, batch(['a.mp4'], [], []))  # 1 of 4 = 25%: not more than the limit
    hook.after_train_epoch(runner)


def test_mid_epoch_stop_once_the_epoch_must_exceed_the_fraction():
    hook = HOOKS.build(dict(type='BrokenMediaHook', max_skip_fraction=0.5))
    runner = fake_runner(dataset_size=4)  # stop when this rank skipped more than 0.5 * 4 / 0.5 = 4
    hook.before_train_epoch(runner)
    hook.after_train_iter(runner, 0, batch(['a.mp4', 'b.mp4', 'c.mp4', 'd.mp4']))
    with pytest.raises(BrokenMediaError, match='5 of 9 sample fetches'):
        hook.after_train_iter(runner, 1, batch(['e.mp4']))


def test_bad_fraction():
    with pytest.raises(ValueError, match='max_skip_fraction must be in \\[0, 1\\), got 1.5'):
        HOOKS.build(dict(type='BrokenMediaHook', max_skip_fraction=1.5))
