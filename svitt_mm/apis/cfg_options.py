"""``--cfg-options`` for every tool: MMEngine's parser, with malformed pairs reported as usage errors."""
from __future__ import annotations

import argparse

from mmengine.config import DictAction


class CfgOptionsAction(DictAction):
    """MMEngine's ``--cfg-options KEY=VALUE ...`` parser, with a malformed pair (no ``=``, unbalanced
    brackets) reported by argparse as one usage line naming the pair, instead of the assertion traceback
    MMEngine's parser ends in."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        for pair in values if isinstance(values, list) else [values]:
            key, sep, value = pair.partition('=')
            if not sep or not key:
                raise argparse.ArgumentError(self, f'{pair!r} is not KEY=VALUE (e.g. train_cfg.max_epochs=20)')
            try:
                self._parse_iterable(value)
            except (AssertionError, ValueError, IndexError):
                raise argparse.ArgumentError(
                    self, f'{pair!r}: the value {value!r} has unbalanced brackets or quotes; lists and tuples '
                          'are written [a,b] or (a,b), without spaces, quoted for the shell') from None
        super().__call__(parser, namespace, values, option_string)
