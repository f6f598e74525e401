"""Indexing benchmark: speed and accuracy of ``stemgrains.index`` on the standard datasets, with py4DSTEM ACOM
measured beside it on the same data in the same run.

Parts (see benchmarks/README.md and shared/docs/benchmarks.md):

1. data: the standard datasets (``stemgrains.simulate.standard_dataset``), cached in ``benchmarks/data/``;
2. ours, per dataset and library step, engine defaults (``IndexParams``): library build (uncached and from the
   on-disk cache), the matching stage alone (``index_patterns`` on an in-memory block of scan rows) and the
   whole job (``load_4d`` → ``index_orientations`` streaming by chunks → CrystalMap → results file written with
   ``write_orientation_map`` in ``atomic_h5``), patterns/s as medians over ``--repeat`` runs, peak RSS, and a
   stage profile (spot detection, prefilter, coarse search + candidate scoring, refinement);
3. accuracy against the truth: disorientation with the proper Laue group (orix), median, fractions within
   1°/2°/5°, the 180° kinematic ambiguity (truth ∘ Rz(180°)) and how reliability flags wrong pixels;
4. py4DSTEM ACOM (``--py4dstem``) on an evenly spread subset of the same patterns, alternated A/B with ours on
   the same in-memory subset; its orientation matrices converted to our convention (tested on single patterns,
   see ``py4dstem_convention_check``);
5. scaling (fresh subprocess per point, so peak RSS is per measurement): scan size, detector size, library step.

Usage::

    python benchmarks/bench_index.py --quick                 # ~10 min on 2 loaded cores
    python benchmarks/bench_index.py --py4dstem              # full run
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import io
import json
import os
import re
import subprocess
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

SCRIPT = Path(__file__).resolve()
PY4DSTEM_SUBSET_DEFAULT = 128
PY4DSTEM_SUBSET_QUICK = 32


# ----------------------------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------------------------
def dataset_path(name: str, data_dir: Path, **overrides: Any) -> tuple[Path, float | None]:
    """The standard dataset ``name`` (with simulation ``overrides``) in ``data_dir``, simulated when absent.

    Returns the path and the simulation time (None when it was cached)."""
    from stemgrains.simulate import standard_dataset

    tag = "".join(f"_{k}{'x'.join(map(str, v)) if isinstance(v, (tuple, list)) else v}" for k, v in sorted(overrides.items()))
    path = data_dir / f"{name}{tag}.h5"
    if path.is_file():
        return path, None
    t0 = time.perf_counter()
    standard_dataset(name, path, progress=False, **overrides)
    return path, time.perf_counter() - t0


def _truth_parameters(path: Path) -> dict[str, Any]:
    import h5py

    with h5py.File(path, "r") as f:
        if "truth" in f and "parameters" in f["truth"].attrs:
            return json.loads(f["truth"].attrs["parameters"])
    return {}


def spread_indices(n_total: int, n: int) -> np.ndarray:
    """``n`` flat pixel indices evenly spread over a map of ``n_total`` pixels (``linspace(0, n_total-1, n)``)."""
    n = min(n, n_total)
    return np.unique(np.round(np.linspace(0, n_total - 1, n)).astype(np.int64))


def read_patterns(ds: Any, flat: np.ndarray) -> np.ndarray:
    """(n, ky, kx) patterns at flat scan indices (row by row from the lazy dataset)."""
    ny, nx = ds.scan_shape
    rows, cols = np.divmod(flat, nx)
    out = []
    for r in np.unique(rows):
        block = np.asarray(ds.rows(int(r), int(r) + 1))[0]
        out.append(block[cols[rows == r]])
    return np.concatenate(out)


# ----------------------------------------------------------------------------------------------------------------
# ours
# ----------------------------------------------------------------------------------------------------------------
def _phase_items(phases: Any) -> list[tuple[int, Any]]:
    return [(i, p) for i, p in phases if i >= 0]


def build_libraries(phases: Any, prm: Any, voltage_kV: float, repeat: int) -> tuple[list[Any], dict[str, Any]]:
    """Libraries of all phases; timings uncached (``cache=False``) and loaded from the on-disk cache (median)."""
    from stemgrains.library.templates import build_library

    kw = dict(step_deg=prm.step_deg, k_max=prm.k_max, accelerating_voltage_kV=voltage_kV,
              excitation_error_sigma=prm.excitation_error_sigma)
    t_unc = 0.0
    for _, p in _phase_items(phases):
        t, _lib = C.timed(lambda p=p: build_library(p, cache=False, **kw))
        t_unc += t
    libs = [build_library(p, **kw) for _, p in _phase_items(phases)]  # make sure the cache holds them
    cached = []
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        libs = [build_library(p, **kw) for _, p in _phase_items(phases)]
        cached.append(time.perf_counter() - t0)
    return libs, {
        "n_templates": [lib.n_templates for lib in libs],
        "uncached_s": t_unc,
        "cached_s_median": float(np.median(cached)),
        "cached_s": cached,
        "cache_dir": str(__import__("stemgrains.library", fromlist=["default_cache_dir"]).default_cache_dir()),
    }


def whole_job(path: Path, phases: Any, libs: list[Any], prm: Any, out_h5: Path) -> tuple[float, Any]:
    """load → relrod width chosen from the data (the default: a subsample searched with each candidate σ_s,
    libraries loaded from the on-disk cache) → spots → match → refine → CrystalMap → results file (atomic), as
    ``stemgrains index`` runs it by default. Returns (seconds, CrystalMap); ``libs`` are not used (kept for the
    call signature)."""
    from stemgrains.index import index_orientations
    from stemgrains.io import load_4d, write_orientation_map
    from stemgrains.io.results import atomic_h5, write_parameters, write_provenance

    t0 = time.perf_counter()
    ds = load_4d(path)
    xmap = index_orientations(ds, phases, progress=False, **{**prm.as_dict(), "excitation_error_sigma": None})
    with atomic_h5(out_h5) as f:
        write_provenance(f, input_path=path, calibration=ds.calibration, phases=phases)
        write_parameters(f, "index", prm.as_dict())
        write_orientation_map(f, xmap)
    return time.perf_counter() - t0, xmap


def stage_profile(block: np.ndarray, cal: Any, libs: list[Any], prm: Any, repeat: int = 3,
                  grid: tuple[int, int] | None = None) -> dict[str, Any]:
    """Where the time goes on one in-memory block (seconds): spot detection, processed images, prefilter (radial
    descriptors + one matrix product + top-k), coarse search + candidate scoring (the chunk kernel with
    ``refine_max_eval=1``), refinement (without the neighbour pass minus that) and the neighbour pass (the full
    run on the ``grid`` minus the run without it). Estimates: the kernel is one numba call."""
    from stemgrains.index import _cpu, index_patterns
    from stemgrains.library.templates import HARMONICS
    from stemgrains.preprocess.api import detect_spots, processed_images

    sp = replace(prm.spots, q_max=prm.k_max if prm.spots.q_max is None else min(prm.spots.q_max, prm.k_max))
    t_spots, (peaks, counts, centers) = C.timed(lambda: detect_spots(block, cal, sp))
    t_img, _ = C.timed(lambda: processed_images(block, cal, centers, sp))

    def prefilter() -> None:
        for lib in libs:
            h = np.asarray(HARMONICS, dtype=np.float64)
            nb = lib.radial.shape[1] // len(h)
            d = _cpu.peak_radial_descriptors(peaks, counts, float(lib.params["radial_bin_width"]), nb, h)
            s = d @ lib.radial.T
            k = min(prm.n_prefilter, lib.n_templates)
            if k < lib.n_templates:
                np.argpartition(-s, k - 1, axis=1)

    def med(fn: Any) -> float:
        return float(np.median([C.timed(fn)[0] for _ in range(max(1, repeat))]))

    t_pre = med(prefilter)
    t_full = med(lambda: index_patterns(block, cal, libs, prm, scan_shape=grid))
    t_nopass = med(lambda: index_patterns(block, cal, libs, replace(prm, neighbor_pass=False), scan_shape=grid))
    t_norefine = med(lambda: index_patterns(block, cal, libs, replace(prm, refine_max_eval=1, neighbor_pass=False), scan_shape=grid))
    t_every = med(lambda: index_patterns(block, cal, libs, replace(prm, search_stride=1), scan_shape=grid))
    kernel_coarse = max(t_norefine - t_spots - t_img - t_pre, 0.0)
    return {
        "n_patterns": len(block),
        "search_stride": prm.search_stride,
        "spot_detection_s": t_spots,
        "processed_images_s": t_img,
        "prefilter_s": t_pre,
        "coarse_and_candidate_scoring_s": kernel_coarse,
        "refinement_s": max(t_nopass - t_norefine, 0.0),
        "neighbor_pass_s": max(t_full - t_nopass, 0.0),
        "total_s": t_full,
        "total_every_pixel_searched_s": t_every,
        "method": "separate calls on the same block (its scan grid given, so the grain-coherent search applies); "
                  "coarse = index_patterns(refine_max_eval=1, no neighbour pass) minus the stages before it (it "
                  "includes the verification of the pixels not searched, less their refinement); refinement = without "
                  "the neighbour pass minus refine_max_eval=1; neighbour pass = full minus without; "
                  "total_every_pixel_searched_s = search_stride=1 (estimates; spots/images single runs, the rest "
                  "medians over repeats)",
    }


def ours_subset(patterns: np.ndarray, cal: Any, libs: list[Any], prm: Any) -> tuple[float, Any]:
    from stemgrains.index import index_patterns

    return C.timed(lambda: index_patterns(patterns, cal, libs, prm))


# ----------------------------------------------------------------------------------------------------------------
# py4DSTEM ACOM
# ----------------------------------------------------------------------------------------------------------------
#: our sample frame (x = detector columns, y = rows, z = beam into the specimen) → py4DSTEM's lab frame
#: (qx along detector rows, qy along columns, beam k0 ∥ −z): v_p4d = P v_ours; P is a proper rotation.
P_OURS_TO_P4D = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])


def py4dstem_to_quaternions(matrices: np.ndarray) -> np.ndarray:
    """py4DSTEM ACOM orientation matrices (…, 3, 3) → orix quaternions (…, 4) (sample → crystal).

    py4DSTEM projects crystal-frame g onto its lab frame with ``g_lab = M.T @ g_crystal`` (Crystal.
    generate_diffraction_pattern), its crystal Cartesian frame is a ∥ x, b in the xy-plane (the same as orix's
    for the cell parameters) and its lab frame is ours by ``P_OURS_TO_P4D``; hence ``v_crystal = M @ P @ v_sample``.
    Checked numerically by :func:`py4dstem_convention_check`.
    """
    from orix.quaternion import Rotation

    m = np.asarray(matrices, dtype=np.float64)
    R = m @ P_OURS_TO_P4D
    return Rotation.from_matrix(R.reshape(-1, 3, 3)).data.reshape(m.shape[:-2] + (4,))


def _p4d_crystal(phase: Any, cif_path: Path | None) -> tuple[Any, dict[str, Any]]:
    """py4DSTEM Crystal: ``Crystal.from_CIF`` (needs pymatgen); if that fails, the same structure (as expanded by
    our CIF reader) through ``Crystal(positions, numbers, cell, occupancy)``; the error is recorded."""
    from py4DSTEM.process.diffraction import Crystal
    from py4DSTEM.process.diffraction.utils import element_symbols

    info: dict[str, Any] = {}
    if cif_path is not None:
        try:
            return Crystal.from_CIF(str(cif_path)), {"crystal_from": "Crystal.from_CIF"}
        except Exception as err:  # noqa: BLE001 - any failure of the peer is recorded, not fatal
            info["from_CIF_error"] = f"{type(err).__name__}: {err}"
    st = phase.structure
    pos = np.array([a.xyz for a in st], dtype=np.float64)
    occ = np.array([a.occupancy for a in st], dtype=np.float64)
    z = [element_symbols.index(re.match(r"[A-Z][a-z]?", a.element).group(0)) + 1 for a in st]
    lat = st.lattice
    cell = [lat.a, lat.b, lat.c, lat.alpha, lat.beta, lat.gamma]
    info["crystal_from"] = "Crystal(positions, numbers, cell, occupancy) from the same CIF via stemgrains.crystal.load_phase"
    return Crystal(pos, np.array(z), cell, occupancy=occ), info


def _zone_axis_kwargs(phase: Any) -> dict[str, Any]:
    """py4DSTEM's own 'auto' zone-axis range for the point group (its table; 'auto' itself needs pymatgen)."""
    from py4DSTEM.process.diffraction.crystal_ACOM import orientation_ranges

    zr, axis, angles = orientation_ranges[phase.point_group.name]
    kw: dict[str, Any] = {"zone_axis_range": zr if isinstance(zr, str) else np.array(zr, dtype=float)}
    if axis is not None:
        kw.update(fiber_axis=list(axis), fiber_angles=list(angles))
    return kw


