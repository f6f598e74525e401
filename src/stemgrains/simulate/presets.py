"""Standard simulated datasets (shared/docs/benchmarks.md) and the project's sample CIFs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..crystal import BUILTIN_CIFS, load_phase, resolve_cif
from ..errors import ParameterError
from ._microstructure import paint_disks, voronoi_labels
from .polycrystal import _DEFAULTS, simulate_polycrystal

__all__ = ["SAMPLE_CIFS", "PRESETS", "sample_cif", "preset_parameters", "standard_dataset"]

SAMPLE_CIFS = BUILTIN_CIFS

# what every preset states: the simulator's defaults of these parameters (one table: polycrystal._DEFAULTS), and
# its dose
_STATED = ("detector_shape", "k_max", "accelerating_voltage_kV", "scan_step_nm", "convergence_semiangle_mrad", "dose",
           "background", "dtype")
_COMMON: dict[str, Any] = dict({k: _DEFAULTS[k] for k in _STATED}, dose=1.0e4)

#: name → (CIF names, simulation parameters). Seeds are fixed: a preset always gives the same data.
PRESETS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "nba-64": (("na_beta2_alumina",), dict(_COMMON, scan_shape=(64, 64), n_grains=12, seed=64)),
    "au-64": (("au",), dict(_COMMON, scan_shape=(64, 64), n_grains=12, seed=79)),
    "nba-256": (("na_beta2_alumina",), dict(_COMMON, scan_shape=(256, 256), n_grains=48, seed=256)),
    # Na-β″ grains with a few small ZrO2 particles (phase 1) painted over the Voronoi map
    # bragg_intensity raised: ZrO2 scatters ~3x more per volume, which would otherwise dim the Na-β″ spots
    "nba-zro2": (
        ("na_beta2_alumina", "zro2_baddeleyite"),
        dict(_COMMON, scan_shape=(64, 64), n_grains=12, seed=40, bragg_intensity=3000.0),
    ),
}
_ZRO2_PARTICLES = dict(n=4, radius_px=4.0)

# Small fixed datasets for CI accuracy tests (tests/data/, see tests/data/README.md), simulated by engines
# whose physics is not ours. 128 x 128 detector, 300 kV, q_pixel_size 0.025 1/Å (k = 1.6 1/Å at the edge).
# ``grain_spec``: one orientation spec per grain (simulate._orientations.designed_orientations).
_CI = dict(_COMMON, q_pixel_size=0.025, k_max=1.55)
_NBA_P4_SPEC = [("c_angle", 88.0), ("c_angle", 3.0), ("zone", (2, 1, 0), 1.0)] + [("random",)] * 5
_AU_P4_SPEC = [("zone", (0, 0, 1), 1.0), ("zone", (0, 1, 1), 1.5), ("zone", (1, 1, 1), 2.0)] + [("random",)] * 5
_NBA_AB_SPEC = [("c_angle", 90.0), ("c_angle", 86.0), ("c_angle", 4.0)] + [("random",)] * 7
_AU_AB_SPEC = [("zone", (0, 1, 1), 1.0), ("zone", (0, 0, 1), 2.0)] + [("random",)] * 4
_NBA, _AU = ("na_beta2_alumina",), ("au",)
_P4, _AB = dict(_CI, engine="py4dstem"), dict(_CI, engine="abtem")


def _ci_preset(cifs: tuple[str, ...], engine: dict[str, Any], scan_shape: tuple[int, int], seed: int, spec: list,
               **changed: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    """One CI preset: the engine's parameters with this scan shape, seed, the ``changed`` ones and the grain spec."""
    return cifs, dict(engine, scan_shape=scan_shape, seed=seed, **changed, grain_spec=spec)


_CI_PRESETS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "ci-nba-py4dstem": _ci_preset(_NBA, _P4, (24, 24), 1101, _NBA_P4_SPEC),
    "ci-au-py4dstem": _ci_preset(_AU, _P4, (24, 24), 1102, _AU_P4_SPEC),
    "ci-nba-abtem": _ci_preset(_NBA, _AB, (24, 24), 1103, _NBA_AB_SPEC, thickness_nm=25.0),
    "ci-au-abtem": _ci_preset(_AU, _AB, (24, 24), 1104, _AU_AB_SPEC, thickness_nm=20.0),
    # held out: other seeds (microstructure, orientations, noise), dose and relrod width / thickness; not for tuning
    "heldout-nba-py4dstem": _ci_preset(_NBA, _P4, (16, 16), 2101, _NBA_P4_SPEC, dose=5.0e3, excitation_error_sigma=0.01),
    "heldout-au-py4dstem": _ci_preset(_AU, _P4, (16, 16), 2102, _AU_P4_SPEC, dose=5.0e3, excitation_error_sigma=0.01),
    "heldout-nba-abtem": _ci_preset(_NBA, _AB, (16, 16), 2103, _NBA_AB_SPEC, dose=5.0e3, thickness_nm=30.0),
    "heldout-au-abtem": _ci_preset(_AU, _AB, (16, 16), 2104, _AU_AB_SPEC, dose=5.0e3, thickness_nm=25.0),
}
PRESETS.update(_CI_PRESETS)


