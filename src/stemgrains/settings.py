"""Config files: every parameter of every stage in one TOML file.

A config file has the sections ``[calibration]``, ``[calibrate]`` (the fit of ``stemgrains calibrate`` and of
``--auto-calibrate``), ``[index]``, ``[spots]`` (spot detection, part of indexing),
``[grains]`` (grains and boundaries), ``[classify]``, ``[transport]`` and ``[figures]``. Each key has a type, a
default, a unit, a one-line meaning and (most) a command-line option that overrides it; the schema is
:func:`schema`. Default values are never copied here: they are read from :mod:`stemgrains.config`, the fields
of :class:`~stemgrains.index.api.IndexParams` / :class:`~stemgrains.preprocess.api.SpotParams` and the stage
functions' signatures.

Precedence, per key: an option given on the command line > the config file (``--config FILE``) > the default.
The effective config of a command is written into its results file (TOML text in the ``config`` attribute of
``/parameters``) and, for ``stemgrains run -o OUTDIR`` and for a batch (``run``/``index`` with several inputs),
into ``OUTDIR/config.toml``; either can be given back to ``--config`` to repeat the run. Unknown sections or
keys and values of the wrong type are one-line :class:`~stemgrains.errors.ParameterError` messages naming the
file and the key.

Keys whose default is unset (``None``: "taken from the data file" or "chosen from the data") are written
commented out by :func:`dump_config`; TOML has no null, so such a key is unset by leaving it out.
"""

from __future__ import annotations

import argparse
import difflib
import functools
import inspect
import json
import math
import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass
from pathlib import Path
from typing import Any

from . import config
from .errors import FileFormatError, ParameterError

__all__ = [
    "Key",
    "SECTIONS",
    "COMMAND_SECTIONS",
    "NOT_CONFIG",
    "schema",
    "default_config",
    "dump_config",
    "config_to_toml",
    "parse_config",
    "load_config",
    "effective_config",
    "resolve",
    "used_config",
    "merge_config",
    "calibration_overrides",
    "index_params",
    "calibrate_options",
    "check_index_values",
    "check_config_values",
    "check_q_range",
    "electrodes_from_specs",
    "parse_pair",
    "parse_numbers",
    "write_config",
    "config_text",
    "toml_value",
    "read_config",
]

#: the sections of a config file and what they hold
SECTIONS: dict[str, str] = {
    "calibration": "detector and scan calibration; unset keys are taken from the data file (precedence: these > "
                   "file > data file's own values)",
    "calibrate": "fit of the detector calibration from the data (`stemgrains calibrate`, and `--auto-calibrate` of "
                 "index/run: these read method, max_patterns, n_index, max_index, confirm; the fit's k_max and "
                 "neighbour summation are then the indexing's)",
    "index": "orientation mapping (template matching), stemgrains.index.IndexParams",
    "spots": "spot detection of the indexing, stemgrains.preprocess.SpotParams",
    "grains": "grain segmentation and boundary extraction (stemgrains.grains.segment_grains, "
              "stemgrains.boundaries.extract_boundaries)",
    "classify": "conduction-plane classification of the boundaries (docs/classification.md)",
    "transport": "ionic transport model (stemgrains.transport.solve_transport)",
    "figures": "figures written by `stemgrains run`",
}

#: the sections each command reads (and writes into its results file)
COMMAND_SECTIONS: dict[str, tuple[str, ...]] = {
    "run": tuple(SECTIONS),
    "index": ("calibration", "calibrate", "index", "spots"),
    "calibrate": ("calibration", "calibrate", "spots"),
    "segment": ("calibration", "grains"),
    "classify": ("classify",),
    "transport": ("transport",),
}
#: keys of a section a command reads when it does not read the whole section
_AUTO_CALIBRATE_KEYS = ("method", "max_patterns", "n_index", "max_index", "confirm")
_COMMAND_KEYS: dict[str, dict[str, tuple[str, ...]]] = {
    "segment": {"calibration": ("scan_step_nm",)},
    # --auto-calibrate: the fit's k_max and neighbour summation are the indexing's ([index])
    "index": {"calibrate": _AUTO_CALIBRATE_KEYS}, "run": {"calibrate": _AUTO_CALIBRATE_KEYS},
    "calibrate": {"calibration": tuple(k for k in ("file", "q_pixel_size", "accelerating_voltage_kV", "center",
                                                   "scan_step_nm", "q_rotation_deg", "q_flip", "ellipticity",
                                                   "affine"))},
}

#: argparse destinations that are inputs, outputs or ways of running, not parameters (no config key)
NOT_CONFIG = frozenset({
    "input", "results", "phase", "output", "overwrite", "no_progress", "config", "scheduler", "export_ang",
    "export_ctf", "figures", "csv", "help", "recursive", "jobs", "force", "figure", "no_figure",
})

# kinds of values: float, int, bool, str, pair (2 numbers), quad (4 numbers), strings (list of str), phases
# (list of phase names or integer ids), electrodes (table WHERE = volts), unassigned ("gb", "pore" or a number)
_KIND_TEXT = {
    "float": "a number", "int": "an integer", "bool": "true or false", "str": "a string",
    "pair": "two numbers [a, b]", "quad": "four numbers [a, b, c, d]", "strings": "a list of strings",
    "phases": "a list of phase names (strings) or ids (integers), e.g. [\"na_beta2_alumina\"] or [0]",
    "electrodes": "a table WHERE = volts, e.g. {left = 1.0, right = 0.0}",
    "unassigned": "\"gb\", \"pore\" or a number",
}


@dataclass(frozen=True)
class Key:
    """One config key.

    Attributes
    ----------
    section, name : where it lives: ``[section] name = ...``.
    kind : value type: ``float``, ``int``, ``bool``, ``str``, ``pair`` (two numbers), ``quad`` (four numbers),
        ``strings`` (list of strings), ``phases`` (list of phase names or integer ids), ``electrodes`` (table WHERE = volts) or ``unassigned``.
    default : default value (``None``: unset).
    unit : unit of the value (``—`` for none, ``1`` for dimensionless).
    meaning : one line.
    dest : the argparse destination of the command-line option that overrides it (``None``: file only).
    flag : that option as typed, e.g. ``--threshold``.
    choices : allowed values of a ``str`` key.
    negate : the option is a ``--no-...`` flag that sets the key to false.
    """

    section: str
    name: str
    kind: str
    default: Any
    unit: str
    meaning: str
    dest: str | None = None
    flag: str | None = None
    choices: tuple[str, ...] | None = None
    negate: bool = False

    @property
    def path(self) -> str:
        return f"{self.section}.{self.name}"


def _dc_default(cls: Any, name: str) -> Any:
    f = cls.__dataclass_fields__[name]
    if f.default is not MISSING:
        return f.default
    return f.default_factory()  # type: ignore[misc]


def _arg_default(func: Any, name: str) -> Any:
    return inspect.signature(func).parameters[name].default


@functools.lru_cache(maxsize=1)
def schema() -> tuple[Key, ...]:
    """Every config key, in file order (imports the stages to read their defaults)."""
    return tuple(_calibration_keys() + _calibrate_keys() + _index_keys() + _spot_keys() + _grain_keys() + _classify_keys()
                 + _transport_keys() + _figure_keys())


def _calibration_keys() -> list[Key]:
    """``[calibration]``: all unset (the data file's values)."""
    K = Key
    return [
        K("calibration", "file", "str", None, "—", "calibration JSON (from `stemgrains calibrate`) applied first",
          "calibration", "--calibration"),
        K("calibration", "q_pixel_size", "float", None, "1/Å per px", "detector pixel size in reciprocal space",
          "q_pixel_size", "--q-pixel-size"),
        K("calibration", "accelerating_voltage_kV", "float", None, "kV", "accelerating voltage", "voltage",
          "--voltage"),
        K("calibration", "center", "pair", None, "detector px", "direct-beam centre [row, col]", "center", "--center"),
        K("calibration", "scan_step_nm", "float", None, "nm", "scan step (segment: overrides the map's step)",
          "scan_step", "--scan-step"),
        K("calibration", "q_rotation_deg", "float", None, "deg",
          "rotation bringing the detector axes into the scan frame, from +x toward +y", "q_rotation", "--q-rotation"),
        K("calibration", "q_flip", "bool", None, "—", "the camera image is transposed relative to the scan",
          "q_flip", "--q-flip"),
        K("calibration", "ellipticity", "pair", None, "1, deg",
          "elliptical distortion [axis ratio, long axis angle from +col toward +row]", "ellipticity", "--ellipticity"),
        K("calibration", "affine", "quad", None, "1",
          "general detector distortion [A11, A12, A21, A22] on offsets (dcol, drow): measured = A · ideal",
          "affine", "--affine"),
        K("calibration", "auto", "bool", False, "—",
          "fit pixel size, ellipticity and beam centre from the data first (as `stemgrains calibrate`)",
          "auto_calibrate", "--auto-calibrate"),
    ]


