"""``stemgrains classify RESULTS.h5 --field X,Y``: conduction-plane classification of the grain boundaries."""

from __future__ import annotations

import argparse

from .. import config
from ..errors import ParameterError
from ._common import add_config_option, name_config_origin

NAME = "classify"
HELP = "classify grain boundaries by how Na+ conduction planes meet them under a field (Type I/II/III a/b 1/2)"
DESCRIPTION = (
    "Read grains and boundaries from a results file (written by `stemgrains segment`), label every boundary "
    "segment and boundary (docs/classification.md: Type I/II/III, a/b, field index 1/2; behaviour parallel/"
    "transmitting/blocking/depleting) and write them under /classification. The field is one direction "
    "(--field) or, with --field-from-transport, each boundary's local field from `stemgrains transport`. "
    "Columns and units: docs/data-dictionary.md."
)
ORDER = 60


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", metavar="RESULTS.h5", help="results file with /grains and /boundaries")
    add_config_option(p, "[classify]")
    # options that map to config keys default to None: given → they override --config (stemgrains.settings)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--field", metavar="X,Y",
                     help="in-plane field direction (Na+ drift), x right, y down, e.g. 1,0; only the direction counts")
    src.add_argument("--field-from-transport", action="store_true", default=None,
                     help="classify each boundary under its local field, the one `stemgrains transport` wrote "
                          "into RESULTS.h5 (/transport/boundaries/field); boundaries no current reaches take the "
                          "mean field direction of the map")
    p.add_argument("-o", "--output", metavar="OUT.h5", default=None,
                   help="write a copy with /classification there (default: update RESULTS.h5 in place)")
    p.add_argument("--delta", type=float, default=None, metavar="DEG",
                   help=f"type tolerance: Type I if θ <= delta, II if θ >= 90 - delta (default {config.TYPE_TOLERANCE_DEG:g})")
    p.add_argument("--flat-tol", type=float, default=None, metavar="DEG",
                   help=f"a grain is flat (no trace) if alpha < this (default {config.FLAT_TOLERANCE_DEG:g})")
    p.add_argument("--ratio", type=float, default=None, metavar="R",
                   help=f"in-plane / out-of-plane conductivity (default {config.CONDUCTIVITY_RATIO:g})")
    p.add_argument("--basis", choices=("trace", "3d"), default=None,
                   help="misorientation used for the type: trace (theta_2d) or 3d (theta_3d) (default trace)")
    p.add_argument("--tau-flow", type=float, default=None, metavar="T",
                   help=f"flux below which a boundary is 'parallel', units of sigma_ip|E| (default {config.TAU_FLOW:g})")
    p.add_argument("--r-block", type=float, default=None, metavar="R",
                   help=f"|r| at or above which a boundary is blocking/depleting, 0 < R <= 2 (r lies in [-2, 2]; "
                        f"default {config.R_BLOCK:g})")
    p.add_argument("--conducting-phase", action="append", default=None, metavar="NAME",
                   help="conducting phase name or id (repeatable; default: the phases with Na+ conduction planes, "
                        "Na-beta''- and Na-beta-alumina; boundaries of other phases are labelled other-phase)")
    p.add_argument("--csv", metavar="OUT.csv", default=None,
                   help="also write the per-boundary table there, and the per-segment table next to it "
                        "(OUT.segments.csv)")
    p.add_argument("--figures", metavar="DIR", default=None,
                   help="write grain_traces.png, boundary_behaviour.png and boundary_table.png there")
    p.add_argument("--force", action="store_true",
                   help="replace OUT.h5 (and the --csv tables) even when it holds the results of another input or "
                        "is not ours (default: refused; the same input's results are replaced)")


def run(args: argparse.Namespace) -> int:
    from ..pipeline import run_classify
    from ..settings import resolve

    try:
        got = run_classify(args.results, args.output, resolve(args, NAME), csv=args.csv, figures=args.figures,
                           replace_other=args.force)
    except ParameterError as err:  # FILE: [classify] conducting_phases: ... where the config file gave them
        raise name_config_origin(err, args, "classify", "conducting_phases", "conducting_phase") from None
    result, grain_map, field, n_filled, out = (got[k] for k in ("result", "grain_map", "field", "n_filled", "output"))
    fx, fy = field if field is not None else (None, None)
    summary = result.summary()
    n_b = len(result.boundaries)
    if fx is not None:
        under = f"field ({fx:g}, {fy:g})"
    elif got.get("field_unused"):  # given, but nothing conducts: classified under none, as run does
        under = "no field (none needed: nothing conducts; the one given is not used)"
    elif result.parameters.get("field") is None:  # a map without a conducting phase, classified under none
        under = "no field (none given, none needed)"
    else:
        under = "the local transport field" + (f" ({n_filled} boundaries without current: mean field)" if n_filled else "")
    print(f"classified {n_b} boundaries ({len(result.segments)} segments, "
          f"{summary['total_length_nm']:.1f} nm) under {under} -> {out}")
    if not result.parameters["conducting_phases"] and n_b:
        names = ", ".join(p.name for i, p in grain_map.phases if i >= 0)
        from ..crystal import is_hexagonal_like

        hint = ("name one with --conducting-phase" if any(is_hexagonal_like(p) for i, p in grain_map.phases if i >= 0)
                else "no phase of this map could be one: cubic and other non-trigonal phases have no conduction planes")
        print(f"  no phase with Na+ conduction planes among {names}: every boundary is other-phase ({hint})")
    for name, frac in summary["behaviour_fraction"].items():
        if frac > 0:
            print(f"  {name:<13} {100 * frac:5.1f} % of boundary length")
    from ..boundaries.classify import c_axis_uncertain_line

    line = c_axis_uncertain_line(summary)
    if line:
        print(f"  {line}")
    return 0
