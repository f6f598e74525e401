"""Accuracy benchmark: ``stemgrains.index.index_orientations`` (defaults) on the fixed datasets of ``tests/data``,
simulated by engines whose physics is not ours (py4DSTEM kinematic, abTEM multislice).

Per dataset it reports (JSON, default ``benchmarks/results/accuracy.json``):

* overall: fractions of pixels within 1°/2°/5° of the truth and the median disorientation (proper Laue group
  via orix, ``_common.orientation_accuracy``; not-indexed or wrong-phase pixels count as outside), the 180°
  kinematic ambiguity, indexing wall time; the wrong pixels whose found orientation's kinematic pattern is the
  truth's (``indistinguishable_percent``, :func:`pattern_correlation`: the data cannot tell them apart);
* per grain: grain id, designed class (from the file's ``metadata.grain_classes`` when present), the true
  c-axis angle to the beam (the crystal e3 axis, i.e. c for the hexagonal/trigonal frame; for cubic phases it is
  [001]), the nearest low-index zone axis and its angle, pixels, % indexed, % within 2°, median disorientation
  (all pixels: null when most are not indexed; and over the indexed pixels), median reliability;
* per orientation class (pixels pooled over the grains of the class), classes defined from the *true*
  orientation of each grain:

  - ``near_zone_axis``: the beam lies within 3° of a low-index zone axis — cubic: ⟨100⟩, ⟨110⟩, ⟨111⟩, ⟨112⟩;
    hexagonal/trigonal (three-index directions): [001] (= [0001]), ⟨100⟩ (= ⟨2-1-10⟩), ⟨210⟩ (= ⟨10-10⟩);
  - ``off_zone``: every other grain (the two are exclusive);
  - ``c_perp_beam`` (hexagonal/trigonal only, e.g. Na-β″ conduction planes edge-on): c-axis ≥ 80° from the beam;
  - ``c_par_beam`` (hexagonal/trigonal only): c-axis ≤ 10° from the beam
    (these two overlap with the first two);

* the reliability cut table: for cuts 0, 2, 5, 10 on the reliability R (0–100), the fraction of kept pixels
  that are right (< 2° from the truth; precision) and the fraction of right pixels that are kept (recall); the
  same for the grain reliability (index prop ``grain_reliability``) and, on hexagonal/trigonal phases, for the
  c-axis reliability against the c axis.

Usage::

    python benchmarks/bench_accuracy.py                       # every tests/data/*.h5
    python benchmarks/bench_accuracy.py tests/data/ci-nba-abtem.h5 -o /tmp/acc.json
    python benchmarks/bench_accuracy.py --index '{"search_stride": 5}' -o /tmp/acc_stride5.json   # a sweep
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
NEAR_ZONE_DEG = 3.0
C_PERP_DEG = 80.0
C_PAR_DEG = 10.0
RELIABILITY_CUTS = (0.0, 2.0, 5.0, 10.0)
ZONES_CUBIC = ((1, 0, 0), (1, 1, 0), (1, 1, 1), (1, 1, 2))
ZONES_HEX = ((0, 0, 1), (1, 0, 0), (2, 1, 0))


def _zone_family(phase, uvw) -> np.ndarray:
    """Unit Cartesian crystal-frame directions of the zone-axis family ⟨uvw⟩: [uvw] (lattice direction) turned
    by every proper rotation of the phase's Laue group."""
    from stemgrains.crystal.spots import rotation_matrices
    from stemgrains.library import laue_proper_group

    v = np.asarray(uvw, dtype=float) @ np.asarray(phase.structure.lattice.base, dtype=float)
    ops = rotation_matrices(np.asarray(laue_proper_group(phase).data, dtype=float))
    fam = ops @ v
    return fam / np.linalg.norm(fam, axis=1, keepdims=True)


