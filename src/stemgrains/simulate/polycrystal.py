"""Synthetic polycrystal 4D-STEM scans with known truth (kinematic spot patterns).

Model
-----
* Microstructure: a grain-label image (Voronoi cells of seeded random points, or given by the user); each
  grain has one orientation (orix convention: ``v_crystal = O v_sample``, scalar-first quaternion) and one
  phase. Optional per-pixel orientation scatter inside grains, optional vacuum pixels.
* Pattern of a pixel (expected counts, before noise):

  - the direct beam: a disk of ``direct_beam`` integrated counts at the pattern centre;
  - Bragg spots from :func:`stemgrains.crystal.kinematic_spots` (beam along +z, excitation-error weighting),
    each with ``bragg_intensity × (|F|²/V²) / max(|F|²/V²)`` integrated counts, where V is the unit-cell
    volume and the maximum runs over all reflections of all phases (intensity per illuminated volume);
  - a smooth radial background ``background / (1 + (q / background_q_width)²)`` counts per pixel;

  spots are disks of radius ``convergence_semiangle / λ`` (1/Å) with a soft edge of ``blur_px``
  (see :mod:`._render`), placed with :meth:`stemgrains.data.Calibration.sample_q_to_detector` (detector
  rotation, flip, ellipticity) about the centre ``(center_row, center_col)``. Ellipticity moves the spot
  centres; the disks themselves stay round.
* Noise: with a ``dose`` the expected pattern is scaled to ``dose`` electrons in total and Poisson-sampled;
  without one the expected counts are written (rounded for integer dtypes).

Randomness: every random number comes from ``numpy.random.default_rng([seed, stream, …])``; per-row streams
(orientation scatter, Poisson noise) are keyed by the scan row, so the data do not depend on ``chunk_rows``.
"""

from __future__ import annotations

import contextlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from orix.crystal_map import Phase
from orix.quaternion import Rotation

from ..crystal import kinematic_spots, load_phase, reflections
from ..data import Calibration, _finite
from ..errors import FileFormatError, InputError, ParameterError
from ..io.results import json_default
from ._microstructure import random_quaternions, scatter_quaternions, voronoi_labels
from ._render import render_patterns

__all__ = ["SimulatedScan", "simulate_patterns", "simulate_polycrystal", "default_q_pixel_size"]

# stream keys of numpy SeedSequence([seed, stream, ...])
_STREAM_SEEDS, _STREAM_ORIENT, _STREAM_PHASE, _STREAM_SCATTER, _STREAM_NOISE = 1, 2, 3, 4, 5
_EDGE_MARGIN_PX = 3.0  # default q_pixel_size keeps k_max this far inside the nearest detector edge
_BLOCK_BYTES = 64 << 20  # default rows per rendered block: about this many bytes of float64 patterns


@dataclass(frozen=True)
class SimulatedScan:
    """An in-memory simulated scan (from :func:`simulate_patterns`).

    Attributes
    ----------
    data : (ny, nx, ky, kx) array
        Patterns, ``dtype`` as requested.
    calibration : Calibration
    quaternions : (ny, nx, 4) float64
        True orientation of each pixel (sample → crystal, scalar first); identity in vacuum.
    phase_id : (ny, nx) int32
        Index into ``phases``; −1 in vacuum.
    grain_id : (ny, nx) int32
        1..n; 0 in vacuum.
    phases : list of orix Phase
    parameters : dict
        All simulation parameters (JSON-serialisable), as stored in ``/truth`` attributes of a file.
    """

    data: np.ndarray
    calibration: Calibration
    quaternions: np.ndarray
    phase_id: np.ndarray
    grain_id: np.ndarray
    phases: list
    parameters: dict = field(default_factory=dict)


def default_q_pixel_size(k_max: float, detector_shape: tuple[int, int]) -> float:
    """Detector pixel size (1/Å per px) that puts ``k_max`` 3 px inside the nearest edge of a centred pattern."""
    half = min(int(detector_shape[0]), int(detector_shape[1])) / 2.0 - _EDGE_MARGIN_PX
    if half <= 1:
        raise ParameterError(f"detector_shape {tuple(detector_shape)} is too small; expected at least 10 x 10 pixels")
    return float(k_max) / half


# ----------------------------------------------------------------------------------------------------
# validation helpers


def _pos_int_pair(name: str, value: Any, minimum: int = 1) -> tuple[int, int]:
    try:
        a, b = value
        a_i, b_i = int(a), int(b)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be two integers (rows, cols), got {value!r}") from None
    if a_i != a or b_i != b or a_i < minimum or b_i < minimum:
        raise ParameterError(f"{name} must be two integers >= {minimum}, got {value!r}")
    return a_i, b_i


def _number(name: str, value: Any, *, minimum: float | None = None, positive: bool = False) -> float:
    v = _finite(name, value)
    if positive and v <= 0:
        raise ParameterError(f"{name} must be > 0, got {value!r}")
    if minimum is not None and v < minimum:
        raise ParameterError(f"{name} must be >= {minimum:g}, got {value!r}")
    return v


