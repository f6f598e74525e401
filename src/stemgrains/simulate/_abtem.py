"""The ``abtem`` simulation engine: multislice nanobeam diffraction with abTEM (dynamical, frozen phonons).

Model, per grain
----------------
* A block of the grain's crystal, cut from the crystal rotated into the sample frame (``v_sample = Oᵀ v_crystal``,
  orix convention): lateral extent ``L`` × ``L`` (default 80 Å, at least 2 / q_pixel_size), thickness
  ``thickness_nm``; the beam enters at z = 0 and travels along +z (abTEM's propagation direction, our beam
  direction), abTEM's x and y are our sample x (scan columns) and y (scan rows).
* Partial occupancies: resolved per unit cell by random site assignment. Sites at the same position form one
  group (e.g. Al2/Mg2 of Na-β″); in every unit cell each group holds one of its species with probability equal to
  its occupancy, or nothing with the remaining probability (so Na1 at 0.835 is empty in 16.5 % of the cells).
* Frozen phonons: ``abtem.FrozenPhonons`` with isotropic Gaussian displacements, σ = √U_iso from the CIF, or
  0.08 Å where the CIF gives none; the patterns of the configurations are averaged.
* Probe: converged, semi-angle ``convergence_semiangle_mrad``, no aberrations, at the centre of the block;
  potential: abTEM's Lobato parametrisation, infinite projection, 2 Å slices; real-space sampling fine enough
  that abTEM's antialiasing aperture (2/3 of the Nyquist frequency) reaches past the detector's edge.
* Detector: the diffraction intensities on abTEM's reciprocal grid (pixel 1/L) are mapped onto our detector
  through the calibration (:meth:`stemgrains.data.Calibration.sample_q_to_detector`: rotation, transpose,
  ellipticity) by bilinear splatting (each fine pixel's intensity shared among the four nearest detector pixels;
  the total is conserved).

One pattern per grain
---------------------
Our probe (1 mrad at 300 kV: a disk of radius α/λ ≈ 0.05 1/Å, spot disks ~4 px apart at least) gives
non-overlapping disks, and the nanobeam pattern of a perfect single crystal then hardly depends on where the
probe sits in the unit cell (only the intensities within the disks change, by interference that needs
overlapping disks). So every scan pixel of a grain gets the same expected pattern, each with its own Poisson
noise (per row streams in :mod:`.polycrystal`). Orientation scatter inside grains is therefore not supported by
this engine; grain boundaries are sharp (no mixed patterns).

Limitation: where reflections lie closer than the disk diameter 2α/λ (≈ 0.10 1/Å at 1 mrad, 300 kV) the disks
overlap and interfere, and the pattern inside the overlaps does depend on the probe position. For Na-β″ this
happens along c* (c* = 0.030 1/Å; rows with l spacing c* or 3c*) when c lies near the specimen plane; such
grains get the overlap pattern of one probe position (the block centre) at every pixel.

Intensities: the multislice pattern is a probability per pixel (≈ 1 in total, less what scatters beyond the
antialiasing aperture); it is multiplied by ``direct_beam`` (the incident counts before dose scaling), the radial
background is added on grain pixels and the whole pattern is scaled to ``dose`` electrons as for the other
engines.

Needs ``pip install stemgrains[abtem]`` (abTEM and ASE).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from ..crystal import atomic_numbers
from ..crystal.spots import rotation_matrices
from ..errors import ParameterError

__all__ = ["require_abtem", "crystal_block", "abtem_pattern", "splat_to_detector", "abtem_grain_images"]

_SLICE_THICKNESS_A = 2.0
_DEFAULT_SIGMA_A = 0.08
_MIN_EXTENT_A = 80.0
_STREAM_ABTEM = 6  # numpy SeedSequence key, after polycrystal's streams 1..5


def require_abtem():
    """Import abTEM (and ASE) or raise a ParameterError telling how to install them."""
    try:
        import abtem  # noqa: F401
        import ase  # noqa: F401
    except ImportError as err:
        raise ParameterError(
            f"engine='abtem' needs abTEM and ASE ({err}); install them with pip install 'stemgrains[abtem]'"
        ) from None
    import abtem

    abtem.config.set({"dask.lazy": False, "device": "cpu", "precision": "float32"})
    return abtem


def _site_groups(frac: np.ndarray, base: np.ndarray, tol_A: float = 0.05) -> np.ndarray:
    """Group index per site: sites within ``tol_A`` of each other (same position, mixed occupancy)."""
    group = -np.ones(len(frac), dtype=int)
    g = 0
    for i in range(len(frac)):
        if group[i] >= 0:
            continue
        d = frac - frac[i]
        d -= np.rint(d)
        close = np.linalg.norm(d @ base, axis=1) < tol_A
        group[close & (group < 0)] = g
        g += 1
    return group


def crystal_block(
    phase: Any, quaternion: np.ndarray, extent_A: float, thickness_A: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Atoms of the crystal in orientation ``quaternion`` (sample → crystal) filling the sample-frame box
    [0, L) × [0, L) × [0, T), partial occupancies resolved per unit cell.

    Returns (positions (n, 3) Å in the sample frame, atomic numbers (n,), displacement σ (n,) Å).
    """
    st = phase.structure
    base = np.asarray(st.lattice.base, dtype=np.float64)  # rows a, b, c, crystal frame
    frac = np.array([a.xyz for a in st], dtype=np.float64) % 1.0
    Z = atomic_numbers(st)
    occ = np.array([a.occupancy for a in st], dtype=np.float64)
    uiso = np.array([a.Uisoequiv for a in st], dtype=np.float64)
    sig = np.where(uiso > 0, np.sqrt(np.clip(uiso, 0, None)), _DEFAULT_SIGMA_A)
    R = rotation_matrices(quaternion)  # v_c = R v_s
    L, T = float(extent_A), float(thickness_A)
    corners = np.array([[x, y, z] for x in (0, L) for y in (0, L) for z in (0, T)])
    # fractional coordinates of the box corners (crystal frame): r_c = f @ base, r_c = R r_s
    fc = (corners @ R.T) @ np.linalg.inv(base)
    lo = np.floor(fc.min(0)).astype(int) - 1
    hi = np.ceil(fc.max(0)).astype(int) + 1
    cells = np.stack(np.meshgrid(*[np.arange(a, b + 1) for a, b in zip(lo, hi)], indexing="ij"), -1).reshape(-1, 3)
    # keep cells whose origin is near the box (cell diagonal margin)
    diag = np.linalg.norm(base.sum(0)) + np.max(np.linalg.norm(base, axis=1))
    org_s = (cells @ base) @ R  # sample frame: r_s = R^T r_c  ->  row form r_c @ R
    near = np.all((org_s > -diag) & (org_s < np.array([L, L, T]) + diag), axis=1)
    cells = cells[near]
    # random site assignment per cell and site group
    groups = _site_groups(frac, base)
    n_cells = len(cells)
    keep = np.zeros((n_cells, len(frac)), dtype=bool)
    for g in np.unique(groups):
        members = np.flatnonzero(groups == g)
        if len(members) == 1 and occ[members[0]] >= 1.0:
            keep[:, members[0]] = True
            continue
        cum = np.cumsum(occ[members])
        if cum[-1] > 1.0 + 1e-6:
            cum = cum / cum[-1]  # over-full group (rounding in the CIF): renormalise
        u = rng.random(n_cells)
        pick = np.searchsorted(cum, u, side="right")  # index into members, len(members) = vacancy
        for j, m in enumerate(members):
            keep[:, m] = pick == j
    pos_c = (cells[:, None, :] + frac[None, :, :]) @ base  # (n_cells, n_sites, 3)
    pos_s = pos_c @ R  # r_s = R^T r_c
    inside = keep & np.all((pos_s >= 0) & (pos_s < np.array([L, L, T])), axis=-1)
    idx = np.nonzero(inside)
    return pos_s[idx], Z[idx[1]], sig[idx[1]]