def grain_geometry(phase, quaternion: np.ndarray) -> dict[str, Any]:
    """Beam-related angles of one true orientation: c-axis (crystal e3) angle to the beam, nearest low-index
    zone axis and its angle, and the orientation classes (module docstring)."""
    from stemgrains.crystal import is_hexagonal_like
    from stemgrains.crystal.spots import rotation_matrices

    R = rotation_matrices(np.asarray(quaternion, dtype=float))
    beam_c = R @ np.array([0.0, 0.0, 1.0])  # the beam direction in the crystal frame
    c_angle = float(np.degrees(np.arccos(min(1.0, abs(beam_c[2])))))
    hexagonal = bool(is_hexagonal_like(phase))
    best = (None, 180.0)
    for uvw in ZONES_HEX if hexagonal else ZONES_CUBIC:
        fam = _zone_family(phase, uvw)
        ang = float(np.degrees(np.arccos(min(1.0, np.max(np.abs(fam @ beam_c))))))
        if ang < best[1]:
            best = (uvw, ang)
    classes = ["near_zone_axis" if best[1] <= NEAR_ZONE_DEG else "off_zone"]
    if hexagonal and c_angle >= C_PERP_DEG:
        classes.append("c_perp_beam")
    if hexagonal and c_angle <= C_PAR_DEG:
        classes.append("c_par_beam")
    return {
        "c_axis_angle_to_beam_deg": c_angle,
        "nearest_zone_axis": list(best[0]),
        "nearest_zone_axis_deg": best[1],
        "classes": classes,
    }


def reliability_table(right: np.ndarray, rel: np.ndarray) -> list[dict[str, Any]]:
    """For each cut: kept fraction, fraction of kept pixels that are right, fraction of right pixels kept."""
    out = []
    for cut in RELIABILITY_CUTS:
        keep = rel >= cut
        out.append(
            {
                "cut": cut,
                "kept_fraction": float(keep.mean()) if len(keep) else None,
                "kept_right_fraction": float(right[keep].mean()) if keep.any() else None,
                "right_kept_fraction": float(keep[right].mean()) if right.any() else None,
            }
        )
    return out


def variants(q: np.ndarray, phase) -> list[np.ndarray]:
    """The orientations a thin crystal's spot pattern hardly tells from ``q`` (n, 4): stemgrains' pseudo-symmetric
    hypotheses (the beam twin q ∘ Rz(180°); for hexagonal/trigonal phases also R_c(60°) ∘ q (∘ Rz(180°))), from the
    orix-based reference of ``index._cpu.pseudo_symmetric``; one (n, 4) array per variant."""
    from stemgrains.crystal.phase import is_hexagonal_like
    from stemgrains.index._reference import pseudo_symmetric

    hex_like = bool(is_hexagonal_like(phase))
    if not len(q):
        return []
    return np.split(pseudo_symmetric(q, hex_like), 3 if hex_like else 1)


#: wrong pixels whose found orientation's kinematic pattern correlates at least this well with the truth's are
#: counted as indistinguishable (measured on the py4DSTEM Au sets: a Σ3 twin 2° from [111] 0.981-0.990, a 37° variant
#: of a random orientation 0.993-0.999; orientations 0.5° off the truth give a median 0.94-0.99 over random axes, 1°
#: off 0.80-0.95: above this, the found pattern is as close to the truth's as that of a ~0.5° error)
INDISTINGUISHABLE_CORRELATION = 0.98
PATTERN_BLUR_PX = 1.5


def pattern_correlation(phase, q_a: np.ndarray, q_b: np.ndarray, calibration, detector_shape, k_max: float,
                        sigma: float, chunk: int = 128) -> np.ndarray:
    """Per pair of orientations (n, 4) each, the normalised cross-correlation (0-1) of their kinematic spot patterns
    (:func:`stemgrains.crystal.kinematic_spots`, √ intensity at the detector position of the file's calibration,
    Gaussian blur of PATTERN_BLUR_PX px, spots within ``k_max`` 1/Å): near 1 no kinematic model, whatever its
    relrod width or intensities, can tell the two apart on this detector."""
    from scipy.ndimage import gaussian_filter

    from stemgrains.crystal import kinematic_spots, reflections

    refl = reflections(phase, k_max=k_max)
    ky, kx = detector_shape
    centre = np.asarray(calibration.center if calibration.center is not None else ((ky - 1) / 2, (kx - 1) / 2))

    def images(q: np.ndarray) -> np.ndarray:
        sp = kinematic_spots(refl, q, calibration.wavelength, sigma)
        rc = np.rint(calibration.sample_q_to_detector(sp.q_xy) + centre).astype(np.int64)
        amp = np.sqrt(np.clip(sp.intensity, 0, None))
        out = np.zeros((len(q), ky, kx))
        ok = (amp > 0) & (rc[..., 0] >= 0) & (rc[..., 0] < ky) & (rc[..., 1] >= 0) & (rc[..., 1] < kx)
        i = np.nonzero(ok)
        np.add.at(out, (i[0], rc[..., 0][ok], rc[..., 1][ok]), amp[ok])
        return gaussian_filter(out, (0, PATTERN_BLUR_PX, PATTERN_BLUR_PX))

    corr = np.zeros(len(q_a))
    for s in range(0, len(q_a), chunk):
        a, b = images(q_a[s:s + chunk]), images(q_b[s:s + chunk])
        num = np.sum(a * b, axis=(1, 2))
        den = np.sqrt(np.sum(a * a, axis=(1, 2)) * np.sum(b * b, axis=(1, 2)))
        corr[s:s + chunk] = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    return corr


