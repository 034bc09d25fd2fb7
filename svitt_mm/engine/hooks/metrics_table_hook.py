"""Print retrieval or QA metrics as a table after every evaluation."""
from __future__ import annotations

from typing import Dict, Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log

from svitt_mm.registry import HOOKS


def format_retrieval_table(metrics: Dict[str, float], title: str = '') -> str:
    """Render ``t2v/...`` and ``v2t/...`` metrics (and their ``itc/`` twins) as a fixed-width table."""
    columns = ['R@1', 'R@5', 'R@10', 'MdR', 'MnR']
    lines = [title] if title else []
    lines.append(f'{"":<12}' + ''.join(f'{c:>9}' for c in columns))
    for prefix in ('', 'itc/'):
        for direction in ('t2v', 'v2t'):
            key = f'{prefix}{direction}'
            if f'{key}/R@1' not in metrics:
                continue
            label = f'{direction} (ITC)' if prefix else direction
            lines.append(f'{label:<12}' + ''.join(
                f'{metrics.get(f"{key}/{c}", float("nan")):>9.2f}' for c in columns))
    if 'R_mean' in metrics:
        lines.append(f'R_mean {metrics["R_mean"]:.2f}')
    return '\n'.join(lines)


def format_qa_table(metrics: Dict[str, float], title: str = '') -> str:
    """Render QA accuracy ``acc`` and its per-question-type ``acc/<type>`` breakdown."""
    lines = [title] if title else []
    for key in ['acc'] + sorted(key for key in metrics if key.startswith('acc/')):
        label = 'all' if key == 'acc' else key[len('acc/'):]
        lines.append(f'{label:<16}{metrics[key]:>8.2f}')
    if 'num_questions' in metrics:
        lines.append(f'({int(metrics["num_questions"])} questions)')
    return '\n'.join(lines)


def format_metrics_table(metrics: Dict[str, float], title: str = '') -> Optional[str]:
    """The retrieval or QA table of ``metrics`` (``None`` when they are neither)."""
    if 't2v/R@1' in metrics:
        return format_retrieval_table(metrics, f'{title} retrieval (%)')
    if 'acc' in metrics:
        return format_qa_table(metrics, f'{title} QA accuracy (%)')
    return None


@HOOKS.register_module()
class MetricsTableHook(Hook):
    """Log a readable retrieval or QA table after validation and testing."""
    priority = 'LOW'

    def _log(self, runner, metrics: Optional[Dict[str, float]], stage: str) -> None:
        table = format_metrics_table(metrics or {}, stage)
        if table:
            print_log('\n' + table, logger='current')

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._log(runner, metrics, f'epoch {runner.epoch} val')

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._log(runner, metrics, 'test')
