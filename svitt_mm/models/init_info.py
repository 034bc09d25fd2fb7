"""MMEngine's per-parameter "init_weights" report, off by default.

``BaseModule.init_weights`` of the top-level module logs one INFO block per parameter (hundreds of lines
when no log file is open, e.g. in a notebook or a tool without a Runner), which buries the lines that
matter, such as a weight-loading warning. Models and encoders that can be the top-level module mix this in.
"""
from __future__ import annotations


class QuietInitInfo:
    """Mix in before ``BaseModule``/``BaseModel``: the per-parameter init report is skipped unless
    ``log_init_info`` is set to ``True`` (on the class or the instance)."""

    log_init_info = False

    def _dump_init_info(self) -> None:
        if self.log_init_info:
            super()._dump_init_info()