def _calibrate_keys() -> list[Key]:
    """``[calibrate]``: defaults from the signature of :func:`stemgrains.preprocess.calibrate.calibrate` (and of
    the ``calibrate`` command: ``k_max``)."""
    from .preprocess.calibrate import calibrate

    K = Key
    return [
        K("calibrate", "method", "str", _arg_default(calibrate, "method"), "—",
          "rings (many grains), orientations (any number of grains) or auto: both", "method", "--method",
          choices=("auto", "rings", "orientations")),
        K("calibrate", "k_max", "float", config.CALIBRATE_K_MAX, "1/Å",
          "largest scattering vector used (calibrate; --auto-calibrate uses [index] k_max)", "k_max", "--k-max"),
        K("calibrate", "max_patterns", "int", _arg_default(calibrate, "max_patterns"), "patterns",
          "patterns of the subsample searched for spots", "max_patterns", "--max-patterns"),
        K("calibrate", "n_index", "int", _arg_default(calibrate, "n_index"), "patterns",
          "patterns indexed for the joint fit", "n_index", "--n-index"),
        K("calibrate", "max_index", "int", _arg_default(calibrate, "max_index"), "patterns",
          "while the pixel size or axis ratio is uncertain by more than 0.5 %, the joint fit is repeated with twice "
          "as many patterns, up to this many (at most n_index: one round)", "max_index", "--max-index"),
        K("calibrate", "neighbor_average_radius", "int", config.NEIGHBOR_AVERAGE_RADIUS, "scan px",
          "each pattern is summed with the similar patterns within this distance, as the indexing does (calibrate; "
          "--auto-calibrate uses [index] neighbor_average_radius)", "neighbor_average_radius",
          "--neighbor-average-radius"),
        K("calibrate", "confirm", "bool", _arg_default(calibrate, "confirm"), "—",
          "apply the fit only where it indexes a subsample better than the stated calibration (else "
          "'unconfirmed': reported, the stated calibration kept)", "no_confirm", "--no-confirm", negate=True),
    ]


def _index_keys() -> list[Key]:
    """``[index]``: defaults from :class:`~stemgrains.index.api.IndexParams`."""
    from .index.api import IndexParams

    ip = functools.partial(_dc_default, IndexParams)
    K = Key
    return [
        K("index", "step_deg", "float", ip("step_deg"), "deg", "template library angular step", "step", "--step"),
        K("index", "k_max", "float", ip("k_max"), "1/Å",
          f"largest scattering vector used (unset: what the detector reaches, at most {config.K_MAX_CAP:g})",
          "k_max", "--k-max"),
        K("index", "excitation_error_sigma", "float", ip("excitation_error_sigma"), "1/Å",
          f"relrod width σ_s of the kinematic templates (≈ 1/thickness, {config.EXCITATION_ERROR_SIGMA_MIN:g} to "
          f"{config.EXCITATION_ERROR_SIGMA_MAX:g}; unset: chosen from the data among "
          f"{', '.join(f'{c:g}' for c in (config.EXCITATION_ERROR_SIGMA, *config.SIGMA_CANDIDATES))})"),
        K("index", "refine_excitation_error_sigma", "float", ip("refine_excitation_error_sigma"), "1/Å",
          "relrod width of the final refinement of every solution, one for the scan, at most the search's σ_s and at "
          f"least {config.EXCITATION_ERROR_SIGMA_MIN:g} "
          "(unset: chosen from the data among σ_s and each of "
          f"{', '.join(f'{c:g}' for c in config.REFINE_SIGMA_CANDIDATES)} narrower than it; measured: multislice "
          "Na-β″ takes 0.007, kinematic data keep σ_s)"),
        K("index", "final_refinement", "bool", ip("final_refinement"), "—",
          "the final refinement at its own relrod width (false: none; then leave refine_excitation_error_sigma unset; "
          "--no-final-refinement also drops a width the config file sets)",
          "no_final_refinement", "--no-final-refinement", negate=True),
        K("index", "sigma_coarse", "float", ip("sigma_coarse"), "1/Å", "spot-match width of the coarse search"),
        K("index", "n_prefilter", "int", ip("n_prefilter"), "templates",
          "templates passed by the rotation-invariant prefilter to the coarse search", "n_prefilter",
          "--n-prefilter"),
        K("index", "n_angles", "int", ip("n_angles"), "bins", "in-plane angle bins of the coarse search"),
        K("index", "n_candidates", "int", ip("n_candidates"), "candidates",
          "distinct coarse candidates scored on the processed image"),
        K("index", "candidate_separation_deg", "float", ip("candidate_separation_deg"), "deg",
          "candidates closer than this count as one (unset: half the library step)"),
        K("index", "n_refine", "int", ip("n_refine"), "candidates", "candidates refined per pattern"),
        K("index", "n_best", "int", ip("n_best"), "candidates", "candidates kept per pattern"),
        K("index", "reliability_distance_deg", "float", ip("reliability_distance_deg"), "deg",
          "the second solution of the reliability is at least this far from the best"),
        K("index", "min_peaks", "int", ip("min_peaks"), "spots", "patterns with fewer spots are not indexed"),
        K("index", "min_correlation", "float", ip("min_correlation"), "1",
          "patterns with a lower correlation index are not indexed"),
        K("index", "reliability_fit_range", "pair", ip("reliability_fit_range"), "1",
          "reliability × clip((b − lo)/(hi − lo), 0, 1), b = spot fit beyond chance (Python: None leaves R unscaled)"),
        K("index", "refine_max_eval", "int", ip("refine_max_eval"), "evaluations", "Nelder–Mead evaluation limit"),
        K("index", "refine_xtol_deg", "float", ip("refine_xtol_deg"), "deg", "Nelder–Mead angular tolerance"),
        K("index", "fit_excitation_window", "float", ip("fit_excitation_window"), "1/Å",
          "spot fit: predicted spots within this excitation error"),
        K("index", "fit_tolerance", "float", ip("fit_tolerance"), "1/Å",
          "spot fit: a detected spot is explained within fit_tolerance + fit_tolerance_rel·|q|"),
        K("index", "fit_tolerance_rel", "float", ip("fit_tolerance_rel"), "1", "spot fit: relative part of the tolerance"),
        K("index", "fit_score_power", "float", ip("fit_score_power"), "1",
          "final choice: image score × ((explained + 1)/(detected + 1)) ** this (0: the image score alone)"),
        K("index", "pair_search", "bool", ip("pair_search"), "—",
          "orientations proposed by pairs of detected spots join the hypotheses where spots are left unexplained",
          "no_pair_search", "--no-pair-search", negate=True),
        K("index", "neighbor_pass", "bool", ip("neighbor_pass"), "—",
          "pixels also try their neighbours' solutions after the search", "no_neighbor_pass", "--no-neighbor-pass",
          negate=True),
        K("index", "grain_vote", "bool", ip("grain_vote"), "—",
          "pixels that cannot decide among near-tied hypotheses take their grain's majority solution",
          "no_grain_vote", "--no-grain-vote", negate=True),
        K("index", "search_stride", "int", ip("search_stride"), "scan px",
          "grain-coherent search: full search on every search_stride-th pixel per scan row and column, the others "
          "start from those solutions where they explain the pattern as well (1: search every pixel)"),
        K("index", "neighbor_average_radius", "int", ip("neighbor_average_radius"), "scan px",
          "each pattern is summed with the similar patterns within this distance before indexing (0: off)",
          "neighbor_average_radius", "--neighbor-average-radius"),
        K("index", "neighbor_min_similarity", "float", ip("neighbor_min_similarity"), "1",
          "neighbour summation: a neighbour is summed when its similarity is at least this"),
        K("index", "neighbor_relative_similarity", "float", ip("neighbor_relative_similarity"), "1",
          "neighbour summation: ... and at least this fraction of the most similar neighbour's"),
        K("index", "chunk_rows", "int", ip("chunk_rows"), "scan rows", "scan rows per chunk (rounded up to whole blocks of 8 rows; the map does not depend on it)", "chunk_rows",
          "--chunk-rows"),
        K("index", "backend", "str", _arg_default(_index_orientations(), "backend"), "—", "compute backend",
          "backend", "--backend", choices=("cpu", "gpu")),
    ]


def _spot_keys() -> list[Key]:
    """``[spots]``: defaults from :class:`~stemgrains.preprocess.api.SpotParams`."""
    from .preprocess.api import SpotParams

    sp = functools.partial(_dc_default, SpotParams)
    K = Key
    return [
        K("spots", "q_min", "float", sp("q_min"), "1/Å", "spots closer to the direct beam are ignored (unset: 2.5 × the beam radius)"),
        K("spots", "q_max", "float", sp("q_max"), "1/Å", "spots farther out are ignored (unset: index.k_max)"),
        K("spots", "beam_radius_px", "float", sp("beam_radius_px"), "detector px", "radius of the direct-beam disk"),
        K("spots", "n_sigma", "float", sp("n_sigma"), "σ (Poisson)", "detection threshold above the local background"),
        K("spots", "n_sigma_sparse", "float", sp("n_sigma_sparse"), "σ (Poisson)",
          "a pattern with fewer than min_spots spots also takes weaker ones above this (below n_sigma), for the search"),
        K("spots", "min_spots", "int", sp("min_spots"), "spots",
          "patterns with fewer spots above n_sigma take weaker ones up to this many (0: off)"),
        K("spots", "min_distance_px", "int", sp("min_distance_px"), "detector px", "minimum separation of two spots"),
        K("spots", "max_peaks", "int", sp("max_peaks"), "spots", "at most this many (strongest) spots per pattern"),
        K("spots", "ring_radius_px", "int", sp("ring_radius_px"), "detector px", "distance of the local-background ring"),
        K("spots", "power", "float", sp("power"), "1", "spot amplitude = excess ** power"),
        K("spots", "refine_center", "bool", sp("refine_center"), "—", "find the direct beam in every pattern"),
        K("spots", "center_search_px", "float", sp("center_search_px"), "detector px",
          "the direct beam is searched within this distance of the nominal centre (unset: 1/8 of the detector)"),
    ]