def _fft_size(n: int) -> int:
    """Smallest 2,3,5-smooth integer >= n (fast FFT sizes)."""
    m = int(n)
    while True:
        k = m
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        if k == 1:
            return m
        m += 1


def abtem_pattern(
    positions: np.ndarray,
    numbers: np.ndarray,
    sigmas: np.ndarray,
    *,
    extent_A: float,
    thickness_A: float,
    energy_eV: float,
    semiangle_mrad: float,
    k_reach: float,
    frozen_phonons: int,
    seed: int,
) -> tuple[np.ndarray, float]:
    """Frozen-phonon averaged nanobeam diffraction pattern of the atoms (sample frame) by abTEM multislice.

    Returns (intensity (n, n) float64 on abTEM's reciprocal grid, fftshifted, first axis = k_x, second = k_y,
    total ≈ 1 for the incident probe; the reciprocal pixel size 1/L in 1/Å). ``k_reach`` (1/Å): the
    antialiasing aperture is made to reach at least this far.
    """
    abtem = require_abtem()
    from ase import Atoms

    L, T = float(extent_A), float(thickness_A)
    # antialias cutoff = 2/3 of Nyquist 1/(2 dx)  >=  k_reach
    gpts = _fft_size(math.ceil(L * 3.0 * k_reach))
    atoms = Atoms(numbers=numbers, positions=positions, cell=[L, L, T], pbc=[True, True, False])
    fp = abtem.FrozenPhonons(atoms, num_configs=int(frozen_phonons), sigmas=np.asarray(sigmas), seed=int(seed))
    potential = abtem.Potential(fp, gpts=gpts, slice_thickness=_SLICE_THICKNESS_A, projection="infinite")
    probe = abtem.Probe(energy=float(energy_eV), semiangle_cutoff=float(semiangle_mrad))
    probe.grid.match(potential)
    detector = abtem.PixelatedDetector(max_angle="full")
    dp = probe.multislice(potential, scan=np.array([[L / 2, L / 2]]), detectors=detector)
    arr = np.asarray(dp.array, dtype=np.float64)
    # abTEM averages the frozen-phonon ensemble (ensemble_mean); average any other leading axis left
    arr = arr.reshape(-1, *arr.shape[-2:]).mean(0)
    return arr, 1.0 / L


