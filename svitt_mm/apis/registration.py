"""One call that makes svitt_mm's parts visible to MMEngine."""
from __future__ import annotations

import datetime

from mmengine import DefaultScope

from svitt_mm.utils.safe_resume import register_safe_checkpoint_globals


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import every registered part, allow-list checkpoint types and (optionally) make ``svitt_mm`` the
    default registry scope, so that configs can name parts by their bare type."""
    import svitt_mm.datasets  # noqa: F401
    import svitt_mm.engine  # noqa: F401
    import svitt_mm.evaluation  # noqa: F401
    import svitt_mm.models  # noqa: F401
    register_safe_checkpoint_globals()
    if not init_default_scope:
        return
    current = DefaultScope.get_current_instance()
    if current is None or current.scope_name != 'svitt_mm':
        name = f'svitt_mm-{datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")}'
        DefaultScope.get_instance(name, scope_name='svitt_mm')