def _grain_keys() -> list[Key]:
    """``[grains]``: defaults from the signatures of segment_grains and extract_boundaries."""
    from .boundaries.extract import extract_boundaries
    from .grains import segment_grains

    K = Key
    return [
        K("grains", "threshold_deg", "float", _arg_default(segment_grains, "threshold_deg"), "deg",
          "neighbouring pixels join a grain below this disorientation", "threshold", "--threshold"),
        K("grains", "min_grain_size", "int", _arg_default(segment_grains, "min_grain_size"), "px",
          "smaller grains are dissolved (see small_grains)", "min_size", "--min-size"),
        K("grains", "min_reliability", "float", _arg_default(segment_grains, "min_reliability"), "1",
          "pixels with a lower reliability are invalid (unset: no limit)", "min_reliability", "--min-reliability"),
        K("grains", "reliability_prop", "str", _arg_default(segment_grains, "reliability_prop"), "—",
          "the map property min_reliability judges: reliability; grain_reliability to keep also the pixels whose "
          "grain decided a tie their own pattern leaves open (beam twin, 60° turn about c); or c_axis_reliability "
          "to keep the pixels whose c axis (conduction planes) is fixed even where those ties are not (unset: "
          "reliability, or rel / reliability_index of an imported map)", "reliability_prop", "--reliability-prop",
          choices=("reliability", "grain_reliability", "c_axis_reliability")),
        K("grains", "min_correlation", "float", _arg_default(segment_grains, "min_correlation"), "1",
          "pixels with a lower correlation index are invalid (unset: no limit)", "min_correlation",
          "--min-correlation"),
        K("grains", "small_grains", "str", _arg_default(segment_grains, "small_grains"), "—",
          "small grains and invalid pixels: leave unassigned (label 0) or merge into neighbours", "small_grains",
          "--small-grains", choices=("unassign", "merge")),
        K("grains", "low_angle_deg", "float", _arg_default(extract_boundaries, "low_angle_deg"), "deg",
          "low/high-angle boundary limit", "low_angle", "--low-angle"),
        K("grains", "special", "strings", [], "—",
          "special misorientations NAME:ANGLE:U,V,W:TOL (deg, axis, deg), e.g. \"twin:86.3:1,1,-2,0:5\"; "
          "distinct names; a boundary near several counts under the closest",
          "special", "--special"),
        K("grains", "hex_frame", "str", "auto", "—",
          "crystal frame of hexagonal orientations in .ang/.ctf input (segment only)", "hex_frame", "--hex-frame",
          choices=("auto", "x-a", "x-astar")),
    ]


def _classify_keys() -> list[Key]:
    """``[classify]``: defaults from the signature of classify_boundaries."""
    from .boundaries.classify import classify_boundaries

    K = Key
    return [
        K("classify", "field", "pair", None, "—",
          "applied in-plane field direction [x, y] (x right, y down); run: unset = each boundary's local field "
          "from the transport model", "field", "--field"),
        K("classify", "field_from_transport", "bool", False, "—",
          "classify (command) each boundary under the local field in /transport", "field_from_transport",
          "--field-from-transport"),
        K("classify", "type_tolerance_deg", "float", _arg_default(classify_boundaries, "type_tolerance_deg"), "deg",
          "Type I if θ <= this, Type II if θ >= 90 - this", "delta", "--delta"),
        K("classify", "flat_tolerance_deg", "float", _arg_default(classify_boundaries, "flat_tolerance_deg"), "deg",
          "a grain is flat (no trace) if its c-axis tilt alpha is below this", "flat_tol", "--flat-tol"),
        K("classify", "conductivity_ratio", "float", _arg_default(classify_boundaries, "conductivity_ratio"), "1",
          "in-plane / out-of-plane conductivity σ_ip/σ_op", "ratio", "--ratio"),
        K("classify", "basis", "str", _arg_default(classify_boundaries, "basis"), "—",
          "misorientation used for the type: trace (θ_2d) or 3d (θ_3d)", "basis", "--basis", choices=("trace", "3d")),
        K("classify", "tau_flow", "float", _arg_default(classify_boundaries, "tau_flow"), "σ_ip·|E|",
          "flux below which a boundary is 'parallel'", "tau_flow", "--tau-flow"),
        K("classify", "r_block", "float", _arg_default(classify_boundaries, "r_block"), "1",
          "|r| at or above which a boundary is blocking/depleting", "r_block", "--r-block"),
        K("classify", "conducting_phases", "phases", None, "—",
          "conducting phase names (strings) or ids (integers) (unset: the phases with Na+ conduction planes)", "conducting_phase",
          "--conducting-phase"),
    ]


def _transport_keys() -> list[Key]:
    """``[transport]``: defaults from the signature of solve_transport and :mod:`stemgrains.config`."""
    from .transport import solve_transport

    K = Key
    return [
        K("transport", "electrodes", "electrodes", None, "V",
          "electrodes: image edge (left, right, top, bottom) or a boolean mask .npy = potential; unset: run "
          "skips the transport model", "electrode", "--electrode"),
        K("transport", "conductivity_ratio", "float", _arg_default(solve_transport, "conductivity_ratio"), "1",
          "σ_ip/σ_op of the conducting phase", "ratio", "--ratio"),
        K("transport", "gb_conductivity", "float", config.GB_CONDUCTIVITY_FRACTION, "σ_ip",
          "boundary layer conductivity", "gb_sigma", "--gb-sigma"),
        K("transport", "gb_thickness_nm", "float", _arg_default(solve_transport, "gb_thickness_nm"), "nm",
          "boundary layer thickness (0: no boundary resistance)", "gb_thickness_nm", "--gb-thickness-nm"),
        K("transport", "model", "str", _arg_default(solve_transport, "model"), "—",
          "tensor: FEM with the full conductivity tensor; resistor: published per-direction model", "model",
          "--model", choices=("tensor", "resistor")),
        K("transport", "frame", "int", _arg_default(solve_transport, "frame"), "px",
          "a frame of this width around the map (unset: none)", "frame", "--frame"),
        K("transport", "frame_conductivity", "float", config.FRAME_CONDUCTIVITY_FRACTION, "σ_ip",
          "frame conductivity", "frame_sigma", "--frame-sigma"),
        K("transport", "unassigned", "unassigned", _arg_default(solve_transport, "unassigned"), "—",
          "label-0 pixels: boundary material (gb), pores (pore) or an isotropic conductivity (σ_ip)",
          "unassigned", "--unassigned"),
        K("transport", "solver", "str", _arg_default(solve_transport, "solver"), "—", "linear solver", "solver",
          "--solver", choices=("auto", "direct", "amg", "cg")),
    ]


def _figure_keys() -> list[Key]:
    """``[figures]``."""
    K = Key
    return [
        K("figures", "enabled", "bool", True, "—", "write the figures (PNG) of `stemgrains run`", "no_figures",
          "--no-figures", negate=True),
    ]


def _index_orientations() -> Any:
    from .index.api import index_orientations

    return index_orientations


def _keys() -> dict[str, dict[str, Key]]:
    out: dict[str, dict[str, Key]] = {s: {} for s in SECTIONS}
    for k in schema():
        out[k.section][k.name] = k
    return out


def _copy(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_copy(x) for x in v]
    return v


def default_config() -> dict[str, dict[str, Any]]:
    """Every key with its default value, ``{section: {key: value}}`` (``None``: unset)."""
    out: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for k in schema():
        out[k.section][k.name] = _copy(k.default)
    return out


# ------------------------------------------------------------------------------------------------ validation
def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


