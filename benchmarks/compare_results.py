"""Compare every dataset and attribute of the HDF5 files under two result folders: bitwise, or within 1e-12.

Usage: python benchmarks/compare_results.py REFERENCE_DIR NEW_DIR (e.g. the outputs of `stemgrains index`,
`segment` and `run` on data_samples/ before and after a refactoring). Time stamps (`created`), run times
(`/seconds` in JSON attributes) and the input path (`/input`) are reported as expected differences. Exit status 1
when anything else differs.
"""
import sys, pathlib, h5py, numpy as np
ref, new = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
atol = 1e-12
n_bitwise = n_close = n_diff = n_attr = 0
problems = []
expected = []
for f in sorted(ref.rglob("*.h5")):
    g = new / f.relative_to(ref)
    if not g.exists():
        problems.append(f"missing {g}"); continue
    with h5py.File(f, "r") as a, h5py.File(g, "r") as b:
        na, nb = [], []
        a.visit(na.append); b.visit(nb.append)
        if sorted(na) != sorted(nb):
            problems.append(f"{f.name}: different members {sorted(set(na) ^ set(nb))}")
        for name in ["/"] + na:
            x = a[name]
            if name not in b and name != "/": continue
            y = b[name]
            for k in x.attrs:
                va, vb = x.attrs[k], y.attrs.get(k, None)
                n_attr += 1
                same = np.array_equal(np.asarray(va), np.asarray(vb)) if vb is not None else False
                if not same and k == "created":
                    expected.append(f"{f.name}:{name} attr created (time stamp)"); continue
                if not same and isinstance(va, str) and va.startswith("{"):
                    import json
                    ja, jb = json.loads(va), json.loads(vb)
                    diffs = []
                    def walk(x, y, path=""):
                        if isinstance(x, dict) and isinstance(y, dict):
                            for kk in sorted(set(x) | set(y)):
                                walk(x.get(kk), y.get(kk), path + "/" + kk)
                        elif x != y:
                            diffs.append(path)
                    walk(ja, jb)
                    if all(d.endswith(("/seconds", "/input")) for d in diffs):
                        expected.append(f"{f.name}:{name} attr {k}: only {diffs} (run time / output folder)"); continue
                if not same:
                    problems.append(f"{f.name}:{name} attr {k}: {str(va)[:80]!r} vs {str(vb)[:80]!r}")
            if isinstance(x, h5py.Dataset):
                va, vb = x[()], y[()]
                if isinstance(va, np.ndarray) and va.dtype.kind in "fc":
                    if va.shape == vb.shape and np.array_equal(va, vb, equal_nan=True):
                        n_bitwise += 1
                    elif va.shape == vb.shape and np.allclose(va, vb, rtol=0, atol=atol, equal_nan=True):
                        n_close += 1; problems.append(f"{f.name}:{name} within {atol} (max {np.nanmax(np.abs(va-vb))})")
                    else:
                        n_diff += 1; problems.append(f"{f.name}:{name} DIFFERS")
                else:
                    if np.array_equal(np.asarray(va), np.asarray(vb)):
                        n_bitwise += 1
                    else:
                        n_diff += 1; problems.append(f"{f.name}:{name} DIFFERS (non-float)")
print(f"datasets bitwise equal: {n_bitwise}, within {atol}: {n_close}, different: {n_diff}; attributes compared: {n_attr}")
for p in problems: print("  PROBLEM", p)
print(f"expected differences ({len(expected)}):")
for p in expected: print("   ", p)
sys.exit(1 if problems else 0)