def _as_phases(phases: Any) -> tuple[list[Phase], list[str]]:
    if phases is None:
        raise ParameterError("phases: give at least one phase (a CIF path or an orix Phase loaded from a CIF)")
    if isinstance(phases, (Phase, str, os.PathLike)):
        phases = [phases]
    out, sources = [], []
    for p in phases:
        if isinstance(p, Phase):
            if p.structure is None or len(p.structure) == 0:
                raise ParameterError(f"phase {p.name!r} has no atoms; load it from a CIF (stemgrains.crystal.load_phase)")
            out.append(p)
            sources.append(p.name)
        elif isinstance(p, (str, os.PathLike)):
            out.append(load_phase(p))
            sources.append(str(p))
        else:
            raise ParameterError(f"phases: expected CIF paths or orix Phases, got {type(p).__name__}")
    if not out:
        raise ParameterError("phases: give at least one phase")
    return out, sources


def _seed(seed: Any) -> int:
    try:
        s = int(seed)
    except (TypeError, ValueError):
        raise ParameterError(f"seed must be a non-negative integer, got {seed!r}") from None
    if s != seed or s < 0:
        raise ParameterError(f"seed must be a non-negative integer, got {seed!r}")
    return s


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed, *keys])


# ----------------------------------------------------------------------------------------------------
# the plan: everything computed once, before any pattern is rendered


@dataclass
class _Plan:
    phases: list
    calibration: Calibration
    scan_shape: tuple[int, int]
    detector_shape: tuple[int, int]
    grain_id: np.ndarray  # (ny, nx) int32, 0 = vacuum
    grain_phase: np.ndarray  # (n_grains,) int, index into phases
    grain_quaternions: np.ndarray  # (n_grains, 4)
    quaternions: np.ndarray  # (ny, nx, 4) per pixel (with scatter)
    phase_id: np.ndarray  # (ny, nx) int32, -1 = vacuum
    refl: list
    amp_scale: np.ndarray  # per phase: counts per |F|² (Å⁻²)
    disk_radius_px: float
    blur_px: float
    direct_beam: float
    background_image: np.ndarray  # (ky, kx)
    dose: float | None
    excitation_error_sigma: float
    dtype: np.dtype
    seed: int
    grain_spots: list | None  # per grain (rc (m, 2), amp (m,)) when there is no per-pixel scatter
    parameters: dict
    engine: str = "kinematic"
    spot_engine: Any = None  # the py4dstem engine's Py4DSTEMSpots
    grain_images: list | None = None  # abtem engine: per grain expected image (ky, kx), before background
    vacuum_image: np.ndarray | None = None  # abtem engine: the probe through vacuum