#: keys that must be finite and positive (a calibration of 0 or -1 would index nonsense for hours)
_POSITIVE = frozenset({"calibration.q_pixel_size", "calibration.accelerating_voltage_kV", "calibration.scan_step_nm"})
#: relrod widths: their range says more than "positive" (a width of 0 or 1e-6 both get the range)
_RELROD = frozenset({"index.excitation_error_sigma", "index.refine_excitation_error_sigma"})
#: file values that must be finite and positive (what the stages then require; 0 or −3 would be refused only
#: after a run started, or a NaN threshold would silently segment nothing)
_POSITIVE_FILE = frozenset({
    "index.step_deg", "index.k_max", "calibrate.k_max", "index.excitation_error_sigma", "index.sigma_coarse",
    "index.refine_excitation_error_sigma", "index.reliability_distance_deg", "index.refine_xtol_deg", "index.candidate_separation_deg",
    "grains.threshold_deg", "grains.low_angle_deg", "classify.conductivity_ratio", "classify.r_block",
    "transport.conductivity_ratio", "spots.beam_radius_px", "index.fit_excitation_window", "index.fit_tolerance",
})
#: file values that must be finite and at least 0 (the transport model refused them only after a run's indexing)
_NONNEGATIVE_FLOAT_FILE = frozenset({"transport.gb_thickness_nm"})
#: file values that must be integers ≥ 1
_COUNT_FILE = frozenset({
    "calibrate.max_patterns", "calibrate.n_index", "calibrate.max_index", "index.search_stride", "index.chunk_rows", "index.n_prefilter", "index.n_angles", "index.n_candidates",
    "index.n_refine", "index.n_best", "index.min_peaks", "index.refine_max_eval", "spots.max_peaks",
})
#: file values that must be integers ≥ 0
_NONNEGATIVE_FILE = frozenset({"index.neighbor_average_radius", "calibrate.neighbor_average_radius"})
#: values (file and command line) with a closed range
_RANGE = {
    "calibration.accelerating_voltage_kV": config.VOLTAGE_RANGE_KV,
    "index.neighbor_average_radius": (0, config.NEIGHBOR_AVERAGE_RADIUS_MAX),
    "calibrate.neighbor_average_radius": (0, config.NEIGHBOR_AVERAGE_RADIUS_MAX),
    "calibrate.k_max": (0.0, config.K_MAX_LIMIT),
    "index.neighbor_min_similarity": (-1.0, 1.0),
    "index.neighbor_relative_similarity": (0.0, 1.0),
    "index.k_max": (0.0, config.K_MAX_LIMIT),
    "index.excitation_error_sigma": (config.EXCITATION_ERROR_SIGMA_MIN, config.EXCITATION_ERROR_SIGMA_MAX),
    "index.refine_excitation_error_sigma": (config.EXCITATION_ERROR_SIGMA_MIN, config.EXCITATION_ERROR_SIGMA_MAX),
    "index.fit_score_power": (0.0, 10.0),
    "index.fit_tolerance_rel": (0.0, 1.0),
    "index.min_correlation": (0.0, 1.0),
    "spots.n_sigma": (1e-6, 1e3),
    "spots.n_sigma_sparse": (1e-6, 1e3),
    "spots.min_spots": (0, config.SPARSE_MIN_SPOTS_MAX),
    "spots.max_peaks": (1, config.MAX_PEAKS_MAX),
    "spots.min_distance_px": (1, 10**4),
    "spots.ring_radius_px": (2, 10**4),
    "spots.power": (1e-6, 10.0),
    "grains.threshold_deg": (0.0, 180.0),
    "grains.min_reliability": (0.0, 100.0),  # the reliability R is 0–100: above 100 no pixel would be kept
    "grains.min_grain_size": (1, 10**9),
    "classify.type_tolerance_deg": (0.0, 45.0),
    "classify.tau_flow": (0.0, 1.0),  # a flux per unit field never exceeds σ_ip: above 1 every boundary is 'parallel'
    "classify.r_block": (0.0, 2.0),  # r lies in [−2, 2]: above 2 no boundary would be blocking or depleting
}
#: ranges of :data:`_RANGE` whose lower end is excluded (``(lo, hi]``): a k_max of 0 keeps no reflection
_OPEN_BELOW = frozenset({"index.k_max", "calibrate.k_max", "grains.threshold_deg", "classify.r_block"})


def _in_range(key: Key, value: Any, where: str) -> Any:
    """``value``, or a one-line ParameterError naming the option (command line) or the file and key."""
    lo, hi = _RANGE[key.path]
    open_below = key.path in _OPEN_BELOW
    if (lo < value if open_below else lo <= value) and value <= hi:
        return value
    span = f"above {lo:g} and at most {hi:g}" if open_below else f"from {lo:g} to {hi:g}"
    unit = f" {key.unit}" if key.unit and key.unit not in ("1", "—") else ""
    if where == _CLI and key.flag:
        raise ParameterError(f"{key.flag} expects a value {span}{unit}, got {value:g}")
    raise ParameterError(f"{where}[{key.section}] {key.name}: expected a value {span}{unit}, got {_shown(value)}")


def check_option_range(path: str, value: float) -> float:
    """``value`` given on the command line for the config key ``path`` (e.g. ``calibration.accelerating_voltage_kV``)
    where it lies in the key's range (:data:`_RANGE`), else the one-line error naming its option, as the commands
    that resolve a config give it (for commands that take the option without a config: info, virtual, ...)."""
    return _in_range(next(k for k in schema() if k.path == path), value, _CLI)


#: file values that must be a non-zero vector (a direction)
_DIRECTION_FILE = frozenset({"classify.field"})
#: ``where`` of values from the command line (errors then name the option)
_CLI = "command line: "


#: ``[calibration]`` keys whose values :class:`stemgrains.data.Calibration` checks beyond their kind
_CALIBRATION_CHECKED = ("center", "q_rotation_deg", "ellipticity", "affine")


def check_calibration_value(name: str, value: Any, label: str) -> None:
    """Check one calibration value as :class:`stemgrains.data.Calibration` does (finite centre and rotation, a
    positive finite ellipticity ratio, a regular affine map) and name it by ``label`` — the option as typed
    (``--ellipticity``) or the file and key — instead of the internal name. ``name`` is one of
    ``center``, ``q_rotation_deg``, ``ellipticity``, ``affine``.

    Raises
    ------
    ParameterError
        e.g. ``--ellipticity ratio must be a finite positive number, got 0.0``.
    """
    from .data import Calibration

    v = tuple(value) if isinstance(value, (list, tuple)) else value
    try:
        Calibration(q_pixel_size=1.0, **{name: v})
    except ParameterError as err:
        text = str(err)
        if text.startswith(name):
            raise ParameterError(f"{label}{text[len(name):]}") from None
        raise ParameterError(f"{label}: {text}") from None


def _check(key: Key, value: Any, where: str) -> Any:
    """The value normalised (ints → floats for float keys, lists for pairs), or a one-line ParameterError."""
    value = _check_kind(key, value, where)
    if key.section == "calibration" and key.name in _CALIBRATION_CHECKED and value is not None:
        label = key.flag if where == _CLI and key.flag else f"{where}[{key.section}] {key.name}"
        check_calibration_value(key.name, value, label)
    return value


def _check_kind(key: Key, value: Any, where: str) -> Any:
    def bad() -> ParameterError:
        if key.choices and isinstance(value, str):
            return ParameterError(f"{where}[{key.section}] {key.name}: expected one of {', '.join(key.choices)}, "
                                  f"got {_shown(value)}{_suggest(value, key.choices)}")
        extra = f" (one of {', '.join(key.choices)})" if key.choices else ""
        return ParameterError(f"{where}[{key.section}] {key.name}: expected {_KIND_TEXT[key.kind]}{extra}, "
                              f"got {_shown(value)}")

    kind = key.kind
    if kind == "float":
        if not _number(value):
            raise bad()
        if key.path in _POSITIVE and not 0 < value < math.inf:
            if where == _CLI and key.flag:
                raise ParameterError(f"{key.flag} expects a finite positive number, got {value:g}")
            raise ParameterError(f"{where}[{key.section}] {key.name}: expected a finite positive number, got {_shown(value)}")
        if where != _CLI:  # command-line values are checked by the commands, with messages naming the option
            if key.path in _POSITIVE_FILE and key.path not in _RELROD and not 0 < value < math.inf:
                raise ParameterError(f"{where}[{key.section}] {key.name}: expected a finite positive number, "
                                     f"got {_shown(value)}")
            if math.isnan(value):  # inf can mean something (an ideal conductor), NaN never
                raise ParameterError(f"{where}[{key.section}] {key.name}: expected a number, got {_shown(value)}")
            if key.path in _NONNEGATIVE_FLOAT_FILE and not 0 <= value < math.inf:
                raise ParameterError(f"{where}[{key.section}] {key.name}: expected a finite number of at least 0, "
                                     f"got {_shown(value)}")
        return _in_range(key, float(value), where) if key.path in _RANGE else float(value)
    if kind == "int":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise bad()
        if where != _CLI and key.path in _COUNT_FILE and value < 1:
            raise ParameterError(f"{where}[{key.section}] {key.name}: expected an integer of at least 1, got {_shown(value)}")
        if where != _CLI and key.path in _NONNEGATIVE_FILE and value < 0:
            raise ParameterError(f"{where}[{key.section}] {key.name}: expected an integer of at least 0, got {_shown(value)}")
        return _in_range(key, value, where) if key.path in _RANGE else value
    if kind == "bool":
        if not isinstance(value, bool):
            raise bad()
        return value
    if kind == "str":
        if not isinstance(value, str) or (key.choices and value not in key.choices):
            raise bad()
        return value
    if kind in ("pair", "quad"):
        n = 2 if kind == "pair" else 4
        if not isinstance(value, (list, tuple)) or len(value) != n or not all(_number(x) for x in value):
            raise bad()
        if where != _CLI and any(math.isnan(x) for x in value):
            raise ParameterError(f"{where}[{key.section}] {key.name}: expected numbers, got {_shown(value)}")
        if where != _CLI and key.path in _DIRECTION_FILE and not any(value):
            raise ParameterError(f"{where}[{key.section}] {key.name}: expected a non-zero direction, got {_shown(value)}")
        return [float(x) for x in value]
    if kind == "strings":
        if not isinstance(value, (list, tuple)) or not all(isinstance(x, str) for x in value):
            raise bad()
        if key.path == "grains.special":  # checked where it is given, naming the option or the file and key
            from .boundaries.misorientation import parse_special, parse_specials

            name = key.flag if where == _CLI and key.flag else f"{where}[{key.section}] {key.name}"
            for spec in value:  # U + V + T = 0 of a Miller–Bravais axis: once the phases are known
                try:
                    parse_special(spec, check_sum=False)
                except ParameterError as err:
                    raise ParameterError(f"{name}: {err}") from None
            try:
                parse_specials(value, check_sum=False)
            except ParameterError as err:  # a name given twice
                raise ParameterError(f"{name}: {str(err).removeprefix('special: ')}") from None
        return list(value)
    if kind == "phases":
        if not isinstance(value, (list, tuple)) or \
                not all(isinstance(x, str) or (isinstance(x, int) and not isinstance(x, bool)) for x in value):
            raise bad()
        return list(value)  # an empty list: refused where the map's phases are known (conducting_phase_ids)
    if kind == "electrodes":
        if not isinstance(value, Mapping) or not value or not all(_number(x) for x in value.values()):
            raise bad()
        return {str(k): float(x) for k, x in value.items()}
    if kind == "unassigned":
        if value in ("gb", "pore"):
            return value
        if not _number(value):
            raise bad()
        if not (math.isfinite(value) and value >= 0):  # a conductivity (σ_ip units): the model refused it late
            raise ParameterError(f"{where}[{key.section}] {key.name}: expected \"gb\", \"pore\" or a finite "
                                 f"conductivity of at least 0, got {_shown(value)}")
        return float(value)
    raise AssertionError(kind)  # pragma: no cover


