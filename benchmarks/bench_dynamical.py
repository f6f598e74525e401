"""Kinematic against Bloch-wave (dynamical) scores, grain by grain, on the test sets of other simulators.

The question (issue: orientations that survive real diffraction): where a grain of a multislice (abTEM) set comes
out wrong, is it the kinematic *model* that prefers the wrong orientation, or the *search* that misses the right
one; and would dynamical intensities (``stemgrains.index.dynamical``, Bloch waves) tell the truth apart?

Per dataset of ``tests/data`` with a ``/truth`` group (default: every abTEM and py4DSTEM set), indexed with the
defaults; per true grain, on ``--patterns`` of its patterns (evenly spaced through the grain):

* ``found_deg``: the indexed orientation's disorientation from the truth (the grain's median pixel);
* kinematic image score (``_cpu.image_score``, the search's σ_s) at the truth and at the found orientation, each
  refined kinematically (``_cpu.refine_chunk``), and how far the refinement moves the truth (``kin_truth_moves_deg``:
  the kinematic optimum's offset from the truth);
* Bloch-wave score (``dynamical.grain_score`` at the set's true thickness, beams within ``--s-max``) at the truth
  and at the found orientation, unrefined and refined (``dynamical.refine_grain``), and the refined optima's
  disorientations from the truth.

Summary per dataset: of the wrong grains (found > 2°), how many the kinematic model prefers wrongly (refined found
scores ≥ refined truth), and how many the Bloch-wave model prefers the truth region for (refined truth > refined
found); over all grains, in how many each model's optimum near the truth lies more than 2° from it, and in how many
the Bloch-wave refinement started from the found orientation ends within 2° of the truth. The true thickness is an
oracle: this measures the model, not a thickness estimate.

Usage::

    python benchmarks/bench_dynamical.py [DATASETS...] [--patterns 4] [--s-max 0.06]
                                         [-o benchmarks/results/dynamical.json]     # ~5 min on 2 cores
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

RIGHT_DEG = 2.0


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else float("nan")


def _grain_rows(path: Path, n_patterns: int, s_max: float) -> dict[str, Any]:
    import h5py

    from stemgrains.crystal import read_phases
    from stemgrains.crystal.symmetry import disorientation_angle
    from stemgrains.index import _cpu, index_orientations
    from stemgrains.index.api import _search_inputs, _spots_as_indexed, IndexParams
    from stemgrains.index.dynamical import GrainPatterns, bloch_model, grain_score, refine_grain
    from stemgrains.io import load_4d
    from stemgrains.library.templates import build_library

    with h5py.File(path, "r") as f:
        q_true = f["truth/quaternions"][()].reshape(-1, 4).astype(np.float64)
        gid = f["truth/grain_id"][()].ravel()
        params = json.loads(f["truth"].attrs["parameters"])
        phases = read_phases(f, source=str(path))
    ds = load_4d(path)
    ph = [phases[i] for i in phases.ids]
    xmap = index_orientations(ds, ph, progress=False)
    q_found = xmap.rotations.data.reshape(-1, 4)
    sigma = float(xmap.parameters["excitation_error_sigma"])
    prm = IndexParams(excitation_error_sigma=sigma).resolved(ds.calibration, ds.detector_shape)
    thickness_A = 10.0 * float(params.get("thickness_nm") or 20.0)
    lib = build_library(ph[0], step_deg=prm.step_deg, k_max=prm.k_max,
                        accelerating_voltage_kV=ds.calibration.accelerating_voltage_kV, excitation_error_sigma=sigma)
    sym = lib.symmetry_quaternions
    model = bloch_model(ph[0], ds.calibration.accelerating_voltage_kV, prm.k_max, ds.calibration.wavelength)
    patterns = np.asarray(ds.data).reshape(-1, *ds.detector_shape)
    g_c, F2 = np.ascontiguousarray(lib.refl.g), np.ascontiguousarray(lib.refl.intensity)
    power = float(lib.params["intensity_power"])

    def deg(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.degrees(disorientation_angle(a[None], b[None], sym))[0])

    rows = []
    for g in np.unique(gid[gid >= 0]):
        members = np.flatnonzero(gid == g)
        sel = members[np.linspace(0, len(members) - 1, min(n_patterns, len(members))).astype(np.int64)]
        ctx = _search_inputs(patterns[sel], ds.calibration, _spots_as_indexed(prm))
        ang = np.degrees(disorientation_angle(q_found[members], q_true[members], sym))
        med = members[int(np.argsort(ang)[len(ang) // 2])]
        truth, found = q_true[med], q_found[med]
        every = np.ones(len(sel), bool)

        def kin(q: np.ndarray, refine: bool) -> tuple[float, np.ndarray]:
            qs = np.ascontiguousarray(np.repeat(q[None], len(sel), 0))
            if refine:
                qs, s = _cpu.refine_chunk(qs, every, ctx.imgs, ctx.centers, ctx.affine, g_c, F2, ctx.lam, sigma,
                                          ctx.q_min, prm.k_max, power, np.deg2rad(0.5), 150, np.deg2rad(0.01))
                return float(s.sum()), qs[0]
            return float(_cpu.image_scores(qs, every, ctx.imgs, ctx.centers, ctx.affine, g_c, F2, ctx.lam, sigma,
                                           ctx.q_min, prm.k_max, power).sum()), q

        pats = GrainPatterns(ctx.imgs, ctx.centers, ctx.affine, ctx.q_min, prm.k_max, power, np.array([thickness_A]))
        kt, kf = kin(truth, False)[0], kin(found, False)[0]
        (ktr, qktr), (kfr, _) = kin(truth, True), kin(found, True)
        dt, df = grain_score(model, truth, pats, s_max)[0], grain_score(model, found, pats, s_max)[0]
        qdt, dtr, _ = refine_grain(model, truth, pats, s_max, 1.0, 60)
        qdf, dfr, _ = refine_grain(model, found, pats, s_max, 1.0, 60)
        rows.append({
            "grain_id": int(g), "n_pixels": int(len(members)), "right_percent": float(100 * np.mean(ang < RIGHT_DEG)),
            "found_deg": deg(found, truth),
            "kinematic": {"truth": kt, "found": kf, "truth_refined": ktr, "found_refined": kfr,
                          "truth_moves_deg": deg(qktr, truth)},
            "bloch": {"truth": dt, "found": df, "truth_refined": dtr, "found_refined": dfr,
                      "truth_refined_deg": deg(qdt, truth), "found_refined_deg": deg(qdf, truth)},
        })
    wrong = [r for r in rows if r["found_deg"] > RIGHT_DEG]
    return {
        "file": path.name, "engine": params.get("engine"), "phase": ph[0].name, "thickness_nm": thickness_A / 10,
        "excitation_error_sigma": sigma, "grains": rows,
        "summary": {
            "grains": len(rows), "wrong_grains": len(wrong),
            "wrong_kinematic_prefers_found": sum(r["kinematic"]["found_refined"] >= r["kinematic"]["truth_refined"] for r in wrong),
            "wrong_bloch_prefers_truth": sum(r["bloch"]["truth_refined"] > r["bloch"]["found_refined"] for r in wrong),
            "right_grains": len(rows) - len(wrong),
            "right_median_found_deg": _median([r["found_deg"] for r in rows if r["found_deg"] <= RIGHT_DEG]),
            "right_median_bloch_refined_deg": _median([r["bloch"]["found_refined_deg"] for r in rows
                                                       if r["found_deg"] <= RIGHT_DEG]),
            "median_bloch_truth_refined_deg": float(np.median([r["bloch"]["truth_refined_deg"] for r in rows])),
            "median_kinematic_truth_moves_deg": float(np.median([r["kinematic"]["truth_moves_deg"] for r in rows])),
            "kinematic_optimum_beyond_2deg": sum(r["kinematic"]["truth_moves_deg"] > RIGHT_DEG for r in rows),
            "bloch_optimum_beyond_2deg": sum(r["bloch"]["truth_refined_deg"] > RIGHT_DEG for r in rows),
            "bloch_from_found_within_2deg": sum(r["bloch"]["found_refined_deg"] <= RIGHT_DEG for r in rows),
        },
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("datasets", nargs="*", type=Path,
                    help="project .h5 files with /truth (default: tests/data/*-abtem.h5 and *-py4dstem.h5)")
    ap.add_argument("--patterns", type=int, default=4, help="patterns per grain (default 4)")
    ap.add_argument("--s-max", type=float, default=0.06, help="Bloch beams within this excitation error, 1/Å")
    ap.add_argument("-o", "--output", type=Path, default=C.RESULTS_DIR / "dynamical.json",
                    help="JSON results (default benchmarks/results/dynamical.json)")
    args = ap.parse_args(argv)
    data = Path(__file__).resolve().parents[1] / "tests" / "data"
    paths = args.datasets or sorted(data.glob("*-abtem.h5")) + sorted(data.glob("*-py4dstem.h5"))
    out = []
    for p in paths:
        t0 = time.perf_counter()
        r = _grain_rows(p, args.patterns, args.s_max)
        s = r["summary"]
        wrong = (f"; of these the kinematic score prefers the wrong answer on {s['wrong_kinematic_prefers_found']}, "
                 f"the Bloch wave the truth on {s['wrong_bloch_prefers_truth']}") if s["wrong_grains"] else ""
        print(f"{p.name}: {s['wrong_grains']} of {s['grains']} grains wrong{wrong}; right grains "
              f"{s['right_median_found_deg']:.2f}° off (median), {s['right_median_bloch_refined_deg']:.2f}° after "
              f"Bloch refinement; the optimum near the truth lies > 2° from it on {s['kinematic_optimum_beyond_2deg']} "
              f"grains (kinematic) and {s['bloch_optimum_beyond_2deg']} (Bloch wave)  ({time.perf_counter() - t0:.0f} s)",
              flush=True)
        out.append(r)
    C.write_json(args.output, {
        "benchmark": "dynamical", "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "definitions": {"right": f"disorientation < {RIGHT_DEG:g}° (proper Laue group)",
                        "scores": "sums over the grain's patterns of Σ b P / ‖b‖ (image score); kinematic b from the "
                                  "library's |F|² and the search's σ_s, Bloch b = √I at the true thickness"},
        "settings": {"patterns_per_grain": args.patterns, "s_max": args.s_max},
        "machine": C.machine_info(), "versions": C.versions(), "datasets": out,
    })
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
