"""CurriculumHook on a toy Runner whose data run a real SampleFrames pipeline (in a persistent worker)
and whose model holds real pruners and a block-sparse operator: batches change frame count at the stage
boundary, model settings follow, resume and test-time loading land in the checkpoint's stage."""
from typing import List, Optional

import pytest
import torch
from mmengine.dataset import Compose
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import DataLoader, Dataset

from svitt_mm.engine.hooks.curriculum_hook import frame_samplers, restart_loader
from svitt_mm.models.attention import BlockSparseAttention
from svitt_mm.models.pruners import ClsAttentionPruner, TextGuidedPruner
from svitt_mm.apis import register_all_modules


class Clips(Dataset):
    """8 "videos" of 32 frames; a sample is the float frame indices SampleFrames picks."""

    def __init__(self, num_frames: int = 4, sampling: str = 'rand') -> None:
        register_all_modules()
        self.pipeline = Compose([dict(type='SampleFrames', num_frames=num_frames, sampling=sampling)])

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> dict:
        inds = self.pipeline(dict(total_frames=32))['frame_inds']
        return dict(inputs=torch.as_tensor(inds, dtype=torch.float32), data_samples=torch.tensor(index))


class ToyRetriever(BaseModel):
    """Exposes the attributes the hook sets: vision/text pruners and a block-sparse operator."""

    def __init__(self) -> None:
        super().__init__()
        self.vision_encoder = nn.Module()
        self.vision_encoder.pruner = ClsAttentionPruner(keep_rate=0.7)
        self.vision_encoder.op = BlockSparseAttention(block_size=4, local_blocks=1, random_blocks=2)
        self.vision_encoder.max_frames = 8
        self.text_encoder = nn.Module()
        self.text_encoder.pruner = TextGuidedPruner(keep_rate=0.3)
        self.weight = nn.Parameter(torch.zeros(1))
        self.predicted: List[tuple] = []

    def forward(self, inputs, data_samples=None, mode: str = 'tensor'):
        if mode == 'loss':
            return dict(loss=((inputs.mean() - self.weight) ** 2))
        self.predicted.append((inputs.shape[1], self.vision_encoder.pruner.keep_rate))
        return [dict(index=int(i)) for i in data_samples]


class CountMetric(BaseMetric):
    def process(self, data_batch, data_samples) -> None:
        self.results.extend(data_samples)

    def compute_metrics(self, results) -> dict:
        return dict(count=len(results))


class Record(Hook):
    """What each training iteration sees: (epoch, iter, frames per clip, video keep rate, random blocks,
    text keep rate)."""
    priority = 'LOWEST'

    def __init__(self) -> None:
        self.seen = []

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        model = runner.model
        self.seen.append((runner.epoch, runner.iter, data_batch['inputs'][0].shape[0],
                          model.vision_encoder.pruner.keep_rate, model.vision_encoder.op.random_blocks,
                          model.text_encoder.pruner.keep_rate))


STAGES = [dict(begin=0, num_frames=4),
          dict(begin=1, num_frames=8, keep_rate=0.5, random_blocks=1, text_keep_rate=0.2)]


def loader(workers: int = 1, sampling: str = 'rand', sampler: str = 'DefaultSampler') -> dict:
    return dict(dataset=Clips(sampling=sampling), batch_size=4, num_workers=workers,
                persistent_workers=workers > 0, sampler=dict(type=sampler, shuffle=False),
                collate_fn=dict(type='default_collate'))


def make_runner(tmp_path, name: str, record: Record, train_cfg: Optional[dict] = None,
                by_epoch: bool = True, stages=STAGES, train_loader: Optional[dict] = None,
                **kwargs) -> Runner:
    register_all_modules()
    hook = dict(type='CurriculumHook',
                curriculum=dict(type='TemporalSparseExpansion', stages=stages, by_epoch=by_epoch))
    return Runner(model=ToyRetriever(), work_dir=str(tmp_path / 'work'), experiment_name=name,
                  train_dataloader=train_loader or loader(),
                  optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
                  train_cfg=train_cfg or dict(by_epoch=True, max_epochs=2),
                  default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)),
                  custom_hooks=[hook, record], default_scope='svitt_mm', **kwargs)


