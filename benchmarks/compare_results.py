"""Compare every dataset and attribute of the HDF5 files under two result folders: bitwise, or within 1e-12.

Usage: ``python benchmarks/compare_results.py REFERENCE_DIR NEW_DIR`` (e.g. the outputs of ``stemgrains index``,
``segment`` and ``run`` on data_samples/ before and after a refactoring). Time stamps (attribute ``created``),
run times (``/seconds`` inside JSON attributes) and the input path (``/input``) are listed as expected
differences. Exit status 1 when anything else differs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import h5py
import numpy as np

ATOL = 1e-12
EXPECTED_JSON_KEYS = ("/seconds", "/input")


def _json_diffs(a: object, b: object, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _json_diffs(a.get(k), b.get(k), f"{path}/{k}")]
    return [] if a == b else [path]


def _compare_attr(where: str, key: str, va: object, vb: object, problems: list[str], expected: list[str]) -> None:
    if vb is not None and np.array_equal(np.asarray(va), np.asarray(vb)):
        return
    if key == "created":
        expected.append(f"{where} attr created (time stamp)")
        return
    if isinstance(va, str) and isinstance(vb, str) and va.startswith("{"):
        diffs = _json_diffs(json.loads(va), json.loads(vb))
        if all(d.endswith(EXPECTED_JSON_KEYS) for d in diffs):
            expected.append(f"{where} attr {key}: only {diffs} (run time / output folder)")
            return
    problems.append(f"{where} attr {key}: {str(va)[:80]!r} vs {str(vb)[:80]!r}")


def compare(ref: Path, new: Path) -> tuple[dict[str, int], list[str], list[str]]:
    counts = {"bitwise": 0, "close": 0, "different": 0, "attributes": 0}
    problems: list[str] = []
    expected: list[str] = []
    for f in sorted(ref.rglob("*.h5")):
        g = new / f.relative_to(ref)
        if not g.exists():
            problems.append(f"missing {g}")
            continue
        with h5py.File(f, "r") as a, h5py.File(g, "r") as b:
            na: list[str] = []
            nb: list[str] = []
            a.visit(na.append)
            b.visit(nb.append)
            if sorted(na) != sorted(nb):
                problems.append(f"{f.name}: different members {sorted(set(na) ^ set(nb))}")
            for name in ["/", *na]:
                if name not in b:
                    continue
                x, y = a[name], b[name]
                for k in x.attrs:
                    counts["attributes"] += 1
                    _compare_attr(f"{f.name}:{name}", k, x.attrs[k], y.attrs.get(k, None), problems, expected)
                if not isinstance(x, h5py.Dataset):
                    continue
                va, vb = x[()], y[()]
                floating = isinstance(va, np.ndarray) and va.dtype.kind in "fc"
                if np.shape(va) == np.shape(vb) and np.array_equal(va, vb, equal_nan=floating):
                    counts["bitwise"] += 1
                elif floating and va.shape == vb.shape and np.allclose(va, vb, rtol=0, atol=ATOL, equal_nan=True):
                    counts["close"] += 1
                    problems.append(f"{f.name}:{name} within {ATOL} (max {np.nanmax(np.abs(va - vb))})")
                else:
                    counts["different"] += 1
                    problems.append(f"{f.name}:{name} DIFFERS")
    return counts, problems, expected


def main(argv: list[str]) -> int:
    counts, problems, expected = compare(Path(argv[0]), Path(argv[1]))
    print(f"datasets bitwise equal: {counts['bitwise']}, within {ATOL}: {counts['close']}, "
          f"different: {counts['different']}; attributes compared: {counts['attributes']}")
    for p in problems:
        print("  PROBLEM", p)
    print(f"expected differences ({len(expected)}):")
    for p in expected:
        print("   ", p)
    return 1 if any("within" not in p for p in problems) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
