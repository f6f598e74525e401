"""Record the numba kernels ``stemgrains run`` and ``stemgrains index`` call, with their signatures, for
:mod:`stemgrains._precompile`: ``python -m stemgrains._precompile_record`` (a ``run`` and an ``index`` of
``data_samples/``; run it in a process with an empty numba cache, ``NUMBA_CACHE_DIR=$(mktemp -d)``, to record each
kernel's compile seconds too). A development tool: nothing in the package imports it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from . import _precompile
from ._precompile import SIGNATURES_FILE

__all__ = ["record_signatures"]


def record_signatures(path: str | os.PathLike = SIGNATURES_FILE, sample: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Run ``stemgrains run`` and ``stemgrains index`` on ``sample`` (default ``data_samples/nba_sample.h5`` with
    its CIF) in this process and write the signatures of the package's kernels they called from Python to
    ``path``, with each kernel's compile seconds (those of the kernels compiled inside it included) where it
    compiled here (an empty numba cache), else the recorded ones. Kernels loaded from numba's cache list only
    the signatures they were called with; compiled here, the kernels compiled inside others are left out."""
    import tempfile

    from numba.core import event

    _precompile._done = True  # this process compiles (or loads) every kernel itself: that is what is recorded
    from numba.core.registry import CPUDispatcher

    from .cli import main

    root = Path(__file__).resolve().parents[2] / "data_samples"
    sample = Path(sample) if sample is not None else root / "nba_sample.h5"
    cif = root / "na_beta2_alumina.cif"
    seconds: dict[str, float] = {}
    with event.install_recorder("numba:compile") as rec, tempfile.TemporaryDirectory() as tmp:
        for argv in (["run", str(sample), "--phase", str(cif), "--field", "1,0", "--electrode", "left=1",
                      "--electrode", "right=0", "-o", f"{tmp}/run", "--no-progress"],
                     ["index", str(sample), "--phase", str(cif), "-o", f"{tmp}/map.h5", "--no-progress"]):
            if main(argv) != 0:
                raise RuntimeError(f"stemgrains {' '.join(argv)} failed")
    stack: list[tuple[str, float]] = []
    for ts, e in rec.buffer:
        f = getattr((e.data or {}).get("dispatcher"), "py_func", None)
        key = f"{f.__module__}.{f.__qualname__}" if f is not None else "?"
        if e.is_start:
            stack.append((key, ts))
        else:
            k, t1 = stack.pop()
            if not stack:  # a top-level kernel: its time includes the kernels compiled inside it
                seconds[k] = seconds.get(k, 0.0) + ts - t1
    before = {f"{it['module']}.{it['name']}": it.get("seconds") for it in _precompile.load_signatures(path)}
    items, seen = [], set()
    for mod in [m for name, m in list(sys.modules.items()) if name.startswith("stemgrains") and m is not None]:
        for obj in vars(mod).values():
            if isinstance(obj, CPUDispatcher) and id(obj) not in seen and obj.py_func.__module__ == mod.__name__:
                seen.add(id(obj))
                key = f"{obj.py_func.__module__}.{obj.py_func.__qualname__}"
                if seconds and key not in seconds:
                    continue  # compiled inside another kernel (which carries it): not called from Python
                for sig in obj.signatures:
                    items.append({"module": obj.py_func.__module__, "name": obj.py_func.__qualname__,
                                  "signature": [repr(t) for t in sig],
                                  "seconds": round(seconds.get(key) or before.get(key) or 1.0, 1)})
    items.sort(key=lambda it: (it["module"], it["name"]))
    from .io.results import atomic_write_text

    atomic_write_text(path, json.dumps(items, indent=1) + "\n")
    return items


if __name__ == "__main__":
    print(f"{len(record_signatures())} kernel signatures → {SIGNATURES_FILE}")
