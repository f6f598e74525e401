"""``stemgrains simulate``: write a synthetic polycrystal 4D-STEM scan with known truth."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .. import config
from ..errors import ParameterError
from ._common import parse_pair

NAME = "simulate"
HELP = "simulate a polycrystal 4D-STEM scan (kinematic spots, known orientations) into a project .h5 file"
DESCRIPTION = (
    "Simulate a synthetic polycrystal 4D-STEM scan with known grain orientations. Give the phases as CIF "
    "files (--phase, repeatable) or take a standard dataset with --preset (nba-64, au-64, nba-256, nba-zro2); "
    "options given together with --preset override its values."
)
ORDER = 5


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", required=True, metavar="OUT.h5", help="output file (written atomically)")
    p.add_argument(
        "--phase",
        action="append",
        default=None,
        metavar="CIF",
        help="phase CIF path, or a sample CIF name (na_beta2_alumina, au, zro2_baddeleyite); repeat for several phases",
    )
    p.add_argument(
        "--preset",
        default=None,
        metavar="NAME",
        help="standard dataset: nba-64, au-64, nba-256, nba-zro2, or a CI dataset (ci-nba-py4dstem, ci-au-py4dstem, "
        "ci-nba-abtem, ci-au-abtem, heldout-*; see tests/data/README.md)",
    )
    p.add_argument("--scan", default=None, metavar="NY,NX", help="scan shape (default 64,64)")
    p.add_argument("--detector", default=None, metavar="KY,KX", help="detector shape (default 128,128)")
    p.add_argument("--grains", type=int, default=None, metavar="N", help="number of Voronoi grains (default 12)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    p.add_argument("--dose", type=float, default=None, help="electrons per pattern (Poisson noise); default: noise-free, or the preset's dose")
    p.add_argument("--noise-free", action="store_true", help="write expected counts without Poisson noise")
    p.add_argument("--step-nm", type=float, default=None, metavar="NM", help="scan step, nm (default 2)")
    p.add_argument("--k-max", type=float, default=None, metavar="Q", help="largest reflection, 1/Å (default 1.5)")
    p.add_argument("--voltage", type=float, default=None, metavar="KV", help="accelerating voltage, kV (default 300)")
    p.add_argument("--rotation", type=float, default=None, metavar="DEG", help="detector rotation q_rotation_deg")
    p.add_argument("--q-pixel-size", type=float, default=None, metavar="Q",
                   help="true detector pixel size, 1/Å per px (default: the detector reaches --k-max with a margin); with "
                        "--ellipticity, the one across the stretched axis (see README, 'Calibration')")
    p.add_argument("--ellipticity", default=None, metavar="RATIO,ANGLE",
                   help="true elliptical distortion of the detector: lengths along the axis at ANGLE degrees (from +col "
                        "toward +row) RATIO times longer")
    p.add_argument("--stated-q-pixel-size", type=float, default=None, metavar="Q",
                   help="the pixel size the file states instead of the true one (a detector calibrated wrongly; "
                        "to try `stemgrains calibrate`)")
    p.add_argument("--unstated-distortion", action="store_true",
                   help="the file does not state the --ellipticity (a detector whose distortion nobody measured); the "
                        "true calibration stays in the /truth attribute 'calibration'")
    p.add_argument(
        "--engine",
        choices=("kinematic", "py4dstem", "abtem"),
        default=None,
        help="diffraction model per grain: kinematic (ours, default), py4dstem (py4DSTEM Crystal spot lists), "
        "abtem (multislice, needs pip install stemgrains[abtem])",
    )
    p.add_argument(
        "--thickness", type=float, default=None, metavar="NM", help="specimen thickness, nm (abtem; default 25)"
    )
    p.add_argument(
        "--phonons", type=int, default=None, metavar="N", help="frozen-phonon configurations (abtem; default 4)"
    )
    p.add_argument("--compression", choices=("lzf", "gzip"), default=None, help="HDF5 compression of /data")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--force", action="store_true",
                   help="replace OUT.h5 when it exists (default: refused, it holds another simulation's or "
                        "someone's data)")


def _refuse_existing(out: Path) -> None:
    """An existing ``-o`` file is someone's data (another simulation, a measured scan, results): one line naming
    it and what it holds, unless ``--force``."""
    if out.is_dir():
        raise ParameterError(f"-o {out}: is a folder; give the name of the .h5 file to write")
    if not out.exists():
        return
    what = "a file"
    try:
        import h5py

        with h5py.File(out, "r") as f:
            if "truth" in f and "data" in f:
                seed = f["truth"].attrs.get("seed")
                what = "a simulated scan" + (f" (seed {int(seed)}, " if seed is not None else " (") + \
                    f"scan {f['data'].shape[0]} x {f['data'].shape[1]})"
            elif "data" in f:
                what = "4D-STEM data"
            elif "orientation" in f or "input" in f:
                what = "results"
    except Exception:  # not HDF5 or unreadable: still someone's file
        pass
    raise ParameterError(f"-o {out}: exists and holds {what}; a simulation would replace it; choose another name, "
                         "or give --force to replace it")


def _positive(v: float | None, opt: str) -> float | None:
    if v is not None and not (np.isfinite(v) and v > 0):
        raise ParameterError(f"{opt} expects a finite positive number (1/Å per px), got {v:g}")
    return v


def _check_engine_options(args: argparse.Namespace) -> None:
    """The options checked before the output file is (their errors came one at a time behind "-o ... exists"): a
    known preset, a phase where there is none, a positive dose, and --thickness (positive) and --phonons (at least 1)
    only for the multislice engine (the kinematic and py4DSTEM engines have neither: a value given did nothing)."""
    from ..simulate.presets import preset_parameters

    preset_engine = preset_parameters(args.preset)[1].get("engine") if args.preset else None
    if not args.preset and not args.phase:
        raise ParameterError("give at least one --phase CIF, or a --preset")
    if args.dose is not None and not (np.isfinite(args.dose) and args.dose > 0):
        raise ParameterError(f"--dose expects a finite positive number (electrons per pattern), got {args.dose:g}")
    if args.thickness is not None and not (np.isfinite(args.thickness) and args.thickness > 0):
        raise ParameterError(f"--thickness expects a finite positive number (nm), got {args.thickness:g}")
    if args.phonons is not None and args.phonons < 1:
        raise ParameterError(f"--phonons expects at least 1 frozen-phonon configuration, got {args.phonons}")
    engine = args.engine or preset_engine or "kinematic"
    given = [opt for opt, v in (("--thickness", args.thickness), ("--phonons", args.phonons)) if v is not None]
    if given and engine != "abtem":
        raise ParameterError(f"{' and '.join(given)} {'apply' if len(given) > 1 else 'applies'} to the multislice "
                             f"engine only (--engine abtem); the {engine} engine has no specimen thickness or phonons")


def run(args: argparse.Namespace) -> int:
    from ..simulate import sample_cif, simulate_polycrystal, standard_dataset

    if args.k_max is not None and not 0 < args.k_max <= config.K_MAX_LIMIT:  # beyond it the reflection table is huge
        raise ParameterError(f"--k-max expects a value above 0 and at most {config.K_MAX_LIMIT:g} 1/Å, got {args.k_max:g}")
    params = {
        "scan_shape": parse_pair(args.scan, "--scan", int) if args.scan else None,
        "detector_shape": parse_pair(args.detector, "--detector", int) if args.detector else None,
        "n_grains": args.grains,
        "seed": args.seed,
        "dose": args.dose,
        "scan_step_nm": args.step_nm,
        "k_max": args.k_max,
        "accelerating_voltage_kV": args.voltage,
        "q_rotation_deg": args.rotation,
        "q_pixel_size": _positive(args.q_pixel_size, "--q-pixel-size"),
        "ellipticity": parse_pair(args.ellipticity, "--ellipticity") if args.ellipticity else None,
        "engine": args.engine,
        "thickness_nm": args.thickness,
        "frozen_phonons": args.phonons,
    }
    params = {k: v for k, v in params.items() if v is not None}
    if args.noise_free:
        if args.dose is not None:
            raise ParameterError("--noise-free and --dose exclude each other")
        params["dose"] = None
    _check_engine_options(args)
    from ..io.outputs import check_outputs

    if args.phase:
        params["phases"] = [str(sample_cif(p)) for p in args.phase]
    check_outputs({"-o": args.output}, params.get("phases", []))
    if Path(args.output).suffix.lower() not in (".h5", ".hdf5") and not Path(args.output).is_dir():
        raise ParameterError(f"-o {args.output}: a simulated scan is HDF5; give a .h5 or .hdf5 file name")
    if not args.force:
        _refuse_existing(Path(args.output))
    progress = not args.no_progress
    if args.compression:
        params["compression"] = args.compression
    stated: dict = {}
    if args.stated_q_pixel_size is not None:
        stated["q_pixel_size"] = _positive(args.stated_q_pixel_size, "--stated-q-pixel-size")
    if args.unstated_distortion:
        if not args.ellipticity:
            raise ParameterError("--unstated-distortion needs --ellipticity (the distortion the file should not state)")
        stated.update(ellipticity_ratio=None, ellipticity_angle_deg=None)
    if stated:
        params["stated_calibration"] = stated
    if args.preset:
        out = standard_dataset(args.preset, args.output, progress=progress, **params)
    else:
        if not args.phase:
            raise ParameterError("give at least one --phase CIF, or a --preset")
        out = simulate_polycrystal(args.output, progress=progress, **params)
    print(f"wrote {out}")
    return 0
