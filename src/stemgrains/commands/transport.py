"""``stemgrains transport RESULTS.h5 --electrode left=1 --electrode right=0``: ionic current on the grain map."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import config
from ..errors import FileFormatError, ParameterError
from ._common import add_config_option

NAME = "transport"
HELP = "solve the Na+ transport model on the grain map of a results file (writes /transport)"
ORDER = 70


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", metavar="RESULTS.h5", help="results file with /grains (from `stemgrains segment`)")
    add_config_option(p, "[transport]")
    # options that map to config keys default to None: given → they override --config (stemgrains.settings)
    p.add_argument("--electrode", action="append", default=None, metavar="WHERE=VOLTS",
                   help="electrode: an image edge (left, right, top, bottom) or a boolean .npy mask of the map, "
                        "with its potential, e.g. left=1; repeat for each electrode")
    p.add_argument("--ratio", type=float, default=None, metavar="R",
                   help=f"conductivity ratio sigma_ip/sigma_op (default {config.CONDUCTIVITY_RATIO:g})")
    p.add_argument("--gb-sigma", type=float, default=None, metavar="S",
                   help=f"boundary layer conductivity in units of sigma_ip (default {config.GB_CONDUCTIVITY_FRACTION:g})")
    p.add_argument("--gb-thickness-nm", type=float, default=None, metavar="NM",
                   help=f"boundary layer thickness, nm (default {config.GB_THICKNESS_NM:g}; 0 = no boundary resistance)")
    p.add_argument("--model", choices=("tensor", "resistor"), default=None,
                   help="tensor: FEM with the full conductivity tensor (default); resistor: published per-direction model")
    p.add_argument("--frame", type=int, default=None, metavar="PX", help="add a frame of this width (pixels) around the map")
    p.add_argument("--frame-sigma", type=float, default=None, metavar="S",
                   help=f"frame conductivity in units of sigma_ip (default {config.FRAME_CONDUCTIVITY_FRACTION:g})")
    p.add_argument("--unassigned", default=None, metavar="gb|pore|S",
                   help="label-0 pixels: boundary material (gb, default), pores, or an isotropic conductivity")
    p.add_argument("--solver", choices=("auto", "direct", "amg", "cg"), default=None, help="linear solver (default auto)")
    p.add_argument("-o", "--output", default=None, metavar="OUT.h5", help="write here instead of updating RESULTS.h5")
    p.add_argument("--figures", default=None, metavar="DIR", help="write current, potential and mismatch figures (PNG)")


def _parse_electrodes(electrodes: dict[str, float] | None) -> list[tuple[object, float]]:
    """The ``[transport] electrodes`` table (``--electrode WHERE=VOLTS``) with the masks read."""
    import numpy as np

    from ..transport import EDGES

    if not electrodes:
        raise ParameterError("--electrode is required (at least once), e.g. --electrode left=1 --electrode right=0 "
                             "(or [transport] electrodes in --config)")
    out = []
    for where, v in electrodes.items():
        s = f"{where}={v:g}"
        if where in EDGES:
            out.append((where, v))
            continue
        path = Path(where)
        if path.suffix.lower() != ".npy" or not path.is_file():
            raise ParameterError(f"--electrode {s!r}: {where!r} is neither an edge ({', '.join(EDGES)}) nor a .npy mask file")
        try:
            mask = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise FileFormatError(f"{path}: cannot read mask ({err})") from None
        out.append((mask.astype(bool) if mask.dtype != bool else mask, v))
    from ..transport.api import require_potential_difference

    require_potential_difference(list(electrodes.items()))
    return out


def _read_boundaries(path: Path):
    """The file's BoundaryTable when the boundaries stage provides a reader and the file has one, else None."""
    try:
        from ..boundaries import read_boundaries  # type: ignore[attr-defined]
    except ImportError:
        return None
    import h5py

    with h5py.File(path, "r") as f:
        if "boundaries" not in f:
            return None
    return read_boundaries(path)


def run(args: argparse.Namespace) -> int:
    from ..grains import read_grains
    from ..transport import solve_transport, write_transport

    from ..settings import resolve, write_config

    cfg = resolve(args, NAME)
    t = cfg["transport"]
    path = Path(args.results)
    electrodes = _parse_electrodes(t["electrodes"])
    grain_map = read_grains(path)
    result = solve_transport(
        grain_map,
        electrodes=electrodes,
        conductivity_ratio=t["conductivity_ratio"],
        gb_conductivity=t["gb_conductivity"],
        gb_thickness_nm=t["gb_thickness_nm"],
        frame=t["frame"],
        frame_conductivity=t["frame_conductivity"],
        unassigned=t["unassigned"],
        model=t["model"],
        boundaries=_read_boundaries(path),
        solver=t["solver"],
    )
    from ..io.results import update_h5

    out = Path(args.output) if args.output else path
    with update_h5(path, out) as f:
        write_transport(f, result)
        write_config(f, cfg, NAME)
    s = result.solver
    print(f"model:        {result.model} ({s.get('method')}, {s.get('n_unknowns')} unknowns, "
          f"{s.get('seconds', 0.0):.2f} s, residual {s.get('residual', 0.0):.1e})")
    for name, v, c in zip(result.electrodes["name"], result.electrodes["potential_V"], result.electrodes["current"]):
        print(f"electrode:    {name} at {v:g} V, current {c:.6g} sigma_ip*V")
    print(f"conductance:  {result.conductance:.6g} sigma_ip (current imbalance {result.current_imbalance:.1e})")
    print(f"boundaries:   {len(result.boundaries)}; floating pixels: {result.n_floating_pixels}")
    print(f"written:      {out}:/transport")
    if args.figures:
        from ..plot.transport import save_transport_figures

        for p in save_transport_figures(result, args.figures).values():
            print(f"figure:       {p}")
    return 0