def splat_to_detector(
    intensity: np.ndarray, dk: float, calibration: Any, detector_shape: tuple[int, int]
) -> np.ndarray:
    """Map an fftshifted reciprocal-space intensity (first axis k_x, second k_y, pixel ``dk`` 1/Å, zero
    frequency at index n // 2) onto the detector through ``calibration`` by bilinear splatting.

    Returns (ky, kx) float64; the total over the detector equals the total of the fine pixels that land on it.
    """
    n0, n1 = intensity.shape
    kx = (np.arange(n0) - n0 // 2) * dk
    ky = (np.arange(n1) - n1 // 2) * dk
    KX, KY = np.meshgrid(kx, ky, indexing="ij")
    rc = calibration.sample_q_to_detector(np.stack([KX, KY], -1)) + np.asarray(calibration.center)
    r, c = rc[..., 0].ravel(), rc[..., 1].ravel()
    w = intensity.ravel()
    ny, nx = detector_shape
    r0 = np.floor(r).astype(np.int64)
    c0 = np.floor(c).astype(np.int64)
    fr, fc = r - r0, c - c0
    out = np.zeros(ny * nx)
    for dr, dc, ww in ((0, 0, (1 - fr) * (1 - fc)), (1, 0, fr * (1 - fc)), (0, 1, (1 - fr) * fc), (1, 1, fr * fc)):
        rr, cc = r0 + dr, c0 + dc
        ok = (rr >= 0) & (rr < ny) & (cc >= 0) & (cc < nx) & (ww > 0)
        np.add.at(out, rr[ok] * nx + cc[ok], w[ok] * ww[ok])
    return out.reshape(ny, nx)


def abtem_grain_images(plan: Any, *, thickness_nm: float, frozen_phonons: int, progress: bool = False) -> None:
    """Fill ``plan.grain_images`` (one expected pattern per grain present, × direct_beam) and
    ``plan.vacuum_image`` (the probe through vacuum), and record timings in ``plan.parameters``."""
    require_abtem()
    cal = plan.calibration
    ky, kx = plan.detector_shape
    L = max(_MIN_EXTENT_A, 2.0 / cal.q_pixel_size)
    # the antialiasing aperture must reach the farthest detector pixel along the axes, 5 % margin
    half = np.array([ky, kx], dtype=float) / 2.0 + 1.0
    k_reach = 1.05 * float(np.max(np.abs(cal.detector_to_sample_q(np.array([[half[0], 0.0], [0.0, half[1]]])))))
    k_reach = max(k_reach, 1.05 * float(plan.parameters["k_max"]))
    energy = cal.accelerating_voltage_kV * 1e3
    semiangle = plan.parameters["convergence_semiangle_mrad"]
    T = float(thickness_nm) * 10.0
    n = len(plan.grain_quaternions)
    images: list = [None] * n
    present = np.unique(plan.grain_id[plan.grain_id > 0]) - 1
    times, n_atoms = [], []
    for g in present:
        rng = np.random.default_rng([plan.seed, _STREAM_ABTEM, int(g)])
        phase = plan.phases[int(plan.grain_phase[g])]
        pos, Z, sig = crystal_block(phase, plan.grain_quaternions[g], L, T, rng)
        t0 = time.perf_counter()
        pat, dk = abtem_pattern(
            pos, Z, sig, extent_A=L, thickness_A=T, energy_eV=energy, semiangle_mrad=semiangle, k_reach=k_reach,
            frozen_phonons=frozen_phonons, seed=int(rng.integers(2**31 - 1)),
        )
        times.append(time.perf_counter() - t0)
        n_atoms.append(len(Z))
        images[g] = splat_to_detector(pat, dk, cal, (ky, kx)) * plan.direct_beam
    # vacuum: the probe alone (no atoms)
    pat, dk = _vacuum_pattern(L, energy, semiangle, k_reach)
    plan.vacuum_image = splat_to_detector(pat, dk, cal, (ky, kx)) * plan.direct_beam
    plan.grain_images = images
    plan.parameters.update(
        abtem_extent_A=L,
        abtem_slice_thickness_A=_SLICE_THICKNESS_A,
        abtem_k_reach=k_reach,
        abtem_seconds_per_pattern=[round(t, 2) for t in times],
        abtem_atoms_per_block=n_atoms,
        abtem_version=_abtem_version(),
        occupancy="random site assignment per unit cell (sites at one position share one draw)",
        phonon_sigma_A=f"sqrt(U_iso) from the CIF, {_DEFAULT_SIGMA_A} where none",
    )


def _vacuum_pattern(L: float, energy: float, semiangle: float, k_reach: float) -> tuple[np.ndarray, float]:
    abtem = require_abtem()
    gpts = _fft_size(math.ceil(L * 3.0 * k_reach))
    probe = abtem.Probe(energy=energy, semiangle_cutoff=semiangle, extent=L, gpts=gpts)
    arr = np.asarray(probe.build(scan=np.array([[L / 2, L / 2]])).diffraction_patterns(max_angle="full").array)
    return arr.reshape(arr.shape[-2:]).astype(np.float64), 1.0 / L


def _abtem_version() -> str:
    import abtem

    return str(getattr(abtem, "__version__", "unknown"))
