"""Imports go one way (the layer order in ``svitt_mm/__init__.py``): read from the source with ``ast``,
nothing is imported or executed, so a cycle cannot hide behind a lazy import."""
import ast
import os.path as osp
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Set, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / 'svitt_mm'

# package -> layer; a module may import from its own package and from lower layers only.
LAYERS: Dict[str, int] = {
    'svitt_mm.version': 0, 'svitt_mm.registry': 0, 'svitt_mm.utils': 0,
    'svitt_mm.models': 1, 'svitt_mm.datasets': 1,
    'svitt_mm.evaluation': 2, 'svitt_mm.engine': 2,
    'svitt_mm.apis': 3, 'svitt_mm.testing': 3,
    'svitt_mm': 4,  # the package root only reaches svitt_mm.apis lazily (module __getattr__)
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix('').parts)
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def package_of(module: str) -> str:
    """The layered package ``module`` belongs to (``svitt_mm.models.attention.dense`` -> ``svitt_mm.models``)."""
    parts = module.split('.')
    for depth in (2, 1):
        candidate = '.'.join(parts[:depth])
        if candidate in LAYERS:
            return candidate
    raise AssertionError(f'{module} is in no layer; add its package to LAYERS and to the docstring of '
                         f'svitt_mm/__init__.py')


def _type_checking_only(tree: ast.AST) -> Set[int]:
    """``id`` of the import nodes under ``if TYPE_CHECKING:`` (never executed)."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and 'TYPE_CHECKING' in ast.unparse(node.test):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    return skipped


def imports_of(path: Path, module: str = '', runtime_only: bool = False) -> List[Tuple[str, int]]:
    """``(imported svitt_mm module, line)`` of every import statement in ``path`` (the module ``module``,
    by default named from its place in the tree), wherever it stands (module level, inside functions,
    under ``if``); with ``runtime_only``, not those under ``if TYPE_CHECKING:``."""
    module = module or module_name(path)
    package = module if path.name == '__init__.py' else module.rpartition('.')[0]
    found = []
    tree = ast.parse(path.read_text(), str(path))
    skipped = _type_checking_only(tree) if runtime_only else set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')[:len(package.split('.')) - node.level + 1]
                target = '.'.join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ''
            # `from svitt_mm import registry` imports the submodule svitt_mm.registry
            found.extend((f'{target}.{alias.name}' if target == 'svitt_mm' else target, node.lineno)
                         for alias in node.names)
    return [(name, line) for name, line in found if name == 'svitt_mm' or name.startswith('svitt_mm.')]


MODULES = sorted(PACKAGE.rglob('*.py'))
# Who imports whom when the code runs (type-checking-only imports left out).
GRAPH: Dict[str, Set[str]] = {module_name(path): {name for name, _ in imports_of(path, runtime_only=True)}
                              for path in MODULES}


def layer_violations(module: str, imports: List[Tuple[str, int]]) -> List[str]:
    """One line per import of ``module`` that goes up the layers or sideways between models and datasets."""
    own = package_of(module)
    wrong = []
    for target, line in imports:
        other = package_of(target)
        if other == own or (own == 'svitt_mm' and other == 'svitt_mm.apis'):
            continue
        if LAYERS[other] >= LAYERS[own]:
            wrong.append(f'{module} (line {line}) imports {target}: {other} is layer {LAYERS[other]}, '
                         f'{own} is layer {LAYERS[own]}')
    return wrong


def find_cycle(graph: Dict[str, Set[str]]) -> List[str]:
    """A cycle of ``graph`` (module -> imported modules) as ``[a, b, ..., a]``, or ``[]``. A package
    importing its own submodules (``__init__`` re-exports) is not followed."""
    state: Dict[str, int] = {}
    stack: List[str] = []

    def visit(module: str) -> List[str]:
        state[module] = 1
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if target.startswith(module + '.'):
                continue
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        state[module] = 2
        return []

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module)
            if cycle:
                return cycle
    return []


@pytest.mark.parametrize('path', MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_go_down_the_layers(path):
    wrong = layer_violations(module_name(path), imports_of(path))
    assert not wrong, '\n'.join(wrong)


def _existing(name: str) -> str:
    """``name`` if it is a module of the package, else its parent (``from x import function``)."""
    while name not in GRAPH and '.' in name:
        name = name.rpartition('.')[0]
    return name


def test_no_import_cycles():
    graph = {module: {_existing(t) for t in targets} - {module} for module, targets in GRAPH.items()}
    cycle = find_cycle(graph)
    assert not cycle, 'import cycle: ' + ' -> '.join(cycle)


def test_the_checks_catch_an_upward_import_and_a_cycle(tmp_path):
    source = tmp_path / 'bad.py'
    source.write_text('import torch\n\ndef f():\n    from svitt_mm.engine.retrieval_scoring import rerank\n')
    assert layer_violations('svitt_mm.models.bad', imports_of(source, 'svitt_mm.models.bad')) == [
        'svitt_mm.models.bad (line 4) imports svitt_mm.engine.retrieval_scoring: svitt_mm.engine is layer 2, '
        'svitt_mm.models is layer 1']
    source.write_text('from svitt_mm.datasets.transforms.text import clean_caption\n')
    assert len(layer_violations('svitt_mm.models.bad', imports_of(source, 'svitt_mm.models.bad'))) == 1
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']
    assert find_cycle({'p': {'p.x'}, 'p.x': {'q'}, 'q': set()}) == []


@pytest.mark.parametrize('package,forbidden', [
    ('svitt_mm.models', ('svitt_mm.datasets', 'svitt_mm.engine', 'svitt_mm.evaluation', 'svitt_mm.apis')),
    ('svitt_mm.datasets', ('svitt_mm.models', 'svitt_mm.engine', 'svitt_mm.evaluation', 'svitt_mm.apis')),
    ('svitt_mm.utils', ('svitt_mm.models', 'svitt_mm.datasets', 'svitt_mm.engine', 'svitt_mm.apis')),
])
def test_importing_a_layer_loads_nothing_above_it(package, forbidden):
    code = (f'import sys, {package}; '
            f'print("\\n".join(m for m in sys.modules if m.startswith({forbidden!r})))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=osp.dirname(ROOT),
                         timeout=300, check=True).stdout.split()
    assert out == [], f'import {package} also imported {out}'