#: the field's usual names for what a config key holds (docs/classification.md calls the type tolerance ``delta``,
#: δ; papers and other programs use the others); the command-line options' names are aliases too (:func:`_suggest`)
_ALIASES = {
    "δ": "classify.type_tolerance_deg", "type_tolerance": "classify.type_tolerance_deg",
    "flat_tolerance": "classify.flat_tolerance_deg", "flat_tol_deg": "classify.flat_tolerance_deg",
    "anisotropy": "classify.conductivity_ratio", "sigma_ratio": "classify.conductivity_ratio", "tau": "classify.tau_flow",
    "misorientation_threshold": "grains.threshold_deg", "grain_threshold": "grains.threshold_deg",
    "min_ci": "grains.min_correlation", "min_r": "grains.min_reliability", "min_pixels": "grains.min_grain_size",
    "pixel_size": "calibration.q_pixel_size", "kv": "calibration.accelerating_voltage_kV",
    "high_tension": "calibration.accelerating_voltage_kV", "camera_rotation": "calibration.q_rotation_deg",
    "angular_step": "index.step_deg", "library_step": "index.step_deg", "kmax": "index.k_max", "qmin": "spots.q_min",
    "qmax": "spots.q_max", "sigma_s": "index.excitation_error_sigma", "relrod_width": "index.excitation_error_sigma",
    "excitation_error": "index.excitation_error_sigma",
}


def _suggest(name: str, options: Any, section: str | None = None) -> str:
    """`` (did you mean X?)`` for an unknown ``name`` among ``options`` (keys, sections or choices), or ``""``.

    With ``section`` (a config key in that section; ``""``: a key outside any section) the names the field and our
    command-line options use for the same thing count too (``delta`` → ``type_tolerance_deg``; :data:`_ALIASES`,
    the options' destinations and flags), and keys of other sections are named with theirs (``[classify] ...``);
    then the closest spellings (difflib), at most two."""
    found: list[str] = []
    if section is not None:
        norm = name.strip().lstrip("-").replace("-", "_")
        paths = [_ALIASES[a] for a in (norm, norm.lower()) if a in _ALIASES]
        for key in schema():
            if norm in (key.name, key.dest, (key.flag or "").lstrip("-").replace("-", "_")) and key.section != section:
                paths.append(key.path)
            elif norm in (key.dest, (key.flag or "").lstrip("-").replace("-", "_")):
                paths.append(key.path)
        here = [path for path in paths if path.split(".")[0] == section]
        for path in here or paths:  # this section's, else another's
            sec, key_name = path.split(".")
            text = key_name if sec == section else f"[{sec}] {key_name}"
            if text not in found:
                found.append(text)
    close = difflib.get_close_matches(name, list(options), n=2)
    if len(close) == 2:  # a second spelling only when about as close as the first
        r0, r1 = (difflib.SequenceMatcher(None, name, c).ratio() for c in close)
        close = close if r1 >= r0 - 0.05 else close[:1]
    found += [c for c in close if c not in found]
    return f" (did you mean {' or '.join(found[:2])}?)" if found else ""


def parse_config(data: Mapping[str, Any], source: str = "config") -> dict[str, dict[str, Any]]:
    """Validate a parsed config (``{section: {key: value}}``) and return its values normalised.

    Only the keys present are returned; :func:`merge_config` puts them over the defaults.

    Raises
    ------
    ParameterError
        An unknown section or key (with the closest known name), a value that is not a table where a
        section is expected, or a value of the wrong type (naming the key, the expected type and the value).
    """
    keys = _keys()
    where = f"{source}: "
    out: dict[str, dict[str, Any]] = {}
    for section, body in data.items():
        if not isinstance(body, Mapping):
            homes = [s for s, ks in keys.items() if section in ks]
            hint = f"; it belongs under [{homes[0]}]" if homes else _suggest(section, [], "")
            raise ParameterError(f"{where}key {section} is outside any section{hint}")
        if section not in keys:
            raise ParameterError(f"{where}unknown section [{section}]{_suggest(section, keys)}; "
                                 f"known: {', '.join(keys)}")
        out[section] = {}
        for name, value in body.items():
            if name not in keys[section]:
                raise ParameterError(f"{where}unknown key [{section}] {name}{_suggest(name, keys[section], section)}")
            out[section][name] = _check(keys[section][name], value, where)
    return out


