"""``stemgrains run INPUT --phase CIF --field X,Y -o OUTDIR``: the whole pipeline on one dataset."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .. import config
from ._batch import add_batch_arguments, batch_params, is_batch, run_batch_command
from ._common import (PHASE_HELP, add_auto_calibrate, add_calibration_overrides, add_config_option,
                      name_special_origin)
from .._relrod import BATCH_KEYS
from .index import low_reliable_hint, reliable_line, sigma_line, withdrawn_line

NAME = "run"
HELP = "index → grains → boundaries → (transport) → conduction-plane classification, with figures and tables"
DESCRIPTION = (
    "Run every stage on one 4D-STEM dataset and write OUTDIR/results.h5 (orientation, grains, boundaries, "
    "classification, transport), boundaries.csv, segments.csv, summary.json and the figures. Give the applied "
    "field with --field X,Y; with --electrode the ionic transport model runs too (where a phase has Na+ conduction "
    "planes; otherwise it is skipped, saying why) and, without --field, each boundary is classified under its local "
    "field. A map without a phase with Na+ conduction planes (e.g. Au) needs neither: its boundaries get their "
    "misorientations but no classification. Several inputs (files, folders, globs): -o OUTDIR holds one "
    "such folder per input, OUTDIR/batch_summary.csv, batch_summary.png and config.toml."
)
ORDER = 10


def add_arguments(p: argparse.ArgumentParser) -> None:
    # options that map to config keys default to None: given → they override --config (stemgrains.settings)
    p.add_argument("input", nargs="+", metavar="INPUT", help="4D-STEM data file; several files, folders or globs make a batch")
    p.add_argument("--phase", action="append", required=True, metavar="CIF", help=PHASE_HELP)
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder")
    add_config_option(p, "every section")
    p.add_argument("--field", default=None, metavar="X,Y", help="applied in-plane field direction, sample frame (x right, y down)")
    p.add_argument("--electrode", action="append", default=None, metavar="WHERE=V",
                   help="transport electrode: left|right|top|bottom or a mask .npy, = potential (repeat)")
    p.add_argument("--step", type=float, default=None, metavar="DEG", help=f"library step (default {config.LIBRARY_STEP_DEG:g})")
    p.add_argument("--k-max", type=float, default=None, metavar="Q", help=f"largest scattering vector, 1/Å (default: what the detector reaches, at most {config.K_MAX_CAP:g})")
    p.add_argument("--neighbor-average-radius", type=int, default=None, metavar="N",
                   help=f"sum each pattern with the similar patterns within N scan px before indexing (default "
                        f"{config.NEIGHBOR_AVERAGE_RADIUS}; 0: every pattern alone)")
    p.add_argument("--chunk-rows", type=int, default=None, metavar="N", help="scan rows per chunk (memory, GPU batch; rounded up to whole blocks of 8 rows: the map does not depend on it; default 8)")
    p.add_argument("--no-pair-search", action="store_true", default=None,
                   help="skip the spot-pair hypotheses tried where the template solution leaves spots unexplained")
    p.add_argument("--no-grain-vote", action="store_true", default=None,
                   help="keep every pixel's own solution (skip the grain-level decision among near-tied hypotheses; "
                        "use it where real twins whose patterns match their parent's are expected)")
    p.add_argument("--no-final-refinement", action="store_true", default=None,
                   help="skip the final refinement at a narrower relrod width (also one a --config file sets; chosen from the data by default)")
    p.add_argument("--threshold", type=float, default=None, metavar="DEG", help=f"grain threshold (default {config.GRAIN_THRESHOLD_DEG:g})")
    p.add_argument("--min-size", type=int, default=None, metavar="N", help=f"smallest grain, px (default {config.MIN_GRAIN_SIZE_PX:d})")
    p.add_argument("--min-reliability", type=float, default=None, metavar="R", help="pixels below this reliability are unassigned")
    p.add_argument("--reliability-prop", choices=("reliability", "grain_reliability", "c_axis_reliability"), default=None,
                   help="the property --min-reliability judges (as `segment --reliability-prop`; default reliability)")
    p.add_argument("--special", action="append", default=None, metavar="NAME:ANGLE:U,V,W:TOL",
                   help="special misorientation (repeatable, as `segment --special`): name, angle (deg), axis [uvw] "
                        "or [UVTW] (hexagonal/trigonal), tolerance (deg), e.g. twin:86.3:1,1,-2,0:5; replaces [grains] special of --config")
    p.add_argument("--delta", type=float, default=None, metavar="DEG", help=f"type tolerance (default {config.TYPE_TOLERANCE_DEG:g})")
    p.add_argument("--ratio", type=float, default=None, help=f"σ_ip/σ_op (default {config.CONDUCTIVITY_RATIO:g})")
    p.add_argument("--backend", choices=("cpu", "gpu"), default=None, help="compute backend (default cpu)")
    p.add_argument("--no-figures", action="store_true", default=None)
    p.add_argument("--overwrite", action="store_true",
                   help="OUTDIR holds another run's results: replace them (kept in OUTDIR/.stemgrains_replaced until this run "
                        "finishes, then deleted)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="dask.distributed scheduler address: the indexing's chunks (one input) or whole inputs (several) run on its workers")
    add_calibration_overrides(p)
    add_auto_calibrate(p)
    add_batch_arguments(p)


def run(args: argparse.Namespace) -> int:
    from ..io.outputs import completed_run
    from ..pipeline import run_configured
    from ..settings import resolve

    cfg = resolve(args, NAME)
    _check_phase_keys(args, cfg)  # before any work: the phases are known from the CIFs
    if is_batch(args.input, args.output):  # batch_params checks the phases, field, electrodes, calibration once, up front
        return run_batch_command(args, batch_job, batch_params(args.phase, cfg, NAME), cfg)
    _refuse_inputs_among_outputs(args.output, [*args.phase, args.config, cfg["calibration"].get("file"),
                                               *(k for k in (cfg["transport"].get("electrodes") or {})
                                                 if str(k).endswith(".npy"))])
    record = run_record(args.input[0], batch_params(args.phase, cfg, NAME))
    done = completed_run(args.output, record) if record is not None and not args.force else None
    if done is not None:
        print(f"{args.output}: already complete (a run on {done.get('input')} with the same content and parameters, "
              f"finished {done.get('finished', '?')}); nothing to do (--force redoes it)")
        return 0
    out = run_configured(args.input[0], args.output, args.phase, cfg, overwrite=args.overwrite,
                         progress=not args.no_progress, scheduler=args.scheduler, record=record)
    print_summary(out, args.output)
    return 0


def _check_phase_keys(args: argparse.Namespace, cfg: dict[str, Any]) -> None:
    """What needs the phases, checked on the ``--phase`` CIFs before any work: a Miller–Bravais special axis
    (``--special`` or ``[grains] special``) needs a hexagonal/trigonal phase
    (:func:`stemgrains.boundaries.misorientation.check_special_axes`), and ``[classify] conducting_phases`` of a
    config file must name hexagonal/trigonal phases among them
    (:func:`stemgrains.boundaries.classify.conducting_phase_ids`)."""
    from ..boundaries.misorientation import check_special_axes, parse_special
    from ..errors import ParameterError

    mb = any(len(parse_special(s, check_sum=False).axis) == 4 for s in cfg["grains"]["special"])
    conducting = cfg["classify"].get("conducting_phases")
    if not mb and conducting is None:
        return
    from orix.crystal_map import PhaseList

    from ..boundaries.classify import conducting_phase_ids
    from ..crystal import load_phase

    phases = [load_phase(c) for c in args.phase]
    try:
        check_special_axes(cfg["grains"]["special"], phases)
    except ParameterError as err:
        raise name_special_origin(err, args) from None
    if conducting is not None:
        try:
            conducting_phase_ids(PhaseList(phases=phases, ids=list(range(len(phases)))),
                                 [int(c) if str(c).strip().lstrip("-").isdigit() else c for c in conducting])
        except ParameterError as err:
            raise ParameterError(f"{args.config or 'config'}: [classify] {err}") from None


def _refuse_inputs_among_outputs(outdir: str, inputs: list[Any]) -> None:
    """One line, before any work, when a file the run reads (a phase CIF, the config, the calibration, an
    electrode mask) is one it would write into ``outdir`` (a user's config copied to OUTDIR/config.toml, a CIF
    named summary.json): the run would replace its own input."""
    from pathlib import Path

    from ..errors import ParameterError
    from ..io.outputs import RUN_MANIFEST, RUN_OUTPUTS

    writes = {*RUN_OUTPUTS, RUN_MANIFEST, "calibration.json"}
    folder = Path(outdir).resolve()
    for item in inputs:
        if not item:
            continue
        p = Path(item)
        if not p.is_file():
            continue
        rp = p.resolve()
        if rp.parent == folder and (rp.name in writes or rp.suffix.lower() == ".png"):
            raise ParameterError(f"{item}: an input of this run, but the run writes {rp.name} into {outdir}; move it "
                                 "or choose another output folder")


def run_record(input_path: str, params: dict[str, Any]) -> dict[str, str] | None:
    """What a run folder's manifest records to recognise the same run again, as a batch does per input
    (:func:`stemgrains.batch.input_checksum` of the input, :func:`stemgrains.batch.params_fingerprint` of
    ``params`` from :func:`~stemgrains.commands._batch.batch_params`); ``None`` when the input cannot be read
    (the run then reports it)."""
    from ..batch import input_checksum, params_fingerprint

    try:
        return {"checksum": input_checksum(input_path), "fingerprint": params_fingerprint(params)}
    except OSError:
        return None


def batch_job(input_path: Path, folder: Path, params: dict[str, Any]) -> dict[str, Any]:
    """One input of a batch (module level: it pickles for process pools and dask workers):
    :func:`stemgrains.pipeline.run_configured` into
    ``folder`` with ``params`` from :func:`~stemgrains.commands._batch.batch_params` (its folder belongs to the
    batch: an earlier run there is replaced); returns the numbers of the batch summary
    (:func:`stemgrains.batch.run_batch`)."""
    from ..batch import DONE_MARKER, params_fingerprint
    from ..pipeline import run_configured

    try:  # the batch's record of this input (written before the job): the run manifest records it too
        marker = json.loads((Path(folder) / DONE_MARKER).read_text(encoding="utf-8"))
        record = {"checksum": marker["checksum"], "fingerprint": params_fingerprint(params)}
    except (OSError, ValueError, KeyError, TypeError):
        record = None
    out = run_configured(str(input_path), str(folder), params["_phases"], params["_config"], overwrite=True,
                         progress=params.get("_progress", True), record=record)
    return batch_result(out["summary"], out.get("index_seconds"), out.get("indexed_here"))


def recover_batch_result(folder: Path, record: dict[str, str]) -> dict[str, Any] | None:
    """The :func:`batch_job` result of a subfolder whose ``batch_done.json`` was lost, from its run manifest and
    ``summary.json``, where that manifest records a complete run of this content and these parameters (``record``:
    :func:`stemgrains.io.outputs.completed_run`) and its files are unchanged; None otherwise (the input is redone).
    The attribute ``recover`` of :func:`batch_job` (:func:`stemgrains.batch.run_batch`)."""
    from ..io.outputs import completed_run

    if completed_run(folder, record) is None:
        return None
    try:
        summary = json.loads((Path(folder) / "summary.json").read_text(encoding="utf-8"))
        return batch_result(summary, None, None)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def batch_result(s: dict[str, Any], index_seconds: float | None, indexed_here: int | None) -> dict[str, Any]:
    """The numbers of the batch summary of one run from its ``summary.json`` ``s`` (patterns per second: the
    ``indexed_here`` patterns indexed in ``index_seconds``, None where unknown or none was indexed in this call,
    e.g. all resumed from a checkpoint)."""
    cls = s.get("classification", {})
    return {
        **{k: s[k] for k in BATCH_KEYS if s.get(k) is not None},
        "scan_shape": list(s["scan_shape"]),
        "patterns_per_s": indexed_here / index_seconds if index_seconds and indexed_here else None,
        "indexed_fraction": s["indexed_fraction"], "median_reliability": s["median_reliability"],
        **{k: s[k] for k in ("reliable_fraction", "grain_reliable_fraction") if s.get(k) is not None},
        "phase_fit_warnings": list(s.get("phase_fit", {}).get("warnings", [])), "warnings": _warnings_of(s),
        "n_grains": s["n_grains"], "n_boundaries": s["n_boundaries"],
        "label_fraction": cls.get("label_fraction", {}), "behaviour_fraction": cls.get("behaviour_fraction", {}),
        "c_axis_uncertain_fraction": cls.get("c_axis_uncertain_fraction"),
    }


batch_job.recover = recover_batch_result  # type: ignore[attr-defined]


def _warnings_of(s: dict[str, Any]) -> list[str]:
    """:func:`stemgrains.pipeline.input_warnings` of a run's summary."""
    from ..pipeline import input_warnings

    return input_warnings(s.get("calibration", {}), s["indexed_fraction"], s.get("phase_fit", {}).get("warnings", []),
                          max(s.get("reliable_fraction") or 0.0, s.get("grain_reliable_fraction") or 0.0))


