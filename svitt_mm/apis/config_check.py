"""Check a config before the Runner is built: every ``type=`` is registered, and a few values make sense.

:func:`check_config` walks the whole config. Each dict with a string ``type`` is looked up in the
registries its key path implies (declared next to each registry in :mod:`svitt_mm.registry`:
``model.vision_encoder.attention`` -> ``ATTENTION_OPS``, ``train_dataloader.dataset.pipeline[2]`` ->
``TRANSFORMS``, ``custom_hooks[0]`` -> ``HOOKS`` ...); a path no registry claims is accepted if any svitt_mm
registry knows the type. Unknown types
are reported with their key path and close matches (``difflib``)::

    model.vision_encoder.attention.type: 'BlockSparseAtention' is not a registered attention operator;
    did you mean 'BlockSparseAttention'?

Value checks (all problems are reported together):

* every argument a part declares a check for (its class's ``argument_checks``, see
  :mod:`svitt_mm.utils.arg_checks`: keep rates, block counts, layers, frame counts ...), with the words its
  constructor would use;
* ``block_size`` of an attention operator must be at most ``tokens per frame * frames``, where the
  tokens per frame come from the enclosing encoder's ``img_size`` / ``patch_size`` and the frames are the
  largest ``num_frames`` of the config's ``SampleFrames`` steps (else the encoder's ``max_frames``).

``k_test`` beyond the test set is not an error: the retrieval loop clamps it and logs a warning.
"""
from __future__ import annotations

import difflib
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from mmengine.config import Config
from mmengine.registry import Registry

from svitt_mm import registry as svitt_registry
from svitt_mm.registry import registries_for_key
from svitt_mm.utils.arg_checks import argument_problems
from svitt_mm.utils.errors import UserError

#: every svitt_mm registry, for types at key paths that no registry claims
ALL_REGISTRIES: Tuple[Registry, ...] = tuple(
    value for value in vars(svitt_registry).values() if isinstance(value, Registry) and value.scope == 'svitt_mm')


class ConfigCheckError(UserError, ValueError):
    """A config names unregistered types or holds invalid values; ``problems`` lists them."""

    def __init__(self, problems: Sequence[str], config_path: str = '') -> None:
        where = f' in {config_path}' if config_path else ''
        super().__init__(f'{len(problems)} problem(s){where}:\n' + '\n'.join(f'  {p}' for p in problems))
        self.problems = list(problems)


def _walk(node: Any, path: str) -> Iterator[Tuple[str, dict]]:
    """Yield ``(key path, dict)`` for every dict in ``node`` (depth first, parents before children)."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, f'{path}.{key}' if path else str(key))
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            yield from _walk(value, f'{path}[{index}]')


def _known_names(registry: Registry) -> List[str]:
    """Names visible from ``registry``: its own, and those of its root and the root's descendants."""
    root = registry
    while root.parent is not None:
        root = root.parent
    names, stack = set(registry.module_dict), [root]
    while stack:
        current = stack.pop()
        names.update(current.module_dict)
        stack.extend(current.children.values())
    return sorted(names)


def _close_matches(name: str, known: Sequence[str]) -> List[str]:
    """Names of ``known`` similar to ``name`` (``difflib`` ratio >= 0.6), best first, keeping only those
    within 0.05 of the best so that one clear typo gets one suggestion."""
    ratios = sorted(((difflib.SequenceMatcher(None, name, other).ratio(), other) for other in known),
                    reverse=True)
    ratios = [(ratio, other) for ratio, other in ratios if ratio >= 0.6]
    return [other for ratio, other in ratios[:3] if ratio >= ratios[0][0] - 0.05]


def _is_registered(registry: Registry, name: str) -> bool:
    try:
        return registry.get(name) is not None
    except KeyError:  # an unknown scope prefix
        return False


def _unknown_type_problem(path: str, name: str, expected: Sequence[Registry]) -> Optional[str]:
    registries = list(expected) or list(ALL_REGISTRIES)
    if any(_is_registered(registry, name) for registry in registries):
        return None
    known = sorted({n for registry in registries for n in _known_names(registry)})
    matches = _close_matches(name.split('.')[-1], known)
    what = f'a registered {registries[0].name}' if expected else 'registered in any svitt_mm registry'
    hint = f"; did you mean {' or '.join(repr(m) for m in matches)}?" if matches else ''
    return f'{path}.type: {name!r} is not {what}{hint}'


def _max_sampled_frames(cfg: dict) -> Optional[int]:
    frames = [node['num_frames'] for _, node in _walk(cfg, '')
              if node.get('type') == 'SampleFrames' and isinstance(node.get('num_frames'), int)]
    return max(frames) if frames else None


def _value_problems(cfg: dict) -> List[str]:
    problems = []
    frames = _max_sampled_frames(cfg)
    encoders: Dict[str, dict] = {}  # path -> encoder cfg (has img_size and patch_size)
    for path, node in _walk(cfg, ''):
        if isinstance(node.get('img_size'), int) and isinstance(node.get('patch_size'), int):
            encoders[path] = node
        kinds = registries_for_key(path)
        part = _registered_class(kinds or ALL_REGISTRIES, node.get('type'))
        problems.extend(argument_problems(getattr(part, 'argument_checks', {}), node, path))
        if svitt_registry.ATTENTION_OPS in kinds and 'block_size' in node:
            problems.extend(_block_size_problems(path, node['block_size'], encoders, frames))
    return problems


def _registered_class(registries: Sequence[Registry], name: Any) -> Optional[type]:
    """The class registered as ``name`` in the first of ``registries`` that knows it, else ``None``."""
    if not isinstance(name, str):
        return None
    for registry in registries:
        if _is_registered(registry, name):
            return registry.get(name)
    return None


def _block_size_problems(path: str, size: Any, encoders: Dict[str, dict],
                         frames: Optional[int]) -> List[str]:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        return []  # the operator's declared check reports it
    owner = max((p for p in encoders if path.startswith(p + '.')), key=len, default=None)
    if owner is None:
        return []
    encoder = encoders[owner]
    per_frame = (encoder['img_size'] // encoder['patch_size']) ** 2
    num_frames = frames or encoder.get('max_frames')
    if not isinstance(num_frames, int) or size <= per_frame * num_frames:
        return []
    return [f'{path}.block_size: {size} is larger than the {per_frame * num_frames} patch tokens of a clip '
            f'({per_frame} per frame x {num_frames} frames); use at most {per_frame * num_frames} (one block '
            f'would hold the whole clip, i.e. dense attention)']


def config_problems(cfg: Config) -> List[str]:
    """All problems :func:`check_config` would report, one line each (empty when the config is fine)."""
    plain = cfg.to_dict() if isinstance(cfg, Config) else dict(cfg)
    problems = []
    for path, node in _walk(plain, ''):
        if path and isinstance(node.get('type'), str):
            problem = _unknown_type_problem(path, node['type'], registries_for_key(path))
            if problem:
                problems.append(problem)
    return problems + _value_problems(plain)


def check_config(cfg: Config, config_path: str = '') -> None:
    """Raise :class:`ConfigCheckError` listing every unregistered ``type`` and invalid value of ``cfg``."""
    problems = config_problems(cfg)
    if problems:
        raise ConfigCheckError(problems, config_path)
