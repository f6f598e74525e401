"""Architecture rules of src/stemgrains, checked on the AST of the source (nothing is imported or run):

* no import cycle among stemgrains modules (function-level, lazy imports included: a lazy import only hides a
  circle, it does not remove it);
* no stage (a subpackage: index, grains, boundaries, ...) imports another stage's private module (``_name.py``)
  or private name (``_name``): shared maths lives in a public module (e.g. :mod:`stemgrains.crystal.symmetry`);
  the top-level ``stemgrains._*`` modules (``_table``, ``_grid``, ``_chunks``, ...) are shared infrastructure,
  not a stage;
* no function longer than :data:`MAX_FUNCTION_LINES` lines.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "stemgrains"
MAX_FUNCTION_LINES = 120

#: Known violations (entries may only disappear: the test fails when one no longer occurs). Empty: keep it so.
ALLOWED_PRIVATE_IMPORTS: set[tuple[str, str]] = set()
ALLOWED_LONG_FUNCTIONS: set[str] = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _imports(name: str, path: Path) -> list[tuple[str, str | None, int]]:
    """``(target module, imported name or None, line)`` of every stemgrains import in a module, at any depth."""
    mods = _modules()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            out += [(a.name, None, node.lineno) for a in node.names if a.name.split(".")[0] == "stemgrains"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "stemgrains":
                continue
            for a in node.names:
                sub = f"{target}.{a.name}"
                # `from pkg import module` imports the module; `from module import name` a name of it
                out.append((sub, None, node.lineno) if sub in mods else (target, a.name, node.lineno))
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        for target, _, _ in _imports(name, path):
            while target not in mods and "." in target:
                target = target.rpartition(".")[0]
            if target in mods and target != name:
                graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _stage(module: str) -> str | None:
    """The stage (subpackage) a module belongs to; None for top-level modules."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (PKG / parts[1]).is_dir()) else None


def _private_imports(modules: dict[str, Path] | None = None) -> set[tuple[str, str, str, int]]:
    """``(module, target, what, line)`` of imports of another stage's private module or name (in ``modules``,
    default every module of the package)."""
    found = set()
    for name, path in (_modules() if modules is None else modules).items():
        for target, imported, line in _imports(name, path):
            other = _stage(target)
            if other is None or other == _stage(name):
                continue
            private_module = any(p.startswith("_") and p != "__init__" for p in target.split(".")[2:])
            if private_module or (imported is not None and imported.startswith("_")):
                found.add((name, target, imported or "", line))
    return found


def test_the_graph_sees_lazy_imports_and_finds_a_planted_cycle():
    g = _graph()
    assert "stemgrains.crystal.symmetry" in g["stemgrains.grains.segment"]
    assert "stemgrains._progress" in g["stemgrains.index.api"]  # imported inside a function
    planted = {k: set(v) for k, v in g.items()}
    planted["stemgrains.crystal.symmetry"].add("stemgrains.grains.segment")
    assert any("stemgrains.grains.segment" in c and "stemgrains.crystal.symmetry" in c for c in _cycles(planted))


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def test_no_stage_imports_another_stages_private_code():
    found = _private_imports()
    pairs = {(m, t) for m, t, _, _ in found}
    unexpected = sorted(f"{m}:{line} imports {t}{' ' + w if w else ''}" for m, t, w, line in found
                        if (m, t) not in ALLOWED_PRIVATE_IMPORTS)
    assert unexpected == []
    assert sorted(ALLOWED_PRIVATE_IMPORTS - pairs) == [], "fixed: remove these from ALLOWED_PRIVATE_IMPORTS"


def test_private_import_rule_sees_a_violation(tmp_path):
    assert _stage("stemgrains.boundaries._kernels") == "boundaries"
    assert _stage("stemgrains._grid") is None and _stage("stemgrains.pipeline") is None
    planted = tmp_path / "planted.py"
    planted.write_text("from ..io._common import first_line\nfrom ..boundaries._io import write_boundaries\n"
                       "from ..io.files import open_h5\nfrom ..boundaries import _classify_pair\n")
    found = _private_imports({"stemgrains.grains.planted": planted})
    assert {(t, w) for _, t, w, _ in found} == {("stemgrains.io._common", "first_line"),
                                                ("stemgrains.boundaries._io", "write_boundaries"),
                                                ("stemgrains.boundaries._classify_pair", "")}


def _long_functions(limit: int) -> dict[str, int]:
    out = {}
    for name, path in _modules().items():
        for node in ast.walk(_tree(path)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > limit:
                    out[f"{name}.{node.name}"] = n
    return out


def test_no_function_longer_than_the_limit():
    long = {k: v for k, v in _long_functions(MAX_FUNCTION_LINES).items() if k not in ALLOWED_LONG_FUNCTIONS}
    assert long == {}
    assert sorted(ALLOWED_LONG_FUNCTIONS - set(_long_functions(MAX_FUNCTION_LINES))) == [], \
        "fixed: remove these from ALLOWED_LONG_FUNCTIONS"


@pytest.mark.parametrize("limit", [10])
def test_long_function_rule_sees_long_functions(limit):
    assert len(_long_functions(limit)) > 10