def load_config(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Read and validate a config file: a TOML file, or a results file (``.h5``) whose embedded config is used.

    Parameters
    ----------
    path
        ``FILE.toml`` (e.g. from ``stemgrains config --dump``, or ``OUTDIR/config.toml`` of a run), or a
        results file written by ``index``/``segment``/``classify``/``transport``/``run``.

    Returns
    -------
    dict
        ``{section: {key: value}}`` of the keys present in the file, validated and normalised.

    Raises
    ------
    FileFormatError
        The file is missing, not TOML (with the parser's line and column), or a results file without a config.
    ParameterError
        Unknown section/key or wrong type (see :func:`parse_config`).
    """
    import tomllib

    p = Path(path)
    if p.is_dir():
        raise FileFormatError(f"{p}: is a folder; expected a config file (a .toml or a results file, e.g. "
                              f"{p / 'config.toml'})")
    if not p.is_file():
        raise FileFormatError(f"{p}: config file not found")
    from .io.files import HDF5_SIGNATURE, file_signature

    if file_signature(p) == HDF5_SIGNATURE:
        text = read_config(p)
        if text is None:
            from .io.fourd import is_4d_data

            if is_4d_data(p):
                raise FileFormatError(f"{p}: 4D diffraction data, not a results file or config file (a config is "
                                      "recorded in the results of index, segment, classify, transport and run)")
            raise FileFormatError(f"{p}: results file holds no config (/parameters attribute 'config'); it was "
                                  "written before config files existed")
    else:
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise FileFormatError(f"{p}: cannot read config file ({err})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        hint = ("; --config takes a TOML config file (stemgrains config --dump writes one) or a results .h5, "
                f"not a {p.suffix} file" if p.suffix.lower() in (".cif", ".npy", ".mib", ".dm4", ".ang", ".ctf", ".csv", ".json")
                else "")
        raise FileFormatError(f"{p}: not valid TOML ({err}){hint}") from None
    return _absolute_paths(parse_config(data, str(p)), p.resolve().parent)


def _absolute_paths(cfg: dict[str, dict[str, Any]], base: Path) -> dict[str, dict[str, Any]]:
    """Relative file paths of a config (calibration JSON, electrode masks) made absolute from ``base`` (the
    config file's folder, or the working folder for the command line), so a recorded config works anywhere."""
    cal = cfg.get("calibration", {})
    if cal.get("file"):
        cal["file"] = str(base / cal["file"])
    elec = cfg.get("transport", {}).get("electrodes")
    if elec:
        cfg["transport"]["electrodes"] = {(str(base / k) if k.lower().endswith(".npy") else k): v
                                          for k, v in elec.items()}
    return cfg


def merge_config(*layers: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Later layers' keys over earlier ones (section by section, key by key)."""
    out: dict[str, dict[str, Any]] = {}
    for layer in layers:
        for section, body in layer.items():
            out.setdefault(section, {}).update({k: _copy(v) for k, v in body.items()})
    return out


# ------------------------------------------------------------------------------------------------ command line
def parse_pair(text: str, name: str, kind: type = float) -> tuple[Any, Any]:
    """Parse ``"A,B"`` into two floats (``kind=int``: two integers), or raise a one-line ParameterError naming
    the option."""
    try:
        a, b = (kind(s) for s in text.split(","))
    except (ValueError, AttributeError):
        what = "integers" if kind is int else "numbers"
        raise ParameterError(f"{name} expects two {what} separated by a comma, got {text!r}") from None
    return a, b


def parse_numbers(text: str, name: str, n: int, form: str) -> tuple[float, ...]:
    """Parse ``n`` comma-separated numbers, or raise a one-line ParameterError naming the option."""
    try:
        vals = tuple(float(s) for s in text.split(","))
    except (ValueError, AttributeError):
        vals = ()
    if len(vals) != n:
        raise ParameterError(f"{name} expects {form} ({n} numbers separated by commas), got {text!r}")
    return vals


def electrodes_from_specs(specs: list[str], option: str = "--electrode") -> dict[str, float]:
    """``["left=1", "mask.npy=0"]`` → ``{"left": 1.0, "mask.npy": 0.0}``, or a one-line ParameterError."""
    out: dict[str, float] = {}
    for s in specs:
        where, sep, volts = str(s).rpartition("=")
        if not sep or not where.strip():
            raise ParameterError(f"{option} expects WHERE=VOLTS (e.g. left=1), got {s!r}")
        if where.strip() in out:
            raise ParameterError(f"{option} {where.strip()} is given twice ({where.strip()}={out[where.strip()]:g} "
                                 f"and {s!r}); give each electrode once")
        try:
            out[where.strip()] = float(volts)
        except ValueError:
            raise ParameterError(f"{option} {s!r}: {volts!r} is not a number") from None
    return out


def _from_cli(key: Key, value: Any) -> Any:
    if key.negate:
        return not value
    if key.kind == "pair":
        return list(parse_pair(value, key.flag or key.name))
    if key.kind == "quad":
        return list(parse_numbers(value, key.flag or key.name, 4, "A11,A12,A21,A22"))
    if key.kind == "electrodes":
        return electrodes_from_specs(value, key.flag or "--electrode")
    if key.kind == "unassigned":
        if value in ("gb", "pore"):
            return value
        try:
            return float(value)
        except ValueError:
            raise ParameterError(f"{key.flag} must be gb, pore or a number, got {_shown(value)}") from None
    if key.kind in ("strings", "phases"):
        return list(value)
    return value


def effective_config(args: argparse.Namespace | Mapping[str, Any] | None, command: str,
                     file_cfg: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """The config a command runs with: defaults < ``file_cfg`` < options given on the command line.

    Parameters
    ----------
    args
        Parsed arguments of ``command`` (an ``argparse.Namespace`` or a mapping of destinations). An option
        counts as given when its value is not ``None`` (the options that map to config keys default to ``None``;
        ``store_true`` flags too).
    command
        ``run``, ``index``, ``segment``, ``classify`` or ``transport``.
    file_cfg
        Validated config file (:func:`load_config`), or ``None``.

    Returns
    -------
    dict
        ``{section: {key: value}}`` with every key of every section.
    """
    if command not in COMMAND_SECTIONS:
        raise ParameterError(f"no config for command {command!r}; one of {', '.join(COMMAND_SECTIONS)}")
    vals = vars(args) if isinstance(args, argparse.Namespace) else dict(args or {})
    cli: dict[str, dict[str, Any]] = {}
    for key in schema():
        if key.dest is None or vals.get(key.dest) is None or not _uses(command, key):
            continue
        cli.setdefault(key.section, {})[key.name] = _check(key, _from_cli(key, vals[key.dest]), _CLI)
    _absolute_paths(cli, Path.cwd())
    # --field and --field-from-transport exclude each other: the one given here replaces the file's other
    cls = cli.get("classify", {})
    if cls.get("field") is not None:
        cls["field_from_transport"] = False
    elif cls.get("field_from_transport"):
        cls["field"] = None
    # --no-final-refinement also turns off a final-refinement width the file sets (else IndexParams refuses the pair)
    if cli.get("index", {}).get("final_refinement") is False:
        cli["index"]["refine_excitation_error_sigma"] = None
    out = merge_config(default_config(), file_cfg or {}, cli)
    if "calibration" in out:  # where each calibration value set in the section came from (not a config key)
        given = {**{k: "config" for k, v in (file_cfg or {}).get("calibration", {}).items() if v is not None},
                 **{k: "command line" for k, v in cli.get("calibration", {}).items() if v is not None}}
        out["calibration"][SOURCES_KEY] = given
    return out


def _uses(command: str, key: Key) -> bool:
    if key.section not in COMMAND_SECTIONS[command]:
        return False
    only = _COMMAND_KEYS.get(command, {}).get(key.section)
    return only is None or key.name in only


def used_config(cfg: Mapping[str, Mapping[str, Any]], command: str) -> dict[str, dict[str, Any]]:
    """The part of ``cfg`` that ``command`` reads (what it records in its results file); ``[calibrate]`` for
    ``index``/``run`` only where ``[calibration] auto`` is on (otherwise nothing reads it)."""
    out: dict[str, dict[str, Any]] = {}
    auto = bool(cfg.get("calibration", {}).get("auto"))
    for key in schema():
        if key.section == "calibrate" and command != "calibrate" and not auto:
            continue  # the fit's options: read by index/run only with --auto-calibrate
        if _uses(command, key) and key.name in cfg.get(key.section, {}):
            out.setdefault(key.section, {})[key.name] = _copy(cfg[key.section][key.name])
    return out


def resolve(args: argparse.Namespace, command: str) -> dict[str, dict[str, Any]]:
    """``effective_config`` of parsed arguments, reading ``args.config`` (``--config FILE``) when given."""
    path = getattr(args, "config", None)
    file_cfg = load_config(path) if path else None
    if file_cfg and "spots" in COMMAND_SECTIONS.get(command, ()):
        check_index_values(file_cfg, str(path))  # values that contradict each other, named by file and key
    return effective_config(args, command, file_cfg)


#: key of the ``[calibration]`` section of an effective config that holds, per key set, where it was set
#: (``"command line"`` or ``"config"``); not a config key (never written, never read from a file)
SOURCES_KEY = "_sources"


def override_origins(cal: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Per calibration field that :func:`calibration_overrides` sets (``overrides``, its result, computed when not
    given), where its value came from: ``"command line"``, ``"config"`` (a ``--config`` file's ``[calibration]``)
    or ``"calibration file PATH"`` (``--calibration``, read first: a key the section sets wins); the origins
    :func:`label_override_origins` records instead of ``"override"``."""
    overrides = calibration_overrides(cal) if overrides is None else overrides
    sources = cal.get(SOURCES_KEY, {})
    return {name: (sources.get(name, "override") if cal.get(name) is not None else f"calibration file {cal['file']}")
            for name in overrides}


def label_override_origins(ds: Any, cal: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> Any:
    """``ds`` (a Dataset4D loaded with ``overrides``, :func:`calibration_overrides` of ``cal``) with its metadata's
    ``calibration_origin`` saying, for each value given instead of the file's, where it was given
    (:func:`override_origins`) rather than ``"override"``, and its ``calibration_notes`` the notes of
    :func:`reused_pixel_size_note`, :func:`reused_voltage_note` and :func:`reused_detector_note` where there are
    any; returns ``ds``."""
    origin = ds.metadata.get("calibration_origin")
    if isinstance(origin, dict):
        for name, where in override_origins(cal, overrides).items():
            if origin.get(name) == "override":
                origin[name] = where
    for note in (reused_pixel_size_note(ds, cal), reused_voltage_note(ds, cal), reused_detector_note(ds, cal)):
        # (index, calibrate and run label here)
        if note and note not in ds.metadata.get("calibration_notes", []):
            ds.metadata["calibration_notes"] = [*ds.metadata.get("calibration_notes", []), note]
    return ds


def reused_detector_note(ds: Any, cal: Mapping[str, Any]) -> str | None:
    """A ``note:`` line where the pixel size, beam centre, ellipticity or affine of ``ds`` came from the
    ``--calibration`` file and that file records another detector shape than this scan's (a fit or a run of other
    data: another camera, binning or frame, for which those values need not hold); None otherwise (also for files
    that record no shape)."""
    from .io.calibration import calibration_file_detector

    file = cal.get("file")
    origin = ds.metadata.get("calibration_origin") or {}
    given = [k for k in ("q_pixel_size", "center", "ellipticity", "affine") if origin.get(k) == f"calibration file {file}"]
    theirs = calibration_file_detector(file) if file and given else None
    ours = tuple(int(v) for v in ds.detector_shape)
    if theirs is None or tuple(theirs) == ours:
        return None
    verb = "was" if len(given) == 1 else "were"
    return (f"note: {', '.join(given)} from {file} {verb} fitted or given on a {theirs[0]} × {theirs[1]} px detector, "
            f"and this scan's is {ours[0]} × {ours[1]} px: they hold only for the same camera, binning and camera "
            "length; calibrate this scan (stemgrains calibrate) or give its own values")


def reused_voltage_note(ds: Any, cal: Mapping[str, Any]) -> str | None:
    """A ``note:`` line where the accelerating voltage of ``ds`` came from the ``--calibration`` file (a run's
    summary or a fit that was given it) and replaces another voltage that the data file itself states (read again,
    lazily, from ``ds.source``); None otherwise. The wavelength, and with it every spot's place, follows it."""
    file = cal.get("file")
    origin = ds.metadata.get("calibration_origin") or {}
    if not file or origin.get("accelerating_voltage_kV") != f"calibration file {file}":
        return None
    try:
        from .io import load_4d

        own = load_4d(ds.source)
    except Exception:  # noqa: BLE001 - no file to compare with (an array, a file that needs the options): no note
        return None
    if (own.metadata.get("calibration_origin") or {}).get("accelerating_voltage_kV") != "file":
        return None
    theirs, ours = float(ds.calibration.accelerating_voltage_kV), float(own.calibration.accelerating_voltage_kV)
    if abs(theirs - ours) <= 1e-3 * ours:
        return None
    return (f"note: accelerating_voltage_kV {theirs:g} kV from {file} replaces the {ours:g} kV that {ds.source} "
            f"states; give --voltage {ours:g} if the data file is right")


def load_calibrated(path: Any, cal: Mapping[str, Any]) -> Any:
    """:func:`stemgrains.io.load_4d` of ``path`` with the ``[calibration]`` section ``cal`` applied
    (:func:`calibration_overrides`, the calibration JSON read once) and each given value's origin labelled
    (:func:`label_override_origins`)."""
    from .io import load_4d

    overrides = calibration_overrides(cal)
    return label_override_origins(load_4d(path, **overrides), cal, overrides)


def reused_pixel_size_note(ds: Any, cal: Mapping[str, Any]) -> str | None:
    """A ``note:`` line where the pixel size of ``ds`` came from the ``--calibration`` file (``[calibration]
    file``) and that file records another accelerating voltage than the scan's: at a fixed camera length L the
    pixel size in reciprocal space is the detector pixel pitch / (λ L), so it scales as 1/λ (λ the relativistic
    electron wavelength, :func:`stemgrains.data.electron_wavelength`); None otherwise."""
    from .data import electron_wavelength
    from .io.calibration import calibration_file_voltage

    file = cal.get("file")
    origin = ds.metadata.get("calibration_origin") or {}
    if not file or origin.get("q_pixel_size") != f"calibration file {file}":
        return None
    theirs, ours = calibration_file_voltage(file), float(ds.calibration.accelerating_voltage_kV)
    if theirs is None or theirs <= 0 or abs(theirs - ours) <= 1e-3 * ours:
        return None
    scale = electron_wavelength(theirs) / electron_wavelength(ours)
    q = ds.calibration.q_pixel_size
    return (f"note: q_pixel_size {q:g} 1/Å per px from {file} was fitted or given at {theirs:g} kV, and this scan is "
            f"at {ours:g} kV ({origin.get('accelerating_voltage_kV', 'file')}): at the same camera length its pixel "
            f"size would be {q * scale:.4g} (× λ({theirs:g} kV)/λ({ours:g} kV) = {scale:.4f}); give --q-pixel-size "
            "if so, or --voltage if this scan's voltage is wrong")


def calibration_overrides(cal: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of :func:`stemgrains.io.load_4d` from the ``[calibration]`` section: the calibration
    JSON (``file``) first, then the keys that are set."""
    out: dict[str, Any] = {}
    if cal.get("file"):
        from .io.calibration import read_calibration_json

        out.update(read_calibration_json(cal["file"]))
    for name in ("q_pixel_size", "accelerating_voltage_kV", "scan_step_nm", "q_rotation_deg", "q_flip"):
        if cal.get(name) is not None:
            out[name] = cal[name]
    for name in ("center", "ellipticity", "affine"):
        if cal.get(name) is not None:
            out[name] = tuple(cal[name])
    return out


def check_index_values(cfg: Mapping[str, Mapping[str, Any]], source: str) -> None:
    """The ``[spots]`` and ``[index]`` values of a config file (merged over the defaults) checked as the indexing
    checks them (:class:`~stemgrains.preprocess.api.SpotParams`, :class:`~stemgrains.index.api.IndexParams`): a
    one-line ParameterError naming ``source`` and the section."""
    from .index.api import IndexParams
    from .preprocess.api import SpotParams

    params = index_params(merge_config(default_config(), cfg))
    for section, check in (("[spots]", lambda: SpotParams(**params["spots"])), ("[index]", lambda: IndexParams(**params))):
        try:
            check()
        except ParameterError as err:
            raise ParameterError(f"{source}: {section} {err}") from None
    sp = params["spots"]
    if "n_sigma_sparse" in cfg.get("spots", {}) and sp["min_spots"] > 0 and sp["n_sigma_sparse"] >= sp["n_sigma"]:
        # (SpotParams lets its default through, which an n_sigma lowered below it makes harmless; set, it would
        # do nothing, equal to the default or not)
        raise ParameterError(f"{source}: [spots] n_sigma_sparse: expected a value below n_sigma ({sp['n_sigma']:g}), "
                             f"got {sp['n_sigma_sparse']:g} (the threshold of the weaker spots a sparse pattern takes; "
                             "lower it, or set min_spots = 0 to take none)")
    try:
        check_q_range(params)
    except ParameterError as err:
        raise ParameterError(f"{source}: {err}") from None


def check_config_values(cfg: Mapping[str, Mapping[str, Any]], source: str) -> None:
    """What ``stemgrains config --check`` checks beyond each key's kind and range: :func:`check_index_values`, and
    a ``[classify] conducting_phases`` that names no phase (the commands refuse it listing the map's phases)."""
    check_index_values(cfg, source)
    if cfg.get("classify", {}).get("conducting_phases") == []:
        raise ParameterError(f"{source}: [classify] conducting_phases: expected at least one phase name or id of the "
                             "map, got []; leave it unset for the phases with Na+ conduction planes")


def check_q_range(params: Mapping[str, Any], calibration: Any = None, detector_shape: Any = None) -> None:
    """The q-range the indexing uses must not be empty: its inner radius (``[spots] q_min``; unset: 2.5 ×
    ``beam_radius_px`` × the pixel size) below its outer radius, the smallest of ``[spots] q_max``, ``[index]
    k_max`` and — ``k_max`` unset — what the detector reaches about the beam centre (at most
    ``config.K_MAX_CAP``; :func:`stemgrains.preprocess.detector_q_reach`). Otherwise no spot is detected and nothing
    is indexed, after the whole run.

    Parameters
    ----------
    params
        Keyword arguments of :class:`~stemgrains.index.api.IndexParams` (:func:`index_params`), validated.
    calibration, detector_shape
        :class:`~stemgrains.data.Calibration` and ``(ky, kx)`` of the data; ``None`` (a config file alone): the
        outer radius is at most ``config.K_MAX_CAP`` where ``k_max`` is unset, and an unset ``q_min`` is not checked.

    Raises
    ------
    ParameterError
        One line naming the key that was set (``[spots] q_min: expected a value below 1.5 1/Å (...), got 3``;
        ``[index] k_max 0.05: expected a value above q_min (0.5172 1/Å, the default: ...; set with [spots] q_min
        of --config)`` where ``k_max`` or ``q_max`` is set and ``q_min`` is the default; the command line puts
        the option typed, or the config file, in place of the key: :func:`stemgrains.cli._option_names`).
    """
    from .preprocess.api import SpotParams, detector_q_reach

    sp = SpotParams(**params["spots"]) if isinstance(params["spots"], Mapping) else params["spots"]
    k_max = params.get("k_max")
    try:
        reach = None if calibration is None or detector_shape is None or calibration.q_pixel_size is None \
            else detector_q_reach(calibration, tuple(detector_shape))
    except ParameterError:  # a centre off the detector: refused where the data are read, in its own words
        reach = None
    if reach is not None and reach < config.MIN_DETECTOR_REACH \
            and calibration.q_pixel_size < config.Q_PIXEL_SIZE_TYPICAL[0]:  # --q-pixel-size 1e-6
        raise ParameterError(
            f"[calibration] q_pixel_size {calibration.q_pixel_size:g}: {_typical_pixel_size()}; with it the "
            f"{detector_shape[0]} x {detector_shape[1]} detector reaches only {reach:.3g} 1/Å about the beam centre, "
            f"short of a crystal's first reflections (below {config.MIN_DETECTOR_REACH:g} 1/Å, d > "
            f"{1 / config.MIN_DETECTOR_REACH:g} Å); nothing would be indexed")
    set_by: str | None = None  # the key that sets the outer radius, where one does
    if k_max is not None:
        outer, why, set_by = float(k_max), "[index] k_max, --k-max", "[index] k_max"
    elif reach is None:
        outer, why = config.K_MAX_CAP, f"what the detector reaches about the beam centre, at most {config.K_MAX_CAP:g} 1/Å"
    else:
        outer = min(reach, config.K_MAX_CAP)
        why = f"what the {detector_shape[0]} x {detector_shape[1]} detector reaches about the beam centre" + \
            (f", at most {config.K_MAX_CAP:g} 1/Å" if reach > config.K_MAX_CAP else "; [index] k_max unset")
    if sp.q_max is not None and sp.q_max < outer:
        outer, why, set_by = float(sp.q_max), "[spots] q_max", "[spots] q_max"
    if sp.q_min is not None:
        if sp.q_min >= outer:
            raise ParameterError(f"[spots] q_min: expected a value from 0 to below {outer:.4g} 1/Å (the outer radius of "
                                 f"the spots used: {why}), got {sp.q_min:g}; no spot would be detected")
    elif reach is not None:
        q_min = sp.resolved_q_min(calibration)
        from .preprocess.api import SpotParams as _SP

        detector_outer = min(reach, config.K_MAX_CAP)
        if q_min >= detector_outer and sp.beam_radius_px == _dc_default(_SP, "beam_radius_px") \
                and calibration.q_pixel_size > config.Q_PIXEL_SIZE_TYPICAL[1]:
            # the default beam disc covers all the detector reaches: the pixel size is what is off (--q-pixel-size 5)
            raise ParameterError(
                f"[calibration] q_pixel_size {calibration.q_pixel_size:g}: {_typical_pixel_size()}; with it the "
                f"excluded centre (2.5 × the {sp.beam_radius_px:g} px beam radius) reaches {q_min:.4g} 1/Å, not "
                f"below the {detector_outer:.4g} 1/Å the {detector_shape[0]} x {detector_shape[1]} detector reaches "
                "in the indexing; no spot would be detected")
        if q_min >= outer and set_by is not None and sp.beam_radius_px == _dc_default(_SP, "beam_radius_px"):
            # the outer radius is the one given (--k-max 0.05), the inner one the default: name the one given
            value = k_max if set_by == "[index] k_max" else sp.q_max
            raise ParameterError(f"{set_by} {float(value):g}: expected a value above q_min ({q_min:.4g} 1/Å, the "
                                 f"default: 2.5 × the {sp.beam_radius_px:g} px beam radius × "
                                 f"{calibration.q_pixel_size:g} 1/Å per px; set with [spots] q_min of --config); no "
                                 "spot would be detected")
        if q_min >= outer:
            raise ParameterError(f"[spots] beam_radius_px: the inner radius of the spots used, 2.5 × {sp.beam_radius_px:g} "
                                 f"px × {calibration.q_pixel_size:g} 1/Å = {q_min:.4g} 1/Å ([spots] q_min unset), must lie "
                                 f"below their outer radius {outer:.4g} 1/Å ({why}); no spot would be detected")


def name_pixel_size_origin(err: ParameterError, ds: Any) -> ParameterError:
    """``err`` of :func:`check_q_range` about ``[calibration] q_pixel_size`` worded by where the dataset's pixel size
    came from (``ds.metadata["calibration_origin"]``): the data file (``FILE: q_pixel_size ... stated in the file``,
    with the option that overrides it) or a ``--calibration`` file (``JSON: q_pixel_size ...``); as it is where it
    was given (the command line or a config file name it themselves: :func:`stemgrains.cli._config_origin`)."""
    key = "[calibration] q_pixel_size"
    message = str(err)
    if not message.startswith(key):
        return err
    where = (ds.metadata.get("calibration_origin") or {}).get("q_pixel_size")
    rest = message[len(key):]
    if where == "file":
        return ParameterError(f"{ds.source}: q_pixel_size{rest} (the pixel size stated in this file; give "
                              "--q-pixel-size to override it)")
    if isinstance(where, str) and where.startswith("calibration file "):
        return ParameterError(f"{where[len('calibration file '):]}: q_pixel_size{rest}")
    return err


def pixel_size_refusal(params: Mapping[str, Any], ds: Any) -> ParameterError | None:
    """The error :func:`check_q_range` raises for indexing keyword arguments ``params`` on the detector of ``ds``
    where the pixel size is what leaves nothing to index, named by where it came from
    (:func:`name_pixel_size_origin`); None otherwise (also for other empty q-ranges, which are each input's own)."""
    try:
        check_q_range(params, ds.calibration, ds.detector_shape)
    except ParameterError as err:
        if str(err).startswith("[calibration] q_pixel_size"):
            return name_pixel_size_origin(err, ds)
    return None


def _typical_pixel_size() -> str:
    lo, hi = config.Q_PIXEL_SIZE_TYPICAL
    return f"expected a detector pixel size of about {lo:g}-{hi:g} 1/Å per px (nanobeam patterns reach 1-3 1/Å)"


def calibrate_options(cfg: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Keyword arguments of :func:`stemgrains.preprocess.calibrate.calibrate` from ``[calibrate]`` that
    ``--auto-calibrate`` of index/run uses too: ``method``, ``max_patterns``, ``n_index``, ``max_index``,
    ``confirm`` (``k_max`` and ``neighbor_average_radius`` go into its ``index_params``). A ``max_index`` below
    ``n_index`` (the joint fit starts from n_index patterns and grows to at most max_index) is a one-line
    ParameterError."""
    out = {k: _copy(cfg["calibrate"][k]) for k in _AUTO_CALIBRATE_KEYS}
    n, most = out.get("n_index"), out.get("max_index")
    if n is not None and most is not None and most < n:
        raise ParameterError(f"[calibrate] max_index ({most}) must be at least n_index ({n}): the joint fit starts "
                             "from n_index patterns and grows to at most max_index")
    return out


def index_params(cfg: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Keyword arguments of :class:`~stemgrains.index.api.IndexParams` from ``[index]`` and ``[spots]``."""
    from .index.api import IndexParams

    fields = set(IndexParams.__dataclass_fields__)
    out = {k: v for k, v in cfg["index"].items() if k in fields}
    out["spots"] = dict(cfg["spots"])
    return out


# ------------------------------------------------------------------------------------------------ TOML text
def toml_value(v: Any) -> str:
    """A value as TOML text (bool, int, float with nan/inf, str, list, table), or a one-line ParameterError."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        # a JSON string is a TOML basic string, but for DEL, which TOML wants escaped
        return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{_toml_key(str(k))} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise ParameterError(f"cannot write {v!r} ({type(v).__name__}) to TOML")


def _shown(v: Any) -> str:
    """A value as it reads in a config file (:func:`toml_value`: ``true``, ``"text"``, ``[1.0, 2.0]``) for error
    messages; Python's repr for what TOML cannot write."""
    try:
        return toml_value(v)
    except (ParameterError, TypeError, ValueError):
        return repr(v)


def _toml_key(k: str) -> str:
    return k if k and all(ch.isascii() and (ch.isalnum() or ch in "_-") for ch in k) else toml_value(k)


def _comment(key: Key) -> str:
    default = "unset" if key.default is None else toml_value(key.default)
    where = f"; option {key.flag}" + (" (sets false)" if key.negate else "") if key.flag else ""
    choices = f"; one of {', '.join(key.choices)}" if key.choices else ""
    return f"# {key.meaning} [{key.unit}]{choices}; default {default}{where}"


def config_to_toml(cfg: Mapping[str, Mapping[str, Any]], *, comments: bool = True, header: str | None = None) -> str:
    """TOML text of a config (``{section: {key: value}}``, any subset of the schema).

    Keys set to ``None`` are written commented out. With ``comments`` each key gets a line with its meaning,
    unit, default and command-line option. The text parses back (:func:`load_config`) to the same values.
    """
    keys = _keys()
    lines: list[str] = []
    if header:
        lines += [f"# {h}" if h else "#" for h in header.splitlines()]
        lines.append("")
    for section in SECTIONS:
        body = cfg.get(section)
        if not body:
            continue
        lines.append(f"[{section}]")
        if comments:
            lines.append(f"# {SECTIONS[section]}")
        for key in keys[section].values():
            if key.name not in body:
                continue
            if comments:
                lines.append(_comment(key))
            v = body[key.name]
            lines.append(f"# {key.name} =" if v is None else f"{key.name} = {toml_value(v)}")
        lines.append("")
    unknown = [s for s in cfg if s not in keys]
    if unknown:
        raise ParameterError(f"unknown config section(s): {', '.join(unknown)}")
    return "\n".join(lines)


def dump_config() -> str:
    """The default config as TOML text, a comment per key (meaning, unit, default, option); unset keys are
    written commented out. Edit it and give it to ``--config``."""
    from ._version import __version__

    header = (f"stemgrains {__version__} config: every parameter of every stage, with its default.\n"
              "Use: stemgrains run INPUT --phase CIF -o OUTDIR --config THIS.toml (also index, calibrate, segment,\n"
              "classify, transport: each reads its sections). Options on the command line override this file.\n"
              "Keys written as '# key =' are unset; remove the '#' and give a value to set them.\n"
              "Each key: # meaning [unit]; default; the command-line option that overrides it.")
    return config_to_toml(default_config(), header=header)


# ------------------------------------------------------------------------------------------------ results files
def config_text(cfg: Mapping[str, Mapping[str, Any]], command: str, recorded: str | None = None,
                drop: tuple[str, ...] = ()) -> str:
    """TOML text of the part of ``cfg`` that ``command`` used, over the config ``recorded`` earlier in the same
    results file (TOML text, or ``None``) without its sections ``drop`` (stages whose results were removed);
    what :func:`write_config` writes. A recorded config of another version that does not parse is replaced."""
    import tomllib

    old: dict[str, Any] = {}
    if recorded is not None:
        try:
            old = parse_config(tomllib.loads(recorded))
        except (tomllib.TOMLDecodeError, ParameterError):
            old = {}  # a config of another version: replaced by what this command used
    old = {k: v for k, v in old.items() if k not in drop}
    return config_to_toml(merge_config(old, used_config(cfg, command)), comments=False,
                          header="effective config (stemgrains config --from RESULTS.h5 -o FILE.toml; --config RESULTS.h5)")


def write_config(f: Any, cfg: Mapping[str, Mapping[str, Any]], command: str, drop: tuple[str, ...] = ()) -> str:
    """Record the part of ``cfg`` that ``command`` used in an open results file (``/parameters`` attribute
    ``config``, TOML text), over the config an earlier command recorded there less its sections ``drop`` (the
    stages whose results this command removed); returns the text written."""
    grp = f.require_group("parameters")
    text = config_text(cfg, command, _text(grp.attrs["config"]) if "config" in grp.attrs else None, drop)
    grp.attrs["config"] = text
    return text


def _text(v: Any) -> str:
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


def read_config(path: str | os.PathLike) -> str | None:
    """The config TOML text recorded in a results file, or ``None``."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            grp = f.get("parameters")
            if grp is None or "config" not in grp.attrs:
                return None
            return _text(grp.attrs["config"])
    except OSError as err:
        raise FileFormatError(f"{path}: not a readable HDF5 results file ({err})") from None
