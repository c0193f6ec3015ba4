"""The house's import rules (issue 20, DESIGN.md "One engine, many faces"), checked on every run.

- The import-linter contracts of pyproject.toml ([tool.importlinter]), as `lint-imports` runs them:
  the engine imports none of Flask, werkzeug, config, the faces, templates, the app, the CLI,
  security or publishing (directly or through another module); inside each package, modules and
  subpackages form no cycle.
- No import cycle between any modules of ogc_gateway: import-linter's contracts speak of packages,
  so the module graph (grimp's, the one import-linter builds) is checked here, lazy imports inside
  functions and TYPE_CHECKING imports included.
- The engine imports nothing of ogc_gateway outside ogc_gateway.engine except the package itself
  (its version): this catches faces added later, which the contract's list cannot name in advance.
- Everything outside the engine (faces, CLI, tools) imports the engine through its public API only:
  `ogc_gateway.engine`, never one of its modules; the engine's own modules (and the tests) may.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

import ogc_gateway

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("ogc_gateway", cache_dir=None)


def cycles(graph: grimp.ImportGraph, package: str) -> list[list[str]]:
    """The strongly connected groups of more than one module among `package`'s modules (Tarjan's
    algorithm, iterative), each sorted; an acyclic graph has none."""
    modules = sorted(m for m in graph.modules if m == package or m.startswith(package + "."))
    inside = set(modules)
    edges = {m: sorted(n for n in graph.find_modules_directly_imported_by(m) if n in inside) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in modules:
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for nxt in successors:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(edges[nxt])))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        found.append(sorted(group))
    return found


def test_import_linter_contracts(tmp_path):
    # In a child process: lint_imports() configures logging with dictConfig, which would disable
    # every logger of this test session. The child imports the same ogc_gateway as the tests.
    where = str(Path(ogc_gateway.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (where, os.environ.get("PYTHONPATH"))))}
    code = ("import sys; from importlinter.cli import lint_imports; "
            f"sys.exit(lint_imports(config_filename={str(PYPROJECT)!r}, no_cache=True, no_logo=True))")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout, done.stdout


def test_no_import_cycles(graph):
    found = cycles(graph, "ogc_gateway")
    shown = []
    for group in found:                   # one cycle of each group, as a chain of imports
        first = group[0]
        step = next(m for m in sorted(graph.find_modules_directly_imported_by(first)) if m in group)
        shown.append(" -> ".join((first, *graph.find_shortest_chain(importer=step, imported=first))))
    assert not found, "import cycles:\n" + "\n".join(shown)


def test_engine_imports_only_itself(graph):
    def ours(name: str) -> bool:
        return name.startswith("ogc_gateway.")

    def engine(name: str) -> bool:
        return name == "ogc_gateway.engine" or name.startswith("ogc_gateway.engine.")

    outside = sorted((m, n) for m in graph.modules if engine(m)
                     for n in graph.find_modules_directly_imported_by(m) if ours(n) and not engine(n))
    assert not outside, "\n".join(f"{m} imports {n}" for m, n in outside)


def engine_imports_outside(graph: grimp.ImportGraph) -> list[tuple[str, str]]:
    """(importer, imported) for each import of an engine module, not the package, from outside it."""
    def engine(name: str) -> bool:
        return name == "ogc_gateway.engine" or name.startswith("ogc_gateway.engine.")

    return sorted((m, n) for m in graph.modules if m.startswith("ogc_gateway.") and not engine(m)
                  for n in graph.find_modules_directly_imported_by(m) if engine(n) and n != "ogc_gateway.engine")


def test_the_faces_import_only_the_engine_api(graph):
    outside = engine_imports_outside(graph)
    assert not outside, "import from ogc_gateway.engine, not its modules:\n" + "\n".join(
        f"{m} imports {n}" for m, n in outside)


def test_the_api_check_finds_a_module_import():
    g = grimp.ImportGraph()
    for importer, imported in [("ogc_gateway.rest.views", "ogc_gateway.engine"),
                               ("ogc_gateway.ogc.wms", "ogc_gateway.engine.export"),
                               ("ogc_gateway.engine.export", "ogc_gateway.engine.read")]:
        g.add_import(importer=importer, imported=imported)
    assert engine_imports_outside(g) == [("ogc_gateway.ogc.wms", "ogc_gateway.engine.export")]


def test_the_engine_api_is_whole_and_names_no_module():
    """Every name of __all__ exists, once; none is also a module of the engine, so that
    `from ogc_gateway.engine import export_raster` can never mean a module (grimp, and Python's
    `import ... as`, would take the module)."""
    import pkgutil

    import ogc_gateway.engine as engine

    assert len(engine.__all__) == len(set(engine.__all__))
    assert [n for n in engine.__all__ if not hasattr(engine, n)] == []
    modules = {m.name for m in pkgutil.iter_modules(engine.__path__)}
    assert sorted(set(engine.__all__) & modules) == []


def test_cycle_check_finds_a_planted_cycle():
    """The checker itself: a three-module cycle and a two-module one are found, a chain is not."""
    g = grimp.ImportGraph()
    for importer, imported in [("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.d", "p.e"), ("p.e", "p.d"),
                               ("p.f", "p.a"), ("p.f", "p.g")]:
        g.add_import(importer=importer, imported=imported)
    g.add_module("p")
    assert sorted(cycles(g, "p")) == [["p.a", "p.b", "p.c"], ["p.d", "p.e"]]


def type_checking_names(source: str) -> tuple[dict[str, str], set[str]]:
    """What the `if TYPE_CHECKING:` blocks of a module's source import, as _API spells it (public
    name -> ".module" or ".module:name"), and the names they add to __all__."""
    import ast

    imported: dict[str, str] = {}
    exported: set[str] = set()
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
            continue
        for stmt in node.body:
            if isinstance(stmt, ast.ImportFrom):
                where = "." * stmt.level + (stmt.module or "")
                for alias in stmt.names:
                    public = alias.asname or alias.name
                    assert public not in imported, f"{public} imported twice"
                    imported[public] = where if public == alias.name else f"{where}:{alias.name}"
            elif (isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name)
                  and stmt.target.id == "__all__" and isinstance(stmt.value, ast.List)):
                exported |= {e.value for e in stmt.value.elts if isinstance(e, ast.Constant)}
    return imported, exported


def test_the_typed_api_agrees_with_the_lazy_one():
    """engine/__init__.py loads its names lazily from _API; its TYPE_CHECKING imports give mypy the
    same names from the same modules (else the faces would be checked against the wrong type, or
    against __getattr__'s Any), and every renamed one is in the __all__ mypy reads (a renamed import
    is not exported otherwise), so that `from ogc_gateway.engine import export_raster` is typed."""
    import ogc_gateway.engine as engine

    imported, exported = type_checking_names(Path(engine.__file__).read_text(encoding="utf-8"))
    assert imported == engine._API
    assert exported == {name for name, where in imported.items() if ":" in where}


def test_the_typed_api_check_sees_a_difference():
    source = ("from typing import TYPE_CHECKING\n"
              "if TYPE_CHECKING:\n"
              "    from .errors import NotFound as NotFound\n"
              "    from .export import export as export_raster\n"
              "    __all__ += ['export_raster']\n")
    assert type_checking_names(source) == ({"NotFound": ".errors", "export_raster": ".export:export"},
                                           {"export_raster"})
