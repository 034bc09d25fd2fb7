"""A toy regression model and a Runner factory for the engine tests (a few milliseconds per step)."""
from typing import Callable, Optional, Sequence

import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset

from svitt_mm.apis import register_all_modules


class ToyRegression(BaseModel):
    """``y = w x + b`` with two loss terms; ``loss_b`` is NaN at the (1-based) training steps in
    ``nan_at``, and dropout makes each step depend on the torch RNG."""

    def __init__(self, nan_at: Sequence[int] = ()) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 1)
        self.dropout = nn.Dropout(0.5)
        self.nan_at = set(nan_at)
        self.steps = 0

    def forward(self, inputs: torch.Tensor, data_samples: Optional[torch.Tensor] = None,
                mode: str = 'tensor'):
        out = self.linear(self.dropout(inputs))
        if mode != 'loss':
            return out
        self.steps += 1
        loss_b = 0.1 * out.abs().mean()
        if self.steps in self.nan_at:
            loss_b = loss_b * float('nan')
        return dict(loss_a=((out - data_samples) ** 2).mean(), loss_b=loss_b)


class ToyData(Dataset):
    def __init__(self, size: int = 12) -> None:
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(size, 4, generator=generator)
        self.y = self.x.sum(dim=1, keepdim=True)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> dict:
        return dict(inputs=self.x[index], data_samples=self.y[index])


@pytest.fixture
def make_toy_runner(tmp_path) -> Callable[..., Runner]:
    """``make_toy_runner(max_iters, nan_at=(), optim_wrapper=None, checkpoint=None, train_cfg=None,
    **runner_kwargs)``: a Runner training :class:`ToyRegression` (NaN ``loss_b`` at steps ``nan_at``)
    over 12 samples (batch 2, shuffled) in ``tmp_path/work``, iteration-based unless ``train_cfg`` says
    otherwise."""
    register_all_modules()
    counter = iter(range(1000))  # MMEngine keeps one logger/visualizer per experiment name

    def make(max_iters: int, nan_at: Sequence[int] = (), optim_wrapper: Optional[dict] = None,
             checkpoint: Optional[dict] = None, train_cfg: Optional[dict] = None, **kwargs) -> Runner:
        torch.manual_seed(0)  # the same initial weights in every runner
        kwargs.setdefault('work_dir', str(tmp_path / 'work'))
        return Runner(
            model=ToyRegression(nan_at),
            experiment_name=f'{tmp_path.name}_{next(counter)}',
            train_dataloader=dict(dataset=ToyData(), sampler=dict(type='DefaultSampler', shuffle=True),
                                  batch_size=2, num_workers=0, collate_fn=dict(type='default_collate')),
            optim_wrapper=optim_wrapper or dict(type='FiniteLossOptimWrapper',
                                                optimizer=dict(type='SGD', lr=0.05)),
            train_cfg=train_cfg or dict(by_epoch=False, max_iters=max_iters),
            default_hooks=dict(checkpoint=checkpoint or dict(type='AtomicCheckpointHook', interval=2,
                                                             by_epoch=False, max_keep_ckpts=1),
                               logger=dict(type='LoggerHook', interval=1)),
            randomness=dict(seed=0),
            default_scope='svitt_mm',
            **kwargs)

    return make
