"""Declared checks of a part's numeric arguments, one declaration used twice: by the part's constructor,
and by the config check before anything is built (``svitt_mm.apis.config_check``), so that a bad value
is refused with the same words either way.

A part declares a class attribute and checks its arguments with it::

    class TokenPruner(nn.Module):
        argument_checks = dict(keep_rate=number_in(0, 1, low_open=True))

        def __init__(self, keep_rate):
            check_arguments(self, keep_rate=keep_rate)

A check returns ``None`` for a good value, else what the value must be (``'an int >= 1'``).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional

from svitt_mm.utils.errors import UserError

Check = Callable[[Any], Optional[str]]


class ArgumentError(UserError, ValueError):
    """A part was given an argument value its declared checks refuse."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def int_at_least(minimum: int) -> Check:
    """An int (not a bool) ``>= minimum``."""
    def check(value: Any) -> Optional[str]:
        return None if _is_int(value) and value >= minimum else f'an int >= {minimum}'
    return check


def odd_or_zero(value: Any) -> Optional[str]:
    """0 or an odd positive int (a window of blocks centred on its own)."""
    return None if _is_int(value) and value >= 0 and (value == 0 or value % 2) else '0 or an odd int'


def number_in(low: float, high: float, low_open: bool = False, high_open: bool = False) -> Check:
    """A number (int or float, not a bool) in the interval ``[low, high]``, each end open if asked."""
    interval = f'{"(" if low_open else "["}{low:g}, {high:g}{")" if high_open else "]"}'

    def check(value: Any) -> Optional[str]:
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
              and (low < value if low_open else low <= value) and (value < high if high_open else value <= high))
        return None if ok else f'a number in {interval}'
    return check


def each(item_check: Check) -> Check:
    """A list or tuple whose every item passes ``item_check``."""
    def check(value: Any) -> Optional[str]:
        if not isinstance(value, (list, tuple)):
            return 'a list or tuple'
        wrong = next((what for what in map(item_check, value) if what), None)
        return None if wrong is None else f'a list whose every item is {wrong}'
    return check


def optional(inner: Check) -> Check:
    """``None``, or a value that passes ``inner``."""
    def check(value: Any) -> Optional[str]:
        problem = None if value is None else inner(value)
        return None if problem is None else f'None or {problem}'
    return check


def argument_problems(checks: Mapping[str, Check], values: Mapping[str, Any], where: str) -> List[str]:
    """One ``'{where}.{key}: {value!r} must be ...'`` line per value of ``values`` that its check refuses
    (keys without a check, and checks without a value, are passed over)."""
    problems = []
    for key, check in checks.items():
        if key in values:
            expected = check(values[key])
            if expected:
                shown = repr(values[key])
                shown = shown if len(shown) <= 60 else f'{shown[:57]}...'
                problems.append(f'{where}.{key}: {shown} must be {expected}')
    return problems


def check_arguments(part: Any, **values: Any) -> None:
    """Raise :class:`ArgumentError` if ``type(part).argument_checks`` refuses any of ``values``."""
    checks: Dict[str, Check] = getattr(type(part), 'argument_checks', {})
    problems = argument_problems(checks, values, type(part).__name__)
    if problems:
        raise ArgumentError('; '.join(problems))
