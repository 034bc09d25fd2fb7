"""Built-in demo data: ``python -m svitt_mm.datasets.demo OUT_DIR`` writes the temporal-shapes set."""
from .temporal_shapes import build_temporal_shapes

__all__ = ['build_temporal_shapes']
