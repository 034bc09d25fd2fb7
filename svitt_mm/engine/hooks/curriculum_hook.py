"""Apply a curriculum (e.g. :class:`~svitt_mm.engine.curricula.TemporalSparseExpansion`) during a run."""
from __future__ import annotations

from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop
from torch import nn
from torch.utils.data import DataLoader

from svitt_mm.datasets.transforms.frame_sampling import SampleFrames
from svitt_mm.models.attention.block_sparse import BlockSparseAttention
from svitt_mm.registry import CURRICULA, HOOKS

Targets = List[Tuple[object, str]]  # (object, attribute name) pairs a setting is written to


def _pruner(model: nn.Module, encoder: str, key: str) -> Targets:
    pruner = getattr(getattr(model, encoder, None), 'pruner', None)
    if pruner is None:
        raise ValueError(f'CurriculumHook: the curriculum sets {key}, but the model has no '
                         f'{encoder}.pruner (set model.{encoder}.pruner in the config)')
    return [(pruner, 'keep_rate')]


def _block_sparse_ops(model: nn.Module, key: str) -> Targets:
    ops = [m for m in getattr(model, 'vision_encoder', nn.Module()).modules()
           if isinstance(m, BlockSparseAttention)]
    if not ops:
        raise ValueError(f'CurriculumHook: the curriculum sets {key}, but model.vision_encoder has no '
                         f'BlockSparseAttention operator (model.vision_encoder.attention)')
    return [(op, key) for op in ops]


# model setting -> where it lives in a VideoTextRetriever-like model
MODEL_TARGETS = {
    'keep_rate': lambda model: _pruner(model, 'vision_encoder', 'keep_rate'),
    'text_keep_rate': lambda model: _pruner(model, 'text_encoder', 'text_keep_rate'),
    'local_blocks': lambda model: _block_sparse_ops(model, 'local_blocks'),
    'random_blocks': lambda model: _block_sparse_ops(model, 'random_blocks'),
}


def _datasets(dataset: Any) -> Iterator[Any]:
    """``dataset`` and the datasets it wraps (Concat/Repeat/ClassBalanced dataset wrappers)."""
    yield dataset
    for inner in getattr(dataset, 'datasets', ()):
        yield from _datasets(inner)
    if hasattr(dataset, 'dataset'):
        yield from _datasets(dataset.dataset)


def frame_samplers(loader: DataLoader) -> List[SampleFrames]:
    """The :class:`SampleFrames` transforms of the pipelines of ``loader``'s dataset(s)."""
    return [transform for dataset in _datasets(loader.dataset)
            for transform in getattr(getattr(dataset, 'pipeline', None), 'transforms', ())
            if isinstance(transform, SampleFrames)]


def assign(targets: Targets, key: str, value: Any) -> Optional[str]:
    """Set ``value`` on every target; returns ``'key old->new'`` if any value changed, else ``None``."""
    old = sorted({getattr(obj, attr) for obj, attr in targets})
    if old == [value]:
        return None
    for obj, attr in targets:
        setattr(obj, attr, value)
    return f'{key} {old[0] if len(old) == 1 else old}->{value}'


def restart_loader(loader: DataLoader) -> None:
    """Make ``loader``'s next ``iter()`` start workers with the current dataset (pipeline).

    Persistent workers keep a copy of the dataset from their first epoch; dropping the loader's cached
    iterator shuts them down, so the next epoch forks new ones (torch keeps the iterator in
    ``DataLoader._iterator``; MMPretrain's SwitchRecipeHook resets it the same way).
    """
    if getattr(loader, 'persistent_workers', False):
        loader._iterator = None


