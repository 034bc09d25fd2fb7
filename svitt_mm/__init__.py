"""svitt_mm: sparse video-text transformers (SViTT and dense baselines) on MMEngine.

Layer order. A module imports only from its own layer or the layers below it, never from above and never
sideways between ``models`` and ``datasets`` (``tests/test_layering.py`` checks this without importing
anything)::

    4  tools/                               command-line tools: import the installed package only
    3  svitt_mm.apis, svitt_mm.testing      what tools, notebooks and tests use: registration of every
                                            part, config preparation and checks, model loading, costs,
                                            distributed set-up; helpers for tests
    2  svitt_mm.evaluation, svitt_mm.engine metrics; hooks, loops, curricula, optimizer wrappers
    1  svitt_mm.models | svitt_mm.datasets  the networks | the data (neither imports the other)
    0  svitt_mm.registry, svitt_mm.utils,   registries; helpers every layer may use (package paths,
       svitt_mm.version                     safe weight loading, text helpers)

``register_all_modules`` (import every part, make ``svitt_mm`` the default scope) lives in
:mod:`svitt_mm.apis`; ``svitt_mm.register_all_modules`` reaches it without importing the upper layers
when only ``svitt_mm.models`` (say) is imported.
"""
from .version import __version__

__all__ = ['__version__', 'register_all_modules']


def __getattr__(name: str):
    if name == 'register_all_modules':
        from .apis import register_all_modules
        return register_all_modules
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
