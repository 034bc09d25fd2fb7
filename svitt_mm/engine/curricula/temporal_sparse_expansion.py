"""SViTT's temporal sparse expansion: train on more frames with more sparsity, stage by stage."""
from __future__ import annotations

import bisect
from typing import Any, Dict, List, Optional, Sequence, Tuple

from svitt_mm.registry import CURRICULA
from svitt_mm.utils.arg_checks import ArgumentError, Check, int_at_least, number_in, odd_or_zero

Settings = Dict[str, Any]


# stage key -> its check (None, or what a valid value is)
STAGE_SETTINGS: Dict[str, Check] = {
    'num_frames': int_at_least(1),
    'keep_rate': number_in(0, 1, low_open=True),
    'text_keep_rate': number_in(0, 1, low_open=True),
    'local_blocks': odd_or_zero,
    'random_blocks': int_at_least(0),
}


def stages_problem(stages: Any) -> Optional[str]:
    """The first thing wrong with a ``stages`` list (see :class:`TemporalSparseExpansion`), or ``None``."""
    if not isinstance(stages, Sequence) or isinstance(stages, (str, bytes)) or not stages:
        return f'stages must be a non-empty list of dicts, got {stages!r}'
    previous = None
    for index, stage in enumerate(stages):
        if not isinstance(stage, dict):
            return f'stage {index} must be a dict, got {stage!r}'
        begin = stage.get('begin')
        if int_at_least(0)(begin):
            return f'stage {index} needs begin = an int >= 0, got {begin!r}'
        if index == 0 and begin != 0:
            return f'stage 0 must begin at 0, got begin={begin}'
        if index and begin <= previous:
            return (f'stage {index} begins at {begin}, not after stage {index - 1} (begin={previous}); begins '
                    f'must strictly increase')
        for key, value in stage.items():
            if key == 'begin':
                continue
            if key not in STAGE_SETTINGS:
                return f'stage {index} has unknown key {key!r}; a stage may set begin, {", ".join(STAGE_SETTINGS)}'
            expected = STAGE_SETTINGS[key](value)
            if expected:
                return f'stage {index}: {key} must be {expected}, got {value!r}'
        previous = begin
    return None


@CURRICULA.register_module()
class TemporalSparseExpansion:
    """A schedule of stages, each starting at an epoch (or iteration) and changing some settings.

    Settings a stage may change (a stage leaves the ones it does not name as the previous stage set them,
    and the first stage leaves unnamed ones as the config built them):

    * ``num_frames``: frames per clip of the ``SampleFrames`` transforms of the train, val and test
      pipelines (multi-clip evaluation keeps its clip count);
    * ``keep_rate``: keep rate of the video encoder's token pruner;
    * ``text_keep_rate``: keep rate of the fusion encoder's text-guided pruner;
    * ``local_blocks`` / ``random_blocks``: of every block-sparse attention operator of the video encoder.

    Args:
        stages: one dict per stage with ``begin`` (first epoch/iteration, 0-based; the first stage begins
            at 0, later ones strictly later) and any of the settings above, e.g.
            ``[dict(begin=0, num_frames=4, keep_rate=0.7), dict(begin=10, num_frames=8, keep_rate=0.6)]``.
        by_epoch: ``begin`` counts epochs (else iterations).
    """

    argument_checks = dict(stages=lambda stages: stages_problem(stages) and f'valid stages: {stages_problem(stages)}')

    def __init__(self, stages: Sequence[dict], by_epoch: bool = True) -> None:
        problem = stages_problem(stages)
        if problem:
            raise ArgumentError(f'{type(self).__name__}: {problem}')
        self.by_epoch = bool(by_epoch)
        self.begins: List[int] = [stage['begin'] for stage in stages]
        self.changes: List[Settings] = [{key: value for key, value in stage.items() if key != 'begin'}
                                        for stage in stages]

    @property
    def num_stages(self) -> int:
        return len(self.begins)

    @property
    def unit(self) -> str:
        """What ``begin`` counts: ``'epoch'`` or ``'iter'``."""
        return 'epoch' if self.by_epoch else 'iter'

    def settings(self, index: int) -> Settings:
        """Settings in force in stage ``index``: its own, over those of the stages before it."""
        merged: Settings = {}
        for changes in self.changes[:index + 1]:
            merged.update(changes)
        return merged

    def stage_at(self, position: int) -> Tuple[int, Settings]:
        """``(stage index, settings)`` in force at epoch (or iteration) ``position`` (0-based)."""
        if int_at_least(0)(position):
            raise ValueError(f'{type(self).__name__}.stage_at: position must be an int >= 0, '
                             f'got {position!r}')
        index = bisect.bisect_right(self.begins, position) - 1
        return index, self.settings(index)

    def __repr__(self) -> str:
        stages = ', '.join(f'{self.unit} {begin}: {changes}'
                           for begin, changes in zip(self.begins, self.changes))
        return f'{type(self).__name__}({stages})'