def print_summary(out: dict[str, Any], output: str) -> None:
    """What ``stemgrains run`` prints for one dataset (``out`` from :func:`stemgrains.pipeline.run_configured`)."""
    s = out["summary"]
    if "calibration_fit" in out:
        from .calibrate import format_fit

        print(format_fit(out["calibration_fit"], out["calibration"], out.get("calibration_figure")))
    print(f"{s['n_grains']} grains, {s['n_boundaries']} boundaries, indexed {100 * s['indexed_fraction']:.1f}% → {output}")
    if s.get("invalid_pixels"):  # (absent from the summary of an earlier version)
        from ..pipeline import invalid_line

        print(f"  {invalid_line(s['invalid_pixels'])}")
    if sigma_line(s, "summary.json"):
        print(f"  {sigma_line(s, 'summary.json')}")
    if s.get("grain_vote_fraction"):
        print(f"  grain vote: {100 * s['grain_vote_fraction']:.1f} % of the patterns took their grain's majority "
              "solution among near-tied hypotheses, at reliability 0 (summary.json grain_vote_fraction)")
    if withdrawn_line(s, "summary.json grain_decisions_withdrawn"):
        print(f"  {withdrawn_line(s, 'summary.json grain_decisions_withdrawn')}")
    print(f"  {reliable_line(s, 'summary.json')}")
    hint = low_reliable_hint(s, s.get("calibration"), "calibration_fit" in out)
    if hint:
        print(f"  {hint}")
    mis = s.get("misorientation")
    if mis and s["n_boundaries"]:  # what every map has first; the conduction-plane classes where they apply
        csl = ", ".join(f"Σ{k} {100 * f:.1f} %" for k, f in mis["csl_length_fraction"].items()) or "none"
        print(f"  misorientation: median {mis['median_deg']:.1f}°, low-angle (< {mis['low_angle_deg']:g}°) "
              f"{100 * mis['low_angle_length_fraction']:.1f} % of boundary length; CSL (Brandon) {csl}")
    for name, sp in s.get("special", {}).items():
        print(f"  special {name}: {sp['n_boundaries']} boundaries, {sp['length_nm']:.1f} nm "
              f"({100 * sp['length_fraction']:.1f} % of boundary length; column special of boundaries.csv)")
    if len(s.get("special", {})) > 1:
        print("  (a boundary within the tolerance of several specials counts under the closest only)")
    if s.get("transport", {}).get("skipped"):
        print(f"  {s['transport']['reason']}")
    elif s.get("transport_total_current") is not None:  # the model ran: say so and what it gave
        print(f"  transport: total current {s['transport_total_current']:.4g} σ_ip·V per unit lamella thickness "
              "(× σ_ip [S/m] × thickness [m] = A; summary.json transport_total_current, /transport of results.h5, "
              "transport_*.png)")
        if s.get("transport_note"):
            print(f"warning: {s['transport_note']} (summary.json transport_note)", file=sys.stderr)
        inv = s.get("invalid_pixels") or {}
        how = s.get("transport_unassigned", "gb")
        if inv.get("n_pixels") and 2 * inv.get("n_unassigned", 0) > inv["n_pixels"] and how != "pore":
            material = ("boundary material (σ_gb)" if how == "gb" else
                        f"the conductivity given for them ({how} σ_ip, [transport] unassigned)")
            print(f"  note: {inv['n_unassigned']} of {inv['n_pixels']} pixels are in no grain and carry current as "
                  f"{material}: the current is mostly theirs, not the grains'; see the grains' cut "
                  "(--min-reliability, --min-size)")
    cls = s["classification"]
    if cls.get("applies") is False:
        print(f"  {cls['note']}")
    elif s["n_boundaries"]:
        fr = {k: f for k, f in cls.get("behaviour_fraction", {}).items() if f > 0}
        if cls.get("warning"):
            print(f"  {cls['warning']}:")
        print("  conduction-plane classification: " + ", ".join(f"{k} {100 * f:.1f} %" for k, f in fr.items())
              + " of boundary length")
        from ..boundaries.classify import c_axis_uncertain_line

        line = c_axis_uncertain_line(cls)
        if line:
            print(f"  {line}")
    from ..pipeline import NO_CURRENT_FIELD

    if s.get("field_source") == NO_CURRENT_FIELD:
        print(f"warning: the boundaries are labelled under a field along {s['field_source']} (summary.json "
              "field_source; boundaries.csv field_0, field_1 = 1, 0)", file=sys.stderr)
    for line in _warnings_of(s):
        print(line, file=sys.stderr)