class Py4dstemACOM:
    """py4DSTEM 0.14 ACOM set up for one phase and one dataset geometry (plan built once)."""

    def __init__(self, phase: Any, cif_path: Path | None, cal: Any, detector_shape: tuple[int, int], step_deg: float,
                 k_max: float, convergence_mrad: float, blur_px: float) -> None:
        import py4DSTEM  # noqa: F401

        self.cal = cal
        self.detector_shape = detector_shape
        self.crystal, self.info = _p4d_crystal(phase, cif_path)
        zkw = _zone_axis_kwargs(phase)
        self.plan_kwargs = dict(angle_step_zone_axis=step_deg, angle_step_in_plane=step_deg, accel_voltage=cal.accelerating_voltage_kV * 1e3,
                                **zkw)
        t0 = time.perf_counter()
        with _quiet():
            self.crystal.calculate_structure_factors(k_max)
            self.crystal.orientation_plan(progress_bar=False, **self.plan_kwargs)
        self.plan_s = time.perf_counter() - t0
        self.radius_px = max(convergence_mrad * 1e-3 / cal.wavelength / cal.q_pixel_size, 1.0)
        ky, kx = detector_shape
        self.center = cal.center if cal.center is not None else (ky / 2.0, kx / 2.0)
        import py4DSTEM

        probe = py4DSTEM.Probe.generate_synthetic_probe(self.radius_px, 2.0 * blur_px, (ky, kx))
        with _quiet():
            self.kernel = probe.get_kernel(mode="sigmoid", origin=(ky / 2.0, kx / 2.0),
                                           radii=(1.5 * self.radius_px, 4.0 * self.radius_px))
        self.disk_kwargs = dict(sigma=0, corrPower=1, sigma_cc=1, subpixel="poly", minAbsoluteIntensity=0,
                                minRelativeIntensity=0.005, relativeToPeak=0, minPeakSpacing=max(3.0, 2.5 * self.radius_px),
                                edgeBoundary=2, maxNumPeaks=70)
        self.match_kwargs = dict(num_matches_return=1, min_number_peaks=3, inversion_symmetry=True)

    def parameters(self) -> dict[str, Any]:
        return {
            "plan": {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self.plan_kwargs.items()},
            "n_zone_axes": int(self.crystal.orientation_num_zones),
            "n_in_plane": int(self.crystal.orientation_in_plane_steps),
            "find_Bragg_disks": dict(self.disk_kwargs, template=f"synthetic probe radius {self.radius_px:.2f} px, sigmoid kernel"),
            "calibration": {"Q_pixel_size_A^-1": self.cal.q_pixel_size, "origin_px": list(self.center),
                            "QR_rotation_deg": 0.0, "QR_flip": False, "ellipse": "not set"},
            "match_orientations": self.match_kwargs,
            **self.info,
        }

    def index(self, patterns: np.ndarray) -> dict[str, Any]:
        """Disks + matching on (n, ky, kx) in-memory patterns; times and quaternions (ours convention)."""
        import py4DSTEM

        n = len(patterns)
        dc = py4DSTEM.DataCube(np.asarray(patterns, dtype=np.float32).reshape((1, n) + patterns.shape[1:]))
        with _quiet():
            t0 = time.perf_counter()
            bv = dc.find_Bragg_disks(template=self.kernel, **self.disk_kwargs)
            t1 = time.perf_counter()
            bv.calibration.set_Q_pixel_size(self.cal.q_pixel_size)
            bv.calibration.set_Q_pixel_units("A^-1")
            bv.calibration.set_origin(tuple(float(c) for c in self.center))
            bv.calibration.set_QR_rotation_degrees(0.0)
            bv.calibration.set_QR_flip(False)
            bv.setcal(center=True, ellipse=False, pixel=True, rotate=True)
            om = self.crystal.match_orientations(bv, progress_bar=False, **self.match_kwargs)
            t2 = time.perf_counter()
        corr = np.asarray(om.corr[0, :, 0], dtype=np.float64)
        q = py4dstem_to_quaternions(np.asarray(om.matrix[0, :, 0]))
        n_peaks = np.array([len(bv.raw[0, j].data) for j in range(n)])
        return {"disks_s": t1 - t0, "match_s": t2 - t1, "quaternions": q, "corr": corr, "n_peaks": n_peaks}


