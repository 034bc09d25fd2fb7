"""SViTT's temporal sparse expansion: train on more frames with more sparsity, stage by stage."""
from __future__ import annotations

import bisect
from numbers import Real
from typing import Any, Callable, Dict, List, Sequence, Tuple

from svitt_mm.registry import CURRICULA

Settings = Dict[str, Any]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_rate(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and 0.0 < value <= 1.0


# stage key -> (check, what a valid value is)
STAGE_SETTINGS: Dict[str, Tuple[Callable[[Any], bool], str]] = {
    'num_frames': (lambda v: _is_int(v) and v >= 1, 'an int >= 1'),
    'keep_rate': (_is_rate, 'a number in (0, 1]'),
    'text_keep_rate': (_is_rate, 'a number in (0, 1]'),
    'local_blocks': (lambda v: _is_int(v) and v >= 0 and (v == 0 or v % 2 == 1), '0 or an odd int'),
    'random_blocks': (lambda v: _is_int(v) and v >= 0, 'an int >= 0'),
}


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

    def __init__(self, stages: Sequence[dict], by_epoch: bool = True) -> None:
        name = type(self).__name__
        if not isinstance(stages, Sequence) or isinstance(stages, (str, bytes)) or not stages:
            raise ValueError(f'{name}: stages must be a non-empty list of dicts, got {stages!r}')
        self.by_epoch = bool(by_epoch)
        self.begins: List[int] = []
        self.changes: List[Settings] = []
        for index, stage in enumerate(stages):
            if not isinstance(stage, dict):
                raise ValueError(f'{name}: stage {index} must be a dict, got {stage!r}')
            begin = stage.get('begin')
            if not _is_int(begin) or begin < 0:
                raise ValueError(f'{name}: stage {index} needs begin = an int >= 0, got {begin!r}')
            if index == 0 and begin != 0:
                raise ValueError(f'{name}: stage 0 must begin at 0, got begin={begin}')
            if index and begin <= self.begins[-1]:
                raise ValueError(f'{name}: stage {index} begins at {begin}, not after stage {index - 1} '
                                 f'(begin={self.begins[-1]}); begins must strictly increase')
            changes = {key: value for key, value in stage.items() if key != 'begin'}
            for key, value in changes.items():
                if key not in STAGE_SETTINGS:
                    raise ValueError(f'{name}: stage {index} has unknown key {key!r}; a stage may set '
                                     f'begin, {", ".join(STAGE_SETTINGS)}')
                check, expected = STAGE_SETTINGS[key]
                if not check(value):
                    raise ValueError(f'{name}: stage {index}: {key} must be {expected}, got {value!r}')
            self.begins.append(begin)
            self.changes.append(changes)

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
        if not _is_int(position) or position < 0:
            raise ValueError(f'{type(self).__name__}.stage_at: position must be an int >= 0, '
                             f'got {position!r}')
        index = bisect.bisect_right(self.begins, position) - 1
        return index, self.settings(index)

    def __repr__(self) -> str:
        stages = ', '.join(f'{self.unit} {begin}: {changes}'
                           for begin, changes in zip(self.begins, self.changes))
        return f'{type(self).__name__}({stages})'
