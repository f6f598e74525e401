"""Sphinx directive ``.. stemgrains-constants:: PACKAGE``: the constants a package exports.

autodoc's ``automodule`` documents the functions and classes of a package's ``__all__`` but skips data
(tuples, dicts) that the package imports from a private submodule. This directive lists those: every name of
``PACKAGE.__all__`` that is neither a class, a function nor a module, with its ``#:`` comment taken from the
module that defines it and its value (when short).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.pycode import ModuleAnalyzer
from sphinx.util.docutils import SphinxDirective

MAX_VALUE_CHARS = 100


def exported_constants(package: str) -> list[str]:
    """Names of ``package.__all__`` that are data, not classes, functions or modules."""
    mod = importlib.import_module(package)
    out = []
    for name in getattr(mod, "__all__", []):
        if name.startswith("_"):
            continue
        value = getattr(mod, name)
        if not (inspect.isclass(value) or inspect.isroutine(value) or inspect.ismodule(value) or callable(value)):
            out.append(name)
    return out


def _comment(package: str, name: str) -> list[str]:
    """The ``#:`` doc comment of ``name`` in the submodule of ``package`` that defines it (the same object)."""
    mod = importlib.import_module(package)
    value = getattr(mod, name)
    candidates = [package]
    if hasattr(mod, "__path__"):
        candidates += [f"{package}.{m.name}" for m in pkgutil.iter_modules(mod.__path__)]
    for modname in candidates:
        sub = importlib.import_module(modname)
        if getattr(sub, name, None) is not value:
            continue
        try:
            docs = ModuleAnalyzer.for_module(modname).find_attr_docs()
        except Exception:  # no source to analyse
            continue
        if ("", name) in docs:
            return [line for line in docs[("", name)] if line.strip()]
    return []


class StemgrainsConstants(SphinxDirective):
    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        package = self.arguments[0]
        names = exported_constants(package)
        if not names:
            return []
        lines: list[str] = []
        for name in names:
            value = getattr(importlib.import_module(package), name)
            text = repr(value)
            lines += [f".. py:data:: {name}", f"   :module: {package}"]
            if len(text) <= MAX_VALUE_CHARS:
                lines.append(f"   :value: {text}")
            else:
                lines.append(f"   :type: {type(value).__name__}")
            lines.append("")
            lines += ["   " + line for line in _comment(package, name)] + [""]
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source=f"{package}.__all__"), self.content_offset, container)
        return container.children


def setup(app):
    app.add_directive("stemgrains-constants", StemgrainsConstants)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