def friedel_mates(ds, mask: np.ndarray) -> dict[str, Any]:
    """How centrosymmetric a grain's summed pattern is: of the stronger half of its spots, the fraction with a spot
    at −q (within 0.03 1/Å) of at least half its amplitude. Near 1, the pattern cannot tell an orientation from its
    beam twin (only the Ewald sphere's curvature could)."""
    from stemgrains.preprocess import SpotParams, detect_spots

    rows, cols = np.nonzero(mask)
    total = None
    for r, c in zip(rows, cols):
        p = np.asarray(ds.data[r, c], dtype=np.float64)
        total = p if total is None else total + p
    peaks, counts, _ = detect_spots(total, ds.calibration, SpotParams(max_peaks=200))
    pk = peaks[0, : counts[0]]
    if len(pk) < 2:
        return {"n_spots": int(len(pk)), "strong_with_mate": None}
    d = np.sqrt(((pk[:, None, :2] + pk[None, :, :2]) ** 2).sum(-1))
    j = d.argmin(axis=1)
    mate = (d[np.arange(len(pk)), j] < 0.03) & (pk[j, 2] >= 0.5 * pk[:, 2])
    strong = pk[:, 2] >= np.median(pk[:, 2])
    return {"n_spots": int(len(pk)), "strong_with_mate": float(mate[strong].mean())}


