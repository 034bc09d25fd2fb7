"""Fixtures for the fault-tolerance and distributed tests of tools/train.py and tools/test.py."""
import pytest

from svitt_mm.datasets.demo import build_temporal_shapes


@pytest.fixture(scope='session')
def small_demo_data(tmp_path_factory) -> dict:
    """The temporal-shapes demo data with one training video per caption (72 train, 72 test)."""
    return build_temporal_shapes(str(tmp_path_factory.mktemp('demo_small')), videos_per_caption=1)
