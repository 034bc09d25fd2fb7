"""Checkpoints loaded by the Runner (``load_from``, ``--resume``, ``tools/test.py``) never load silently.

MMEngine's ``Runner.load_checkpoint`` loads with ``strict=False``: a checkpoint of another architecture
"loads" with a list of missing keys buried in the log. This hook loads the weights itself before that
(see :func:`~svitt_mm.models.checked_loading.load_state_dict_checked`): a checkpoint built for another
architecture is refused, naming the first setting that differs, unless the config sets
``load_strict = False``; the keys that did not match are logged in one WARNING table. It then hands
MMEngine the model's own (now loaded) state, so MMEngine's load that follows copies the same values and
has nothing left to report.
"""
from __future__ import annotations

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from svitt_mm.models.checked_loading import load_state_dict_checked
from svitt_mm.registry import HOOKS


@HOOKS.register_module()
class CheckedLoadHook(Hook):
    """Load checkpoints strictly (config key ``load_strict``, default ``True``) and report mismatched
    keys in a WARNING table."""

    priority = 'VERY_HIGH'

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        source = runner.cfg.get('load_from') or 'the checkpoint being resumed'
        load_state_dict_checked(model, checkpoint['state_dict'], str(source),
                                strict=runner.cfg.get('load_strict', True))
        checkpoint['state_dict'] = model.state_dict()
