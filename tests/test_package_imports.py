"""The import graph of rcnn_plugin, read from the source, has no cycle.

A node is a module (a package is its ``__init__.py``). Module ``M`` has an
edge to every rcnn_plugin module it imports, wherever the import statement
is (top level or inside a function: a deferred import still depends on the
module and runs its ``__init__`` chain on first call):

- ``import rcnn_plugin.a.b`` and ``from rcnn_plugin.a.b import x``:
  ``rcnn_plugin.a.b``, and ``rcnn_plugin.a.b.x`` when that is a module;
- relative imports, resolved against ``M``'s package;
- the parent packages of each target (``rcnn_plugin.a`` above), since
  importing a submodule runs its parents' ``__init__`` first. Parents that
  are also ``M``'s own parents are left out: they are already being
  imported when ``M`` runs, so that is no edge (otherwise every module
  would close a circle through ``rcnn_plugin/__init__.py``). A parent named
  as the target itself (``from rcnn_plugin.engine import x`` inside
  ``rcnn_plugin.engine.hooks``) is kept: it reads a half-initialised
  package.
"""
import ast
import os.path as osp
from collections import deque
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

from conftest import REPO

PACKAGE = 'rcnn_plugin'
# (importer, imported) -> 'path:line' of the first statement making it
Edges = Dict[Tuple[str, str], str]


def package_modules(root: str) -> Dict[str, Path]:
    """Every module of the package under ``root``, by dotted name."""
    modules = {}
    for path in sorted(Path(root, PACKAGE).rglob('*.py')):
        parts = list(path.relative_to(root).with_suffix('').parts)
        if parts[-1] == '__init__':
            parts.pop()
        modules['.'.join(parts)] = path
    return modules


def _parents(name: str) -> List[str]:
    parts = name.split('.')
    return ['.'.join(parts[:i]) for i in range(1, len(parts))]


def _targets(node: ast.AST, module: str, is_pkg: bool,
             modules: Dict[str, Path]) -> List[str]:
    """Modules of the package named by one import statement."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in modules]
    if node.level:
        base = module.split('.') if is_pkg else module.split('.')[:-1]
        base = base[:len(base) - node.level + 1]
        if node.module:
            base += node.module.split('.')
        name = '.'.join(base)
    else:
        name = node.module or ''
    if name not in modules:
        return []
    subs = [f'{name}.{a.name}' for a in node.names]
    return [name] + [s for s in subs if s in modules]


def import_graph(root: str) -> Edges:
    """The edges of the package's import graph, read with ``ast``."""
    modules = package_modules(root)
    edges: Edges = {}
    for module, path in modules.items():
        is_pkg = path.name == '__init__.py'
        own = set(_parents(module)) | {module}
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            where = f'{osp.relpath(path, root)}:{node.lineno}'
            for target in _targets(node, module, is_pkg, modules):
                implied = [p for p in _parents(target) if p not in own]
                for dep in [target] + implied:
                    if dep != module:
                        edges.setdefault((module, dep), where)
    return edges


def _shortest_cycle(start: str, succ: Dict[str, Set[str]],
                    allowed: Set[str]) -> Optional[List[str]]:
    prev: Dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(succ.get(node, ())):
            if nxt not in allowed:
                continue
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(prev[path[-1]])
                return path[::-1] + [start]
            if nxt not in prev:
                prev[nxt] = node
                queue.append(nxt)
    return None


def _components(succ: Dict[str, Set[str]]) -> List[Set[str]]:
    """Strongly connected components with more than one module."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[Set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(succ.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            comp = set()
            while True:
                top = stack.pop()
                on_stack.discard(top)
                comp.add(top)
                if top == node:
                    break
            if len(comp) > 1:
                found.append(comp)

    for node in sorted(succ):
        if node not in index:
            visit(node)
    return found


def find_cycles(edges: Edges) -> List[List[str]]:
    """The shortest cycle through each module that is on one, once each."""
    succ: Dict[str, Set[str]] = {}
    for src, dst in edges:
        succ.setdefault(src, set()).add(dst)
    cycles, seen = [], set()
    for comp in _components(succ):
        for node in sorted(comp):
            cycle = _shortest_cycle(node, succ, comp)
            key = frozenset(zip(cycle, cycle[1:]))
            if key not in seen:
                seen.add(key)
                cycles.append(cycle)
    return sorted(cycles, key=len)


def describe(cycle: List[str], edges: Edges) -> str:
    """The cycle, one edge a line, with the statement making each edge."""
    lines = [f'  {a} -> {b}  ({edges[a, b]})'
             for a, b in zip(cycle, cycle[1:])]
    return '\n'.join(lines)


def test_graph_sees_imports_and_parents():
    edges = import_graph(REPO)
    # relative import of a sibling module
    assert ('rcnn_plugin.config_doctor.doctor',
            'rcnn_plugin.config_doctor.context') in edges
    # absolute import, and the parent package it runs first
    for dep in ('rcnn_plugin.utils.checkpoint_io', 'rcnn_plugin.utils'):
        assert ('rcnn_plugin.models.peft.adapter', dep) in edges
    # no edge to one's own parents: they are being imported already
    assert ('rcnn_plugin.utils.checkpoint_io',
            'rcnn_plugin.utils') not in edges
    # `from . import ops` in the root package names a submodule
    assert ('rcnn_plugin', 'rcnn_plugin.ops') in edges
    # a package's __init__ imports its subpackage
    assert ('rcnn_plugin.engine', 'rcnn_plugin.engine.hooks') in edges


def test_graph_finds_a_planted_cycle(tmp_path):
    pkg = tmp_path / PACKAGE
    (pkg / 'a').mkdir(parents=True)
    (pkg / 'b').mkdir()
    (pkg / '__init__.py').write_text('from . import a\n')
    (pkg / 'a' / '__init__.py').write_text('from .x import f\n')
    (pkg / 'a' / 'x.py').write_text(
        'def f():\n    from rcnn_plugin.b.y import g\n')
    (pkg / 'b' / '__init__.py').write_text('')
    # importing rcnn_plugin.a.x runs rcnn_plugin/a/__init__.py first
    (pkg / 'b' / 'y.py').write_text('import rcnn_plugin.a.x\n')
    edges = import_graph(str(tmp_path))
    assert ('rcnn_plugin.b.y', 'rcnn_plugin.a') in edges
    assert ('rcnn_plugin.a.x', 'rcnn_plugin') not in edges
    cycles = find_cycles(edges)
    assert cycles == [
        ['rcnn_plugin.a.x', 'rcnn_plugin.b.y', 'rcnn_plugin.a.x'],
        ['rcnn_plugin.a', 'rcnn_plugin.a.x', 'rcnn_plugin.b.y',
         'rcnn_plugin.a']]
    assert describe(cycles[0], edges).splitlines() == [
        '  rcnn_plugin.a.x -> rcnn_plugin.b.y  '
        f'({osp.join(PACKAGE, "a", "x.py")}:2)',
        '  rcnn_plugin.b.y -> rcnn_plugin.a.x  '
        f'({osp.join(PACKAGE, "b", "y.py")}:1)']


def test_no_import_cycle():
    edges = import_graph(REPO)
    cycles = find_cycles(edges)
    report = '\n\n'.join(describe(c, edges) for c in cycles)
    assert not cycles, f'import cycles in {PACKAGE}:\n{report}'
