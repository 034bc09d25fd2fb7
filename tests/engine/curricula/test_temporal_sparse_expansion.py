"""TemporalSparseExpansion: stage lookup, settings carried over from earlier stages, and validation."""
import pytest

from svitt_mm.engine.curricula import TemporalSparseExpansion
from svitt_mm.registry import CURRICULA

STAGES = [dict(begin=0, num_frames=4, keep_rate=0.7, text_keep_rate=0.3),
          dict(begin=10, num_frames=8, keep_rate=0.6),
          dict(begin=20, num_frames=16, keep_rate=0.5, random_blocks=1)]


def test_stage_at_returns_the_stage_in_force_with_carried_over_settings():
    curriculum = CURRICULA.build(dict(type='TemporalSparseExpansion', stages=STAGES))
    assert [curriculum.stage_at(p)[0] for p in (0, 9, 10, 19, 20, 1000)] == [0, 0, 1, 1, 2, 2]
    assert curriculum.stage_at(0) == (0, dict(num_frames=4, keep_rate=0.7, text_keep_rate=0.3))
    assert curriculum.stage_at(15) == (1, dict(num_frames=8, keep_rate=0.6, text_keep_rate=0.3))
    assert curriculum.stage_at(25) == (2, dict(num_frames=16, keep_rate=0.5, text_keep_rate=0.3,
                                               random_blocks=1))
    assert curriculum.unit == 'epoch' and curriculum.num_stages == 3
    assert TemporalSparseExpansion(STAGES, by_epoch=False).unit == 'iter'


def test_stage_at_is_pure():
    curriculum = TemporalSparseExpansion(STAGES)
    settings = curriculum.stage_at(12)[1]
    settings['num_frames'] = 99
    assert curriculum.stage_at(12)[1]['num_frames'] == 8
    assert curriculum.stage_at(3) == curriculum.stage_at(3)


@pytest.mark.parametrize('stages, message', [
    ([], 'stages must be a non-empty list'),
    ([dict(begin=1, num_frames=4)], 'stage 0 must begin at 0'),
    ([dict(num_frames=4)], 'stage 0 needs begin'),
    ([dict(begin=0), dict(begin=5), dict(begin=5)], 'stage 2 begins at 5, not after stage 1'),
    ([dict(begin=0), dict(begin=5), dict(begin=3)], 'stage 2 begins at 3'),
    ([dict(begin=0), dict(begin=2, num_frame=8)], "stage 1 has unknown key 'num_frame'"),
    ([dict(begin=0, num_frames=0)], 'stage 0: num_frames must be an int >= 1, got 0'),
    ([dict(begin=0, num_frames=4.0)], 'stage 0: num_frames must be an int >= 1, got 4.0'),
    ([dict(begin=0), dict(begin=1, keep_rate=0.0)], r'stage 1: keep_rate must be a number in \(0, 1\]'),
    ([dict(begin=0, text_keep_rate=1.5)], r'stage 0: text_keep_rate must be a number in \(0, 1\]'),
    ([dict(begin=0, local_blocks=2)], 'stage 0: local_blocks must be 0 or an odd int, got 2'),
    ([dict(begin=0, random_blocks=-1)], 'stage 0: random_blocks must be an int >= 0, got -1'),
    (['begin=0'], 'stage 0 must be a dict'),
])
def test_bad_stages_are_rejected_naming_stage_and_key(stages, message):
    with pytest.raises(ValueError, match=message):
        TemporalSparseExpansion(stages)


def test_keep_rate_of_one_and_zero_local_blocks_are_valid():
    curriculum = TemporalSparseExpansion([dict(begin=0, keep_rate=1, local_blocks=0, random_blocks=0)])
    assert curriculum.stage_at(7) == (0, dict(keep_rate=1, local_blocks=0, random_blocks=0))