@HOOKS.register_module()
class CurriculumHook(Hook):
    """Apply the stage of a curriculum (from ``CURRICULA``) that the run is in.

    The stage is derived from the epoch (or iteration) counter alone, so ``--resume`` lands in the right
    stage before its first iteration: the hook keeps nothing in checkpoints.

    * Training: before the first epoch (iteration) and before every epoch, or after every iteration for
      the next one when the curriculum counts iterations (the loop fetches a batch before
      ``before_train_iter``), it sets the stage's model settings and the train pipeline's frame count,
      restarting the loader's workers when the frame count changes.
    * Evaluation (``before_val`` / ``before_test``): the val/test pipelines get the frame count of the
      stage the model is in: the one training last applied or, with no training in this process (e.g.
      ``tools/test.py CHECKPOINT``), the stage of the checkpoint's last trained epoch (iteration), whose
      model settings are applied too; without a checkpoint, stage 0.

    Settings are written to public attributes of the running modules and transforms (nothing is rebuilt):
    the video encoder's ``pruner.keep_rate``, the fusion encoder's ``pruner.keep_rate``, the
    ``local_blocks`` / ``random_blocks`` of every ``BlockSparseAttention`` in the video encoder, and
    ``SampleFrames.num_frames``.  The relative position tables keep their ``max_frames`` extent (changing
    their shape would invalidate the optimizer state and DDP's buckets), so the video encoder should be
    built with ``max_frames`` = the largest frame count of the curriculum; the hook warns otherwise.

    Args:
        curriculum: ``CURRICULA`` config, e.g. ``dict(type='TemporalSparseExpansion', stages=[...])``.
    """

    priority = 'NORMAL'

    def __init__(self, curriculum: Union[dict, Any]) -> None:
        self.curriculum = CURRICULA.build(curriculum) if isinstance(curriculum, dict) else curriculum
        self._stage: Optional[int] = None  # stage applied to the model in this process
        self._checkpoint_position: Optional[int] = None  # last trained epoch/iter of a loaded checkpoint

    # --- training -----------------------------------------------------------------------------------
    def before_train(self, runner) -> None:
        self._check_loop(runner)
        self._check_model(runner)
        self._apply_training(runner, runner.epoch if self.curriculum.by_epoch else runner.iter)

    def before_train_epoch(self, runner) -> None:
        if self.curriculum.by_epoch:
            self._apply_training(runner, runner.epoch)

    def after_train_iter(self, runner, batch_idx: int, data_batch: Any = None,
                         outputs: Optional[dict] = None) -> None:
        if not self.curriculum.by_epoch:
            self._apply_training(runner, runner.iter + 1)  # the loop counts this iteration afterwards

    # --- evaluation ---------------------------------------------------------------------------------
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        trained = checkpoint.get('meta', {}).get(self.curriculum.unit)
        if isinstance(trained, int):
            self._checkpoint_position = max(trained - 1, 0)

    def before_val(self, runner) -> None:
        self._apply_evaluation(runner, runner.val_loop.dataloader, 'val')

    def before_test(self, runner) -> None:
        self._apply_evaluation(runner, runner.test_loop.dataloader, 'test')

    # --- helpers ------------------------------------------------------------------------------------
    @staticmethod
    def _model(runner) -> nn.Module:
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    def _check_loop(self, runner) -> None:
        loop = runner.train_loop
        if self.curriculum.by_epoch and isinstance(loop, IterBasedTrainLoop):
            raise ValueError('CurriculumHook: the curriculum counts epochs (by_epoch=True), but the train '
                             'loop is iteration-based (its epoch never advances); give the stage '
                             'begins in iterations with by_epoch=False')
        frames_change = any('num_frames' in changes for changes in self.curriculum.changes[1:])
        if not self.curriculum.by_epoch and frames_change and isinstance(loop, EpochBasedTrainLoop):
            raise ValueError('CurriculumHook: the curriculum changes num_frames at iterations '
                             '(by_epoch=False), but an epoch-based train loop cannot switch its data '
                             'loader mid-epoch; use by_epoch=True or an IterBasedTrainLoop')

    def _check_model(self, runner) -> None:
        """Fail before the first iteration if a stage sets something the model lacks; warn when the
        relative position tables are shorter than a stage's clips."""
        model = self._model(runner)
        for key in {key for changes in self.curriculum.changes for key in changes}:
            if key in MODEL_TARGETS:
                MODEL_TARGETS[key](model)
        max_frames = getattr(getattr(model, 'vision_encoder', None), 'max_frames', None)
        for index, changes in enumerate(self.curriculum.changes):
            frames = changes.get('num_frames')
            if max_frames is not None and frames is not None and frames > max_frames:
                runner.logger.warning(
                    f'curriculum: stage {index} uses {frames} frames, but the video encoder was built '
                    f'with max_frames={max_frames}: temporal offsets beyond +-{max_frames - 1} share one '
                    f'relative position bias row; set model.vision_encoder.max_frames={frames}')

    def _set_model(self, runner, settings: Dict[str, Any]) -> List[str]:
        model = self._model(runner)
        changes = [assign(MODEL_TARGETS[key](model), key, value)
                   for key, value in settings.items() if key in MODEL_TARGETS]
        return [change for change in changes if change]

    @staticmethod
    def _set_frames(loader: DataLoader, settings: Dict[str, Any], split: str, key: str) -> List[str]:
        """Set the frame count of ``loader``'s pipeline; ``[change]`` if it changed, else ``[]``."""
        if 'num_frames' not in settings:
            return []
        samplers = frame_samplers(loader)
        if not samplers:
            raise ValueError(f'CurriculumHook: the curriculum sets num_frames, but the {split} dataset\'s '
                             f'pipeline has no SampleFrames transform')
        change = assign([(sampler, 'num_frames') for sampler in samplers], key, settings['num_frames'])
        if change is None:
            return []
        restart_loader(loader)
        return [change]

    def _log(self, runner, prefix: str, index: int, changes: List[str]) -> None:
        if changes:
            begin = self.curriculum.begins[index]
            runner.logger.info(f'{prefix}stage {index} from {self.curriculum.unit} {begin}: '
                               + ', '.join(changes))

    def _apply_training(self, runner, position: int) -> None:
        index, settings = self.curriculum.stage_at(position)
        loop = runner.train_loop
        frames = self._set_frames(loop.dataloader, settings, 'train', 'num_frames')
        if frames and isinstance(loop, IterBasedTrainLoop):
            # The loop draws from its own wrapper of the loader's iterator: point it at a fresh one.
            loop.dataloader_iterator._iterator = iter(loop.dataloader)
        changes = frames + self._set_model(runner, settings)
        self._stage = index
        self._log(runner, 'curriculum: ', index, changes)

    def _apply_evaluation(self, runner, loader: DataLoader, label: str) -> None:
        changes: List[str] = []
        if self._stage is None:
            self._stage = self.curriculum.stage_at(self._checkpoint_position or 0)[0]
            changes += self._set_model(runner, self.curriculum.settings(self._stage))
        changes = self._set_frames(loader, self.curriculum.settings(self._stage), label,
                                   f'{label} num_frames') + changes
        self._log(runner, f'curriculum ({label}): ', self._stage, changes)
