"""FiniteLossOptimWrapper: a NaN loss stops training before the optimizer step with a message naming
the iteration, the epoch and the loss term; with max_skipped_steps the bad steps are skipped."""
import pytest
import torch

from svitt_mm.engine.optim_wrappers import FiniteLossOptimWrapper, NonFiniteLossError, non_finite_terms


def _sgd(max_skipped_steps=0):
    return dict(type='FiniteLossOptimWrapper', max_skipped_steps=max_skipped_steps,
                optimizer=dict(type='SGD', lr=0.05))


def test_non_finite_terms_names_the_bad_entries():
    losses = dict(loss_a=torch.tensor(1.0), loss_b=torch.tensor(float('nan')),
                  loss_c=[torch.tensor(2.0), torch.tensor([0.0, float('inf')])], acc=torch.tensor(3))
    terms = non_finite_terms(losses)
    assert list(terms) == ['loss_b', 'loss_c'] and terms['loss_c'] == float('inf')


def test_nan_loss_stops_training_before_the_step(make_toy_runner):
    # Weights after 2 good steps, from a run that stops there.
    good = make_toy_runner(2, optim_wrapper=_sgd())
    good.train()
    expected = {k: v.clone() for k, v in good.model.state_dict().items()}

    runner = make_toy_runner(5, nan_at=[3], optim_wrapper=_sgd())
    with pytest.raises(NonFiniteLossError) as error:
        runner.train()
    message = str(error.value)
    assert 'iteration 3 (epoch 1)' in message and 'loss_b=nan' in message and 'loss_a' not in message
    assert 'stopped before the optimizer step' in message
    for key, value in runner.model.state_dict().items():  # the NaN step changed nothing
        torch.testing.assert_close(value, expected[key], rtol=0, atol=0)
    assert torch.isfinite(runner.model.linear.weight).all()


def test_skips_up_to_max_skipped_steps_then_stops(make_toy_runner):
    runner = make_toy_runner(6, nan_at=[2, 4], optim_wrapper=_sgd(max_skipped_steps=2))
    runner.train()  # two NaN steps skipped, the run finishes
    assert isinstance(runner.optim_wrapper, FiniteLossOptimWrapper)
    assert runner.optim_wrapper.skipped_steps == 2
    assert torch.isfinite(runner.model.linear.weight).all()

    runner = make_toy_runner(6, nan_at=[2, 4], optim_wrapper=_sgd(max_skipped_steps=1))
    with pytest.raises(NonFiniteLossError, match=r'iteration 4 \(epoch 1\).*1 non-finite steps skipped'):
        runner.train()


def test_skipped_step_leaves_parameters_unchanged():
    model = torch.nn.Linear(2, 1)
    wrapper = FiniteLossOptimWrapper(max_skipped_steps=1,
                                     optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    before = model.weight.detach().clone()
    with wrapper.optim_context(model):
        loss = model(torch.ones(1, 2)).sum() * float('inf')
    wrapper.update_params(loss)
    assert torch.equal(model.weight, before) and model.weight.grad is None
    assert wrapper.skipped_steps == 1


def test_negative_max_skipped_steps_is_refused():
    with pytest.raises(ValueError, match='max_skipped_steps must be >= 0, got -1'):
        FiniteLossOptimWrapper(max_skipped_steps=-1,
                               optimizer=torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=0.1))
