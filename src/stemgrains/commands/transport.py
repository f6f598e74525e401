"""``stemgrains transport RESULTS.h5 --electrode left=1 --electrode right=0``: ionic current on the grain map."""

from __future__ import annotations

import argparse
import sys

from .. import config
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
    p.add_argument("--force", action="store_true",
                   help="replace OUT.h5 even when it holds the results of another input (default: refused; the "
                        "same input's results are replaced)")


def run(args: argparse.Namespace) -> int:
    from ..pipeline import run_transport
    from ..settings import resolve

    got = run_transport(args.results, args.output, resolve(args, NAME), figures=args.figures, replace_other=args.force)
    result, out = got["result"], got["output"]
    s = result.solver
    print(f"model:        {result.model} ({s.get('method')}, {s.get('n_unknowns')} unknowns, "
          f"{s.get('seconds', 0.0):.2f} s, residual {s.get('residual', 0.0):.1e})")
    for name, v, c in zip(result.electrodes["name"], result.electrodes["potential_V"], result.electrodes["current"]):
        print(f"electrode:    {name} at {v:g} V, current {c:.6g} σ_ip·V per unit lamella thickness")
    print(f"conductance:  {result.conductance:.6g} σ_ip per unit lamella thickness (current imbalance "
          f"{result.current_imbalance:.1e})")
    print(f"boundaries:   {len(result.boundaries)}; floating pixels: {result.n_floating_pixels}")
    if result.total_current == 0:
        from ..pipeline import NO_CURRENT_NOTE

        print(f"warning: {NO_CURRENT_NOTE}, and classify --field-from-transport does not apply", file=sys.stderr)
    print(f"written:      {out}:/transport")
    for p in got["figures"]:
        print(f"figure:       {p}")
    return 0
