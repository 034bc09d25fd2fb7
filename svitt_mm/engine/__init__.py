from . import checkpoint_loader  # noqa: F401  (MMEngine loads local checkpoints safely through it)
from .hooks import *  # noqa: F401,F403
from .loops import *  # noqa: F401,F403
from .strategies import *  # noqa: F401,F403