def _spot_lists(plan: _Plan, phase_index: int, quaternions: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per orientation, the on-detector spots (row, col) and their integrated counts."""
    cal = plan.calibration
    if plan.engine == "py4dstem":
        return [_on_detector(plan, q_xy, inten * plan.amp_scale[phase_index])
                for q_xy, inten, _ in (plan.spot_engine.spots(phase_index, q) for q in quaternions)]
    spots = kinematic_spots(plan.refl[phase_index], quaternions, cal.wavelength, plan.excitation_error_sigma)
    amp = spots.intensity * plan.amp_scale[phase_index]
    rc = cal.sample_q_to_detector(spots.q_xy) + np.asarray(cal.center)
    ky, kx = plan.detector_shape
    reach = plan.disk_radius_px + 4.0 * plan.blur_px + 2.0
    keep = (
        (amp > 0)
        & (rc[..., 0] > -reach)
        & (rc[..., 0] < ky - 1 + reach)
        & (rc[..., 1] > -reach)
        & (rc[..., 1] < kx - 1 + reach)
    )
    out = []
    for i in range(len(amp)):
        k = keep[i]
        out.append((np.ascontiguousarray(rc[i][k]), np.ascontiguousarray(amp[i][k])))
    return out


def _on_detector(plan: _Plan, q_xy: np.ndarray, amp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spots of one pattern (sample-frame q (m, 2), counts (m,)) → those that reach the detector (rc, amp)."""
    cal = plan.calibration
    rc = cal.sample_q_to_detector(q_xy).reshape(-1, 2) + np.asarray(cal.center)
    ky, kx = plan.detector_shape
    reach = plan.disk_radius_px + 4.0 * plan.blur_px + 2.0
    r, c = rc[:, 0], rc[:, 1]
    k = (amp > 0) & (r > -reach) & (r < ky - 1 + reach) & (c > -reach) & (c < kx - 1 + reach)
    return np.ascontiguousarray(rc[k]), np.ascontiguousarray(amp[k])


ENGINES = ("kinematic", "py4dstem", "abtem")
_MODELS = {
    "kinematic": "kinematic spots (crystal.kinematic_spots), Lobato f_e, disks of convergence radius, "
    "radial Lorentzian background, Poisson noise scaled to dose",
    "py4dstem": "kinematic spots from py4DSTEM Crystal.generate_diffraction_pattern (py4DSTEM structure factors "
    "and excitation-error envelope), disks of convergence radius, radial Lorentzian background, Poisson noise "
    "scaled to dose",
    "abtem": "abTEM multislice of a converged probe through a block of the rotated crystal (frozen phonons), "
    "one pattern per grain, radial Lorentzian background, Poisson noise scaled to dose",
}


def _prepare(
    *,
    phases: Any,
    scan_shape: tuple[int, int] | None,
    detector_shape: tuple[int, int],
    n_grains: int,
    seed: int,
    orientations: Any,
    grain_phase: Any,
    phase_fractions: Any,
    labels: Any,
    vacuum_mask: Any,
    q_pixel_size: float | None,
    k_max: float,
    accelerating_voltage_kV: float,
    scan_step_nm: float,
    convergence_semiangle_mrad: float,
    blur_px: float,
    excitation_error_sigma: float,
    dose: float | None,
    background: float,
    background_q_width: float,
    direct_beam: float,
    bragg_intensity: float,
    q_rotation_deg: float,
    q_flip: bool,
    center_row: float | None,
    center_col: float | None,
    ellipticity: tuple[float, float] | None,
    orientation_noise_deg: float,
    affine: tuple[float, float, float, float] | None = None,
    dtype: Any,
    engine: str = "kinematic",
    thickness_nm: float = 25.0,
    frozen_phonons: int = 4,
    metadata: dict | None = None,
) -> _Plan:
    if engine not in ENGINES:
        raise ParameterError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    phase_list, sources = _as_phases(phases)
    seed = _seed(seed)
    cal, k_max = _calibration(detector_shape, k_max, q_pixel_size, center_row, center_col, accelerating_voltage_kV,
                              scan_step_nm, q_rotation_deg, q_flip, ellipticity, affine)
    ky, kx = _pos_int_pair("detector_shape", detector_shape, minimum=10)
    center = cal.center
    conv = _number("convergence_semiangle_mrad", convergence_semiangle_mrad, positive=True)
    blur_px = _number("blur_px", blur_px, positive=True)
    sigma_s = _number("excitation_error_sigma (1/Å)", excitation_error_sigma, positive=True)
    background = _number("background", background, minimum=0.0)
    bg_width = _number("background_q_width (1/Å)", background_q_width, positive=True)
    direct_beam = _number("direct_beam", direct_beam, minimum=0.0)
    bragg_intensity = _number("bragg_intensity", bragg_intensity, minimum=0.0)
    noise_deg = _number("orientation_noise_deg", orientation_noise_deg, minimum=0.0)
    if dose is not None:
        dose = _number("dose (electrons per pattern)", dose, positive=True)
    dt = np.dtype(dtype)
    if dt.kind not in "uif":
        raise ParameterError(f"dtype must be an integer or float type, got {dt}")

    grain_id, n = _microstructure(labels, vacuum_mask, scan_shape, n_grains, seed)
    ny, nx = grain_id.shape
    grain_q = _grain_orientations(orientations, n, seed)
    n_phases = len(phase_list)
    gp = _grain_phases(grain_phase, phase_fractions, n, n_phases, seed)

    inside, phase_id, quats = _pixel_orientations(grain_id, gp, grain_q, noise_deg, seed)

    # --- diffraction ----------------------------------------------------------------------------------
    refl, spot_engine, amp_scale = _diffraction_model(engine, phase_list, k_max, cal, sigma_s, bragg_intensity)
    if engine == "abtem":
        thickness_nm = _number("thickness_nm", thickness_nm, positive=True)
        frozen_phonons = int(_number("frozen_phonons", frozen_phonons, minimum=1))
        if noise_deg > 0:
            raise ParameterError(
                "orientation_noise_deg must be 0 with engine='abtem' (one multislice pattern per grain)"
            )
    lam = cal.wavelength
    disk_radius_px = conv * 1e-3 / lam / cal.q_pixel_size
    rr, cc = np.meshgrid(np.arange(ky), np.arange(kx), indexing="ij")
    q_det = cal.detector_to_sample_q(np.stack([rr - center[0], cc - center[1]], -1))
    qn = np.linalg.norm(q_det, axis=-1)
    background_image = background / (1.0 + (qn / bg_width) ** 2)

    plan = _Plan(
        phases=phase_list,
        calibration=cal,
        scan_shape=(ny, nx),
        detector_shape=(ky, kx),
        grain_id=grain_id,
        grain_phase=gp,
        grain_quaternions=grain_q,
        quaternions=quats,
        phase_id=phase_id,
        refl=refl,
        amp_scale=amp_scale,
        disk_radius_px=disk_radius_px,
        blur_px=blur_px,
        direct_beam=direct_beam,
        background_image=background_image,
        dose=dose,
        excitation_error_sigma=sigma_s,
        dtype=dt,
        seed=seed,
        grain_spots=None,
        parameters={},
        engine=engine,
        spot_engine=spot_engine,
    )
    plan.parameters = _plan_parameters(
        plan, sources=sources, labels_given=labels is not None, orientations_given=orientations is not None,
        phase_fractions=phase_fractions, k_max=k_max, conv=conv, background=background, bg_width=bg_width,
        bragg_intensity=bragg_intensity, noise_deg=noise_deg, metadata=metadata, thickness_nm=thickness_nm,
        frozen_phonons=frozen_phonons,
    )
    _precompute(plan, thickness_nm, frozen_phonons, noise_deg)
    return plan


def _calibration(detector_shape: Any, k_max: float, q_pixel_size: float | None, center_row: float | None,
                 center_col: float | None, accelerating_voltage_kV: float, scan_step_nm: float, q_rotation_deg: float,
                 q_flip: bool, ellipticity: Any, affine: Any) -> tuple[Calibration, float]:
    """The simulated detector's calibration (checked against the detector) and the validated ``k_max``."""
    detector_shape = _pos_int_pair("detector_shape", detector_shape, minimum=10)
    ky, kx = detector_shape
    k_max = _number("k_max (1/Å)", k_max, positive=True)
    q_pixel_size = default_q_pixel_size(k_max, detector_shape) if q_pixel_size is None else q_pixel_size
    center = (
        ky / 2.0 if center_row is None else _number("center_row", center_row),
        kx / 2.0 if center_col is None else _number("center_col", center_col),
    )
    cal = Calibration(
        q_pixel_size=q_pixel_size,
        accelerating_voltage_kV=accelerating_voltage_kV,
        scan_step_nm=scan_step_nm,
        center=center,
        q_rotation_deg=q_rotation_deg,
        q_flip=q_flip,
        ellipticity=ellipticity,
        affine=affine,
    )
    cal.check_detector(detector_shape, source="simulate")
    return cal, k_max


def _plan_parameters(plan: _Plan, *, sources: Any, labels_given: bool, orientations_given: bool, phase_fractions: Any,
                     k_max: float, conv: float, background: float, bg_width: float, bragg_intensity: float,
                     noise_deg: float, metadata: dict | None, thickness_nm: float, frozen_phonons: int) -> dict:
    """Every parameter of the simulation, as recorded in the output file."""
    cal = plan.calibration
    ny, nx = plan.scan_shape
    ky, kx = plan.detector_shape
    parameters = {
        "phases": [p.name for p in plan.phases],
        "phase_sources": sources,
        "scan_shape": [ny, nx],
        "detector_shape": [ky, kx],
        "n_grains": len(plan.grain_quaternions),
        "seed": plan.seed,
        "labels_given": labels_given,
        "vacuum_pixels": int((plan.grain_id <= 0).sum()),
        "orientations_given": orientations_given,
        "grain_quaternions": plan.grain_quaternions.tolist(),
        "grain_phase": plan.grain_phase.tolist(),
        "phase_fractions": None if phase_fractions is None else list(map(float, phase_fractions)),
        "q_pixel_size": cal.q_pixel_size,
        "k_max": k_max,
        "accelerating_voltage_kV": cal.accelerating_voltage_kV,
        "wavelength_A": cal.wavelength,
        "scan_step_nm": cal.scan_step_nm,
        "convergence_semiangle_mrad": conv,
        "disk_radius_px": plan.disk_radius_px,
        "blur_px": plan.blur_px,
        "excitation_error_sigma": plan.excitation_error_sigma,
        "dose": plan.dose,
        "background": background,
        "background_q_width": bg_width,
        "direct_beam": plan.direct_beam,
        "bragg_intensity": bragg_intensity,
        "q_rotation_deg": cal.q_rotation_deg,
        "q_flip": cal.q_flip,
        "center_row": cal.center[0],
        "center_col": cal.center[1],
        "ellipticity": None if cal.ellipticity is None else list(cal.ellipticity),
        "affine": None if cal.affine is None else list(cal.affine),
        "orientation_noise_deg": noise_deg,
        "dtype": str(plan.dtype),
        "metadata": dict(metadata or {}),
        "engine": plan.engine,
        "model": _MODELS[plan.engine],
    }
    if plan.engine == "abtem":
        parameters.update(thickness_nm=thickness_nm, frozen_phonons=frozen_phonons)
    return parameters


def _microstructure(labels: Any, vacuum_mask: Any, scan_shape: Any, n_grains: int, seed: int) -> tuple[np.ndarray, int]:
    """Grain numbers ``(ny, nx)`` int32 (0 = vacuum) — the given ``labels`` or a Voronoi tessellation — and n."""
    if labels is not None:
        lab = np.asarray(labels)
        if lab.ndim != 2 or lab.dtype.kind not in "iu":
            raise InputError(f"labels must be a 2-D integer image (ny, nx), got {lab.dtype} {lab.shape}")
        if lab.min() < 0 or lab.max() < 1:
            raise InputError("labels must hold grain numbers 1..n (0 = vacuum) with at least one grain")
        if scan_shape is not None and tuple(scan_shape) != lab.shape:
            raise ParameterError(f"scan_shape {tuple(scan_shape)} differs from the labels image shape {lab.shape}")
        grain_id = lab.astype(np.int32)
        scan_shape = grain_id.shape
        n = int(grain_id.max())
    else:
        scan_shape = _pos_int_pair("scan_shape", (64, 64) if scan_shape is None else scan_shape)
        n = int(_number("n_grains", n_grains, minimum=1))
        if n != n_grains:
            raise ParameterError(f"n_grains must be a positive integer, got {n_grains!r}")
        grain_id = voronoi_labels(scan_shape, n, _rng(seed, _STREAM_SEEDS))
    ny, nx = scan_shape
    if vacuum_mask is not None:
        vm = np.asarray(vacuum_mask)
        if vm.shape != (ny, nx) or vm.dtype != bool:
            raise InputError(f"vacuum_mask must be a boolean (ny, nx) = ({ny}, {nx}) image, got {vm.dtype} {vm.shape}")
        grain_id = np.where(vm, 0, grain_id).astype(np.int32)
    return grain_id, n


def _grain_orientations(orientations: Any, n: int, seed: int) -> np.ndarray:
    """``(n, 4)`` unit quaternions of the grains: the given ones (normalised) or random ones."""
    if orientations is None:
        return random_quaternions(n, _rng(seed, _STREAM_ORIENT))
    data = orientations.data if isinstance(orientations, Rotation) else orientations
    grain_q = np.asarray(data, dtype=np.float64).reshape(-1, 4) if np.size(data) % 4 == 0 else None
    if grain_q is None or len(grain_q) != n:
        raise InputError(f"orientations must be {n} quaternions (n_grains, 4), got shape {np.shape(data)}")
    norms = np.linalg.norm(grain_q, axis=1)
    if not np.all(np.isfinite(grain_q)) or np.any(norms < 1e-9):
        raise InputError("orientations must be finite, non-zero quaternions (scalar first)")
    return grain_q / norms[:, None]


def _grain_phases(grain_phase: Any, phase_fractions: Any, n: int, n_phases: int, seed: int) -> np.ndarray:
    """``(n,)`` int64 phase index of each grain: given, the only phase, or drawn with ``phase_fractions``."""
    if grain_phase is not None:
        gp = np.asarray(grain_phase)
        if gp.shape != (n,) or gp.dtype.kind not in "iu" or gp.min() < 0 or gp.max() >= n_phases:
            raise InputError(f"grain_phase must be {n} integers in 0..{n_phases - 1}, got {gp.dtype} {gp.shape}")
        return gp.astype(np.int64)
    if n_phases == 1:
        return np.zeros(n, dtype=np.int64)
    frac = np.ones(n_phases) if phase_fractions is None else np.asarray(phase_fractions, dtype=float)
    if frac.shape != (n_phases,) or not np.all(np.isfinite(frac)) or np.any(frac < 0) or frac.sum() <= 0:
        raise ParameterError(f"phase_fractions must be {n_phases} non-negative numbers, got {phase_fractions!r}")
    return _rng(seed, _STREAM_PHASE).choice(n_phases, size=n, p=frac / frac.sum()).astype(np.int64)


def _pixel_orientations(grain_id: np.ndarray, gp: np.ndarray, grain_q: np.ndarray, noise_deg: float, seed: int,
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """In-grain mask ``(ny, nx)``, phase ids ``(ny, nx)`` int32 (−1 = vacuum) and quaternions ``(ny, nx, 4)`` of
    every pixel (the grain's, scattered by ``noise_deg`` per row from its own random stream)."""
    ny = grain_id.shape[0]
    inside = grain_id > 0
    gidx = np.clip(grain_id - 1, 0, None)
    phase_id = np.where(inside, gp[gidx], -1).astype(np.int32)
    quats = np.where(inside[..., None], grain_q[gidx], np.array([1.0, 0.0, 0.0, 0.0]))
    if noise_deg > 0:
        for r in range(ny):
            scattered = scatter_quaternions(quats[r], noise_deg, _rng(seed, _STREAM_SCATTER, r))
            quats[r] = np.where(inside[r][:, None], scattered, quats[r])
    return inside, phase_id, quats


def _diffraction_model(engine: str, phase_list: list, k_max: float, cal: Calibration, sigma_s: float,
                       bragg_intensity: float) -> tuple[list, Any, np.ndarray]:
    """Reflections (kinematic engine), the py4DSTEM spot engine, and the per-phase amplitude scale that gives the
    strongest reflection per unit cell volume the intensity ``bragg_intensity``."""
    spot_engine = None
    refl: list = []
    if engine == "kinematic":
        refl = [reflections(p, k_max=k_max) for p in phase_list]
        vol = np.array([abs(np.linalg.det(np.asarray(p.structure.lattice.base))) for p in phase_list])
        per_volume_max = max(float(r.intensity.max(initial=0.0)) / v**2 for r, v in zip(refl, vol))
        if per_volume_max <= 0:
            raise InputError("the phases have no reflections up to k_max; raise k_max")
        amp_scale = bragg_intensity / (vol**2 * per_volume_max)
    elif engine == "py4dstem":
        from ._py4dstem import Py4DSTEMSpots

        spot_engine = Py4DSTEMSpots(phase_list, k_max, cal.accelerating_voltage_kV, sigma_s)
        # py4DSTEM's |F/V|² is already per volume: one scale for all phases
        per_volume_max = max(spot_engine.max_intensity(i) for i in range(len(phase_list)))
        if per_volume_max <= 0:
            raise InputError("the phases have no reflections up to k_max; raise k_max")
        amp_scale = np.full(len(phase_list), bragg_intensity / per_volume_max)
    else:
        amp_scale = np.zeros(len(phase_list))
    return refl, spot_engine, amp_scale


def _precompute(plan: _Plan, thickness_nm: float, frozen_phonons: int, noise_deg: float) -> None:
    """What every pixel of a grain shares: abTEM's multislice pattern per grain, or (without orientation noise)
    the kinematic spot list per grain."""
    if plan.engine == "abtem":
        from ._abtem import abtem_grain_images

        abtem_grain_images(plan, thickness_nm=thickness_nm, frozen_phonons=frozen_phonons)
    elif noise_deg == 0:
        # spot lists once per grain, reused for every pixel of the grain
        grain_id, gp, grain_q = plan.grain_id, plan.grain_phase, plan.grain_quaternions
        plan.grain_spots = [None] * len(grain_q)
        present = np.unique(grain_id[grain_id > 0]) - 1
        for ph in range(len(plan.phases)):
            ids = present[gp[present] == ph]
            if len(ids):
                for g, s in zip(ids, _spot_lists(plan, ph, grain_q[ids])):
                    plan.grain_spots[g] = s


def _render_row(plan: _Plan, r: int) -> np.ndarray:
    """Patterns of scan row ``r`` in the output dtype, shape (nx, ky, kx)."""
    nx = plan.scan_shape[1]
    centre = np.array([plan.calibration.center], dtype=np.float64)
    gid = plan.grain_id[r]
    pid = plan.phase_id[r]
    if plan.grain_images is not None:
        expected = np.stack([plan.grain_images[g - 1] if g > 0 else plan.vacuum_image for g in gid])
        return _finish_row(plan, r, gid, expected)
    if plan.grain_spots is not None:
        per_pixel = [plan.grain_spots[g - 1] if g > 0 else None for g in gid]
    else:
        per_pixel = [None] * nx
        for ph in np.unique(pid[pid >= 0]):
            cols = np.flatnonzero(pid == ph)
            for c, s in zip(cols, _spot_lists(plan, int(ph), plan.quaternions[r, cols])):
                per_pixel[c] = s
    rcs, amps, counts = [], [], np.empty(nx, dtype=np.int64)
    direct = np.array([plan.direct_beam])
    for c, s in enumerate(per_pixel):
        rcs.append(centre)
        amps.append(direct)
        n = 1
        if s is not None:
            rcs.append(s[0])
            amps.append(s[1])
            n += len(s[1])
        counts[c] = n
    starts = np.zeros(nx + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    expected = render_patterns(
        np.concatenate(rcs), np.concatenate(amps), starts, plan.detector_shape, plan.disk_radius_px, plan.blur_px
    )
    return _finish_row(plan, r, gid, expected)


def _finish_row(plan: _Plan, r: int, gid: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Background on grain pixels, dose scaling, Poisson noise (stream keyed by the row), output dtype."""
    expected[gid > 0] += plan.background_image
    info = np.iinfo(plan.dtype) if plan.dtype.kind in "iu" else None
    if plan.dose is not None:
        total = expected.sum(axis=(1, 2))
        scale = np.divide(plan.dose, total, out=np.zeros_like(total), where=total > 0)
        counts_row = _rng(plan.seed, _STREAM_NOISE, r).poisson(expected * scale[:, None, None])
        if info is not None:
            np.minimum(counts_row, info.max, out=counts_row)
        return counts_row.astype(plan.dtype)
    if info is not None:
        return np.clip(np.rint(expected), 0, info.max).astype(plan.dtype)
    return expected.astype(plan.dtype)


def _render_rows(plan: _Plan, r0: int, r1: int, executor: Any = None) -> np.ndarray:
    """Patterns of scan rows r0:r1, shape (r1 − r0, nx, ky, kx); rows run on ``executor`` threads if given
    (the result does not depend on it: each row has its own random stream)."""
    nx = plan.scan_shape[1]
    ky, kx = plan.detector_shape
    out = np.empty((r1 - r0, nx, ky, kx), dtype=plan.dtype)
    rows = range(r0, r1)
    results = executor.map(lambda r: _render_row(plan, r), rows) if executor is not None else (
        _render_row(plan, r) for r in rows
    )
    for r, block in zip(rows, results):
        out[r - r0] = block
    return out


def _executor(n_threads: int | None):
    if n_threads is None:
        try:
            n_threads = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover (not Linux)
            n_threads = os.cpu_count() or 1
    n_threads = int(_number("n_threads", n_threads, minimum=1))
    if n_threads == 1:
        return contextlib.nullcontext(None)
    return ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="stemgrains-simulate")


_DEFAULTS: dict[str, Any] = dict(
    scan_shape=None,
    detector_shape=(128, 128),
    n_grains=12,
    seed=0,
    orientations=None,
    grain_phase=None,
    phase_fractions=None,
    labels=None,
    vacuum_mask=None,
    q_pixel_size=None,
    k_max=1.5,
    accelerating_voltage_kV=300.0,
    scan_step_nm=2.0,
    convergence_semiangle_mrad=1.0,
    blur_px=1.0,
    excitation_error_sigma=0.015,
    dose=None,
    background=2.0,
    background_q_width=0.3,
    direct_beam=2000.0,
    bragg_intensity=1000.0,
    q_rotation_deg=0.0,
    q_flip=False,
    center_row=None,
    center_col=None,
    ellipticity=None,
    affine=None,
    orientation_noise_deg=0.0,
    dtype="uint16",
    engine="kinematic",
    thickness_nm=25.0,
    frozen_phonons=4,
    metadata=None,
)

_PARAMS_DOC = """
    phases
        One or more phases: CIF paths or orix Phases loaded with :func:`stemgrains.crystal.load_phase`.
    scan_shape
        (ny, nx) scan positions; default (64, 64), or the shape of ``labels``.
    detector_shape
        (ky, kx) detector pixels.
    n_grains
        Number of Voronoi grains (ignored when ``labels`` is given).
    seed
        Non-negative integer; the same seed gives identical data.
    orientations
        Per-grain orientations, (n_grains, 4) scalar-first quaternions or an orix Rotation/Orientation
        (sample → crystal); default: uniformly random.
    grain_phase
        Per-grain phase index (n_grains,); default: random by ``phase_fractions`` (equal if not given).
    phase_fractions
        Relative probability of each phase for a grain.
    labels
        (ny, nx) integer grain image (1..n, 0 = vacuum) used instead of Voronoi grains.
    vacuum_mask
        (ny, nx) boolean; True pixels are vacuum (direct beam only, grain 0, phase −1).
    q_pixel_size
        Detector pixel size, 1/Å per pixel; default puts ``k_max`` 3 px inside the nearest detector edge.
    k_max
        Largest reflection ``|g|`` simulated, 1/Å.
    accelerating_voltage_kV
        kV.
    scan_step_nm
        Scan step, nm (stored in the calibration).
    convergence_semiangle_mrad
        Probe convergence semi-angle, mrad; disk radius = semi-angle / λ (1/Å).
    blur_px
        Gaussian width of the disk edges, detector pixels.
    excitation_error_sigma
        Width of the relrod (excitation-error weighting), 1/Å (≈ 1 / thickness).
    dose
        Electrons per pattern for Poisson noise; ``None`` writes the noise-free expected counts.
    background
        Radial background at the pattern centre, counts per pixel (before dose scaling).
    background_q_width
        Half-width of the Lorentzian background, 1/Å.
    direct_beam
        Integrated counts in the direct-beam disk (before dose scaling).
    bragg_intensity
        Integrated counts of the strongest reflection at the exact Bragg condition (before dose scaling).
    q_rotation_deg, q_flip, ellipticity, affine
        Detector distortions (see :class:`stemgrains.data.Calibration`); ellipticity = (axis ratio, angle_deg),
        affine = (A11, A12, A21, A22) acting on detector offsets (dcol, drow).
    center_row, center_col
        Pattern centre on the detector, pixels; default (ky/2, kx/2).
    orientation_noise_deg
        Standard deviation of a per-pixel random rotation inside grains, degrees (the truth includes it).
    dtype
        Output dtype (integer types are clipped to their range).
    engine
        Diffraction model of each grain (the microstructure, truth and file layout do not depend on it):
        ``"kinematic"`` (ours, :func:`stemgrains.crystal.kinematic_spots`), ``"py4dstem"`` (spot lists from
        py4DSTEM's ``Crystal.generate_diffraction_pattern``, rendered like ours; see
        :mod:`stemgrains.simulate._py4dstem`) or ``"abtem"`` (abTEM multislice, one frozen-phonon pattern per
        grain; needs ``pip install stemgrains[abtem]``; see :mod:`stemgrains.simulate._abtem`).
    thickness_nm
        Specimen thickness, nm (``engine="abtem"`` only).
    frozen_phonons
        Frozen-phonon configurations averaged per pattern (``engine="abtem"`` only).
    metadata
        Extra JSON-serialisable entries stored with the parameters (e.g. the preset name).
"""


def simulate_patterns(phases: Any, *, n_threads: int | None = 1, **kwargs: Any) -> SimulatedScan:
    """Simulate a polycrystal scan in memory (for tests and small demos).

    Parameters
    ----------
    n_threads
        Threads rendering scan rows in parallel (default 1). Does not change the data.
    {params}

    Returns
    -------
    SimulatedScan
    """
    params = _merge(kwargs)
    plan = _prepare(phases=phases, **params)
    with _executor(n_threads) as ex:
        data = _render_rows(plan, 0, plan.scan_shape[0], ex)
    return SimulatedScan(
        data=data,
        calibration=plan.calibration,
        quaternions=plan.quaternions,
        phase_id=plan.phase_id,
        grain_id=plan.grain_id,
        phases=plan.phases,
        parameters=plan.parameters,
    )


simulate_patterns.__doc__ = simulate_patterns.__doc__.replace("    {params}\n", _PARAMS_DOC.lstrip("\n"))


def _merge(kwargs: dict[str, Any]) -> dict[str, Any]:
    unknown = set(kwargs) - set(_DEFAULTS)
    if unknown:
        raise ParameterError(f"unknown simulation parameter(s): {', '.join(sorted(unknown))}")
    params = dict(_DEFAULTS)
    params.update(kwargs)
    return params


def simulate_polycrystal(
    path: str | os.PathLike,
    *,
    phases: Any,
    chunk_rows: int | None = None,
    progress: bool = True,
    compression: str | None = None,
    n_threads: int | None = None,
    stated_calibration: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Path:
    """Simulate a polycrystal 4D-STEM scan and write it to a project HDF5 file, streaming row blocks.

    Layout: ``/data`` (ny, nx, ky, kx), one pattern per HDF5 chunk, with the calibration as attributes
    (q_pixel_size, accelerating_voltage_kV, scan_step_nm, center_row, center_col, q_rotation_deg, q_flip,
    ellipticity_ratio/ellipticity_angle_deg if set); ``/truth/quaternions`` (ny, nx, 4),
    ``/truth/phase_id`` (ny, nx) int32 (−1 vacuum), ``/truth/grain_id`` (ny, nx) int32 (0 vacuum), with
    attributes ``parameters`` (JSON of all simulation parameters) and ``seed``; ``/phases`` (CIF text).
    The file is written to a temporary name and replaces ``path`` only when complete.

    Parameters
    ----------
    path
        Output ``.h5`` file.
    chunk_rows
        Scan rows rendered and written per block (memory: about chunk_rows × nx × ky × kx × 8 bytes);
        default: blocks of about 64 MB. Does not change the data.
    progress
        Show a tqdm progress bar.
    compression
        HDF5 filter for ``/data`` (``None``, ``"lzf"`` or ``"gzip"``).
    n_threads
        Threads rendering scan rows in parallel; default: the CPUs available. Does not change the data.
    stated_calibration
        ``/data`` attributes the file states *instead of* the true calibration, as for a detector whose
        calibration is not known (to test :func:`stemgrains.preprocess.calibrate`): a value replaces the
        attribute, ``None`` removes it (e.g. ``{"q_pixel_size": 0.026, "ellipticity_ratio": None,
        "ellipticity_angle_deg": None}``). Keys: those of :meth:`stemgrains.data.Calibration.to_attrs`. The true
        calibration is always recorded as JSON in the ``/truth`` attribute ``calibration``.
    {params}

    Returns
    -------
    pathlib.Path
        The written file.
    """
    params = _merge(kwargs)
    if compression not in (None, "lzf", "gzip"):
        raise ParameterError(f"compression must be None, 'lzf' or 'gzip', got {compression!r}")
    plan = _prepare(phases=phases, **params)
    ny, nx = plan.scan_shape
    ky, kx = plan.detector_shape
    if chunk_rows is None:
        chunk_rows = max(1, _BLOCK_BYTES // (nx * ky * kx * 8))
    else:
        chunk_rows = int(_number("chunk_rows", chunk_rows, minimum=1))
    path = Path(path)
    stated = _stated_attrs(plan.calibration, stated_calibration)
    try:
        _write(path, plan, chunk_rows, progress, compression, n_threads, stated)
    except OSError as err:
        raise FileFormatError(f"{path}: cannot write the simulated scan ({err.strerror or err})") from None
    return path


_STATABLE = ("q_pixel_size", "accelerating_voltage_kV", "scan_step_nm", "q_rotation_deg", "q_flip", "center_row",
             "center_col", "ellipticity_ratio", "ellipticity_angle_deg", "affine")


def _stated_attrs(cal: Calibration, stated: dict[str, Any] | None) -> dict[str, Any]:
    """The ``/data`` attributes: the true calibration's, with ``stated`` applied (checked: known keys, a positive
    finite pixel size, the ellipticity's two attributes together); a Calibration built from them must be valid."""
    attrs = cal.to_attrs()
    if not stated:
        return attrs
    unknown = sorted(set(stated) - set(_STATABLE))
    if unknown:
        raise ParameterError(f"stated_calibration: unknown attribute(s) {', '.join(unknown)}; expected some of "
                             f"{', '.join(_STATABLE)}")
    for k, v in stated.items():
        if v is None:
            attrs.pop(k, None)
        else:
            attrs[k] = v
    if ("ellipticity_ratio" in attrs) != ("ellipticity_angle_deg" in attrs):
        raise ParameterError("stated_calibration: ellipticity_ratio and ellipticity_angle_deg go together (both set or "
                             "both None)")
    Calibration.from_attrs(attrs, source="stated_calibration")  # raises ParameterError for a bad value
    return attrs


def _write(path: Path, plan: _Plan, chunk_rows: int, progress: bool, compression: str | None, n_threads: int | None,
           stated: dict[str, Any]):
    from .._progress import progress_bar as tqdm

    from ..crystal import write_phases
    from ..io.results import atomic_h5

    ny, nx = plan.scan_shape
    ky, kx = plan.detector_shape
    with atomic_h5(path) as f:
        dset = f.create_dataset(
            "data", shape=(ny, nx, ky, kx), dtype=plan.dtype, chunks=(1, 1, ky, kx), compression=compression
        )
        for k, v in stated.items():
            dset.attrs[k] = v
        truth = f.create_group("truth")
        truth.attrs["calibration"] = json.dumps(plan.calibration.to_attrs(), default=json_default, sort_keys=True)
        truth.create_dataset("quaternions", data=plan.quaternions)
        truth.create_dataset("phase_id", data=plan.phase_id)
        truth.create_dataset("grain_id", data=plan.grain_id)
        truth.attrs["parameters"] = json.dumps(plan.parameters, default=json_default, sort_keys=True)
        truth.attrs["seed"] = plan.seed
        truth.attrs["orientation_convention"] = "orix: v_crystal = O * v_sample, scalar-first quaternions"
        write_phases(f, plan.phases)
        with _executor(n_threads) as ex, tqdm(total=ny, unit="row", desc="simulate", disable=not progress) as bar:
            for r0 in range(0, ny, chunk_rows):
                r1 = min(ny, r0 + chunk_rows)
                dset[r0:r1] = _render_rows(plan, r0, r1, ex)
                bar.update(r1 - r0)


simulate_polycrystal.__doc__ = simulate_polycrystal.__doc__.replace("    {params}\n", _PARAMS_DOC.lstrip("\n"))
