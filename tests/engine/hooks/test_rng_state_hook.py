"""RNGStateHook: generator states survive a checkpoint round trip under safe loading, a resumed run
continues the interrupted run's random streams, and MMEngine's DefaultSampler repeats the data order."""
import io
import random

import numpy as np
import torch
from mmengine.dataset import DefaultSampler
from mmengine.hooks import Hook

from svitt_mm.engine.hooks.rng_state_hook import capture_rng_state, restore_rng_state


def _draw():
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


def test_rng_state_round_trips_through_a_weights_only_checkpoint():
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    _draw()
    buffer = io.BytesIO()
    torch.save(dict(rng_state=capture_rng_state()), buffer)
    expected = _draw()
    _draw()
    buffer.seek(0)
    restore_rng_state(torch.load(buffer, weights_only=True)['rng_state'])
    assert _draw() == expected


def _final_weights(runner):
    return {k: v.clone() for k, v in runner.model.state_dict().items()}


def _interrupted_then_resumed(make_toy_runner, hooks):
    make_toy_runner(4, custom_hooks=hooks).train()  # checkpoint at iteration 4, mid-way through epoch 1
    resumed = make_toy_runner(8, resume=True, custom_hooks=hooks)
    resumed.train()
    return resumed


def test_resumed_run_matches_uninterrupted_run(make_toy_runner, tmp_path):
    hooks = [dict(type='RNGStateHook')]
    reference = make_toy_runner(8, custom_hooks=hooks, work_dir=str(tmp_path / 'ref'))
    reference.train()
    expected = _final_weights(reference)
    resumed = _interrupted_then_resumed(make_toy_runner, hooks)
    assert resumed.iter == 8
    for key, value in _final_weights(resumed).items():
        torch.testing.assert_close(value, expected[key], rtol=0, atol=0)


def test_without_the_hook_the_dropout_stream_restarts(make_toy_runner, tmp_path):
    # The toy model's dropout draws from torch's generator: without restored states the resumed run
    # sees other masks (this is what the test above guards against).
    reference = make_toy_runner(8, work_dir=str(tmp_path / 'ref'))
    reference.train()
    resumed = _interrupted_then_resumed(make_toy_runner, [])
    assert not torch.equal(resumed.model.linear.weight, reference.model.linear.weight)


class RecordBatches(Hook):
    def __init__(self):
        self.seen = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.seen.append((runner.epoch, data_batch['data_samples'].flatten().tolist()))


def test_default_sampler_order_depends_only_on_seed_and_epoch():
    orders = []
    for _ in range(2):  # a fresh sampler, as in a resumed process
        sampler = DefaultSampler(list(range(20)), shuffle=True, seed=7)
        epochs = []
        for epoch in range(3):
            sampler.set_epoch(epoch)
            epochs.append(list(sampler))
        orders.append(epochs)
    assert orders[0] == orders[1]
    assert orders[0][0] != orders[0][1]  # reshuffled every epoch


def test_epoch_based_resume_sees_the_same_batches(make_toy_runner, tmp_path):
    def run(max_epochs, work_dir, resume=False):
        recorder = RecordBatches()
        runner = make_toy_runner(0, resume=resume, custom_hooks=[recorder], work_dir=work_dir,
                                 checkpoint=dict(type='AtomicCheckpointHook', interval=1),
                                 train_cfg=dict(by_epoch=True, max_epochs=max_epochs))
        runner.train()
        return recorder.seen

    uninterrupted = run(3, str(tmp_path / 'ref'))
    run(2, str(tmp_path / 'work'))
    after_resume = run(3, str(tmp_path / 'work'), resume=True)
    assert [epoch for epoch, _ in after_resume] == [2] * 6
    assert after_resume == uninterrupted[12:]
