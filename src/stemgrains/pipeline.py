"""Stage runners: what each command does once its arguments are parsed, and the whole pipeline.

* :func:`run_index` — 4D-STEM data → orientation map (``stemgrains index``), chunked and resumable;
* :func:`run_segment` — orientation map → grains and boundaries (``stemgrains segment``);
* :func:`run_classify` — conduction-plane classification of the boundaries (``stemgrains classify``);
* :func:`run_transport` — ionic transport model (``stemgrains transport``);
* :func:`run_pipeline` — every stage on one dataset into one folder (``stemgrains run``), made of the same steps
  (:func:`index_dataset`, :func:`segment_map`, :func:`solve_map_transport`, :func:`classify_map`);
  :func:`run_configured` runs it from a resolved config.

Each runner takes a resolved config (``{section: {key: value}}``, :func:`stemgrains.settings.resolve`), writes its
results file atomically (recording the config it used in ``/parameters`` attribute ``config``) and returns what
it computed; the commands print. Indexing, the long stage, is chunked and resumable (finished chunks are kept in
a checkpoint folder until the results are written).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .errors import FileFormatError, ParameterError, StemgrainsError

__all__ = ["run_index", "run_segment", "run_classify", "run_transport", "run_pipeline", "run_configured",
           "index_dataset", "segment_map", "classify_map", "solve_map_transport", "connect_scheduler",
           "transport_not_applicable", "auto_calibration"]

Config = dict[str, dict[str, Any]]


def _unit2(v: Any, name: str) -> np.ndarray:
    a = np.asarray(v, dtype=float).reshape(-1)
    if a.shape != (2,) or not np.all(np.isfinite(a)) or np.hypot(*a) == 0:
        raise ParameterError(f"{name} must be a non-zero in-plane vector (x, y), got {v!r}")
    return a / np.hypot(*a)


# ------------------------------------------------------------------------------------------------ shared steps
def connect_scheduler(scheduler: str | None) -> Any:
    """A ``dask.distributed`` client of the scheduler at ``scheduler`` (``--scheduler``), or ``None`` when none
    is given; :class:`~stemgrains.errors.StemgrainsError` when it cannot be reached within 20 s."""
    if not scheduler:
        return None
    from ._chunks import _import_distributed

    try:
        return _import_distributed().Client(scheduler, timeout="20s")
    except OSError as err:
        raise StemgrainsError(f"--scheduler {scheduler}: cannot connect ({err})") from None
    except (ValueError, TypeError) as err:  # not an address at all (dask parses it before connecting)
        raise ParameterError(f"--scheduler {scheduler}: expected a scheduler address such as tcp://HOST:8786 "
                             f"({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None


def index_dataset(ds: Any, phases: list[Any], checkpoint: Path, *, progress: bool, backend: str, client: Any,
                  params: dict[str, Any]) -> tuple[Any, float]:
    """Index ``ds`` (:func:`stemgrains.index.index_orientations`, resumable from ``checkpoint``); returns the
    orix ``CrystalMap`` and the wall time of this call in seconds (chunks resumed from the checkpoint are not
    timed)."""
    from .index import index_orientations

    t0 = time.perf_counter()
    xmap = index_orientations(ds, phases, checkpoint_dir=checkpoint, progress=progress, backend=backend,
                              client=client, **params)
    return xmap, time.perf_counter() - t0


def indexed_here(xmap: Any) -> int:
    """Patterns of ``xmap`` indexed in the call of :func:`index_dataset` that made it: all but the scan rows
    resumed from a checkpoint (whose time that call did not measure)."""
    ny, nx = xmap.shape if len(xmap.shape) == 2 else (1, xmap.size)
    return int(xmap.size - min(int(getattr(xmap, "resumed_rows", 0)), ny) * nx)


def segment_map(xmap: Any, segment_params: dict[str, Any], boundary_params: dict[str, Any],
                annotate: Callable[[Any], None] | None = None) -> tuple[Any, Any]:
    """Grains (:func:`stemgrains.grains.segment_grains` with ``segment_params``) and their boundaries
    (:func:`stemgrains.boundaries.extract_boundaries` with ``boundary_params``) of an orientation map;
    ``annotate(grain_map)`` runs in between (extra grain-map parameters)."""
    from .boundaries import extract_boundaries
    from .grains import segment_grains

    grain_map = segment_grains(xmap, **segment_params)
    if annotate is not None:
        annotate(grain_map)
    return grain_map, extract_boundaries(grain_map, xmap, **boundary_params)


def solve_map_transport(grain_map: Any, electrodes: Any, boundaries: Any, params: dict[str, Any]) -> Any:
    """The ionic transport model of a grain map (:func:`stemgrains.transport.solve_transport`)."""
    from .transport import solve_transport

    return solve_transport(grain_map, grain_map.phases, electrodes, boundaries=boundaries, **params)


def _phases_text(grain_map: Any) -> str:
    """``au (cubic), zro2 (monoclinic)``: the phases of a grain map with their crystal systems."""
    return ", ".join(f"{p.name} ({p.point_group.system if p.point_group is not None else 'no point group'})"
                     for i, p in grain_map.phases if i >= 0)


def _no_conducting_phase(grain_map: Any) -> str:
    """Why a map has no conducting phase: none among its phases (named), or no pixel indexed (orix keeps only the
    phases that some pixel has: a map with none indexed has no phase)."""
    if not any(i >= 0 for i, _ in grain_map.phases):
        return "no pixel was indexed"
    return f"no conducting phase (with Na+ conduction planes) among {_phases_text(grain_map)}"


def transport_not_applicable(grain_map: Any, conducting_phases: Any = None) -> str | None:
    """Why the ionic transport model (Na+ conduction in the conduction planes) does not apply to a grain map: no
    conducting phase among its phases (``conducting_phases`` as :func:`stemgrains.boundaries.classify.conducting_phase_ids`
    takes them; default the phases with Na+ conduction planes), naming the phases; ``None`` where it applies."""
    from .boundaries.classify import conducting_phase_ids

    if conducting_phase_ids(grain_map.phases, conducting_phases):
        return None
    return _no_conducting_phase(grain_map)


def classify_map(grain_map: Any, boundaries: Any, field: Any, params: dict[str, Any]) -> Any:
    """Conduction-plane classification (:func:`stemgrains.boundaries.classify_boundaries`) under ``field``: one
    direction (x, y), one per boundary, or None (a map without a conducting phase)."""
    from .boundaries import classify_boundaries

    return classify_boundaries(grain_map, boundaries, field, **params)


def _segment_params(g: dict[str, Any], scan_step_nm: Any = None) -> dict[str, Any]:
    out = dict(threshold_deg=g["threshold_deg"], min_grain_size=g["min_grain_size"],
               min_reliability=g["min_reliability"], min_correlation=g["min_correlation"],
               small_grains=g["small_grains"], reliability_prop=g["reliability_prop"])
    if scan_step_nm is not None:
        out["scan_step_nm"] = scan_step_nm
    return out


def _classify_params(c: dict[str, Any], conducting_phases: Any) -> dict[str, Any]:
    return dict(type_tolerance_deg=c["type_tolerance_deg"], conductivity_ratio=c["conductivity_ratio"],
                flat_tolerance_deg=c["flat_tolerance_deg"], basis=c["basis"], tau_flow=c["tau_flow"],
                r_block=c["r_block"], conducting_phases=conducting_phases)


def _transport_params(t: dict[str, Any]) -> dict[str, Any]:
    return dict(conductivity_ratio=t["conductivity_ratio"], gb_conductivity=t["gb_conductivity"],
                gb_thickness_nm=t["gb_thickness_nm"], model=t["model"], frame=t["frame"],
                frame_conductivity=t["frame_conductivity"], unassigned=t["unassigned"], solver=t["solver"])


def _csv_outputs(csv: str | None) -> dict[str, Path | None]:
    csv_out = Path(csv) if csv else None
    return {"--csv": csv_out, "--csv (segments)": csv_out.with_suffix(".segments.csv") if csv_out else None}


def _check_side_outputs(csv: str | None, stage: str, replace: bool, source: Path,
                        output: str | os.PathLike | None) -> None:
    """``--csv OUT.csv`` of ``segment``/``classify`` (``stage``: the data-dictionary group, ``"boundaries"`` or
    ``"classification"``): the name must end in ``.csv``, and ``OUT.csv`` and ``OUT.segments.csv`` replace only
    tables of ours made from the same input — recorded by ``source`` or ``output`` (the results files of this
    input: :func:`_same_input_results`) — unless ``replace`` (``--force``)
    (:func:`stemgrains.io.outputs.refuse_foreign_side_output`)."""
    from .io.outputs import refuse_foreign_side_output, require_suffix

    if not csv:
        return
    require_suffix(csv, "--csv", (".csv",), "a CSV table")
    outs = _csv_outputs(csv)
    records = _same_input_results(source, output)
    refuse_foreign_side_output(outs["--csv"], "--csv", csv_table=f"{stage}/boundaries", replace=replace,
                               records=records)
    refuse_foreign_side_output(outs["--csv (segments)"], "--csv (segments)", csv_table=f"{stage}/segments",
                               replace=replace, records=records)


def _same_input_results(source: Path, output: str | os.PathLike | None) -> list[Path]:
    """Of ``source`` and an existing ``output``, the results files (HDF5) that record the input ``source``
    records (``source`` itself for an ``.ang``/``.ctf`` map): those whose :func:`record_csv_tables` entries are
    tables of this input."""
    from .io.files import HDF5_SIGNATURE, file_signature
    from .io.outputs import recorded_input, same_file

    if not source.is_file():
        return []
    ours = file_signature(source) == HDF5_SIGNATURE
    made_from = (recorded_input(source) or str(source)) if ours else str(source)
    out = []
    for r in ([source] if ours else []) + ([Path(output)] if output is not None and Path(output).is_file() else []):
        rec = recorded_input(r)
        if r == source or (rec is not None and same_file(rec, made_from)):
            out.append(r)
    return out


def _require_h5(output: str | os.PathLike | None) -> None:
    """``segment``/``classify``/``transport -o``: a results file is HDF5 (``.h5``/``.hdf5``); a folder is left to
    the message of :func:`stemgrains.io.outputs.refuse_results_of_another_input`."""
    from .io.outputs import require_suffix

    if output is not None and not Path(output).is_dir():
        require_suffix(output, "-o", (".h5", ".hdf5"), "a results file is HDF5")


def _refuse_in_run_folder(results: Path, option: str) -> None:
    """Refuse a results file to write or update (``segment``/``classify``/``transport``) inside the folder of a
    ``run`` or batch: its ``results.h5`` belongs to that run (tables, figures and manifest beside it)."""
    from .io.outputs import refuse_run_folders

    refuse_run_folders(results, option, hint="write the results elsewhere (-o OUT.h5 outside it)")


_STAGE_GROUPS = ("grains", "boundaries", "classification", "transport")


def _refuse_other_results(output: str | os.PathLike | None, source: Path, replace: bool,
                          writes: tuple[str, ...] = (), stale: tuple[str, ...] = ()) -> None:
    """``segment``/``classify``/``transport -o OUT.h5``: refuse an existing ``OUT.h5`` holding the results of
    another input unless ``replace`` (``--force``), or stages' results the new file would not hold (a copy of
    ``source`` without its ``stale`` groups, plus ``writes``). The new file records the input ``source`` records
    (a copy of our results file), or ``source`` itself (an ``.ang``/``.ctf`` map); updating ``source`` in place is
    always allowed."""
    from .io.files import HDF5_SIGNATURE, file_signature
    from .io.outputs import groups_held, recorded_input, refuse_results_of_another_input, same_file

    if output is None or not source.is_file() or same_file(output, source):
        return  # (a missing source: the command says so)
    ours = file_signature(source) == HDF5_SIGNATURE
    made_from = (recorded_input(source) or str(source)) if ours else str(source)
    kept = set(writes) | ((set(groups_held(source, _STAGE_GROUPS)) - set(stale)) if ours else set())
    # the stages' results OUT.h5 holds that the new file (a copy of source plus what this stage writes) would not
    refuse_results_of_another_input(Path(output), made_from, replace=replace,
                                    drops=tuple(g for g in _STAGE_GROUPS if g not in kept))


def _record_source(f: Any, source: Path, output: Path) -> None:
    """A copy of a results file that records no input (written by the Python API without provenance) records
    ``source`` as its input (``/input`` ``path``), so the same command again may replace it
    (:func:`_refuse_other_results`)."""
    from .io.outputs import recorded_input, same_file

    if not same_file(source, output) and recorded_input(source) is None:
        f.require_group("input").attrs["path"] = str(source.resolve())


# ------------------------------------------------------------------------------------------------ index
def check_export_names(export_ang: str | os.PathLike | None, export_ctf: str | os.PathLike | None) -> None:
    """Refuse export names whose extension is not the format's (``.ang``, ``.ctf``): the writers pick the format by
    it, so another name would fail only after indexing.

    Raises
    ------
    ParameterError
        One line naming the option and the file.
    """
    for opt, name, suffix in (("--export-ang", export_ang, ".ang"), ("--export-ctf", export_ctf, ".ctf")):
        if name is not None and Path(name).suffix.lower() != suffix:
            raise ParameterError(f"{opt} {name}: the file name must end in {suffix} (the format is chosen by it)")


def check_results_name(output: str | os.PathLike) -> None:
    """Refuse an ``index -o`` name whose extension is another format's (``.ang``, ``.ctf``, ``.csv``, images, ...):
    the results file is HDF5 whatever its name, so ``-o map.ang`` wrote HDF5 under a name EDAX readers would open."""
    suffix = Path(output).suffix.lower()
    if suffix in (".ang", ".ctf"):
        raise ParameterError(f"-o {output}: the results file is HDF5; give a .h5 name, and --export-{suffix[1:]} "
                             f"{output} for the {suffix} map")
    if suffix in (".csv", ".png", ".jpg", ".tif", ".tiff", ".json", ".txt", ".npy", ".toml"):
        raise ParameterError(f"-o {output}: the results file is HDF5; give a .h5 name")


def _check_q_range(params: dict[str, Any] | None, ds: Any, require_pixel_size: bool = False) -> None:
    """:func:`stemgrains.settings.check_q_range` of indexing keyword arguments on a dataset's detector (nothing
    for ``None``: an empty q-range indexes nothing); first, with ``require_pixel_size``, the dataset's pixel size
    (one line naming the file where it has none)."""
    if require_pixel_size:
        ds.calibration.require_q_pixel_size(ds.source)
    if params is not None:
        from .settings import check_q_range

        if ds.calibration.q_pixel_size is not None:  # the data's detector: a centre without room names the file
            from .preprocess.api import detector_q_reach

            try:
                detector_q_reach(ds.calibration, ds.detector_shape)
            except ParameterError as err:
                raise ParameterError(f"{ds.source}: {err}") from None
        try:
            check_q_range(params, ds.calibration, ds.detector_shape)
        except ParameterError as err:  # a pixel size named by where it came from: the data file, a --calibration JSON
            from .settings import name_pixel_size_origin

            raise name_pixel_size_origin(err, ds) from None


def auto_calibration(ds: Any, phases: list[Any], index_params: Mapping[str, Any] | None, options: Mapping[str, Any],
                     json_path: Path, figure_path: Path | None, input_path: str, progress: bool = False,
                     ) -> tuple[Any, Any]:
    """``--auto-calibrate``: :func:`stemgrains.preprocess.calibrate.run_auto_calibration` with the indexing's
    ``index_params`` and the ``[calibrate]`` ``options`` (``method``, ``max_patterns``, ``n_index``, ``max_index``,
    ``confirm``; recorded in the fit's report as ``options``), written to ``json_path`` (+ ``figure_path``);
    returns the dataset with the fit applied where it is ok, and the fit. With ``progress``, a line on stderr as
    each step of the fit starts (it runs before the indexing's progress bar)."""
    from .preprocess.calibrate import run_auto_calibration

    log = (lambda line: print(line, file=sys.stderr, flush=True)) if progress else None
    return run_auto_calibration(ds, phases, dict(index_params or {}), json_path, figure_path, input_path,
                                options=dict(options), log=log)


def auto_calibration_figure(output: str | os.PathLike, figures: str | os.PathLike | None) -> Path:
    """Where ``index --auto-calibrate`` draws its calibration figure: ``calibration.png`` in the ``--figures``
    folder with the command's other figures, or without ``--figures`` ``OUT.calibration.png`` beside ``OUT.h5``
    and its ``OUT.calibration.json`` (it went beside OUT.h5 even with ``--figures``)."""
    out = Path(output)
    return Path(figures) / "calibration.png" if figures else out.with_name(out.stem + ".calibration.png")


def run_index(input_path: str, output: str, phases: list[str], cfg: Config, *, progress: bool = True,
              scheduler: str | None = None, export_ang: str | None = None, export_ctf: str | None = None,
              figures: str | None = None, on_calibration: Callable[[Any, Path, Path], None] | None = None,
              replace_other: bool = False) -> dict[str, Any]:
    """Index one dataset with a resolved config (plain data, picklable arguments) and write ``output``
    (``stemgrains index``). An existing ``output`` that holds the results of another input (or is not a results
    file) is refused unless ``replace_other`` (``--force``).

    Parameters
    ----------
    input_path
        4D-STEM data file.
    output
        Results file to write (``OUT.h5``; the checkpoint ``OUT.h5.partial/`` is kept until it is written).
    phases
        Phase CIF paths.
    cfg
        Resolved config ``{section: {key: value}}`` (:func:`stemgrains.settings.resolve`); its ``[calibration]``,
        ``[index]`` and ``[spots]`` are used and recorded in ``output`` (``/parameters`` attribute ``config``).
    progress, scheduler, export_ang, export_ctf, figures
        As ``--no-progress`` (negated), ``--scheduler``, ``--export-ang``, ``--export-ctf``, ``--figures``.
    on_calibration
        Called with the auto-calibration fit (``[calibration] auto``), its JSON path and its figure's path
        (:func:`auto_calibration_figure`) as soon as it is done (the command prints it).

    Returns
    -------
    dict
        ``xmap`` (orix CrystalMap), ``output`` (Path), ``calibration_fit`` (or None), ``calibration_json``
        and ``calibration_figure`` (Paths or None), ``scan_shape`` (ny, nx), ``index_seconds`` (wall time of the
        indexing in this call: chunks resumed from the checkpoint are not timed), ``indexed_here`` (the patterns indexed in that time), ``phase_fit``
        (:class:`~stemgrains.index.quality.PhaseFitReport`) and ``calibration`` (:func:`calibration_summary`).
    """
    from .crystal import load_phase
    from .index.api import IndexParams
    from .index.quality import phase_fit_check
    from .index.results import write_index_results
    from .io.outputs import check_outputs
    from .settings import config_text, index_params, load_calibrated

    out = Path(output)
    auto_json = out.with_name(out.stem + ".calibration.json") if cfg["calibration"]["auto"] else None
    auto_png = auto_calibration_figure(out, figures) if auto_json else None
    check_outputs({"-o": out, "--export-ang": export_ang, "--export-ctf": export_ctf, "--figures": figures,
                   "-o (checkpoint)": out.with_name(out.name + ".partial"), "--auto-calibrate": auto_json,
                   "--auto-calibrate (figure)": auto_png},
                  [input_path, *phases])
    check_export_names(export_ang, export_ctf)
    check_results_name(out)
    from .io.outputs import refuse_foreign_side_output, refuse_results_of_another_input

    refuse_results_of_another_input(out, input_path, replace=replace_other,
                                    drops=("grains", "boundaries", "classification", "transport"))
    refuse_foreign_side_output(export_ang, "--export-ang", input_path=input_path, replace=replace_other)
    refuse_foreign_side_output(export_ctf, "--export-ctf", input_path=input_path, replace=replace_other)
    _refuse_foreign_figures(figures, "index", replace_other)
    if auto_json is not None:
        from .io.outputs import refuse_foreign_calibration

        refuse_foreign_calibration([auto_json, auto_png], input_path, replace=replace_other)
    phase_objs = [load_phase(c) for c in phases]
    ds = load_calibrated(input_path, cfg["calibration"])
    params = index_params(cfg)
    IndexParams(**params)  # validate before any work
    fit = cal_json = None
    client = connect_scheduler(scheduler)  # before anything is written: an unreachable one leaves no trace
    try:
        _check_q_range(params, ds)  # an empty q-range indexes nothing
    except ParameterError:
        if client is not None:
            client.close()
        raise
    ckpt = out.with_name(out.name + ".partial")
    try:
        if auto_json is not None:
            from .settings import calibrate_options

            cal_json = auto_json
            auto_png.parent.mkdir(parents=True, exist_ok=True)  # (the --figures folder, before its other figures)
            ds, fit = auto_calibration(ds, phase_objs, params, calibrate_options(cfg), cal_json, auto_png,
                                       input_path=input_path, progress=progress)
            if on_calibration is not None:
                on_calibration(fit, cal_json, auto_png)
        xmap, index_seconds = index_dataset(ds, phase_objs, ckpt, progress=progress, backend=cfg["index"]["backend"],
                                            client=client, params=params)
    finally:
        if client is not None:
            client.close()
    params_out = dict(xmap.parameters, **({"calibration_fit": fit.to_dict()} if fit is not None else {}))
    write_index_results(out, xmap, ds, phase_objs, params_out, export_ang=export_ang, export_ctf=export_ctf,
                        config=config_text(cfg, "index"))
    shutil.rmtree(ckpt, ignore_errors=True)
    if figures:
        from .plot.orientation import save_orientation_figures

        save_orientation_figures(xmap, figures)
    return {"xmap": xmap, "output": out, "calibration_fit": fit, "calibration_json": cal_json,
            "calibration_figure": auto_png, "scan_shape": tuple(ds.scan_shape), "index_seconds": index_seconds,
            "indexed_here": indexed_here(xmap),
            "phase_fit": phase_fit_check(xmap),
            "calibration": calibration_summary(ds)}



# ------------------------------------------------------------------------------------------------ segment
def load_map(path: Path, hex_frame: str = "auto") -> tuple[Any, bool]:
    """The orientation map of ``path`` and whether the file is one of our results files (the one place to
    swap the reader)."""
    from .io import load_orientation_map
    from .io.files import HDF5_SIGNATURE, file_signature

    from .io.results import refuse_folder

    refuse_folder(path, "a results file (.h5) or an .ang/.ctf map")
    if not path.is_file():
        raise FileFormatError(f"{path}: file not found")
    ours = file_signature(path) == HDF5_SIGNATURE
    return load_orientation_map(path, hex_frame=hex_frame), ours


def run_segment(input_path: str | os.PathLike, output: str | os.PathLike, cfg: Config, *, csv: str | None = None,
                figures: str | None = None, replace_other: bool = False) -> dict[str, Any]:
    """Grains and boundaries of an orientation map (``stemgrains segment``), written to ``output``.

    Parameters
    ----------
    input_path
        Our results file with ``/orientation`` (copied to ``output`` with ``/grains`` and ``/boundaries``
        replaced, and without its ``/classification`` and ``/transport``: those belong to the earlier
        boundaries), or an ``.ang``/``.ctf`` map (a new results file).
    output
        Results file to write.
    cfg
        Resolved config; ``[grains]`` and ``[calibration] scan_step_nm`` are used and recorded.
    csv, figures
        As ``--csv`` (boundary table; segments to ``*.segments.csv``) and ``--figures`` (a folder).
    replace_other
        ``--force``: replace an existing ``output`` that holds the results of another input (or is not a
        results file); without it that is refused before any work. An ``output`` made from the same input (the
        dataset ``input_path`` records, or the ``.ang``/``.ctf`` map itself) is replaced.

    Returns
    -------
    dict
        ``xmap``, ``grain_map``, ``boundaries`` (:class:`~stemgrains.boundaries.BoundaryTable`), ``specials``
        (the parsed special misorientations), ``output`` (Path), ``dropped`` (the groups of the input computed
        from its earlier grains, ``classification`` and ``transport``, which ``output`` does not keep).

    Raises
    ------
    FileFormatError, ParameterError
        Unreadable input; an output that would overwrite an ``.ang``/``.ctf`` input or another input, or that
        holds the results of another input (without ``replace_other``).
    """
    from .boundaries import write_boundaries
    from .boundaries.misorientation import check_special_axes, parse_special
    from .grains import write_grains
    from .io.outputs import check_outputs, record_csv_tables
    from .io.results import atomic_h5, update_h5, write_parameters, write_provenance
    from .settings import write_config

    g = cfg["grains"]
    src, out = Path(input_path), Path(output)
    specials = [parse_special(s, check_sum=False) for s in g["special"]]  # the rest once the phases are known
    _require_h5(out)
    check_outputs({**_csv_outputs(csv), "--figures": figures}, [src, out])
    _refuse_in_run_folder(out, "-o")
    _refuse_other_results(out, src, replace_other, writes=("grains", "boundaries"),
                          stale=tuple(g for g, _ in _DOWNSTREAM))
    _check_side_outputs(csv, "boundaries", replace_other, src, out)
    _refuse_foreign_figures(figures, "segment", replace_other)
    xmap, ours = load_map(src, g["hex_frame"])
    if not ours:
        check_outputs({"-o": out}, [src])
    check_special_axes(specials, xmap.phases)  # a 4-index axis needs a hexagonal phase, and then U + V + T = 0

    def annotate(grain_map: Any) -> None:
        grain_map.parameters["hex_frame"] = getattr(xmap, "hex_frame", "x || a (as stored)")
        grain_map.parameters["resampled_from"] = getattr(xmap, "resampled_from", None)  # HexGrid .ang → square grid

    grain_map, boundaries = segment_map(xmap, _segment_params(g, cfg["calibration"]["scan_step_nm"]),
                                        dict(low_angle_deg=g["low_angle_deg"], special=specials), annotate)
    params = {"grains": grain_map.parameters, "boundaries": boundaries.parameters, "input": str(src)}
    if out.resolve() == src.resolve() and not ours:
        raise ParameterError(f"-o {out}: would overwrite the input map; choose another output file")
    dropped: list[str] = []
    with (update_h5(src, out) if ours else atomic_h5(out)) as f:
        if ours:
            _record_source(f, src, out)
            dropped = _drop_downstream(f)
        else:
            from .io import write_orientation_map

            write_provenance(f, input_path=src, phases=xmap.phases)
            write_orientation_map(f, xmap)
        write_grains(f, grain_map)
        write_boundaries(f, boundaries)
        write_parameters(f, "segment", params)
        # re-segmented in place: the classification and transport were dropped, so is their part of the config
        write_config(f, cfg, "segment", drop=tuple(attr for _, attr in _DOWNSTREAM) if ours else ())
        if csv:  # the tables before the results file is in place, which records them (record_csv_tables)
            tables = [Path(csv), Path(csv).with_suffix(".segments.csv")]
            boundaries.boundaries.to_csv(tables[0])
            boundaries.segments.to_csv(tables[1])
            record_csv_tables(f, tables)
    if figures:
        from .plot.grains import save_grain_figures

        save_grain_figures(figures, grain_map, boundaries)
    return {"xmap": xmap, "grain_map": grain_map, "boundaries": boundaries, "specials": specials, "output": out,
            "dropped": dropped}


#: results-file groups computed from the grains and boundaries (and their /parameters attributes): stale once
#: these are segmented again
_DOWNSTREAM = (("classification", "classify"), ("transport", "transport"))


def _drop_downstream(f: Any) -> list[str]:
    """Remove from the open results file ``f`` what was computed from its earlier grains and boundaries (the
    classification, the transport model, their parameters): new boundaries carry other ids, so these would be
    read against the wrong boundaries (``classify --field-from-transport``, ``series``, ``compare``). Returns the
    groups removed."""
    dropped = []
    for group, attr in _DOWNSTREAM:
        if group in f:
            del f[group]
            dropped.append(group)
        if "parameters" in f and attr in f["parameters"].attrs:
            del f["parameters"].attrs[attr]
    return dropped


# ------------------------------------------------------------------------------------------------ classify
def _phase_arg(text: str | int) -> str | int:
    """A conducting phase as given (``--conducting-phase``, ``[classify] conducting_phases``): an id (an integer,
    or a string of digits) or a name."""
    if isinstance(text, int):
        return text
    return int(text) if text.strip().lstrip("-").isdigit() else text


def _transport_boundary_field(results: Path) -> Any:
    """The local field per boundary that `stemgrains transport` wrote into a results file (one-line errors)."""
    import h5py

    from .io.files import open_h5
    from .transport.io import read_transport

    with open_h5(results) as f:
        if "transport" not in f:
            raise FileFormatError(f"{results}: no /transport; run `stemgrains transport {results} --electrode ...` "
                                  "first, or give --field X,Y")
        if not isinstance(f["transport"], h5py.Group):
            raise FileFormatError(f"{results}: /transport is not a group")
        bf = read_transport(f).boundary_field
    if isinstance(bf, dict):
        raise FileFormatError(f"{results}: /transport holds fields per grain pair, not per boundary; rerun "
                              "`stemgrains transport` on this file (it has /boundaries now)")
    return bf


def _classify_field(c: dict[str, Any], results: Path, n_boundaries: int) -> tuple[Any, tuple[float, float] | None, int]:
    """The field to classify under, the applied direction (or None: local transport fields) and how many
    boundaries without current got the mean field."""
    if c["field_from_transport"]:
        from .boundaries.classify import local_boundary_fields

        field, n_filled = local_boundary_fields(_transport_boundary_field(results), n_boundaries, source=str(results))
        return field, None, n_filled
    fx, fy = c["field"]
    if fx == 0.0 and fy == 0.0:
        raise ParameterError("--field must be a non-zero direction, got 0,0")
    return (fx, fy), (fx, fy), 0


def run_classify(results: str | os.PathLike, output: str | os.PathLike | None, cfg: Config, *,
                 csv: str | None = None, figures: str | None = None, replace_other: bool = False) -> dict[str, Any]:
    """Conduction-plane classification of the boundaries in a results file (``stemgrains classify``).

    Parameters
    ----------
    results
        Results file with ``/grains`` and ``/boundaries`` (and ``/transport`` for ``field_from_transport``).
    output
        Write there instead of updating ``results`` (``None``: update it, atomically).
    cfg
        Resolved config; ``[classify]`` is used and recorded.
    csv, figures
        As ``--csv`` and ``--figures``.
    replace_other
        ``--force``: replace an ``output`` that holds the results of another input (see :func:`run_segment`).

    Returns
    -------
    dict
        ``result`` (:class:`~stemgrains.boundaries.BoundaryClassification`), ``grain_map``, ``field`` (the
        applied (x, y), or None for the local transport field or where nothing conducts), ``n_filled``
        (boundaries without current given the mean field), ``output`` (Path), ``field_unused`` (a field was given
        but no phase of the map conducts: it is not used, none is recorded).
    """
    from .boundaries.classify import write_classification, write_classification_csv
    from .io.outputs import check_outputs, record_csv_tables
    from .io.results import update_h5
    from .settings import write_config

    c = cfg["classify"]
    if c["field_from_transport"] and c["field"] is not None:
        raise ParameterError("[classify] field and field_from_transport are both set; keep one")
    results = Path(results)
    from .io.results import require_results_file

    require_results_file(results)
    try:
        from .boundaries import read_boundaries
        from .grains import read_grains
    except ImportError as err:
        raise StemgrainsError(f"this installation cannot read grains/boundaries from results files ({err})") from None

    _require_h5(output)
    check_outputs({**_csv_outputs(csv), "--figures": figures}, [results, output])
    _refuse_in_run_folder(Path(output) if output else results, "-o" if output else "RESULTS")
    _refuse_other_results(output, results, replace_other, writes=("classification",))
    _check_side_outputs(csv, "classification", replace_other, results, output)
    _refuse_foreign_figures(figures, "classify", replace_other)
    grain_map = read_grains(results)
    phases = None if c["conducting_phases"] is None else [_phase_arg(s) for s in c["conducting_phases"]]
    no_field = not c["field_from_transport"] and c["field"] is None
    nothing_conducts = transport_not_applicable(grain_map, phases) is not None
    if no_field and not nothing_conducts:  # a map without a conducting phase has nothing to classify
        raise ParameterError("give the field: --field X,Y or --field-from-transport (or [classify] field / "
                             "field_from_transport in --config)")
    boundaries = read_boundaries(results)
    # where nothing conducts, a field given is not used (as run): none is recorded, no transport is needed
    field, applied, n_filled = ((None, None, 0) if no_field or nothing_conducts
                                else _classify_field(c, results, len(boundaries.boundaries)))
    result = classify_map(grain_map, boundaries, field, _classify_params(c, phases))
    out = Path(output) if output else results
    with update_h5(results, out) as f:
        _record_source(f, results, out)
        write_classification(f, result)
        write_config(f, cfg, "classify")
        if csv:  # the tables before the results file is in place, which records them (record_csv_tables)
            tables = [Path(csv), Path(csv).with_suffix(".segments.csv")]
            write_classification_csv(tables[0], result, level="boundaries")
            write_classification_csv(tables[1], result, level="segments")
            record_csv_tables(f, tables)
    if figures:
        _classification_figures(Path(figures), grain_map, boundaries, result, applied, c["flat_tolerance_deg"])
    return {"result": result, "grain_map": grain_map, "field": applied, "n_filled": n_filled, "output": out,
            "field_unused": not no_field and nothing_conducts}


#: the figures ``classify --figures FOLDER`` writes (:func:`_classification_figures`)
CLASSIFICATION_FIGURES = ("grain_traces.png", "boundary_behaviour.png", "boundary_table.png")


def _refuse_foreign_figures(figures: str | None, command: str, replace_other: bool) -> None:
    """``--figures FOLDER`` replaces only figures of ours there (:func:`~stemgrains.io.outputs.refuse_foreign_figures`):
    the files ``command``'s figure writer names."""
    if figures is None:
        return
    from .io.outputs import refuse_foreign_figures
    from .plot.grains import GRAIN_FIGURES
    from .plot.orientation import ORIENTATION_FIGURES
    from .plot.transport import TRANSPORT_FIGURES

    names = {"index": ORIENTATION_FIGURES, "segment": GRAIN_FIGURES, "classify": CLASSIFICATION_FIGURES,
             "transport": tuple(f"transport_{n}.png" for n in TRANSPORT_FIGURES)}[command]
    refuse_foreign_figures(figures, names, replace=replace_other)


def _classification_figures(folder: Path, grain_map: Any, boundaries: Any, result: Any, field: Any,
                            flat_tolerance_deg: float | None = None, title: str | None = None,
                            note: str | None = None) -> list[Path]:
    """grain_traces.png, boundary_behaviour.png (``title``: its own, default the figure's; ``note``: a warning on
    it) and boundary_table.png in ``folder``."""
    from .plot.classification import plot_boundary_behaviour, plot_boundary_table, plot_grain_traces

    folder.mkdir(parents=True, exist_ok=True)
    traces = {} if flat_tolerance_deg is None else {"flat_tolerance_deg": flat_tolerance_deg}
    paths = [folder / name for name in CLASSIFICATION_FIGURES]
    plot_grain_traces(grain_map, **traces, path=paths[0])
    plot_boundary_behaviour(grain_map, boundaries, result, field, title=title, note=note, path=paths[1])
    plot_boundary_table(result, note=note, path=paths[2])
    return paths


# ------------------------------------------------------------------------------------------------ transport
def transport_electrodes(electrodes: dict[str, float] | None) -> dict[str, Any]:
    """The ``[transport] electrodes`` table (``--electrode WHERE=VOLTS``) with the masks read, as
    ``{edge: volts, mask file: (boolean mask, volts)}`` (errors then name the file); one-line errors for a missing
    table, an unknown edge, an
    unreadable mask or no potential difference."""
    if not electrodes:
        raise ParameterError("--electrode is required (at least once), e.g. --electrode left=1 --electrode right=0 "
                             "(or [transport] electrodes in --config)")
    return _electrode_table(electrodes)


def _electrode_table(electrodes: dict[str, float]) -> dict[str, Any]:
    """``{edge: volts, mask file: (boolean mask, volts)}`` of a non-empty ``--electrode`` table: the names first (an
    unknown one is not an electrode that drives no current), then a potential difference, then the masks read."""
    from .transport import EDGES
    from .transport.api import require_potential_difference

    for where, v in electrodes.items():
        check_electrode_where(where, v)
    require_potential_difference(list(electrodes.items()))
    return {k: (v if k in EDGES else (electrode_mask(Path(k)), v)) for k, v in electrodes.items()}


def check_electrode_where(where: str, volts: float) -> None:
    """One line unless ``where`` (of ``--electrode WHERE=VOLTS``) is an image edge or an existing ``.npy`` mask
    file (an unknown name was taken for an electrode that drives no current, or answered in the Python API's
    words)."""
    from .transport import EDGES

    if where in EDGES or (Path(where).suffix.lower() == ".npy" and Path(where).is_file()):
        return
    case = f"; edge names are lower case: {where.lower()}" if where.lower() in EDGES else ""
    raise ParameterError(f"--electrode {f'{where}={volts:g}'!r}: {where!r} is neither an edge ({', '.join(EDGES)}) nor "
                         f"a .npy mask file{case}")


def electrode_mask(path: str | os.PathLike) -> np.ndarray:
    """An electrode mask ``.npy`` read as a boolean array: booleans, or numbers that are all 0 or 1. A float mask
    with NaN or other values is refused (read as bool, NaN counted as electrode pixels: the error then was that
    electrodes touched)."""
    path = Path(path)
    try:
        mask = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise FileFormatError(f"{path}: cannot read mask ({err})") from None
    if mask.dtype == bool:
        return mask
    if mask.dtype.kind not in "iuf" or not np.all(np.isin(mask, (0, 1))):
        kind = "NaN" if mask.dtype.kind == "f" and np.isnan(mask).any() else "values other than 0 and 1"
        raise FileFormatError(f"{path}: an electrode mask holds booleans or 0/1 (1 = electrode pixel); this one "
                              f"({mask.dtype}) holds {kind}")
    return mask.astype(bool)


def _read_boundaries(path: Path) -> Any:
    """The file's BoundaryTable when the boundaries stage provides a reader and the file has one, else None."""
    try:
        from .boundaries import read_boundaries  # type: ignore[attr-defined]
    except ImportError:
        return None
    import h5py

    with h5py.File(path, "r") as f:
        if "boundaries" not in f:
            return None
    return read_boundaries(path)


def run_transport(results: str | os.PathLike, output: str | os.PathLike | None, cfg: Config, *,
                  figures: str | None = None, replace_other: bool = False) -> dict[str, Any]:
    """The ionic transport model of the grain map in a results file (``stemgrains transport``).

    Parameters
    ----------
    results
        Results file with ``/grains`` (and ``/boundaries``, used when present).
    output
        Write there instead of updating ``results`` (``None``: update it, atomically).
    cfg
        Resolved config; ``[transport]`` is used and recorded.
    figures
        As ``--figures``: current, potential and mismatch figures in that folder.
    replace_other
        ``--force``: replace an ``output`` that holds the results of another input (see :func:`run_segment`).

    Returns
    -------
    dict
        ``result`` (:class:`~stemgrains.transport.TransportResult`), ``output`` (Path), ``figures`` (paths).
    """
    from .grains import read_grains
    from .io.results import update_h5
    from .settings import write_config
    from .transport import write_transport

    from .io.outputs import check_outputs

    t = cfg["transport"]
    path = Path(results)
    _require_h5(output)
    check_outputs({"--figures": figures}, [path, output])
    _refuse_in_run_folder(Path(output) if output else path, "-o" if output else "RESULTS")
    _refuse_other_results(output, path, replace_other, writes=("transport",))
    _refuse_foreign_figures(figures, "transport", replace_other)
    electrodes = transport_electrodes(t["electrodes"])
    grain_map = read_grains(path)
    why = transport_not_applicable(grain_map)
    if why is not None:  # an isotropic conductor everywhere says nothing about Na+ transport
        raise ParameterError(f"{path}: the transport model needs a conducting phase: {why}")
    result = solve_map_transport(grain_map, electrodes, _read_boundaries(path), _transport_params(t))
    out = Path(output) if output else path
    with update_h5(path, out) as f:
        _record_source(f, path, out)
        write_transport(f, result)
        write_config(f, cfg, "transport")
    written: list[Path] = []
    if figures:
        from .plot.transport import save_transport_figures

        written = list(save_transport_figures(result, figures).values())
    return {"result": result, "output": out, "figures": written}


# ------------------------------------------------------------------------------------------------ the whole pipeline
def _check_run_electrodes(electrodes: Any, scan_shape: tuple[int, int], transport_params: dict | None) -> None:
    """The electrodes on this scan's map (mask shapes, touching edges, potentials) before any work."""
    if electrodes is not None:
        from .transport.api import check_electrodes

        check_electrodes(electrodes, scan_shape, (transport_params or {}).get("frame"))


def _check_run_calibration(outdir: Path, input_path: str | os.PathLike, figures: bool, overwrite: bool,
                           auto_calibrate: bool) -> None:
    """``run --auto-calibrate`` (nothing without ``auto_calibrate``): refuse a ``calibration.json``/``.png`` in ``outdir`` that is not a calibration of
    ours for this input, unless ``overwrite``; those a run's manifest lists are left to
    :func:`stemgrains.io.outputs.prepare_run_folder`."""
    from .io.outputs import refuse_foreign_calibration, run_folder_files

    if not auto_calibrate:
        return
    refuse_foreign_calibration([outdir / "calibration.json", outdir / "calibration.png" if figures else None],
                               input_path, replace=overwrite, managed=run_folder_files(outdir), hint="--overwrite")


def run_pipeline(
    input_path: str | os.PathLike,
    phases: list[Any],
    outdir: str | os.PathLike,
    *,
    field: Any = None,
    electrodes: Any = None,
    index_params: dict[str, Any] | None = None,
    segment_params: dict[str, Any] | None = None,
    boundary_params: dict[str, Any] | None = None,
    classify_params: dict[str, Any] | None = None,
    transport_params: dict[str, Any] | None = None,
    calibration_overrides: dict[str, Any] | None = None,
    auto_calibrate: bool | Mapping[str, Any] = False,
    figures: bool = True,
    progress: bool = True,
    backend: str = "cpu",
    client: Any = None,
    overwrite: bool = False,
    config: dict[str, Any] | None = None,
    record: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run every stage on one dataset.

    Parameters
    ----------
    input_path
        4D-STEM data (anything :func:`stemgrains.io.load_4d` reads).
    phases
        CIF paths or orix ``Phase`` objects.
    outdir
        Output folder (created).
    field
        Applied in-plane field direction (x, y) for the classification. If ``None`` and ``electrodes`` are given,
        each boundary is classified under its local field from the transport model.
    electrodes
        Transport electrodes, e.g. ``{"left": 1.0, "right": 0.0}``; ``None`` skips the transport model. So does a
        map without a conducting phase (:func:`transport_not_applicable`): nothing of the transport is written, the
        summary's ``transport`` is ``{"skipped": true, "reason": ...}`` (also ``/parameters`` ``run``
        ``transport_skipped``) and, without ``field``, the classification (which then does not apply) uses none.
    overwrite
        Replace the results of another run found in ``outdir`` (see :func:`stemgrains.io.outputs.prepare_run_folder`);
        without it such a folder is refused. An interrupted run of the same input resumes either way.
    record
        ``{"checksum": ..., "fingerprint": ...}`` of the input and parameters, kept in the folder's manifest
        (:func:`stemgrains.io.outputs.completed_run` recognises the finished run by it).
    auto_calibrate
        Fit the detector calibration from the data first (:func:`stemgrains.preprocess.calibrate.calibrate`),
        written to ``calibration.json`` (+ ``calibration.png``) and used where the fit is ok; ``True``, or a
        mapping of that function's options (``[calibrate]``: :func:`stemgrains.settings.calibrate_options`).
    boundary_params
        Keyword arguments of :func:`stemgrains.boundaries.extract_boundaries` (``low_angle_deg``, ``special``).
    config
        The resolved config these parameters came from (:mod:`stemgrains.settings`); recorded in ``results.h5``
        (``/parameters`` attribute ``config``) and written to ``outdir/config.toml``.

    Returns
    -------
    dict
        Paths of everything written, a summary (counts, label and behaviour length fractions), ``index_seconds``
        and ``indexed_here``: the indexing's wall time in this call and the patterns it indexed (:func:`indexed_here`).
    """
    global_field = _unit2(field, "field") if field is not None else None
    from .crystal import load_phase
    from .io import load_4d
    from .io.outputs import RUN_CHECKPOINT, abandon_run_folder, finish_run_folder, prepare_run_folder
    from .io.results import atomic_write_text

    outdir = Path(outdir)
    phases = [load_phase(p) if isinstance(p, (str, os.PathLike)) else p for p in phases]
    _require_field(field, electrodes, phases, (classify_params or {}).get("conducting_phases"))
    ds = _labelled(load_4d(input_path, **(calibration_overrides or {})), config, calibration_overrides)
    _check_run_electrodes(electrodes, ds.scan_shape, transport_params)
    _check_run_calibration(outdir, input_path, figures, overwrite, auto_calibrate)
    _check_q_range(index_params, ds, require_pixel_size=True)  # before the folder is claimed
    created = not outdir.exists()
    manifest = prepare_run_folder(outdir, input_path, overwrite=overwrite, record=record)
    results = outdir / "results.h5"
    written: dict[str, Any] = {"results": results}
    calib_fit = None
    try:
        if auto_calibrate:
            ds, calib_fit = _run_auto_calibration(ds, phases, index_params, auto_calibrate, outdir, figures, input_path,
                                                  progress, written)
        # 1. orientation map (resumable)
        xmap = _pipeline_index(ds, phases, outdir, written, progress=progress, backend=backend, client=client,
                               params=index_params or {})
    except ParameterError:  # refused on what only the data decide, after the folder was claimed
        abandon_run_folder(outdir, created)
        raise
    # 2. grains and boundaries
    seg = dict(segment_params or {})
    grain_map, boundaries = segment_map(xmap, seg, boundary_params or {})
    # 3. transport (optional, where a phase conducts Na+) → local fields; 4. classification
    transport, transport_skipped, used_field, field_source = _run_transport_stage(
        grain_map, boundaries, electrodes, transport_params, classify_params, global_field)
    cls = classify_map(grain_map, boundaries, used_field, classify_params or {})

    run_params = {"field": field, "field_source": field_source, "electrodes": electrodes, "segment": seg,
                  "boundaries": boundary_params or {}, "classify": classify_params or {},
                  "transport": transport_params or {},
                  **({"transport_skipped": transport_skipped} if transport_skipped else {})}
    _write_run_results(results, grain_map, boundaries, cls, transport, run_params, calib_fit, config)
    _write_run_tables(outdir, input_path, cls, config, written)
    summary = _run_summary(input_path, ds, xmap, grain_map, boundaries, cls, transport, field_source)
    if figures:  # the classification's figures carry the summary's warning, where it has one
        written["figures"] = _run_figures(outdir, xmap, grain_map, boundaries, cls, transport,
                                          global_field if field_source == "applied" else None,
                                          summary["classification"].get("warning"))
    if transport_skipped:
        summary["transport"] = {"skipped": True, "reason": transport_skipped}
    atomic_write_text(outdir / "summary.json", json.dumps(summary, indent=2, default=str))
    written["summary"] = summary
    calib_files = [outdir / "calibration.json", outdir / "calibration.png"] if "calibration" in written else []
    finish_run_folder(outdir, manifest, [results, *written["tables"], *written.get("figures", []), outdir / "summary.json",
                                         *[f for f in calib_files if f.exists()], *([written["config"]] if config is not None else [])])
    shutil.rmtree(outdir / RUN_CHECKPOINT, ignore_errors=True)  # kept until the run is complete (_pipeline_index)
    return written


#: ``field_source`` of a run where no phase of the map conducts (a ``--field`` given is not used)
NO_CONDUCTING_FIELD = "none (no conducting phase: the classification does not apply)"

#: why a transport model's total current is 0 (``transport``, ``run`` and ``summary.json`` ``transport_note`` say it)
NO_CURRENT_NOTE = ("no current flows between the electrodes: no conducting path joins them (pores, unassigned pixels "
                   "or blocking phases between); the field is 0 everywhere")

#: ``field_source`` of a run with electrodes, no applied field and no current between the electrodes: the tables
#: are under +x, which nobody applied, and say so
NO_CURRENT_FIELD = ("+x, assumed (no current flows between the electrodes, so there is no local field to classify "
                    "under; give --field for an applied field)")


def _labelled(ds: Any, config: Any, overrides: Any) -> Any:
    """``ds`` (loaded with ``overrides``) whose given calibration values say where they were given (command line,
    config, calibration file) where ``config`` (an effective config) is known; else as loaded ("override")."""
    if config is not None and "calibration" in config:
        from .settings import label_override_origins

        label_override_origins(ds, config["calibration"], overrides or {})
    return ds


def _run_transport_stage(grain_map: Any, boundaries: Any, electrodes: Any, transport_params: Any,
                         classify_params: Any, global_field: Any) -> tuple[Any, str | None, Any, str]:
    """Steps 3 and 4 of :func:`run_pipeline`: the transport model where electrodes are given and a phase conducts
    (:func:`transport_not_applicable`), else why it was skipped; and the field to classify under (the applied one,
    the local transport field per boundary, or — no conducting phase — None; +x where a conducting phase has no
    indexed pixel, so that no boundary is classified either)."""
    transport = transport_skipped = None
    if electrodes is not None:
        why = transport_not_applicable(grain_map, (classify_params or {}).get("conducting_phases"))
        if why is None:
            transport = solve_map_transport(grain_map, electrodes, boundaries, transport_params or {})
        else:  # no transport files: the model would only describe an isotropic conductor
            transport_skipped = f"the transport model was skipped: {why}"
    from .boundaries.classify import conducting_phase_ids

    conducts = transport is not None or bool(conducting_phase_ids(grain_map.phases,
                                                                  (classify_params or {}).get("conducting_phases")))
    if not conducts:  # no conducting phase: every boundary is other-phase, under no field (--field unused)
        return transport, transport_skipped, None, NO_CONDUCTING_FIELD
    if global_field is not None:
        return transport, transport_skipped, global_field, "applied"
    if transport is None:  # a conducting phase without an indexed pixel: no boundary is classified either
        return transport, transport_skipped, (1.0, 0.0), NO_CONDUCTING_FIELD
    from .boundaries.classify import local_boundary_fields

    if transport.total_current == 0 and len(boundaries.boundaries):  # no local field anywhere
        return transport, transport_skipped, (1.0, 0.0), NO_CURRENT_FIELD
    # boundaries no current reaches: the mean field direction of the map (as classify --field-from-transport)
    used_field, _ = local_boundary_fields(transport.boundary_field, len(boundaries.boundaries))
    return transport, transport_skipped, used_field, "transport (local field per boundary)"


def _run_auto_calibration(ds: Any, phases: list[Any], index_params: dict[str, Any] | None,
                          auto_calibrate: bool | Mapping[str, Any], outdir: Path, figures: bool, input_path: Any,
                          progress: bool, written: dict[str, Any]) -> tuple[Any, Any]:
    """``auto_calibrate`` of :func:`run_pipeline` (``True`` or the ``[calibrate]`` options): the fit into
    ``outdir/calibration.json`` and, with ``figures``, its figure ``outdir/calibration.png`` beside the run's other
    figures; their paths and the fit go into ``written`` (``calibration``, ``calibration_figure`` (None without
    figures), ``calibration_fit``). Returns the dataset (the fit applied where ok) and the fit."""
    options = dict(auto_calibrate) if isinstance(auto_calibrate, Mapping) else {}
    png = (outdir / "calibration.png") if figures else None
    ds, fit = auto_calibration(ds, phases, index_params, options, outdir / "calibration.json", png, input_path, progress)
    written.update(calibration=outdir / "calibration.json", calibration_figure=png, calibration_fit=fit)
    return ds, fit


def _pipeline_index(ds: Any, phases: list[Any], outdir: Path, written: dict[str, Any], *, progress: bool,
                    backend: str, client: Any, params: dict[str, Any]) -> Any:
    """Step 1 of :func:`run_pipeline`: the orientation map into ``outdir/results.h5``; ``written["index_seconds"]``
    gets the indexing time. Its checkpoint ``outdir/.checkpoint`` stays until the whole run has finished
    (:func:`run_pipeline` removes it): a run interrupted later, while drawing its figures say, resumes without
    indexing again."""
    from .index.results import write_index_results
    from .io.outputs import RUN_CHECKPOINT

    xmap, written["index_seconds"] = index_dataset(ds, phases, outdir / RUN_CHECKPOINT, progress=progress,
                                                   backend=backend, client=client, params=params)
    written["indexed_here"] = indexed_here(xmap)
    write_index_results(outdir / "results.h5", xmap, ds, phases, xmap.parameters)
    return xmap


def _write_run_results(results: Path, grain_map: Any, boundaries: Any, cls: Any, transport: Any,
                       run_params: dict[str, Any], calib_fit: Any, config: Config | None) -> None:
    """Grains, boundaries, classification, transport, parameters and config added to ``results`` (atomically)."""
    from .boundaries import write_boundaries, write_classification
    from .grains import write_grains
    from .io.results import update_h5, write_parameters

    with update_h5(results) as f:
        write_grains(f, grain_map)
        write_boundaries(f, boundaries)
        write_classification(f, cls)
        if transport is not None:
            from .transport import write_transport

            write_transport(f, transport)
        write_parameters(f, "run", run_params)
        if calib_fit is not None:
            write_parameters(f, "calibrate", calib_fit.to_dict())
        if config is not None:
            from .settings import write_config

            write_config(f, config, "run")


def _write_run_tables(outdir: Path, input_path: Any, cls: Any, config: Config | None, written: dict[str, Any]) -> None:
    """``config.toml`` (with a config), ``boundaries.csv`` and ``segments.csv`` of a run."""
    from .boundaries import write_classification_csv
    from .io.results import atomic_write_text

    if config is not None:
        from .settings import config_to_toml, used_config

        header = f"effective config of the run on {Path(input_path).resolve()}; --config this file repeats it"
        atomic_write_text(outdir / "config.toml", config_to_toml(used_config(config, "run"), header=header))
        written["config"] = outdir / "config.toml"
    write_classification_csv(outdir / "boundaries.csv", cls, level="boundaries")
    write_classification_csv(outdir / "segments.csv", cls, level="segments")
    written["tables"] = [outdir / "boundaries.csv", outdir / "segments.csv"]


def _run_figures(outdir: Path, xmap: Any, grain_map: Any, boundaries: Any, cls: Any, transport: Any,
                 global_field: Any, note: str | None = None) -> list[Path]:
    """Every figure of a run, in ``outdir``; ``note``: a warning on the classification's figures."""
    from .plot.grains import save_grain_figures
    from .plot.orientation import save_orientation_figures

    figs = list(save_orientation_figures(xmap, outdir))
    figs += list(save_grain_figures(outdir, grain_map, boundaries))
    no_current = global_field is None and transport is not None and transport.total_current == 0
    figs += _classification_figures(outdir, grain_map, boundaries, cls, global_field, title=(
        "Behaviour under +x: no current flows between the electrodes (give --field)" if no_current else None), note=note)
    if transport is not None:
        from .plot.transport import save_transport_figures

        figs += list(save_transport_figures(transport, outdir).values())
    return figs


def _classification_summary(cls: Any, grain_map: Any, field_source: str = "") -> dict[str, Any]:
    """``summary.json`` ``classification``: ``applies`` (a conducting phase is in the map, and a field to classify
    under: given, or a current from the transport model), ``conducting_phases`` (names), and where it applies the
    length and length fraction per label and behaviour
    (:meth:`~stemgrains.boundaries.BoundaryClassification.summary`); where not, a ``note`` saying why and those
    tables still, so that the file has the same keys for every map."""
    conducting = [str(c.get("name", c.get("id"))) for c in cls.parameters.get("conducting_phases", [])]
    out: dict[str, Any] = {"applies": bool(conducting), "conducting_phases": conducting}
    if conducting and field_source == NO_CURRENT_FIELD:
        out["applies"] = False
        out["note"] = ("the conduction-plane classification under the local field does not apply: no current flows "
                       "between the electrodes (the tables are under +x; give --field for an applied field)")
    if not conducting:
        why = _no_conducting_phase(grain_map)
        out["note"] = (f"the conduction-plane classification does not apply: {why}"
                       + ("" if why == "no pixel was indexed" else "; every boundary is other-phase"))
    return {**out, **cls.summary()}


def reliable_fractions(xmap: Any) -> dict[str, float]:
    """``reliable_fraction`` (reliability ≥ the usual cut, ``config.GRAIN_VOTE_RELIABILITY``) and, where the map
    has it, ``grain_reliable_fraction`` (grain_reliability ≥ the cut) of all the map's pixels."""
    from .config import GRAIN_VOTE_RELIABILITY as cut

    out = {"reliable_fraction": float(np.mean(np.asarray(xmap.prop["reliability"]) >= cut))}
    if "grain_reliability" in xmap.prop:
        out["grain_reliable_fraction"] = float(np.mean(np.asarray(xmap.prop["grain_reliability"]) >= cut))
    return out


def invalid_pixels(grain_map: Any) -> dict[str, Any]:
    """What a grain map leaves out: ``{"n_invalid": pixels invalid (not indexed, or below a cut of the segmentation:
    ``min_reliability``, ``min_correlation``), "n_pixels", "cuts": ["grain_reliability < 5", ...] (empty without a
    cut), "n_unassigned": pixels in no grain (invalid, or in a grain smaller than ``min_grain_size`` left
    unassigned), "min_grain_size"}``."""
    gp = grain_map.parameters
    cuts = [f"{gp.get(prop) or what} < {gp[key]:g}" for key, prop, what in (
        ("min_reliability", "reliability_prop", "reliability"), ("min_correlation", "correlation_prop", "correlation_index"))
        if gp.get(key) is not None]
    n_px = int(np.prod(grain_map.shape))
    return {"n_invalid": n_px - int(gp["n_valid_px"]), "n_pixels": n_px, "cuts": cuts,
            "n_unassigned": int(np.sum(grain_map.labels == 0)), "min_grain_size": int(gp["min_grain_size"])}


def invalid_line(inv: dict[str, Any]) -> str:
    """``12 of 4096 pixels invalid (not indexed, or reliability < 5); 15 in no grain (invalid, or in grains of fewer
    than 5 px)`` from :func:`invalid_pixels`."""
    why = "not indexed" + "".join(f", or {c}" for c in inv["cuts"])
    return (f"{inv['n_invalid']} of {inv['n_pixels']} pixels invalid ({why}); {inv['n_unassigned']} in no grain "
            f"(invalid, or in grains of fewer than {inv.get('min_grain_size', '?')} px)")


#: what the classification's figures, summary and printed line say where the phase-fit check failed
PHASE_FIT_FAILED = ("the phase-fit check failed (the warning; summary.json phase_fit): the phase or the calibration "
                    "is not right for these patterns, so these labels may be meaningless")


#: calibration values a run uses that the user should know came from a default, with the option that sets each
_DEFAULTED = (("accelerating_voltage_kV", "accelerating voltage", "kV", "--voltage"),
              ("scan_step_nm", "scan step", "nm", "--scan-step"))


def calibration_summary(ds: Any) -> dict[str, Any]:
    """What a run's ``summary.json`` records of the calibration of ``ds`` (a Dataset4D): the q pixel size (1/Å),
    voltage (kV), scan step (nm), the nominal beam centre (row, col px; None: found per pattern), the detector
    rotation (deg) and flip, the ellipticity (ratio, angle deg) and affine (4 numbers; None where unset), and
    where each came from (``origin``: per field ``"file"``, ``"command line"``,
    ``"config"``, ``"calibration file PATH"`` (``--calibration``), ``"override"`` (given to the Python API),
    ``"default"``; ``"fitted (METHOD)"`` for the values an ``--auto-calibrate`` fit changed) and, where there are
    any, ``notes`` (``metadata["calibration_notes"]``: :func:`stemgrains.settings.reused_pixel_size_note`)."""
    cal = ds.calibration
    return {"q_pixel_size": cal.q_pixel_size, "accelerating_voltage_kV": float(cal.accelerating_voltage_kV),
            "scan_step_nm": float(cal.scan_step_nm),
            "center": None if cal.center is None else [float(v) for v in cal.center],
            "q_rotation_deg": float(cal.q_rotation_deg), "q_flip": bool(cal.q_flip),
            "ellipticity": None if cal.ellipticity is None else [float(v) for v in cal.ellipticity],
            "affine": None if cal.affine is None else [float(v) for v in np.asarray(cal.affine).ravel()],
            "origin": dict(ds.metadata.get("calibration_origin", {})),
            **({"notes": list(ds.metadata["calibration_notes"])} if ds.metadata.get("calibration_notes") else {})}


def defaults_line(calibration: dict[str, Any]) -> str | None:
    """One line naming the calibration values of :data:`_DEFAULTED` that came from defaults (the file states
    none), from :func:`calibration_summary`; None where the file or the user gave them all."""
    origin = calibration.get("origin", {})
    used = [(what, calibration[key], unit, opt) for key, what, unit, opt in _DEFAULTED if origin.get(key) == "default"]
    if not used:
        return None
    values = " and ".join(f"{what} {v:g} {unit}" for what, v, unit, _ in used)
    opts = ", ".join(opt for *_, opt in used)
    return (f"note: {values} {'is a default' if len(used) == 1 else 'are defaults'}: the input does not state "
            f"{'it' if len(used) == 1 else 'them'} (give {opts} if the experiment differs; stemgrains info shows "
            "where each calibration value comes from)")


#: the warning of a job where no pattern was indexed
NO_PATTERN_INDEXED = ("warning: no pattern was indexed (fewer than min_peaks spots everywhere, or no solution above "
                      "min_correlation): check the calibration (--q-pixel-size, centre) and the phase")


#: the warning of a job where patterns were indexed but none reliably (a noise-only scan, a wrong phase or
#: calibration on a scan too small for the phase-fit check's pattern counts)
NONE_RELIABLE = ("warning: no indexed pattern is reliable (reliability and grain reliability ≥ 5 nowhere): every "
                 "orientation could as well "
                 "be another; check the calibration (--q-pixel-size, centre), the phase and the data")


def input_warnings(calibration: dict[str, Any], indexed_fraction: float, phase_fit_warnings: Any,
                   reliable_fraction: float | None = None) -> list[str]:
    """The lines ``index`` and ``run`` print to stderr after one input (a batch, under that input's line): the
    calibration defaults note (:func:`defaults_line`) and the calibration's ``notes``, :data:`NO_PATTERN_INDEXED` where ``indexed_fraction`` is 0,
    :data:`NONE_RELIABLE` where patterns were indexed but ``reliable_fraction`` (of the map's pixels with
    reliability or grain reliability ≥ 5) is 0, and each phase-fit warning (``warning: ...``)."""
    note = defaults_line(calibration or {})
    notes = [note] if note else []
    notes += list((calibration or {}).get("notes", []))
    none_reliable = indexed_fraction > 0 and reliable_fraction is not None and reliable_fraction == 0
    return notes + ([NO_PATTERN_INDEXED] if indexed_fraction == 0 else []) + \
        ([NONE_RELIABLE] if none_reliable else []) + [f"warning: {w}" for w in phase_fit_warnings or []]


def _run_summary(input_path: Any, ds: Any, xmap: Any, grain_map: Any, boundaries: Any, cls: Any, transport: Any,
                 field_source: str) -> dict[str, Any]:
    """``summary.json`` of a run."""
    from .index.quality import phase_fit_check

    summary = {
        "input": str(Path(input_path).resolve()),
        "scan_shape": list(ds.scan_shape),
        "detector_shape": [int(v) for v in ds.detector_shape],
        "calibration": calibration_summary(ds),
        "indexed_fraction": float(np.mean(xmap.phase_id >= 0)),
        "median_correlation_index": float(np.median(xmap.prop["correlation_index"])),
        "median_reliability": float(np.median(xmap.prop["reliability"])),
        **reliable_fractions(xmap),
        **({"median_n_summed": float(np.median(xmap.prop["n_summed"]))} if "n_summed" in xmap.prop else {}),
        **({"grain_vote_fraction": float(np.mean(xmap.prop["grain_vote"]))} if "grain_vote" in xmap.prop else {}),
        **{k: v for k, v in (getattr(xmap, "parameters", None) or {}).items()
           if k in ("excitation_error_sigma", "excitation_error_sigma_source", "excitation_error_sigma_confident",
                    "refine_excitation_error_sigma", "refine_excitation_error_sigma_source",
                    "refine_excitation_error_sigma_votes", "grain_decisions_withdrawn")
           and v is not None},
        "phase_fit": phase_fit_check(xmap).as_dict(),
        "n_grains": int(grain_map.n_grains),
        "invalid_pixels": invalid_pixels(grain_map),
        "n_boundaries": int(len(boundaries.boundaries)),
        # first what every map has: misorientation and CSL; the conduction-plane classes only where they apply
        "misorientation": boundaries.misorientation_summary(),
        "special": boundaries.special_summary(),
        "field_source": field_source,
        "classification": _classification_summary(cls, grain_map, field_source),
    }
    if not summary["phase_fit"]["ok"] and summary["classification"].get("applies", True):
        summary["classification"]["warning"] = PHASE_FIT_FAILED
    if transport is not None:
        summary.update(transport_summary(transport))
    return summary


def transport_summary(transport: Any) -> dict[str, Any]:
    """The ``transport_*`` keys of a run's ``summary.json`` from its transport result: the total current and its
    unit, how pixels in no grain were taken, and where no current flows, why (``transport_note``)."""
    out = {"transport_total_current": float(transport.total_current),
           "transport_total_current_unit": "sigma_ip*V per unit lamella thickness (x sigma_ip [S/m] x thickness [m] = A)",
           "transport_unassigned": (transport.parameters or {}).get("unassigned", "gb")}
    if transport.total_current == 0:
        out["transport_note"] = NO_CURRENT_NOTE
    return out


def pipeline_electrodes(electrodes: dict[str, float] | None) -> Any:
    """The ``[transport] electrodes`` table as :func:`run_pipeline` takes it: ``None``, or a dict of edges and
    mask files (``{file: (boolean mask, volts)}``, :func:`electrode_mask`; errors name the file); a one-line
    error without a potential difference (before hours of indexing)."""
    if not electrodes:
        return None
    table = _electrode_table(electrodes)  # before hours of indexing
    if any(isinstance(v, tuple) for v in table.values()):
        return table
    # image edges only: potentials and touching edges do not depend on the map's size, so check them now (a batch
    # checks once, before any input is indexed)
    from .transport.api import check_electrodes

    check_electrodes(dict(electrodes), (8, 8))
    return table


def check_index_config(cfg: Config) -> None:
    """The indexing parameters of a resolved config (``[index]``, ``[spots]``) and its backend, checked before any
    work (nothing is created when they are wrong): :class:`~stemgrains.index.api.IndexParams` validates the values;
    ``backend = "gpu"`` needs a CUDA device."""
    from .index.api import IndexParams, require_backend
    from .settings import index_params

    IndexParams(**index_params(cfg))
    require_backend(cfg["index"].get("backend") or "cpu")


def _require_field(field: Any, electrodes: Any, phases: list[Any], conducting_phases: Any) -> None:
    """Refuse a run with neither an applied ``field`` nor ``electrodes`` where it has something to classify: a phase
    with Na⁺ conduction planes among ``phases`` (orix Phases; none given: not known yet), or ``conducting_phases``
    named (a map of other phases, e.g. Au, needs no field: its boundaries are not classified)."""
    from .crystal import has_conduction_planes

    if field is not None or electrodes is not None:
        return
    if conducting_phases is not None or not phases or any(has_conduction_planes(p) for p in phases):
        raise ParameterError("give an applied field direction (--field X,Y; field=(x, y) in Python) or transport "
                             "electrodes (--electrode left=1 --electrode right=0): the conduction-plane classification of "
                             "a phase with Na+ conduction planes needs a field")


def check_run_config(cfg: Config, phases: list[Any] | None = None) -> tuple[tuple[float, float] | None, Any]:
    """The applied field and the electrodes of a ``run`` from its resolved config, checked before any work.
    ``phases`` (orix Phases or CIF paths): a run of phases without Na⁺ conduction planes needs neither a field nor
    electrodes (:func:`_require_field`); without ``phases``, one of them is asked for.

    Returns
    -------
    field, electrodes
        ``(x, y)`` or ``None`` (each boundary under its local field), and :func:`pipeline_electrodes`.

    Raises
    ------
    ParameterError
        ``[classify] field`` and ``field_from_transport`` both set, neither a field nor electrodes, a zero field,
        or electrodes without a potential difference (one line).
    """
    c = cfg["classify"]
    if c["field_from_transport"] and c["field"] is not None:
        raise ParameterError("[classify] field and field_from_transport are both set; keep one")
    electrodes = pipeline_electrodes(cfg["transport"]["electrodes"])
    field = tuple(c["field"]) if c["field"] is not None and not c["field_from_transport"] else None
    if field is None and electrodes is None:
        from .crystal import load_phase

        _require_field(field, electrodes, [load_phase(p) if isinstance(p, (str, os.PathLike)) else p for p in (phases or [])],
                       c["conducting_phases"])
    if field is not None:
        _unit2(field, "field")
    check_index_config(cfg)
    # the later stages' parameters too, so that a bad one stops the run before the (long) indexing
    from .boundaries.classify import check_parameters
    from .boundaries.misorientation import parse_special
    from .grains.segment import check_segment_parameters

    g = cfg["grains"]
    sp = _segment_params(g)
    check_segment_parameters(sp["threshold_deg"], sp["min_grain_size"], sp["small_grains"], sp["min_correlation"],
                             sp["min_reliability"], None, sp["reliability_prop"])
    if not (np.isfinite(g["low_angle_deg"]) and 0 < g["low_angle_deg"] < 180):
        raise ParameterError(f"low_angle_deg must be in (0, 180) degrees, got {g['low_angle_deg']!r}")
    for s in g["special"]:
        parse_special(s)
    cp = _classify_params(c, None)
    check_parameters(cp["conductivity_ratio"], cp["type_tolerance_deg"], cp["flat_tolerance_deg"], cp["basis"],
                     cp["tau_flow"], cp["r_block"])
    return field, electrodes


def run_configured(input_path: str, output: str, phases: list[str], cfg: Config, *, overwrite: bool = False,
                   progress: bool = True, scheduler: str | None = None,
                   record: dict[str, Any] | None = None) -> dict[str, Any]:
    """The whole pipeline on one dataset with a resolved config (plain data, picklable arguments).

    Parameters
    ----------
    input_path
        4D-STEM data file.
    output
        Output folder (``results.h5``, tables, figures, ``config.toml``).
    phases
        Phase CIF paths.
    cfg
        Resolved config ``{section: {key: value}}`` (:func:`stemgrains.settings.effective_config` or
        :func:`stemgrains.settings.resolve`); it is recorded in ``results.h5`` and ``OUTDIR/config.toml``.
    overwrite, progress
        As ``--overwrite`` and not ``--no-progress``.
    scheduler
        A ``dask.distributed`` scheduler address (``--scheduler``): the indexing's chunks run on its workers.
    record
        Input checksum and parameters' fingerprint for the folder's manifest (:func:`run_pipeline`).

    Returns
    -------
    dict
        What :func:`run_pipeline` returns (paths written, ``summary``, ``index_seconds``).

    Raises
    ------
    ParameterError
        A field or electrodes :func:`check_run_config` refuses.
    StemgrainsError
        ``scheduler`` cannot be reached.
    """
    from .boundaries.misorientation import parse_special
    from .settings import calibrate_options, calibration_overrides, index_params

    g, c, t = cfg["grains"], cfg["classify"], cfg["transport"]
    field, electrodes = check_run_config(cfg, phases)
    kwargs = dict(
        field=field,
        electrodes=electrodes,
        index_params=index_params(cfg),
        segment_params=_segment_params(g),
        boundary_params=dict(low_angle_deg=g["low_angle_deg"], special=[parse_special(s) for s in g["special"]]),
        classify_params=_classify_params(c, None if c["conducting_phases"] is None
                                         else [_phase_arg(s) for s in c["conducting_phases"]]),
        transport_params=_transport_params(t) if electrodes is not None else None,
        calibration_overrides=calibration_overrides(cfg["calibration"]),
        auto_calibrate=calibrate_options(cfg) if cfg["calibration"]["auto"] else False,
        figures=cfg["figures"]["enabled"],
        progress=progress,
        backend=cfg["index"]["backend"],
        overwrite=overwrite,
        config=cfg,
        record=record,
    )
    client = connect_scheduler(scheduler)
    try:
        return run_pipeline(input_path, phases, output, client=client, **kwargs)
    finally:
        if client is not None:
            client.close()