def evaluate(path: Path, progress: bool = False, index_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    import h5py

    from stemgrains.crystal import read_phases
    from stemgrains.index import index_orientations
    from stemgrains.io import load_4d

    with h5py.File(path, "r") as f:
        q_true = f["truth/quaternions"][()]
        pid_true = f["truth/phase_id"][()]
        gid = f["truth/grain_id"][()]
        params = json.loads(f["truth"].attrs["parameters"])
        phases = read_phases(f, source=str(path))
    ny, nx = gid.shape
    ds = load_4d(path)
    phase_objs = [phases[i] for i in phases.ids]
    t0 = time.perf_counter()
    xmap = index_orientations(ds, phase_objs, progress=progress, **(index_kwargs or {}))
    seconds = time.perf_counter() - t0
    q_found = xmap.rotations.data.reshape(ny, nx, 4)
    pid_found = np.asarray(xmap.phase_id).reshape(ny, nx)
    rel = np.asarray(xmap.prop["reliability"], dtype=float).reshape(ny, nx)
    rel_c = np.asarray(xmap.prop["c_axis_reliability"], dtype=float).reshape(ny, nx)
    rel_g = np.asarray(xmap.prop["grain_reliability"], dtype=float).reshape(ny, nx)
    spread = np.nan_to_num(np.asarray(xmap.prop["model_spread_deg"], dtype=float).reshape(ny, nx), nan=180.0)

    overall = C.orientation_accuracy(
        q_found.reshape(-1, 4), pid_found.ravel(), q_true.reshape(-1, 4), pid_true.ravel(), phases, rel.ravel(),
        right_deg=RIGHT_DEG,
    )
    # per-pixel disorientation (inf where not indexed / wrong phase / vacuum)
    ang = np.full((ny, nx), np.inf)
    for p in np.unique(pid_true[pid_true >= 0]):
        m = (pid_true == p) & (pid_found == p)
        if m.any():
            ang[m] = C.disorientation_deg(q_found[m], q_true[m], phases[int(p)])
    has = pid_true >= 0
    right = ang < RIGHT_DEG

    near_variant = np.zeros((ny, nx), bool)  # wrong, but within RIGHT_DEG of a variant of the truth
    for p in np.unique(pid_true[pid_true >= 0]):
        m = (pid_true == p) & (pid_found == p) & ~(ang < RIGHT_DEG)
        for v in variants(q_true[m], phases[int(p)]):
            near_variant[m] |= C.disorientation_deg(q_found[m], v, phases[int(p)]) < RIGHT_DEG
    # hexagonal/trigonal phases: how far the found c-axis (the conduction planes' normal) is from the true one
    from stemgrains.crystal.phase import is_hexagonal_like
    from stemgrains.crystal.symmetry import c_axis_sample

    c_err = np.full((ny, nx), np.inf)
    c_err_trace = np.full((ny, nx), np.inf)
    for p in np.unique(pid_true[pid_true >= 0]):
        m = (pid_true == p) & (pid_found == p)
        if m.any() and is_hexagonal_like(phases[int(p)]):
            cf, ct = c_axis_sample(q_found[m]), c_axis_sample(q_true[m])
            dot = np.abs(np.sum(cf * ct, axis=1))
            c_err[m] = np.degrees(np.arccos(np.clip(dot, 0.0, 1.0)))
            dot_m = np.abs(np.sum(cf * ct * [1.0, 1.0, -1.0], axis=1))  # the beam twin's c axis: c_z changes sign
            c_err_trace[m] = np.degrees(np.arccos(np.clip(np.maximum(dot, dot_m), 0.0, 1.0)))
    hexa = has & np.isin(pid_true, [p for p in np.unique(pid_true[pid_true >= 0]) if is_hexagonal_like(phases[int(p)])])
    # wrong pixels of the right phase whose found orientation's kinematic pattern is the truth's (ambiguous data)
    from stemgrains import config as _config
    from stemgrains.preprocess.api import detector_q_reach

    corr = np.full((ny, nx), np.nan)
    sigma_model = float(params.get("excitation_error_sigma") or _config.EXCITATION_ERROR_SIGMA)
    k_model = min(float(params.get("k_max") or _config.K_MAX_CAP), detector_q_reach(ds.calibration, ds.detector_shape))
    for p in np.unique(pid_true[pid_true >= 0]):
        m = (pid_true == p) & (pid_found == p) & ~right
        if m.any():
            corr[m] = pattern_correlation(phases[int(p)], q_found[m], q_true[m], ds.calibration, ds.detector_shape,
                                          k_model, sigma_model)
    twin_like = corr >= INDISTINGUISHABLE_CORRELATION
    designed = (params.get("metadata") or {}).get("grain_classes")
    grains, by_class = [], {}
    for g in np.unique(gid[gid > 0]):
        m = gid == g
        p = int(pid_true[m][0])
        geo = grain_geometry(phases[p], q_true[m][0])
        a = ang[m]
        grains.append(
            {
                "grain_id": int(g),
                "phase": phases[p].name,
                "designed_class": designed[g - 1] if designed and g - 1 < len(designed) else None,
                **geo,
                "n_pixels": int(m.sum()),
                "indexed_percent": float(100 * np.mean(pid_found[m] >= 0)),
                "within_2deg_percent": float(100 * np.mean(a < RIGHT_DEG)),
                "at_variant_percent": float(100 * np.mean(near_variant[m])),
                "indistinguishable_percent": float(100 * np.mean(twin_like[m])),
                "pattern_correlation_wrong_median": (float(np.nanmedian(corr[m])) if np.isfinite(corr[m]).any()
                                                     else None),
                "c_axis_within_2deg_percent": float(100 * np.mean(c_err[m] < RIGHT_DEG)) if hexa[m].any() else None,
                "friedel_mates": friedel_mates(ds, m),
                "median_deg": float(np.median(a)),  # inf (null) when most pixels are not indexed
                "median_deg_indexed": float(np.median(a[np.isfinite(a)])) if np.isfinite(a).any() else None,
                "median_reliability": float(np.median(rel[m])),
            }
        )
        for c in geo["classes"]:
            by_class.setdefault(c, []).append(m)
    classes = {}
    for c, masks in by_class.items():
        m = np.logical_or.reduce(masks)
        a = ang[m]
        classes[c] = {
            "n_grains": len(masks),
            "n_pixels": int(m.sum()),
            "within_1deg_percent": float(100 * np.mean(a < 1)),
            "within_2deg_percent": float(100 * np.mean(a < 2)),
            "within_5deg_percent": float(100 * np.mean(a < 5)),
            "median_deg": float(np.median(a)),
            "median_reliability": float(np.median(rel[m])),
        }
    return {
        "file": str(path),
        "engine": params.get("engine", "kinematic"),
        "phases": [phases[i].name for i in phases.ids],
        "scan_shape": [ny, nx],
        "seed": params.get("seed"),
        "dose": params.get("dose"),
        "thickness_nm": params.get("thickness_nm"),
        "index_seconds": seconds,
        "within_1deg_percent": 100 * overall["within_1deg"],
        "within_2deg_percent": 100 * overall["within_2deg"],
        "within_5deg_percent": 100 * overall["within_5deg"],
        "median_deg": overall["median_deg"],
        "indexed_fraction": overall["indexed_fraction"],
        "ambiguity_180": overall["ambiguity_180"],
        "at_variant_percent": float(100 * np.mean(near_variant[has])),
        "indistinguishable_percent": float(100 * np.mean(twin_like[has])),
        "within_2deg_or_indistinguishable_percent": float(100 * np.mean((right | twin_like)[has])),
        "reliability_cuts_indistinguishable_as_right": reliability_table((right | twin_like)[has], rel[has]),
        "c_axis_within_2deg_percent": float(100 * np.mean(c_err[hexa] < RIGHT_DEG)) if hexa.any() else None,
        "reliability_cuts": reliability_table(right[has], rel[has]),
        "grain_reliability_cuts": reliability_table(right[has], rel_g[has]),
        "model_spread_deg_median_right": float(np.median(spread[has & right])) if (has & right).any() else None,
        "model_spread_deg_median_wrong": float(np.median(spread[has & ~right])) if (has & ~right).any() else None,
        "reliability_cuts_spread_below_2deg": reliability_table(right[has], np.where(spread[has] < 2.0, rel[has], -1.0)),
        "grain_reliability_cuts_spread_below_2deg": reliability_table(right[has], np.where(spread[has] < 2.0, rel_g[has], -1.0)),
        "c_axis_trace_within_2deg_percent": float(100 * np.mean(c_err_trace[hexa] < RIGHT_DEG)) if hexa.any() else None,
        "c_axis_reliability_cuts": (reliability_table(c_err_trace[hexa] < RIGHT_DEG, rel_c[hexa]) if hexa.any() else None),
        "c_axis_reliability_cuts_5deg": (reliability_table(c_err_trace[hexa] < 5.0, rel_c[hexa]) if hexa.any() else None),
        "reliability_cuts_for_c_axis": (reliability_table(c_err_trace[hexa] < RIGHT_DEG, rel[hexa]) if hexa.any() else None),
        "per_class": classes,
        "per_grain": grains,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("datasets", nargs="*", type=Path, help="project .h5 files with /truth (default: tests/data/*.h5)")
    ap.add_argument("-o", "--output", type=Path, default=C.RESULTS_DIR / "accuracy.json")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--index", default="{}", metavar="JSON",
                    help="keyword arguments of index_orientations as a JSON object, for a sweep against the defaults "
                         "(e.g. '{\"search_stride\": 5}'); recorded under \"index_kwargs\"")
    args = ap.parse_args(argv)
    from stemgrains.errors import ParameterError

    try:
        index_kwargs = json.loads(args.index)
    except ValueError as err:
        print(f"--index {args.index!r}: expected a JSON object ({err})", file=sys.stderr)
        return 2
    if not isinstance(index_kwargs, dict):
        print(f"--index {args.index!r}: expected a JSON object of keyword arguments", file=sys.stderr)
        return 2
    paths = args.datasets or sorted((C.REPO / "tests" / "data").glob("*.h5"))
    if not paths:
        print("no datasets given and none in tests/data", file=sys.stderr)
        return 2
    for p in paths:
        if not p.is_file():
            print(f"{p}: no such file", file=sys.stderr)
            return 2
    results = []
    for p in paths:
        try:
            r = evaluate(p, progress=args.progress, index_kwargs=index_kwargs)
        except (ParameterError, TypeError) as err:  # a bad keyword or value: one line, not a traceback
            print(f"--index {args.index}: {err}", file=sys.stderr)
            return 2
        results.append(r)
        print(
            f"{p.name:28s} {r['engine']:9s} within 1/2/5°: {r['within_1deg_percent']:5.1f} {r['within_2deg_percent']:5.1f} "
            f"{r['within_5deg_percent']:5.1f} %  median {r['median_deg'] if r['median_deg'] is not None else float('nan'):.2f}°"
            f"  ({r['index_seconds']:.1f} s); at a variant of the truth {r['at_variant_percent']:.1f} %; "
            f"indistinguishable from the truth {r['indistinguishable_percent']:.1f} %"
            + (f"; c-axis within 2° {r['c_axis_within_2deg_percent']:.1f} %" if r["c_axis_within_2deg_percent"] is not None else "")
        )
        for key, what in (("reliability_cuts", "R >= 5"), ("grain_reliability_cuts", "grain R >= 5"),
                          ("grain_reliability_cuts_spread_below_2deg", "grain R >= 5, model spread < 2°")):
            cut = next(c for c in r[key] if c["cut"] == 5.0)
            print(f"    {what}: right among kept {100 * cut['kept_right_fraction']:.1f} %, right kept "
                  f"{100 * cut['right_kept_fraction']:.1f} %")
        for c, v in r["per_class"].items():
            print(f"    {c:15s} {v['n_grains']:2d} grains {v['n_pixels']:4d} px  within 2°: {v['within_2deg_percent']:5.1f} %")
    out = {
        "benchmark": "accuracy",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "definitions": {
            "right": f"disorientation < {RIGHT_DEG:g}° (proper Laue group)",
            "near_zone_axis": f"beam within {NEAR_ZONE_DEG:g}° of a low-index zone axis (cubic <100>,<110>,<111>,<112>; "
            "hexagonal [001],<100>,<210> three-index)",
            "off_zone": "not near_zone_axis",
            "c_perp_beam": f"hexagonal/trigonal, c-axis >= {C_PERP_DEG:g}° from the beam",
            "c_par_beam": f"hexagonal/trigonal, c-axis <= {C_PAR_DEG:g}° from the beam",
            "reliability_cuts": "kept = reliability >= cut; kept_right_fraction = right among kept; "
            "right_kept_fraction = kept among right",
            "grain_reliability_cuts": "as reliability_cuts, with the grain reliability (index prop grain_reliability: "
            "R, or the strength of the grain vote's significant decision where the pixel holds its solution)",
            "reliability_cuts_spread_below_2deg": "as reliability_cuts, keeping only pixels whose model spread (index "
            "prop model_spread_deg) is below 2° (grain_…: the same with the grain reliability)",
            "at_variant_percent": f"not right, but within {RIGHT_DEG:g}° of a variant of the truth: its beam twin "
            "truth ∘ Rz(180°), or for hexagonal/trigonal phases R_c(60°) ∘ truth (∘ Rz(180°))",
            "c_axis_within_2deg_percent": f"hexagonal/trigonal phases: pixels whose c-axis (the conduction planes' normal) "
            f"is within {RIGHT_DEG:g}° of the true one (as lines; the 60° turns about c leave it unchanged)",
            "c_axis_trace_within_2deg_percent": "the same, also after a change of sign of the true c axis's beam "
            "component (the beam twin's c axis): the basal planes' trace and inclination, all the classification uses",
            "c_axis_reliability_cuts": "as reliability_cuts, with the c-axis reliability (index prop c_axis_reliability) "
            f"as the score and 'right' = c_axis_trace error < {RIGHT_DEG:g}° (_5deg: < 5°); hexagonal/trigonal pixels",
            "reliability_cuts_for_c_axis": "the reliability R as the score, 'right' as in c_axis_reliability_cuts",
            "indistinguishable_percent": "pixels not right (right phase) whose found orientation's kinematic spot "
            "pattern (stemgrains.crystal.kinematic_spots at the file's relrod width, else the default; sqrt intensity "
            f"at the file's detector positions, blurred {PATTERN_BLUR_PX:g} px; spots within the file's k_max and the "
            f"detector's reach) correlates >= {INDISTINGUISHABLE_CORRELATION:g} with the truth's: the data cannot tell "
            "them apart (a Σ3 twin near <111>, pseudo-symmetric patterns); per grain also "
            "pattern_correlation_wrong_median over its wrong pixels",
            "within_2deg_or_indistinguishable_percent": "right, or indistinguishable from the truth",
            "reliability_cuts_indistinguishable_as_right": "as reliability_cuts, counting indistinguishable pixels as "
            "right",
            "friedel_mates": "per grain: of the stronger half of the spots of the grain's summed pattern (raw counts), "
            "strong_with_mate = the fraction with a spot at −q (within 0.03 1/Å) of at least half its amplitude; near 1 the "
            "pattern is centrosymmetric and cannot tell the truth from its beam twin",
        },
        "index_kwargs": index_kwargs,
        "machine": C.machine_info(),
        "versions": C.versions(),
        "datasets": results,
    }
    C.write_json(args.output, out)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
