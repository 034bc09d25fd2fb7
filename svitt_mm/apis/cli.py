"""How every tool ends: a :class:`~svitt_mm.utils.errors.UserError` becomes one ``error: ...`` message on
stderr and exit status 2; anything else is a bug and shows its traceback.

``--debug`` on any tool's command line (removed before the tool parses its arguments), or
``SVITT_DEBUG=1`` in the environment, shows the traceback of user errors too.
"""
from __future__ import annotations

import os
import re
import sys
from typing import Callable, NoReturn

from svitt_mm.utils.errors import UserError

DEBUG_FLAG = '--debug'
DEBUG_ENV = 'SVITT_DEBUG'
EXIT_USER_ERROR = 2


def user_message(error: UserError) -> str:
    """What the user should read of ``error``: its own message, without the worker's traceback that torch
    puts before it when the error crossed from a data-loader worker."""
    message = str(error)
    if 'Original Traceback' in message:  # torch's ExceptionWrapper: the worker's traceback, then the error
        name = re.escape(type(error).__name__)
        starts = list(re.finditer(rf'^(?:[\w.]+\.)?{name}: ', message, flags=re.M))
        if starts:
            message = message[starts[-1].end():]
    return message.strip()


def run_tool(main: Callable[[], object]) -> NoReturn:
    """Run a tool's ``main()`` (which parses ``sys.argv``) and exit: 0 when it returns, 2 with
    ``error: ...`` on a user error, the traceback on anything else."""
    debug = DEBUG_FLAG in sys.argv[1:] or os.environ.get(DEBUG_ENV, '') not in ('', '0')
    sys.argv[1:] = [arg for arg in sys.argv[1:] if arg != DEBUG_FLAG]
    try:
        main()
    except UserError as error:
        if debug:
            raise
        print(f'error: {user_message(error)}', file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    sys.exit(0)