def test_epoch_stages_switch_frames_and_model_settings_then_resume_lands_in_stage(tmp_path):
    record = Record()
    make_runner(tmp_path, 'epochs', record).train()
    stage0, stage1 = (4, 0.7, 2, 0.3), (8, 0.5, 1, 0.2)
    assert [row[2:] for row in record.seen] == [stage0, stage0, stage1, stage1]
    assert [row[0] for row in record.seen] == [0, 0, 1, 1]

    # A fresh process resuming the stage-1 checkpoint (the config builds stage-0 settings) trains its
    # first iteration in stage 1.
    resumed = Record()
    make_runner(tmp_path, 'resumed', resumed, train_cfg=dict(by_epoch=True, max_epochs=3),
                resume=True).train()
    assert resumed.seen[0][:2] == (2, 4)
    assert [row[2:] for row in resumed.seen] == [stage1, stage1]


def test_iteration_stages_switch_on_the_stage_begin(tmp_path):
    record = Record()
    stages = [dict(begin=0, num_frames=4), dict(begin=3, num_frames=8, keep_rate=0.5)]
    make_runner(tmp_path, 'iters', record, train_cfg=dict(by_epoch=False, max_iters=5), by_epoch=False,
                stages=stages, train_loader=loader(sampler='InfiniteSampler')).train()
    assert [(row[1], row[2], row[3]) for row in record.seen] == [
        (0, 4, 0.7), (1, 4, 0.7), (2, 4, 0.7), (3, 8, 0.5), (4, 8, 0.5)]


def test_testing_a_checkpoint_uses_its_stage(tmp_path):
    make_runner(tmp_path, 'train', Record()).train()  # epoch_2.pth: trained through stage 1
    tester = make_runner(tmp_path, 'test', Record(), test_dataloader=loader(workers=0, sampling='middle'),
                         test_cfg=dict(), test_evaluator=[CountMetric()],
                         load_from=str(tmp_path / 'work' / 'epoch_2.pth'))
    tester.test()
    assert tester.model.predicted == [(8, 0.5), (8, 0.5)]
    first = make_runner(tmp_path, 'test0', Record(), test_dataloader=loader(workers=0, sampling='middle'),
                        test_cfg=dict(), test_evaluator=[CountMetric()],
                        load_from=str(tmp_path / 'work' / 'epoch_1.pth'))
    first.test()
    assert first.model.predicted == [(4, 0.7), (4, 0.7)]


def test_epoch_curriculum_with_an_iteration_loop_is_refused(tmp_path):
    runner = make_runner(tmp_path, 'refused', Record(), train_cfg=dict(by_epoch=False, max_iters=2),
                         train_loader=loader(workers=0))
    with pytest.raises(ValueError, match='counts epochs.*iteration-based'):
        runner.train()


def test_missing_pruner_is_named(tmp_path):
    runner = make_runner(tmp_path, 'nopruner', Record())
    runner.model.text_encoder.pruner = None
    with pytest.raises(ValueError, match='sets text_keep_rate, but the model has no text_encoder.pruner'):
        runner.train()


def test_persistent_workers_need_the_restart():
    data = DataLoader(Clips(), batch_size=8, num_workers=1, persistent_workers=True)
    assert next(iter(data))['inputs'].shape == (8, 4)
    (sampler,) = frame_samplers(data)
    sampler.num_frames = 8
    assert next(iter(data))['inputs'].shape == (8, 4)  # the worker's copy of the dataset is stale
    restart_loader(data)
    assert next(iter(data))['inputs'].shape == (8, 8)
