"""Find the single weights file that a pretrained-weights setting names (a file, a Hugging Face model
folder, a ``package://`` spec or a hub id)."""
from __future__ import annotations

from pathlib import Path

from svitt_mm.utils.resources import resolve_path

# The weights file of a Hugging Face model folder or hub repo, in order of preference.
WEIGHT_FILES = ('model.safetensors', 'pytorch_model.bin')


def find_weight_file(source: str, what: str, hub: bool = False) -> Path:
    """The weights file ``source`` names: the file itself, or the first of :data:`WEIGHT_FILES` in a
    folder (``source`` may be a ``package://`` spec, see :func:`~svitt_mm.utils.resources.resolve_path`).
    With ``hub``, a ``source`` that is no local path is looked up as a Hugging Face hub repo (in the local
    cache, or downloaded when online).

    ``what`` names the weights in messages (e.g. ``'BEiT weights'``).

    Raises:
        FileNotFoundError: nothing found; the message says where it looked.
    """
    path = Path(resolve_path(source)).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        for name in WEIGHT_FILES:
            if (path / name).is_file():
                return path / name
        raise FileNotFoundError(f'{what}: no {" or ".join(WEIGHT_FILES)} in folder {path} (found: '
                                f'{", ".join(sorted(p.name for p in path.iterdir())) or "nothing"})')
    if not hub:
        raise FileNotFoundError(f'{what} not found: {path}')
    from huggingface_hub import hf_hub_download

    failures = []
    for name in WEIGHT_FILES:
        try:
            return Path(hf_hub_download(source, name))
        # Hub lookup errors (offline, unknown repo or file) are OSErrors; malformed ids ValueErrors.
        except (OSError, ValueError) as error:
            failures.append(f'{name}: {type(error).__name__}')
    raise FileNotFoundError(f'{what} {source!r}: no local file or folder, nor a Hugging Face hub repo '
                            f'with {" or ".join(WEIGHT_FILES)} ({"; ".join(failures)})')