@contextlib.contextmanager
def _quiet():
    """Silence py4DSTEM's prints and warnings (e.g. 'bragg peaks not elliptically calibrated')."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def py4dstem_convention_check(step_deg: float = 2.0) -> dict[str, Any]:
    """Simulate single Au patterns with our simulator (one near [001]: 4° tilt about x, 25° about z, and three
    random ones, noise-free), index them with py4DSTEM and compare the converted orientations with the truth."""
    from orix.quaternion import Rotation

    from stemgrains.crystal import load_phase
    from stemgrains.simulate import random_quaternions, sample_cif, simulate_patterns

    phase = load_phase(sample_cif("au"), name="au")
    q001 = (Rotation.from_axes_angles([1, 0, 0], np.deg2rad(4.0)) * Rotation.from_axes_angles([0, 0, 1], np.deg2rad(25.0))).data
    q = np.concatenate([q001, random_quaternions(3, np.random.default_rng(3))])
    sim = simulate_patterns([phase], scan_shape=(1, 4), labels=np.arange(1, 5)[None], orientations=q, dose=None, seed=1)
    acom = Py4dstemACOM(phase, sample_cif("au"), sim.calibration, sim.data.shape[2:], step_deg, 1.5, 1.0, 1.0)
    res = acom.index(sim.data[0])
    ang = C.disorientation_deg(res["quaternions"], q, phase)
    return {
        "orientations": "Au: [001] tilted 4° about x then 25° in-plane, and 3 random (seed 3); noise-free, 128² detector",
        "conversion": "v_crystal = M @ P @ v_sample, P = [[0,1,0],[1,0,0],[0,0,-1]] (py4DSTEM qx ∥ rows, beam ∥ −z)",
        "disorientation_deg": ang.tolist(),
        "passed": bool(np.all(ang < step_deg + 0.5)),
    }


def py4dstem_acom(path: str, cif: str, step_deg: float, n_patterns: int = 64) -> dict[str, Any]:
    """Hook for ``bench_scale.py``: py4DSTEM ACOM on ``n_patterns`` evenly spread patterns of a project file
    with truth; returns ``patterns_per_s`` (disks + matching, plan excluded), ``plan_s``, ``within_2deg``,
    ``median_deg`` and the subset size."""
    from stemgrains.crystal import load_phase
    from stemgrains.io import load_4d, load_truth

    phase = load_phase(cif)
    ds = load_4d(path)
    tp = _truth_parameters(Path(path))
    acom = Py4dstemACOM(phase, Path(cif), ds.calibration, ds.detector_shape, step_deg, 1.5,
                        float(tp.get("convergence_semiangle_mrad", 1.0)), float(tp.get("blur_px", 1.0)))
    flat = spread_indices(int(np.prod(ds.scan_shape)), n_patterns)
    res = acom.index(read_patterns(ds, flat))
    truth = load_truth(path)
    acc = C.orientation_accuracy(res["quaternions"], np.where(res["corr"] > 0, 0, -1), truth["quaternions"].reshape(-1, 4)[flat],
                                 np.zeros(len(flat), int), {0: phase})
    return {"patterns_per_s": len(flat) / (res["disks_s"] + res["match_s"]), "plan_s": acom.plan_s,
            "n_patterns_subset": len(flat), "within_2deg": acc["within_2deg"], "median_deg": acc["median_deg"]}


def compare_with_py4dstem(path: Path, phases: Any, libs: list[Any], prm: Any, n_subset: int, rounds: int) -> dict[str, Any]:
    """py4DSTEM vs ours on the same evenly spread subset of patterns, alternated A/B (``rounds`` each)."""
    from stemgrains.crystal import phase_cif_text
    from stemgrains.io import load_4d, load_truth

    out: dict[str, Any] = {"status": "error"}
    items = _phase_items(phases)
    if len(items) != 1:
        return {"status": "skipped: multi-phase dataset (py4DSTEM ACOM is run for single-phase data only)"}
    pid, phase = items[0]
    ds = load_4d(path)
    ny, nx = ds.scan_shape
    flat = spread_indices(ny * nx, n_subset)
    out["subset"] = {"n": int(len(flat)), "rule": f"flat indices round(linspace(0, {ny * nx - 1}, {n_subset})) of the {ny}×{nx} map"}
    try:
        cif = C.DATA_DIR / f"{phase.name}.cif"
        cif.write_text(phase_cif_text(phase))
        tp = _truth_parameters(path)
        t_setup, acom = C.timed(lambda: Py4dstemACOM(phase, cif, ds.calibration, ds.detector_shape, prm.step_deg, prm.k_max,
                                                     float(tp.get("convergence_semiangle_mrad", 1.0)), float(tp.get("blur_px", 1.0))))
        out["parameters"] = acom.parameters()
        out["plan_s"] = acom.plan_s
        patterns = read_patterns(ds, flat)
        truth = load_truth(path)
        tq = truth["quaternions"].reshape(-1, 4)[flat]
        tp_id = truth["phase_id"].reshape(-1)[flat]
        ours_t, p4d_t, p4d_disks, p4d_match = [], [], [], []
        res_p = res_o = None
        for r in range(max(1, rounds)):
            order = ("ours", "py4dstem") if r % 2 == 0 else ("py4dstem", "ours")
            for who in order:
                if who == "ours":
                    t, res_o = ours_subset(patterns, ds.calibration, libs, prm)
                    ours_t.append(t)
                else:
                    res_p = acom.index(patterns)
                    p4d_t.append(res_p["disks_s"] + res_p["match_s"])
                    p4d_disks.append(res_p["disks_s"])
                    p4d_match.append(res_p["match_s"])
        n = len(flat)
        p4d_phase = np.where(res_p["corr"] > 0, pid, -1)
        out["py4dstem"] = {
            "subset_disks_plus_match": C.rate_summary(p4d_t, n),
            "subset_match_only": C.rate_summary(p4d_match, n),
            "disks_s_median": float(np.median(p4d_disks)),
            "median_peaks_found": float(np.median(res_p["n_peaks"])),
            "accuracy_subset": C.orientation_accuracy(res_p["quaternions"], p4d_phase, tq, tp_id, {pid: phase}),
        }
        out["ours_same_subset"] = {
            "subset_index_patterns": C.rate_summary(ours_t, n),
            "accuracy_subset": C.orientation_accuracy(res_o.quaternions, res_o.phase_id, tq, tp_id, {pid: phase}, res_o.reliability),
        }
        rp = out["py4dstem"]["subset_disks_plus_match"]["patterns_per_s"]
        ro = out["ours_same_subset"]["subset_index_patterns"]["patterns_per_s"]
        out["speed_ratio_ours_over_py4dstem"] = ro / rp if rp else None
        out["py4dstem_full_map_extrapolated"] = {
            "note": "EXTRAPOLATED from the subset: plan_s + (ny·nx) / subset patterns/s (disks + matching)",
            "seconds": acom.plan_s + ny * nx / rp if rp else None,
            "patterns_per_s_including_plan": ny * nx / (acom.plan_s + ny * nx / rp) if rp else None,
        }
        out["status"] = "ok"
    except Exception as err:  # noqa: BLE001 - a failing peer is recorded and the benchmark goes on
        import traceback

        out["error"] = f"{type(err).__name__}: {err}"
        out["traceback_tail"] = traceback.format_exc().strip().splitlines()[-4:]
    return out


# ----------------------------------------------------------------------------------------------------------------
# scaling: one fresh subprocess per point
# ----------------------------------------------------------------------------------------------------------------
def child(spec: dict[str, Any]) -> dict[str, Any]:
    """One scaling point in this fresh process: warm-up, matching block, whole job (RSS sampled), accuracy."""
    from stemgrains.index import IndexParams, index_patterns
    from stemgrains.io import load_4d, load_phases_from, load_truth

    path = Path(spec["path"])
    phases = load_phases_from(path)
    ds = load_4d(path)
    prm = IndexParams(step_deg=float(spec["step_deg"])).resolved(ds.calibration, ds.detector_shape)
    ny, nx = ds.scan_shape
    ky, kx = ds.detector_shape
    libs, lib_info = build_libraries(phases, prm, ds.calibration.accelerating_voltage_kV, 1)
    t_warm, _ = C.timed(lambda: index_patterns(np.asarray(ds.rows(0, 1)).reshape(-1, ky, kx), ds.calibration, libs, prm))
    rss_setup = C.rss_mb()
    block = np.asarray(ds.rows(0, min(ny, prm.chunk_rows))).reshape(-1, ky, kx)
    t_match, _ = C.timed(lambda: index_patterns(block, ds.calibration, libs, prm, scan_shape=(min(ny, prm.chunk_rows), nx)))
    del block
    out_h5 = Path(spec["out_h5"])
    with C.RssSampler() as sampler:
        t_job, xmap = whole_job(path, phases, libs, prm, out_h5)
    with contextlib.suppress(OSError):
        out_h5.unlink()
    truth = load_truth(path)
    acc = C.orientation_accuracy(xmap.rotations.data, xmap.phase_id, truth["quaternions"], truth["phase_id"], phases,
                                 xmap.prop["reliability"])
    return {
        "scan": [ny, nx], "detector": [ky, kx], "step_deg": prm.step_deg, "n_templates": lib_info["n_templates"],
        "cube_mib": ny * nx * ky * kx * ds.dtype.itemsize / 2**20, "warmup_s": t_warm,
        "match_patterns_per_s": (min(ny, prm.chunk_rows) * nx) / t_match, "job_s": t_job, "job_patterns_per_s": ny * nx / t_job,
        "rss_after_setup_mib": rss_setup, "peak_rss_during_job_mib": sampler.peak_mb, "max_rss_mib": C.max_rss_mb(),
        "within_2deg": acc["within_2deg"], "median_deg": acc["median_deg"], "status": "ok",
    }


def run_child(path: Path, step: float, out_dir: Path) -> dict[str, Any]:
    spec = {"path": str(path), "step_deg": step, "out_h5": str(out_dir / f"scaling_{path.stem}_{step:g}.h5")}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--child", json.dumps(spec)], capture_output=True, text=True)
    if proc.returncode != 0:
        return {"file": str(path), "step_deg": step, "status": "error", "error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["file"] = path.name
    return res


def scaling(base: str, scans: list[int], detectors: list[int], steps: list[float], data_dir: Path, tmp: Path) -> dict[str, Any]:
    """Scan-size, detector-size and library-step sweeps of the whole job (each point its own process)."""
    cache: dict[tuple[int, int, float], dict[str, Any]] = {}

    def point(n: int, det: int, step: float) -> dict[str, Any]:
        key = (n, det, step)
        if key not in cache:
            ov: dict[str, Any] = {}
            if n != 64:
                ov["scan_shape"] = (n, n)
            if det != 128:
                ov["detector_shape"] = (det, det)
            path, sim_s = dataset_path(base, data_dir, **ov)
            res = run_child(path, step, tmp)
            res["simulated_s"] = sim_s
            cache[key] = res
            print(f"  scaling point scan {n}² detector {det}² step {step:g}°: "
                  f"{res.get('job_patterns_per_s', float('nan')):.1f} p/s, peak RSS {res.get('peak_rss_during_job_mib') or float('nan'):.0f} MiB",
                  flush=True)
        return cache[key]

    s0, d0 = (32 if 32 in scans else scans[0]), 128
    return {
        "base_dataset": base,
        "note": f"{base} simulation parameters with scan_shape/detector_shape overridden; engine defaults; "
                "each point a fresh process (numba cache warm, library from the cache)",
        "scan_size": [point(n, d0, 2.0) for n in scans],
        "detector_size": [point(s0, d, 2.0) for d in detectors],
        "library_step": [point(s0, d0, st) for st in steps],
    }


# ----------------------------------------------------------------------------------------------------------------
# driver
# ----------------------------------------------------------------------------------------------------------------
def bench_dataset(name: str, steps: list[float], args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from stemgrains.index import IndexParams, index_patterns
    from stemgrains.io import load_4d, load_phases_from, load_truth

    path, sim_s = dataset_path(name, args.data_dir)
    phases = load_phases_from(path)
    ds = load_4d(path)
    ny, nx = ds.scan_shape
    ky, kx = ds.detector_shape
    truth = load_truth(path)
    rec: dict[str, Any] = {
        "file": str(path.relative_to(C.REPO)) if path.is_relative_to(C.REPO) else str(path),
        "simulated_s": sim_s, "scan": [ny, nx], "detector": [ky, kx], "dtype": str(ds.dtype),
        "phases": [p.name for _, p in _phase_items(phases)], "simulation": _truth_parameters(path), "steps": {},
    }
    for step in steps:
        print(f"[{name}] step {step:g}°", flush=True)
        prm = IndexParams(step_deg=step).resolved(ds.calibration, ds.detector_shape)
        r: dict[str, Any] = {"index_params": prm.as_dict()}
        libs, r["library"] = build_libraries(phases, prm, ds.calibration.accelerating_voltage_kV, args.repeat)
        r["warmup_s"], _ = C.timed(lambda: index_patterns(np.asarray(ds.rows(0, 1)).reshape(-1, ky, kx), ds.calibration, libs, prm))
        rows = min(ny, args.match_rows)
        block = np.asarray(ds.rows(0, rows)).reshape(-1, ky, kx)
        grid = (rows, nx)
        times = [C.timed(lambda: index_patterns(block, ds.calibration, libs, prm, scan_shape=grid))[0] for _ in range(args.repeat)]
        r["matching_only"] = dict(C.rate_summary(times, len(block)), block=f"scan rows 0..{rows} in memory (index_patterns)")
        prof_rows = max(1, min(rows, prm.chunk_rows))
        r["profile"] = stage_profile(block[: prof_rows * nx], ds.calibration, libs, prm, args.repeat, (prof_rows, nx))
        del block
        jt, xmap = [], None
        out_h5 = tmp / f"{name}_{step:g}.h5"
        from stemgrains.index.api import estimate_excitation_error_sigma

        # warm-up (not timed): every candidate σ_s's library in the on-disk cache
        r["chosen_excitation_error_sigma"], r["sigma_confident_fraction"] = estimate_excitation_error_sigma(
            ds, [p for _, p in _phase_items(phases)], step_deg=step)
        with C.RssSampler() as sampler:
            for i in range(args.job_repeat):
                t, xm = whole_job(path, phases, libs, prm, out_h5)
                jt.append(t)
                xmap = xm if xmap is None else xmap
        r["whole_job"] = dict(C.rate_summary(jt, ny * nx), results_file_mib=out_h5.stat().st_size / 2**20,
                              peak_rss_sampled_mib=sampler.peak_mb, rss_before_mib=sampler.start_mb, max_rss_process_mib=C.max_rss_mb(),
                              stages="load_4d → index_orientations (σ_s from the data, spots, prefilter, coarse, refine; chunks of "
                                     f"{prm.chunk_rows} rows) → CrystalMap → atomic_h5 + write_orientation_map")
        out_h5.unlink()
        r["accuracy"] = C.orientation_accuracy(xmap.rotations.data, xmap.phase_id, truth["quaternions"], truth["phase_id"],
                                               phases, xmap.prop["reliability"])
        if prm.search_stride > 1:  # the same job with every pixel searched in full: what the grain-coherent search buys
            prm1 = replace(prm, search_stride=1)
            t1, xm1 = whole_job(path, phases, libs, prm1, out_h5)
            out_h5.unlink()
            r["whole_job_every_pixel_searched"] = dict(
                C.rate_summary([t1], ny * nx),
                accuracy=C.orientation_accuracy(xm1.rotations.data, xm1.phase_id, truth["quaternions"], truth["phase_id"],
                                                phases, xm1.prop["reliability"]))
            del xm1
        a = r["accuracy"]
        print(f"  ours: match {r['matching_only']['patterns_per_s']:.1f} p/s, job {r['whole_job']['patterns_per_s']:.1f} p/s, "
              f"median {a['median_deg']:.2f}°, ≤2° {a['within_2deg']:.1%}", flush=True)
        if args.py4dstem and step in args.py4dstem_steps:
            r["py4dstem"] = compare_with_py4dstem(path, phases, libs, prm, args.py4dstem_patterns, args.py4dstem_rounds)
            p = r["py4dstem"]
            if p.get("status") == "ok":
                print(f"  py4DSTEM ({p['subset']['n']} patterns): {p['py4dstem']['subset_disks_plus_match']['patterns_per_s']:.2f} p/s, "
                      f"≤2° {p['py4dstem']['accuracy_subset']['within_2deg']:.1%}; ours/py4DSTEM = {p['speed_ratio_ours_over_py4dstem']:.0f}×",
                      flush=True)
            else:
                print(f"  py4DSTEM: {p.get('status')} {p.get('error', '')}", flush=True)
        rec["steps"][f"{step:g}"] = r
    return rec


def _fmt(v: Any, f: str) -> str:
    return "-" if v is None else format(v, f)


def table(report: dict[str, Any]) -> str:
    head = ("dataset", "step", "tool", "match p/s", "job p/s", "median°", "≤1°", "≤2°", "≤5°", "180° amb", "rel≥5 kept", "kept ≤2°")
    lines = [" | ".join(head)]
    for name, rec in report["datasets"].items():
        for step, r in rec["steps"].items():
            a = r["accuracy"]
            rel = a.get("reliability", {})
            lines.append(" | ".join([name, step, "stemgrains", _fmt(r["matching_only"]["patterns_per_s"], ".1f"),
                                     _fmt(r["whole_job"]["patterns_per_s"], ".1f"), _fmt(a["median_deg"], ".2f"),
                                     _fmt(a["within_1deg"], ".1%"), _fmt(a["within_2deg"], ".1%"), _fmt(a["within_5deg"], ".1%"),
                                     _fmt(a["ambiguity_180"]["fraction_of_pixels"], ".1%"), _fmt(rel.get("kept_fraction"), ".1%"),
                                     _fmt(rel.get("kept_within_2deg"), ".1%")]))
            e = r.get("whole_job_every_pixel_searched")
            if e:
                a = e["accuracy"]
                rel = a.get("reliability", {})
                lines.append(" | ".join([name, step, "stemgrains, every pixel searched", "-", _fmt(e["patterns_per_s"], ".1f"),
                                         _fmt(a["median_deg"], ".2f"), _fmt(a["within_1deg"], ".1%"), _fmt(a["within_2deg"], ".1%"),
                                         _fmt(a["within_5deg"], ".1%"), _fmt(a["ambiguity_180"]["fraction_of_pixels"], ".1%"),
                                         _fmt(rel.get("kept_fraction"), ".1%"), _fmt(rel.get("kept_within_2deg"), ".1%")]))
            p = r.get("py4dstem")
            if p and p.get("status") == "ok":
                for tool, key, rate_key in (("ours (subset)", "ours_same_subset", "subset_index_patterns"),
                                            ("py4DSTEM (subset)", "py4dstem", "subset_disks_plus_match")):
                    s = p[key]
                    a = s["accuracy_subset"]
                    lines.append(" | ".join([name, step, f"{tool} n={p['subset']['n']}", _fmt(s[rate_key]["patterns_per_s"], ".2f"), "-",
                                             _fmt(a["median_deg"], ".2f"), _fmt(a["within_1deg"], ".1%"), _fmt(a["within_2deg"], ".1%"),
                                             _fmt(a["within_5deg"], ".1%"), _fmt(a["ambiguity_180"]["fraction_of_pixels"], ".1%"), "-", "-"]))
            elif p:
                lines.append(f"{name} | {step} | py4DSTEM | {p.get('status')} {p.get('error', '')}")
    sc = report.get("scaling")
    if sc:
        lines += ["", "scaling (" + sc["base_dataset"] + ") | scan | detector | step | match p/s | job p/s | peak RSS MiB | ≤2°"]
        for part in ("scan_size", "detector_size", "library_step"):
            for r in sc[part]:
                if r.get("status") != "ok":
                    lines.append(f"{part} | {r.get('file')} | {r.get('status')} {r.get('error', '')}")
                    continue
                lines.append(" | ".join([part, "×".join(map(str, r["scan"])), "×".join(map(str, r["detector"])), f"{r['step_deg']:g}",
                                         _fmt(r["match_patterns_per_s"], ".1f"), _fmt(r["job_patterns_per_s"], ".1f"),
                                         _fmt(r["peak_rss_during_job_mib"], ".0f"), _fmt(r["within_2deg"], ".1%")]))
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    def floats(s: str) -> list[float]:
        return [float(x) for x in s.split(",") if x]

    def ints(s: str) -> list[int]:
        return [int(x) for x in s.split(",") if x]

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", type=lambda s: [x for x in s.split(",") if x], default=None,
                    help="standard datasets, comma-separated (default nba-64,au-64)")
    ap.add_argument("--steps", type=floats, default=None, help="library steps in degrees (default 2,1; --quick: 2)")
    ap.add_argument("--py4dstem", action="store_true", help="run py4DSTEM ACOM beside ours (on with --quick)")
    ap.add_argument("--py4dstem-steps", type=floats, default=[2.0], help="steps at which py4DSTEM runs (default 2)")
    ap.add_argument("--py4dstem-patterns", type=int, default=None,
                    help=f"size of the evenly spread subset for py4DSTEM (default {PY4DSTEM_SUBSET_DEFAULT}; --quick {PY4DSTEM_SUBSET_QUICK})")
    ap.add_argument("--repeat", type=int, default=None, help="repeats for medians (default 3; --quick 3 for matching, 1 whole job)")
    ap.add_argument("--quick", action="store_true", help="nba-64 + au-64 at 2° only, py4DSTEM on 32 patterns, small scaling")
    ap.add_argument("--no-scaling", action="store_true", help="skip the scaling sweeps")
    ap.add_argument("--scan-sizes", type=ints, default=None, help="scaling: scan sides (default 32,64,128; --quick 32,64)")
    ap.add_argument("--detector-sizes", type=ints, default=[64, 128], help="scaling: detector sides (default 64,128)")
    ap.add_argument("--scaling-steps", type=floats, default=None, help="scaling: library steps (default 3,2,1; --quick 3,2)")
    ap.add_argument("--match-rows", type=int, default=8, help="scan rows in the in-memory matching block (default 8, one chunk)")
    ap.add_argument("--data-dir", type=Path, default=C.DATA_DIR, help="dataset cache (default benchmarks/data)")
    ap.add_argument("--out", type=Path, default=C.RESULTS_DIR / "index.json")
    ap.add_argument("--check-convention", action="store_true", help="only run the py4DSTEM convention check and print it")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    q = args.quick
    args.datasets = args.datasets or ["nba-64", "au-64"]
    args.steps = args.steps or ([2.0] if q else [2.0, 1.0])
    args.py4dstem = args.py4dstem or q
    args.py4dstem_patterns = args.py4dstem_patterns or (PY4DSTEM_SUBSET_QUICK if q else PY4DSTEM_SUBSET_DEFAULT)
    args.repeat = args.repeat or 3
    args.job_repeat = 1 if q else args.repeat
    args.py4dstem_rounds = 2 if q else args.repeat
    args.scan_sizes = args.scan_sizes or ([32, 64] if q else [32, 64, 128])
    args.scaling_steps = args.scaling_steps or ([3.0, 2.0] if q else [3.0, 2.0, 1.0])
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child)), default=C._json_default))
        return 0
    if args.check_convention:
        print(json.dumps(py4dstem_convention_check(), indent=2))
        return 0
    from stemgrains.index import IndexParams

    args.data_dir.mkdir(parents=True, exist_ok=True)
    tmp = args.data_dir / "tmp"
    tmp.mkdir(exist_ok=True)
    t_start = time.perf_counter()
    report: dict[str, Any] = {
        "benchmark": "index",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/bench_index.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": C.machine_info(),
        "versions": C.versions(),
        "parameters": {
            **{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k not in ("child",)},
            "index_defaults": IndexParams().as_dict(),
            "notes": [
                "patterns/s are medians over repeats; the machine is shared (see load average)",
                "accuracy: disorientation with the proper Laue group (orix angle_with), fractions over all pixels with "
                "truth (not indexed counts as wrong), median over indexed pixels of the right phase",
                "whole job excludes the library (reported separately: uncached build and cache load)",
            ],
        },
        "datasets": {},
    }
    if args.py4dstem:
        try:
            report["py4dstem_convention_check"] = py4dstem_convention_check()
        except Exception as err:  # noqa: BLE001 - recorded, the benchmark goes on
            report["py4dstem_convention_check"] = {"status": "error", "error": f"{type(err).__name__}: {err}"}
        print("py4DSTEM convention check:", report["py4dstem_convention_check"].get("disorientation_deg"), flush=True)
    for name in args.datasets:
        report["datasets"][name] = bench_dataset(name, args.steps, args, tmp)
        C.write_json(args.out, report)  # partial results survive an interruption
    if not args.no_scaling:
        print("scaling", flush=True)
        report["scaling"] = scaling("nba-64", args.scan_sizes, args.detector_sizes, args.scaling_steps, args.data_dir, tmp)
    report["total_s"] = time.perf_counter() - t_start
    report["machine"]["load_average_at_end"] = list(os.getloadavg())
    C.write_json(args.out, report)
    print()
    print(table(report))
    print(f"\nwrote {args.out} ({report['total_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