def sample_cif(name: str | os.PathLike) -> Path:
    """Path of a CIF: an existing file path as given, else one of the project's sample CIFs by name
    (``"na_beta2_alumina"``, ``"au"``, ``"zro2_baddeleyite"``): :func:`stemgrains.crystal.resolve_cif`, which every
    ``--phase`` goes through (raises its FileFormatError, an InputError, for anything else)."""
    return resolve_cif(name)


def preset_parameters(name: str) -> tuple[tuple[str, ...], dict[str, Any]]:
    """(CIF names, parameters) of a standard dataset; raises ParameterError for an unknown name."""
    if name not in PRESETS:
        raise ParameterError(f"unknown preset {name!r}; expected one of {', '.join(PRESETS)}")
    cifs, params = PRESETS[name]
    return cifs, dict(params)


def _designed_grains(name: str, phase: Any, spec: list, params: dict[str, Any]) -> dict[str, Any]:
    """Voronoi labels with one grain per spec and the specs' orientations (seeded by the preset's seed)."""
    from ._orientations import designed_orientations

    seed = int(params["seed"])
    labels = voronoi_labels(params.pop("scan_shape"), len(spec), np.random.default_rng([seed, 98]))
    params.pop("n_grains", None)
    missing = sorted(set(range(1, len(spec) + 1)) - set(np.unique(labels).tolist()))
    if missing:
        raise ParameterError(f"preset {name!r}: grains {missing} own no pixel with seed {seed}; pick another seed")
    quats, classes = designed_orientations(phase, spec, np.random.default_rng([seed, 97]))
    meta = dict(params.get("metadata") or {})
    meta["grain_classes"] = classes
    return {"labels": labels, "orientations": quats, "metadata": meta}


def standard_dataset(
    name: str, path: str | os.PathLike, *, progress: bool = True, compression: str | None = "gzip", **overrides: Any
) -> Path:
    """Write one of the standard simulated datasets ("nba-64", "au-64", "nba-256", "nba-zro2") or of the small
    CI datasets simulated by the py4DSTEM or abTEM engines ("ci-*", "heldout-*"; see tests/data/README.md).

    Parameters
    ----------
    name
        Preset name (see :data:`PRESETS`).
    path
        Output ``.h5`` file.
    progress
        Show a progress bar.
    compression
        HDF5 compression of ``/data`` (default gzip: the sparse patterns shrink about 8×, e.g. nba-64 from
        135 MB to 18 MB, for little extra time); ``None`` for raw chunks.
    **overrides
        Simulation parameters replacing the preset's (e.g. ``dose=None`` for noise-free data,
        ``phases=[...]`` for other CIFs); see :func:`simulate_polycrystal`.

    Returns
    -------
    pathlib.Path
    """
    cifs, params = preset_parameters(name)
    params["metadata"] = {"preset": name}
    params.update(overrides)
    phases = params.pop("phases", None)
    if phases is None:
        phases = [load_phase(sample_cif(c), name=c) for c in cifs]
    spec = params.pop("grain_spec", None)
    if spec is not None and "labels" not in overrides and "orientations" not in overrides:
        params.update(_designed_grains(name, phases[0], spec, params))
    if name == "nba-zro2" and "labels" not in overrides and "grain_phase" not in overrides:
        rng = np.random.default_rng([int(params["seed"]), 99])
        base = voronoi_labels(params["scan_shape"], params["n_grains"], rng)
        labels = paint_disks(base, _ZRO2_PARTICLES["n"], _ZRO2_PARTICLES["radius_px"], rng)
        # relabel consecutively (a particle may have swallowed a small grain)
        present, labels = np.unique(labels, return_inverse=True)
        labels = (labels.reshape(base.shape) + 1).astype(np.int32)
        grain_phase = (present > params["n_grains"]).astype(np.int64)
        params.update(labels=labels, grain_phase=grain_phase)
        params.pop("scan_shape")
        params.pop("n_grains")
    return simulate_polycrystal(path, phases=phases, progress=progress, compression=compression, **params)
