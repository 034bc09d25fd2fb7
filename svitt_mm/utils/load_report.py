"""What a weight load did not match: missing, unexpected and shape-mismatched keys, as one short table
logged at WARNING level (never silently, never buried in a per-parameter list)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import List, Sequence, Tuple

from mmengine.logging import print_log

# Keys shown per kind; the rest are counted ("... and 120 more").
SHOWN_KEYS = 6


@dataclass
class KeyReport:
    """Keys of one load that did not match.

    ``missing``: model keys the weights did not provide (they keep their initial values);
    ``unexpected``: keys of the weights the model does not have; ``mismatched``: ``(key, weights' shape,
    model's shape)`` of keys skipped because their shapes differ.
    """
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    mismatched: List[Tuple[str, Tuple[int, ...], Tuple[int, ...]]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.mismatched)


def _shown(keys: Sequence[str]) -> str:
    text = ', '.join(keys[:SHOWN_KEYS])
    return text + (f', ... and {len(keys) - SHOWN_KEYS} more' if len(keys) > SHOWN_KEYS else '')


def format_key_report(report: KeyReport, owner: str, source: str) -> str:
    """``report`` as a table: one row per kind of mismatch with its count and first keys."""
    rows = [('missing (left as initialised)', len(report.missing), _shown(report.missing)),
            ('unexpected (ignored)', len(report.unexpected), _shown(report.unexpected)),
            ('wrong shape (skipped)', len(report.mismatched),
             _shown([f'{key} {tuple(theirs)} vs model {tuple(ours)}'
                     for key, theirs, ours in report.mismatched]))]
    rows = [row for row in rows if row[1]]
    width = max(len(row[0]) for row in rows)
    lines = [f'{owner}: weights from {source} do not match the model exactly:']
    lines += [f'  {kind:<{width}} {count:>5}  {keys}' for kind, count, keys in rows]
    return '\n'.join(lines)


def log_key_report(report: KeyReport, owner: str, source: str) -> None:
    """Log ``report`` at WARNING level (nothing when every key matched)."""
    if report:
        print_log(format_key_report(report, owner, source), logger='current', level=logging.WARNING)
