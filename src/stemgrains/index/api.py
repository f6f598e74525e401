"""Orientation mapping: ``index_orientations(dataset, phases) -> orix CrystalMap``.

Per scan chunk (a block of rows; memory is bounded by the chunk, never by the scan):

1. spots: direct-beam centre, local-background spot detection, calibrated rotation/flip/ellipticity → peak lists
   in the sample frame (:mod:`stemgrains.preprocess`);
2. prefilter: a rotation-invariant radial descriptor of each peak list against every template's (one matrix
   product); the ``n_prefilter`` best templates go on;
3. coarse search: for each candidate template, the correlation over all in-plane angles from a pair-angle
   histogram (1° bins + parabolic peak), keeping the two best angles per template;
4. refinement: the ``n_refine`` best distinct candidates are optimised over all three angles (Nelder–Mead on a
   rotation vector) against the full kinematic model (excitation errors with the Ewald sphere's curvature), so
   the result is not limited by the library step;
4b. neighbour pass: grains are spatially coherent, so each pixel also tries the solutions of its 8 neighbours
   (within the chunk) and keeps one, refined, where it explains the pixel's own image better (a higher image
   score; no neighbour is trusted blindly). This rescues the pixels whose own search missed the solution: sparse
   patterns of Na-β″ grains with c ⟂ beam, where the rotation-invariant prefilter ranks the right template low;
5. quality: correlation index (0–1, a normalised cross-correlation of the Gaussian-blurred spot images),
   reliability R = 100·(1 − Q2/Q1) with Q2 the best solution more than ``reliability_distance_deg`` from the best
   (Laue symmetry), scaled down where the solution leaves detected spots unexplained (``reliability_fit_range``),
   the ``n_best`` distinct candidates, phase reliability between phases, and not-indexed pixels
   (fewer than ``min_peaks`` spots: vacuum, amorphous; or correlation below ``min_correlation``).

The 180° ambiguity. A kinematic spot pattern is centrosymmetric up to the Ewald sphere's curvature, so O and
O ∘ Rz(180°) (a 180° turn about the beam, which flips the sign of c_z of a trigonal grain relative to its
in-plane c components) give nearly the same pattern. The coarse search keeps the two best in-plane angles per
template, so the twin is always among the candidates, and the refinement, which models the curvature, decides
between them; where it cannot (thin, weak patterns), Q2 ≈ Q1 and the reliability is low, which flags the pixel.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from orix.crystal_map import CrystalMap, Phase, PhaseList
from orix.quaternion import Rotation

from .. import config
from .._version import __version__
from ..crystal import coerce_phases
from ..crystal.symmetry import disorientation_angle
from .._relrod import refine_choice_text
from .._chunks import ChunkCheckpoint, row_chunks, run_chunks, run_key, with_kernel_lock
from ..data import Dataset4D
from ..errors import InputError, ParameterError
from ..library.templates import HARMONICS, TemplateLibrary, build_library
from ..preprocess.api import SpotParams, detect_spots, processed_images
from . import _cpu

__all__ = ["IndexParams", "index_orientations", "index_patterns", "ChunkResult"]


@dataclass(frozen=True)
class IndexParams:
    """All indexing parameters (written into every results file).

    Attributes
    ----------
    step_deg : library angular step, degrees.
    k_max : largest scattering vector used, 1/Å; None (default): what the detector reaches in every direction
        (:func:`stemgrains.preprocess.detector_q_reach`), at most ``config.K_MAX_CAP``. Spots are detected out to
        the same radius.
    excitation_error_sigma : relrod width σ_s of the kinematic model (≈ 1/thickness), 1/Å. None (default):
        :func:`index_orientations` chooses it from the data among ``config.SIGMA_CANDIDATES``
        (:func:`estimate_excitation_error_sigma`) for scans of at least ``config.SIGMA_MIN_PATTERNS`` patterns;
        elsewhere (smaller scans, stacks of patterns, the calibration fit) ``config.EXCITATION_ERROR_SIGMA``.
    refine_excitation_error_sigma : relrod width (1/Å) of a final refinement of each solution (after the search,
        the choice among hypotheses and the neighbour pass, which use ``excitation_error_sigma``); moves larger than
        ``config.REFINE_SIGMA_MAX_MOVE_DEG`` are not taken. None (default): :func:`index_orientations` chooses it
        from the data (:func:`choose_refine_sigma`) for scans of at least ``config.SIGMA_MIN_PATTERNS`` patterns;
        elsewhere ``excitation_error_sigma`` (no final refinement). One width for the whole scan, from
        ``config.EXCITATION_ERROR_SIGMA_MIN``; wider than a set ``excitation_error_sigma`` raises ParameterError
        here; wider than the σ_s :func:`index_orientations` finds (chosen from the data, the default or the
        libraries'), it is not applied (no final refinement; its source says so).
    final_refinement : False: no final refinement (a set ``refine_excitation_error_sigma`` with it raises
        ParameterError here).
    sigma_coarse : spot-match width of the coarse search, 1/Å.
    n_prefilter : templates passed from the prefilter to the coarse search.
    n_angles : in-plane angle bins of the coarse search.
    n_candidates : distinct coarse candidates scored on the processed image.
    candidate_separation_deg : candidates closer than this (Laue symmetry) count as one, degrees; keeps the
        candidates spread over different hypotheses instead of neighbouring templates of one solution
        (default: half the library step).
    n_refine : candidates refined per pattern.
    n_best : candidates kept per pattern.
    reliability_distance_deg : Q2 is the best solution at least this far from the best (Laue symmetry).
    min_peaks : fewer spots → not indexed.
    min_correlation : lower correlation index → not indexed.
    fit_excitation_window : spots with ``|excitation error|`` up to this (1/Å) count as predicted in the spot fit
        (generous: dynamical patterns of 20–60 nm lamellae show spots well off the kinematic relrod).
    fit_tolerance, fit_tolerance_rel : a detected spot is explained by the solution when a predicted spot lies
        within ``fit_tolerance + fit_tolerance_rel·|q|`` (1/Å) of it; the relative part absorbs calibration errors of
        a few %.
    reliability_fit_range : ``(lo, hi)``: the reliability is multiplied by ``clip((b − lo)/(hi − lo), 0, 1)``, b the
        spot fit beyond chance ``(f − c)/(1 − c)`` (f = ``spot_fit_fraction``, c = ``spot_fit_chance``): a solution
        that leaves a quarter of the detected spots unexplained is not reliable however distinct it is (on multislice
        data such pixels were the confidently wrong ones). ``None`` keeps R as it is.
    fit_score_power : the final choice among a pattern's hypotheses (and its reliability) weighs each one's image
        score by ``((explained + 1)/(detected + 1)) ** fit_score_power`` (explained: detected spots within the fit
        tolerance of a predicted one); 0 ranks by the image score alone.
    pair_search : where the solution leaves detected spots unexplained, orientations proposed by pairs of detected
        spots matched to reflection pairs by length and angle (:mod:`._pairs`, intensity-free) join the
        hypotheses; they reach solutions the kinematic-intensity search misses on dynamical patterns.
    refine_max_eval, refine_xtol_deg : Nelder–Mead limits.
    neighbor_pass : after the search, each pixel also tries its 8 neighbours' solutions (within a chunk) and
        takes one, refined, where it explains the pixel's image better; repeated until nothing changes. Rescues
        pixels whose own search missed the solution (sparse edge-on patterns) without trusting any neighbour.
    grain_vote : after the whole map is indexed, a grain decides among its pixels' near-tied hypotheses
        (:mod:`._vote`): neighbouring pixels one of which holds the other's solution among its hypotheses scoring within
        ``config.GRAIN_VOTE_TIE`` of its best form a group; where one solution holds more than
        ``config.GRAIN_VOTE_MAJORITY`` (60 %) of a group, its
        pixels below the reliability cut (``config.GRAIN_VOTE_RELIABILITY``) that rank it so take it (reliability then 0:
        their own pattern does not decide; prop ``grain_vote`` 1). Resolves the beam twin and other alternatives a
        pattern alone cannot tell apart. Only :func:`index_orientations` (whole maps) applies it.
    search_stride : grain-coherent search: the full search runs on every ``search_stride``-th pixel of each scan
        row and column (within a chunk); the others take their neighbours' solutions where these, refined on
        their own pattern, explain it as well, and are searched in full where not (:func:`_verify_from_anchors`).
        1 searches every pixel.
    neighbor_average_radius : before spot detection, each pattern is summed with the patterns within this many scan
        px that look like it (:mod:`stemgrains.preprocess.averaging`: similarity-gated neighbour pattern averaging,
        after EBSD's NPA, Wright et al. 2015); 0 indexes every pattern alone. Only :func:`index_orientations`
        (whole scans) applies it.
    neighbor_min_similarity, neighbor_relative_similarity : the gate: a neighbour is summed when the dot product
        ``c`` of the two patterns' features is ≥ ``max(neighbor_min_similarity, neighbor_relative_similarity·c_max)``.
    chunk_rows : scan rows per chunk (memory; GPU batch size), rounded up to whole blocks of
        ``config.COHERENT_BLOCK_ROWS`` = 8 rows (:func:`coherence_blocks`): the map does not depend on it.
    """

    step_deg: float = config.LIBRARY_STEP_DEG
    k_max: float | None = None
    excitation_error_sigma: float | None = None
    refine_excitation_error_sigma: float | None = None
    final_refinement: bool = True
    sigma_coarse: float = 0.02
    n_prefilter: int = config.N_PREFILTER
    n_angles: int = 360
    n_candidates: int = 50
    candidate_separation_deg: float | None = None
    n_refine: int = 3
    n_best: int = config.N_BEST
    reliability_distance_deg: float = config.RELIABILITY_MIN_DISTANCE_DEG
    min_peaks: int = 4
    min_correlation: float = 0.05
    reliability_fit_range: tuple[float, float] | None = config.RELIABILITY_FIT_RANGE
    refine_max_eval: int = 150
    refine_xtol_deg: float = 0.01
    fit_excitation_window: float = config.FIT_EXCITATION_WINDOW
    fit_tolerance: float = config.FIT_TOLERANCE
    fit_tolerance_rel: float = config.FIT_TOLERANCE_REL
    fit_score_power: float = config.FIT_SCORE_POWER
    pair_search: bool = True
    neighbor_pass: bool = True
    grain_vote: bool = True
    search_stride: int = config.SEARCH_STRIDE
    neighbor_average_radius: int = config.NEIGHBOR_AVERAGE_RADIUS
    neighbor_min_similarity: float = config.NEIGHBOR_MIN_SIMILARITY
    neighbor_relative_similarity: float = config.NEIGHBOR_RELATIVE_SIMILARITY
    chunk_rows: int = 8
    spots: SpotParams = field(default_factory=SpotParams)

    def __post_init__(self) -> None:
        if isinstance(self.spots, dict):
            try:
                object.__setattr__(self, "spots", SpotParams(**self.spots))
            except TypeError as err:
                raise ParameterError(f"spots: {err}") from None
        if not isinstance(self.spots, SpotParams):
            raise ParameterError(f"spots must be a SpotParams or a dict of its fields, got {self.spots!r}")

        def number(name: str) -> float:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not np.isfinite(v):
                raise ParameterError(f"{name} must be a finite number, got {v!r}")
            return float(v)

        if not 0.1 <= number("step_deg") <= 15:
            raise ParameterError(f"step_deg must be between 0.1 and 15 degrees, got {self.step_deg!r}")
        if self.k_max is not None and not 0 < number("k_max") <= config.K_MAX_LIMIT:
            raise ParameterError(f"k_max must be a number of 1/Å in (0, {config.K_MAX_LIMIT:g}] or None, got {self.k_max!r}")
        lo, hi = config.EXCITATION_ERROR_SIGMA_MIN, config.EXCITATION_ERROR_SIGMA_MAX
        if self.excitation_error_sigma is not None and not lo <= number("excitation_error_sigma") <= hi:
            raise ParameterError(f"excitation_error_sigma must be a relrod width in [{lo:g}, {hi:g}] "
                                 f"1/Å (≈ 1/thickness), got {self.excitation_error_sigma!r}")
        if not isinstance(self.final_refinement, (bool, np.bool_)):
            raise ParameterError(f"final_refinement must be true or false, got {self.final_refinement!r}")
        if self.refine_excitation_error_sigma is not None and not lo <= number("refine_excitation_error_sigma") <= hi:
            raise ParameterError(f"refine_excitation_error_sigma must be a relrod width in [{lo:g}, {hi:g}] 1/Å "
                                 f"(≈ 1/thickness), got {self.refine_excitation_error_sigma!r}")
        if not self.final_refinement and self.refine_excitation_error_sigma is not None:
            raise ParameterError("refine_excitation_error_sigma is set but final_refinement is off (false, "
                                 "--no-final-refinement): give one of them")
        if (self.refine_excitation_error_sigma is not None and self.excitation_error_sigma is not None
                and self.refine_excitation_error_sigma > self.excitation_error_sigma):
            raise ParameterError(
                f"refine_excitation_error_sigma {self.refine_excitation_error_sigma:g} 1/Å is wider than the search's "
                f"relrod width σ_s {self.excitation_error_sigma:g} 1/Å (set, or chosen from the data where unset: "
                "[index] excitation_error_sigma fixes it): the final refinement narrows the model (a wider one pulls "
                "the tilt off); give a width ≤ σ_s, or final_refinement = false to turn it off")
        for name in ("sigma_coarse", "reliability_distance_deg", "refine_xtol_deg", "fit_excitation_window", "fit_tolerance"):
            if not number(name) > 0:
                raise ParameterError(f"{name} must be a positive number, got {getattr(self, name)!r}")
        for name in ("n_prefilter", "n_angles", "n_candidates", "n_refine", "n_best", "min_peaks", "refine_max_eval", "chunk_rows", "search_stride"):
            v = getattr(self, name)
            ok = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and np.isfinite(v)
            if not (ok and int(v) == v and v >= 1):
                raise ParameterError(f"{name} must be a positive integer, got {v!r}")
            object.__setattr__(self, name, int(v))
        if self.candidate_separation_deg is not None and not number("candidate_separation_deg") > 0:
            raise ParameterError(f"candidate_separation_deg must be positive, got {self.candidate_separation_deg!r}")
        for name in ("neighbor_pass", "pair_search", "grain_vote"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ParameterError(f"{name} must be True or False, got {getattr(self, name)!r}")
            object.__setattr__(self, name, bool(getattr(self, name)))
        if not 0 <= number("fit_score_power") <= 10:
            raise ParameterError(f"fit_score_power must be between 0 and 10, got {self.fit_score_power!r}")
        if not number("fit_tolerance_rel") >= 0:
            raise ParameterError(f"fit_tolerance_rel must be >= 0, got {self.fit_tolerance_rel!r}")
        if not 0 <= number("min_correlation") < 1:
            raise ParameterError(f"min_correlation must be in [0, 1), got {self.min_correlation!r}")
        if self.reliability_fit_range is not None:
            try:
                lo, hi = (float(x) for x in self.reliability_fit_range)
            except (TypeError, ValueError):
                raise ParameterError(f"reliability_fit_range must be (lo, hi) or None, got {self.reliability_fit_range!r}") from None
            if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
                raise ParameterError(f"reliability_fit_range must be finite with lo < hi, got {self.reliability_fit_range!r}")
            object.__setattr__(self, "reliability_fit_range", (lo, hi))
        v = self.neighbor_average_radius
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not np.isfinite(v) \
                or int(v) != v or v < 0:
            raise ParameterError(f"neighbor_average_radius must be an integer >= 0 (scan px), got {v!r}")
        if v > config.NEIGHBOR_AVERAGE_RADIUS_MAX:
            raise ParameterError(f"neighbor_average_radius must be at most {config.NEIGHBOR_AVERAGE_RADIUS_MAX} scan px, "
                                 f"got {v!r}")
        object.__setattr__(self, "neighbor_average_radius", int(v))
        if not -1 <= number("neighbor_min_similarity") <= 1:
            raise ParameterError(f"neighbor_min_similarity must be in [-1, 1], got {self.neighbor_min_similarity!r}")
        if not 0 <= number("neighbor_relative_similarity") <= 1:
            raise ParameterError(
                f"neighbor_relative_similarity must be in [0, 1], got {self.neighbor_relative_similarity!r}")

    def resolved(self, calibration, detector_shape: tuple[int, int]) -> "IndexParams":
        """These parameters with ``k_max`` fixed for a detector (see ``k_max``) and an unset
        ``excitation_error_sigma`` set to ``config.EXCITATION_ERROR_SIGMA`` (an unset ``refine_excitation_error_sigma``,
        or one wider than that, to ``excitation_error_sigma``: no final refinement)."""
        out = self
        if out.excitation_error_sigma is None:
            out = _with_sigma(out, config.EXCITATION_ERROR_SIGMA)
        if out.refine_excitation_error_sigma is None and out.final_refinement:
            out = replace(out, refine_excitation_error_sigma=out.excitation_error_sigma)
        if out.k_max is not None:
            return out
        from ..preprocess.api import detector_q_reach

        return replace(out, k_max=min(detector_q_reach(calibration, detector_shape), config.K_MAX_CAP))

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["spots"] = self.spots.as_dict()
        return d


@dataclass
class ChunkResult:
    """Indexing results of a block of patterns (flattened)."""

    quaternions: np.ndarray  # (n, 4)
    phase_id: np.ndarray  # (n,) int, -1 = not indexed
    correlation_index: np.ndarray
    reliability: np.ndarray
    phase_reliability: np.ndarray
    n_peaks: np.ndarray
    centers: np.ndarray  # (n, 2)
    candidate_quaternions: np.ndarray  # (n, n_best, 4)
    candidate_scores: np.ndarray  # (n, n_best)
    spot_fit_fraction: np.ndarray  # (n,) detected spots explained by the solution / detected spots
    spot_fit_residual: np.ndarray  # (n,) RMS distance of the explained spots to the predicted ones, 1/Å
    twin_reliability: np.ndarray  # (n,) 100 (1 − Q_twin/Q1) against the beam twin O ∘ Rz(180°)
    c_axis_reliability: np.ndarray  # (n,) R over the hypotheses whose c axis differs (NaN for cubic phases)
    spot_fit_chance: np.ndarray  # (n,) fraction of randomly placed spots the solution would explain (chance level)
    spot_fit_n_peaks: np.ndarray  # (n,) the spots the spot fit counts: those above the detection threshold n_sigma
    model_spread_deg: np.ndarray  # (n,) largest move when refined at the other relrod widths (model_spread), degrees
    bad_values: np.ndarray  # (n,) int8 bit flags of the pattern as read: 1 non-finite values (read as 0), 2 negative

    FIELDS = (
        "quaternions", "phase_id", "correlation_index", "reliability", "phase_reliability", "n_peaks", "centers",
        "candidate_quaternions", "candidate_scores", "spot_fit_fraction", "spot_fit_residual", "twin_reliability",
        "c_axis_reliability", "spot_fit_chance", "spot_fit_n_peaks", "model_spread_deg", "bad_values",
    )

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in self.FIELDS}


class PhaseSearch(NamedTuple):
    """The search of one phase over a chunk (:func:`._cpu.index_chunk`): best orientation ``(n, 4)``, its score
    ``(n,)`` and reliability ``(n,)``, and the distinct candidates ``(n, n_best, 4)`` with their scores."""

    quaternions: np.ndarray
    score: np.ndarray
    reliability: np.ndarray
    candidate_quaternions: np.ndarray
    candidate_scores: np.ndarray


class PhaseFit(NamedTuple):
    """The settled solution of one phase over a chunk (:func:`._cpu.rescore_chunk`): orientation ``(n, 4)``,
    Q = image score (:func:`._cpu.image_score`), correlation index, spots explained, fit residual,
    reliability R and beam-twin reliability (percent), the hypotheses ``(n, n_best, 4)`` with their Q, the
    c-axis reliability R_c (percent; NaN for cubic phases) and, where the hypotheses kept do not hold it, the best
    hypothesis whose c axis differs from the solution's ``(n, 4)``, zeros elsewhere (:func:`._cpu.c_rival_past`)."""

    quaternions: np.ndarray
    quality: np.ndarray
    correlation_index: np.ndarray
    n_explained: np.ndarray
    residual: np.ndarray
    reliability: np.ndarray
    twin_reliability: np.ndarray
    hypothesis_quaternions: np.ndarray
    hypothesis_quality: np.ndarray
    c_axis_reliability: np.ndarray
    c_rival_quaternions: np.ndarray


def require_backend(backend: str) -> None:
    """Check that ``backend`` can run here, before any work: ``"cpu"`` always; ``"gpu"`` imports the CUDA kernels
    (:mod:`._gpu`), which raises a one-line :class:`~stemgrains.errors.StemgrainsError` without a CUDA device.
    Raises :class:`~stemgrains.errors.ParameterError` for another name."""
    if backend == "gpu":
        from . import _gpu  # noqa: F401
    elif backend != "cpu":
        raise ParameterError(f"backend must be 'cpu' or 'gpu', got {backend!r}")


def _spots_as_indexed(params: IndexParams) -> SpotParams:
    """The spot parameters the indexing detects with: spots out to ``k_max`` (or ``spots.q_max`` where smaller)."""
    return replace(params.spots, q_max=params.k_max if params.spots.q_max is None else min(params.spots.q_max, params.k_max))


def index_patterns(
    patterns: np.ndarray, calibration, libraries: list[TemplateLibrary], params: IndexParams, backend: str = "cpu",
    scan_shape: tuple[int, int] | None = None,
) -> ChunkResult:
    """Index a stack of patterns ``(n, ky, kx)`` against one library per phase (the core used per chunk).

    Spot detection and the prefilter run on the CPU; ``backend="gpu"`` runs the matching and refinement with the
    numba.cuda kernels of :mod:`._gpu` (same inputs and outputs as :func:`._cpu.index_chunk`). With
    ``scan_shape = (rows, cols)`` (the patterns' grid, row-major) and ``params.neighbor_pass``, the neighbour pass
    (:func:`._cpu.neighbor_pass`) follows."""
    if backend == "gpu":
        from . import _gpu

        index_chunk = _gpu.index_chunk_gpu
    elif backend == "cpu":
        index_chunk = _cpu.index_chunk
    else:
        raise ParameterError(f"backend must be 'cpu' or 'gpu', got {backend!r}")
    params = params.resolved(calibration, np.shape(patterns)[-2:])
    patterns, bad_values = _finite_counts(patterns)
    return _index_inputs(_search_inputs(patterns, calibration, _spots_as_indexed(params)), bad_values, libraries,
                         params, index_chunk, scan_shape)


def _index_inputs(ctx: "_SearchInputs", bad_values: np.ndarray, libraries: list[TemplateLibrary], params: IndexParams,
                  index_chunk: Any, scan_shape: tuple[int, int] | None = None, spread: bool = True) -> ChunkResult:
    """:func:`index_patterns` from the patterns' detected spots and processed images ``ctx``
    (:func:`_search_inputs`) and bad-value flags (``params`` resolved; ``index_chunk`` the backend's kernel);
    ``spread=False`` leaves the model spread NaN (a subsample that only chooses a parameter needs none)."""
    peaks, counts, imgs, centers, affine, lam, q_min, fit_counts = ctx
    n = len(counts)
    n_ph = len(libraries)
    ok = counts >= params.min_peaks
    stride = params.search_stride if scan_shape is not None and n > 1 else 1
    if stride > 1:
        if int(np.prod(scan_shape)) != n:
            raise ParameterError(f"scan_shape {scan_shape} does not hold the {n} patterns")
        anchors = np.concatenate([_search_grid((r1 - r0, scan_shape[1]), stride)
                                  for r0, r1 in coherence_blocks(scan_shape[0])]) | ~ok
    else:
        anchors = np.ones(n, bool)
    # Final choice per phase among the search's distinct hypotheses and the pseudo-symmetric alternatives of its
    # solution, by the image score Q; reliability from Q. Then each pattern takes the phase with the highest Q.
    resc = _full_search(np.flatnonzero(anchors), ctx, libraries, params, index_chunk)
    if stride > 1:
        todo = _verify_from_anchors(anchors & ok, ~anchors & ok, resc, scan_shape, stride, ctx, libraries, params)
        if todo.any():
            for r, r_t in zip(resc, _full_search(np.flatnonzero(todo), ctx, libraries, params, index_chunk)):
                for arr, new in zip(r, r_t):
                    arr[todo] = new[todo]
    Q_all = np.stack([r.quality for r in resc])
    best = np.argmax(Q_all, axis=0)
    idx = np.arange(n)
    q, Q, ci, n_fit, resid, rel, rel_t, cq, cs, rel_c, _ = (np.stack(column)[best, idx] for column in zip(*resc))
    other = np.sort(Q_all, axis=0)[-2] if n_ph > 1 else np.zeros(n)
    phase_id = best.astype(np.int32)
    if params.neighbor_pass and scan_shape is not None and n > 1:
        if int(np.prod(scan_shape)) != n:
            raise ParameterError(f"scan_shape {scan_shape} does not hold the {n} patterns")
        pid_n, q_n = phase_id.copy(), q.copy()
        nx = scan_shape[1]
        for r0, r1 in coherence_blocks(scan_shape[0]):
            sl = slice(r0 * nx, r1 * nx)
            pid_n[sl], q_n[sl] = _neighbor_pass((r1 - r0, nx), phase_id[sl], q[sl], counts[sl], imgs[sl], centers[sl],
                                                affine, libraries, params, lam, q_min)
        moved = ok & ((pid_n != phase_id) | np.any(q_n != q, axis=1))
        # a neighbour's solution is kept only where it also has the higher Q, with the reliability recomputed over
        # the pattern's hypotheses in its (new) phase
        for k, lib in enumerate(libraries):
            m = moved & (pid_n == k)
            if not m.any():
                continue
            hyp = np.where((phase_id == k)[:, None, None], cq, resc[k].hypothesis_quaternions)
            r = _rescore(q_n, hyp, m, peaks, fit_counts, imgs, centers, affine, lib, params, lam, q_min)
            take = m & (r.quality > Q)
            for arr, new in zip((q, Q, ci, n_fit, resid, rel, rel_t, cq, cs, rel_c), r):
                arr[take] = new[take]
            if n_ph > 1:
                other[take] = np.where(pid_n[take] == phase_id[take], other[take], Q_all[phase_id[take], np.flatnonzero(take)])
            phase_id[take] = k
    moved = np.zeros(n, bool)
    if params.refine_excitation_error_sigma not in (None, params.excitation_error_sigma):
        q, _, moved = final_refinement(q, np.where(ok, phase_id, -1), ctx, libraries, params)
    if moved.any():
        ci[moved], n_fit[moved], resid[moved] = (v[moved] for v in _refit(q, np.where(moved, phase_id, -1), ctx, libraries, params))
    with np.errstate(divide="ignore", invalid="ignore"):
        prel = np.where(Q > 0, 100 * (1 - other / Q), 0.0) if n_ph > 1 else np.where(Q > 0, 100.0, 0.0)
        fit = np.where(fit_counts > 0, n_fit / np.maximum(fit_counts, 1), 0.0)
    bad = ~ok | (ci < params.min_correlation)
    phase_id[bad] = -1
    chance = np.zeros(n)
    for k, lib in enumerate(libraries):
        m = phase_id == k
        if m.any():
            chance[m] = _cpu.fit_chances(
                np.ascontiguousarray(q), m, np.ascontiguousarray(lib.refl.g), lam, params.fit_excitation_window, q_min,
                params.k_max, params.fit_tolerance, params.fit_tolerance_rel, 256,
            )[m]
    if params.reliability_fit_range is not None:
        lo, hi = params.reliability_fit_range
        beyond = (fit - chance) / np.maximum(1.0 - chance, 1e-12)
        rel = rel * np.clip((beyond - lo) / (hi - lo), 0.0, 1.0)
        rel_c = rel_c * np.clip((beyond - lo) / (hi - lo), 0.0, 1.0)
    few = fit_counts < params.min_peaks  # a solution resting on fewer spots above the threshold is not reliable
    rel[few] = 0.0
    rel_c[few & np.isfinite(rel_c)] = 0.0
    for arr in (fit, resid, rel, rel_t, rel_c):
        arr[bad] = 0.0
    spread_deg = model_spread(q, phase_id, ctx, libraries, params) if spread else np.full(n, np.nan)
    return ChunkResult(
        quaternions=q, phase_id=phase_id, correlation_index=ci, reliability=rel,
        phase_reliability=np.clip(prel, 0, 100), n_peaks=counts, centers=centers,
        candidate_quaternions=cq, candidate_scores=cs, spot_fit_fraction=fit, spot_fit_residual=resid,
        twin_reliability=rel_t, c_axis_reliability=rel_c, spot_fit_chance=chance, spot_fit_n_peaks=fit_counts,
        model_spread_deg=spread_deg, bad_values=bad_values,
    )


def _finite_counts(patterns: Any) -> tuple[Any, np.ndarray]:
    """The patterns ``(n, ky, kx)`` with non-finite values (NaN, ±inf) read as 0, and per pattern the bit flags
    1 (it held non-finite values) and 2 (negative values: counts are ≥ 0; the spot detection finds nothing in a
    pattern of negative values) as ``(n,)`` int8. One pass over the chunk; integer data is only checked for sign."""
    arr = np.asarray(patterns)
    flat = arr.reshape(len(arr), -1) if arr.ndim == 3 else arr.reshape(1, -1)
    flags = np.zeros(len(flat), np.int8)
    if arr.dtype.kind == "f":
        finite = np.isfinite(flat)
        bad = ~finite.all(axis=1)
        if bad.any():
            flags[bad] |= 1
            arr = np.where(finite.reshape(arr.shape), arr, 0).astype(arr.dtype, copy=False)
            flat = arr.reshape(flat.shape)
    if arr.dtype.kind in "fi":
        flags[(flat < 0).any(axis=1)] |= 2
    return arr, flags


def _bad_values_warning(source: Any, flags: np.ndarray) -> str | None:
    """``warning: INPUT: 1 of 16 patterns hold non-finite values ...``: one line on what :func:`_finite_counts`
    found in the patterns of an input, ``None`` where nothing."""
    n_nan, n_neg, n = int(np.sum(flags & 1 > 0)), int(np.sum(flags & 2 > 0)), len(flags)
    parts = ([f"{n_nan} of {n} patterns hold non-finite values (NaN or inf; indexed with them read as 0)"] if n_nan else []) + (
        [f"{n_neg} of {n} patterns hold negative values (the spot detection expects counts >= 0)"] if n_neg else [])
    return f"warning: {source}: {'; '.join(parts)}" if parts else None


def _search_inputs(patterns: np.ndarray, calibration: Any, sp: SpotParams) -> "_SearchInputs":
    """Detected spots and processed images of ``patterns`` (m, ky, kx), as :func:`index_patterns` makes them."""
    peaks, counts, centers, fit_counts = detect_spots(patterns, calibration, sp, with_strong_counts=True)
    return _SearchInputs(peaks, counts, processed_images(patterns, calibration, centers, sp), centers,
                         np.ascontiguousarray(calibration._affine()), calibration.wavelength,
                         sp.resolved_q_min(calibration), fit_counts)


class _SearchInputs(NamedTuple):
    """One chunk's detected spots and processed images, as the kernels take them."""

    peaks: np.ndarray  # (n, p, 3)
    counts: np.ndarray  # (n,)
    imgs: np.ndarray  # (n, ky, kx)
    centers: np.ndarray  # (n, 2)
    affine: np.ndarray  # (2, 2)
    lam: float  # wavelength, Å
    q_min: float  # 1/Å
    fit_counts: np.ndarray  # (n,) the spots above the detection threshold (the first rows of peaks): the spot fit's

    def take(self, sel: np.ndarray) -> "_SearchInputs":
        return self._replace(peaks=self.peaks[sel], counts=self.counts[sel], imgs=self.imgs[sel], centers=self.centers[sel],
                             fit_counts=self.fit_counts[sel])


def final_refinement(quats: np.ndarray, phase_id: np.ndarray, ctx: "_SearchInputs", libraries: list[TemplateLibrary],
                     params: IndexParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each solution ``quats`` (n, 4) of phase ``phase_id[i] ≥ 0`` refined once more on its processed image, by
    Nelder–Mead on the image score (:func:`._cpu.refine_chunk`) with the relrod width
    ``params.refine_excitation_error_sigma`` instead of the search's ``excitation_error_sigma``; a refinement that
    moves a solution more than ``config.REFINE_SIGMA_MAX_MOVE_DEG`` is not taken.

    Returns ``(quats, score, moved)``: the orientations (n, 4), each one's image score at the refinement's width
    (0 where not refined) and where a refined orientation was taken (n,) bool."""
    q = np.array(quats, dtype=np.float64, copy=True)
    score = np.zeros(len(q))
    moved = np.zeros(len(q), bool)
    limit = np.deg2rad(config.REFINE_SIGMA_MAX_MOVE_DEG)
    for k, lib in enumerate(libraries):
        m = phase_id == k
        if not m.any():
            continue
        qk, sk = _refined_at(q, m, ctx, lib, params, params.refine_excitation_error_sigma)
        take = np.zeros(len(q), bool)
        take[m] = disorientation_angle(qk[m], q[m], lib.symmetry_quaternions) <= limit
        q[take], score[m], moved[take] = qk[take], sk[m], True
    return q, score, moved


def _refined_at(q: np.ndarray, mask: np.ndarray, ctx: "_SearchInputs", lib: TemplateLibrary, params: IndexParams,
                sigma: float, xtol_deg: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`._cpu.refine_chunk` of the rows ``mask`` of ``q`` (n, 4) at relrod width ``sigma`` (1/Å), first step
    ``config.REFINE_SIGMA_STEP_DEG``, stopping at a simplex of ``xtol_deg`` degrees (default
    ``params.refine_xtol_deg``). Returns (orientations (n, 4), image scores (n,))."""
    return _cpu.refine_chunk(
        np.ascontiguousarray(q, dtype=np.float64), mask, ctx.imgs, ctx.centers, ctx.affine,
        np.ascontiguousarray(lib.refl.g), np.ascontiguousarray(lib.refl.intensity), ctx.lam, sigma, ctx.q_min,
        params.k_max, float(lib.params["intensity_power"]), np.deg2rad(config.REFINE_SIGMA_STEP_DEG),
        params.refine_max_eval, np.deg2rad(params.refine_xtol_deg if xtol_deg is None else xtol_deg))


def model_spread(quats: np.ndarray, phase_id: np.ndarray, ctx: "_SearchInputs", libraries: list[TemplateLibrary],
                 params: IndexParams) -> np.ndarray:
    """How far each solution ``quats`` (n, 4) of phase ``phase_id[i] ≥ 0`` moves when refined again on its
    processed image (:func:`_refined_at`) with each relrod width of ``config.MODEL_SPREAD_SIGMAS`` (1/Å) other
    than the one it was last refined at: the largest disorientation (degrees, Laue symmetry; NaN where
    ``phase_id < 0``). The kinematic model's relrod width stands for the physics a pattern's intensities follow
    (thickness, dynamical scattering); where the spots fix the orientation the widths agree within about a degree
    (0.1–1.1° on noise-free patterns of our simulator), where only the intensities fix its tilt (few spots, off a
    zone axis) they can part by several. How much the orientation depends on a model parameter the data do not fix,
    whatever R says about competing solutions; it runs on the CPU for either backend. Its refinements stop at a
    simplex of ``config.MODEL_SPREAD_XTOL_DEG`` (0.05°; the search's ``refine_xtol_deg`` where that is coarser):
    the spread is read in degrees. Returns (n,)."""
    spread = np.full(len(quats), np.nan)
    last = params.refine_excitation_error_sigma or params.excitation_error_sigma
    xtol = max(params.refine_xtol_deg, config.MODEL_SPREAD_XTOL_DEG)
    for k, lib in enumerate(libraries):
        m = phase_id == k
        if not m.any():
            continue
        spread[m] = 0.0
        for sigma in config.MODEL_SPREAD_SIGMAS:
            if last is not None and abs(sigma - last) <= 1e-9:
                continue
            qk, _ = _refined_at(quats, m, ctx, lib, params, sigma, xtol)
            spread[m] = np.maximum(spread[m], np.rad2deg(disorientation_angle(qk[m], quats[m], lib.symmetry_quaternions)))
    return spread


def _refit(q: np.ndarray, phase_id: np.ndarray, ctx: "_SearchInputs", libraries: list[TemplateLibrary],
           params: IndexParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Correlation index, explained spots and spot residual (each (n,)) of ``q`` where ``phase_id ≥ 0``, as the
    search computes them (:func:`._cpu.solution_qualities` at the search's relrod width)."""
    ci, n_fit, resid = np.zeros(len(q)), np.zeros(len(q)), np.zeros(len(q))
    for k, lib in enumerate(libraries):
        m = phase_id == k
        if m.any():
            c, f, r = _cpu.solution_qualities(
                np.ascontiguousarray(q), m, ctx.peaks, ctx.fit_counts, ctx.imgs, ctx.centers, ctx.affine,
                np.ascontiguousarray(lib.refl.g), np.ascontiguousarray(lib.refl.intensity), ctx.lam,
                params.excitation_error_sigma, params.fit_excitation_window, ctx.q_min, params.k_max,
                float(lib.params["intensity_power"]), params.fit_tolerance, params.fit_tolerance_rel)
            ci[m], n_fit[m], resid[m] = c[m], f[m], r[m]
    return ci, n_fit, resid


def _full_search(sel, ctx: _SearchInputs, libraries, params: IndexParams, index_chunk) -> list[PhaseFit]:
    """The full search (prefilter → coarse search → candidates → refinement → :func:`_rescore`) of the patterns
    ``sel`` (indices), per phase. Returns per phase a :class:`PhaseFit` of full length; rows outside ``sel`` are
    zero."""
    n = len(ctx.counts)
    sub = ctx.take(sel)
    ok = sub.counts >= params.min_peaks
    out = []
    for lib in libraries:
        harmonics = np.asarray(HARMONICS, dtype=np.float64)
        n_bins = lib.radial.shape[1] // len(harmonics)
        desc = _cpu.peak_radial_descriptors(sub.peaks, sub.counts, float(lib.params["radial_bin_width"]), n_bins, harmonics)
        k = min(params.n_prefilter, lib.n_templates)
        scores = desc @ lib.radial.T  # (n, T) BLAS
        if k < lib.n_templates:
            cands = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        else:
            # a writeable copy (a broadcast view of one row is contiguous but read-only: another kernel signature)
            cands = np.tile(np.arange(lib.n_templates, dtype=np.int64), (len(sel), 1))
        cands = np.ascontiguousarray(cands, dtype=np.int64)
        if config.QUICK_KEEP < cands.shape[1]:
            off_s, r_s, t_s, w_s, norm_s = _strongest_spots(lib, config.QUICK_SPOTS)
            cands = _cpu.quick_candidates(sub.peaks, sub.counts, cands, off_s, r_s, t_s, w_s, norm_s, params.sigma_coarse,
                                          params.n_angles, config.QUICK_PEAKS, config.QUICK_KEEP, params.min_peaks)
        inputs = _cpu.ChunkInputs(
            peaks=sub.peaks, counts=sub.counts, imgs=sub.imgs, centers=sub.centers, affine=sub.affine, cands=cands,
            base_q=lib.base_quaternions, offsets=lib.offsets, sp_r=lib.spot_r, sp_t=lib.spot_theta, sp_w=lib.spot_w,
            sp_norm=lib.spot_norm, sym=lib.symmetry_quaternions, g_c=np.ascontiguousarray(lib.refl.g),
            F2=np.ascontiguousarray(lib.refl.intensity), lam=sub.lam, sigma_s=params.excitation_error_sigma,
            sigma_coarse=params.sigma_coarse, q_min=sub.q_min, q_max=params.k_max, power=float(lib.params["intensity_power"]),
            n_bins=params.n_angles, per_template=2, n_keep=params.n_candidates, n_refine=params.n_refine,
            n_best=params.n_best, rel_dist=np.deg2rad(params.reliability_distance_deg),
            distinct_dist=np.deg2rad(params.candidate_separation_deg or 0.5 * lib.params["step_deg"]),
            init_step=np.deg2rad(0.5 * lib.params["step_deg"]), max_eval=params.refine_max_eval,
            xtol=np.deg2rad(params.refine_xtol_deg), min_peaks=params.min_peaks,
        )
        res = PhaseSearch(*index_chunk(*inputs))
        r = _rescore(res.quaternions, res.candidate_quaternions, ok, sub.peaks, sub.fit_counts, sub.imgs, sub.centers, sub.affine,
                     lib, params, sub.lam, sub.q_min)
        if params.pair_search:
            _pair_search(r, res, ok, sub, lib, params)
        full = []
        for a in r:
            f = np.zeros((n,) + a.shape[1:], dtype=a.dtype)
            f[sel] = a
            full.append(f)
        out.append(PhaseFit(*full))
    return out


def _strongest_spots(lib: TemplateLibrary, k: int) -> tuple[np.ndarray, ...]:
    """Each template's ``k`` strongest spots (by weight), sorted by radius, as the library's CSR arrays
    ``(offsets, r, theta, w, norm)`` (norm = ‖w‖ of the subset): the quick stage's templates
    (:func:`._cpu.quick_candidates`). Made once per library."""
    def make() -> tuple[np.ndarray, ...]:
        off = lib.offsets
        n_t = len(off) - 1
        keep = np.zeros(off[-1], bool)
        for t in range(n_t):
            w = lib.spot_w[off[t]:off[t + 1]]
            keep[off[t] + np.argsort(-w, kind="stable")[:k]] = True  # spots stay in their (radius) order
        tid = np.repeat(np.arange(n_t), np.diff(off))[keep]
        per = np.bincount(tid, minlength=n_t)
        w = lib.spot_w[keep]
        norm = np.sqrt(np.bincount(tid, weights=w * w, minlength=n_t))
        return (np.concatenate([[0], np.cumsum(per)]).astype(np.int64), np.ascontiguousarray(lib.spot_r[keep]),
                np.ascontiguousarray(lib.spot_theta[keep]), np.ascontiguousarray(w), norm)

    return _per_library(lib, ("strongest_spots", k), make)


def _per_library(lib: TemplateLibrary, key: Any, make: Any) -> Any:
    """``make()``, once per library (kept on the library object under ``key``): tables derived from the library
    alone, made at its first use in a process instead of once per chunk."""
    cache = lib.__dict__.setdefault("_derived", {})
    if key not in cache:
        cache[key] = make()
    return cache[key]


def _pair_search(r: PhaseFit, res, ok: np.ndarray, sub: _SearchInputs, lib: TemplateLibrary, params: IndexParams) -> None:
    """Where the settled solution ``r`` leaves detected spots unexplained, settle again with the spot-pair
    hypotheses (:func:`._pairs.pair_hypotheses`; each also refined on the image) added to the search's. Updates
    ``r`` in place for those patterns."""
    from . import _pairs

    need = ok & (sub.fit_counts - r.n_explained >= config.PAIR_MIN_UNEXPLAINED)
    if not need.any():
        return
    rel = config.PAIR_MIN_RELATIVE_INTENSITY
    g, length, rep = _per_library(lib, ("pair_tables", rel),
                                  lambda: _pairs.pair_tables(lib.refl.g, lib.refl.intensity, lib.symmetry_quaternions, rel))
    g_c, F2 = np.ascontiguousarray(lib.refl.g), np.ascontiguousarray(lib.refl.intensity)
    pq, pc = _pairs.pair_hypotheses(
        need, sub.peaks, sub.counts, g, length, rep, g_c, sub.lam, params.fit_excitation_window, sub.q_min, params.k_max,
        params.fit_tolerance, params.fit_tolerance_rel, config.PAIR_SPOTS, config.PAIR_HYPOTHESES,
        lib.symmetry_quaternions, np.deg2rad(2.0), config.PAIR_REFINE_ITERATIONS, config.PAIR_VOTED,
    )
    step = np.deg2rad(lib.params["step_deg"])
    refined = []
    for k in range(pq.shape[1]):
        mk = need & (pc[:, k] >= 0)
        qk, _ = _cpu.refine_chunk(np.ascontiguousarray(pq[:, k]), mk, sub.imgs, sub.centers, sub.affine, g_c, F2, sub.lam,
                                  params.excitation_error_sigma, sub.q_min, params.k_max, float(lib.params["intensity_power"]),
                                  0.5 * step, params.refine_max_eval, np.deg2rad(params.refine_xtol_deg))
        refined.append(np.where(mk[:, None], qk, 0.0))
    hyp = _compact_hypotheses(np.concatenate([res.candidate_quaternions, pq, np.stack(refined, axis=1)], axis=1))
    r2 = _rescore(r.quaternions, hyp, need, sub.peaks, sub.fit_counts, sub.imgs, sub.centers, sub.affine, lib, params, sub.lam,
                  sub.q_min)
    for arr, new in zip(r, r2):
        arr[need] = new[need]


def coherence_blocks(rows: int, block_rows: int | None = None) -> list[tuple[int, int]]:
    """The blocks of scan rows, ``[(r0, r1), ...]`` of ``config.COHERENT_BLOCK_ROWS`` rows (the last may be
    shorter), inside which the grain-coherent search and the neighbour pass work. They do not depend on the
    chunking (chunks are whole blocks), so neither does the map: any ``chunk_rows`` gives the same result."""
    b = int(block_rows or config.COHERENT_BLOCK_ROWS)
    return [(r0, min(r0 + b, rows)) for r0 in range(0, rows, b)]


def _search_grid(scan_shape: tuple[int, int], stride: int) -> np.ndarray:
    """Anchor pixels of the grain-coherent search, (rows·cols,) bool: every ``stride``-th row and column (offset
    ``stride // 2``) plus the last row and column when the grid leaves them more than ``stride // 2`` away, so
    every pixel has an anchor within ``stride // 2`` pixels in each direction."""
    def axis(m: int) -> np.ndarray:
        a = np.zeros(m, bool)
        a[min(stride // 2, m - 1)::stride] = True
        last = np.flatnonzero(a)[-1]
        if m - 1 - last > stride // 2:
            a[m - 1] = True
        return a

    ny, nx = scan_shape
    return (axis(ny)[:, None] & axis(nx)[None, :]).reshape(-1)


def _verify_from_anchors(anchors, targets, resc, scan_shape, stride, ctx: _SearchInputs, libraries, params: IndexParams) -> np.ndarray:
    """The grain-coherent step: each target pixel takes a solution of the anchors around it, verified.

    Anchors are the pixels searched in full (``resc`` holds their per-phase results); a target's anchors are
    those within ``stride - 1`` pixels (Chebyshev). Per phase, the target starts from the nearest anchor's
    solution where all its anchors agree on it (within ``max(2°, 2 × library step)``), else from the anchor
    solution that scores best on its own image (:func:`._cpu.image_scores`); the start is refined there
    (:func:`._cpu.refine_chunk`), and the target is settled with :func:`_rescore` among it, the other anchors'
    solutions and the distinct hypotheses of the anchor it started from (with the rival that anchor's R_c was
    measured against, :attr:`PhaseFit.c_rival_quaternions`), so its reliability is measured against the
    alternatives a full search found next to it (pseudo-symmetric alternatives the anchor already refined
    are scored as the anchor refined them, not refined again). The
    result is kept when at least one anchor holds the same solution (same phase, within ``max(2°, 2 × library
    step)``) and the target's correlation index and explained-spot fraction are both at least
    ``config.COHERENT_VERIFY_FRACTION`` of the lowest among those anchors: a pixel of a grain no anchor saw
    explains its pattern worse than the anchors explain theirs and is searched in full, as are targets with no
    anchor near. Fills ``resc`` in place for the kept targets and returns the mask of targets still to be searched.
    """
    ny, nx = scan_shape
    n = ny * nx
    idx = np.arange(n)
    Q_all = np.stack([r.quality for r in resc])
    best = np.argmax(Q_all, axis=0)
    q_b = np.stack([r.quaternions for r in resc])[best, idx]
    ci_b = np.stack([r.correlation_index for r in resc])[best, idx]
    fit_b = np.stack([r.n_explained for r in resc])[best, idx] / np.maximum(ctx.fit_counts, 1)
    src = anchors & (ci_b >= params.min_correlation)
    reach = stride - 1
    todo = targets.copy()
    a_idx = np.flatnonzero(src)
    tg = np.flatnonzero(targets)
    if not len(a_idx) or not len(tg):
        return todo
    t, nb_t = anchor_neighbours(scan_shape, tg, a_idx, reach, block_rows=config.COHERENT_BLOCK_ROWS)
    if not len(t):
        return todo
    mask = np.zeros(n, bool)
    mask[t] = True
    has_t = nb_t >= 0
    safe = np.maximum(nb_t, 0)
    tol = np.deg2rad(max(2.0, 2.0 * max(lib.params["step_deg"] for lib in libraries)))
    per_phase = []
    for k, lib in enumerate(libraries):
        g_c, F2 = np.ascontiguousarray(lib.refl.g), np.ascontiguousarray(lib.refl.intensity)
        power = float(lib.params["intensity_power"])
        # start: the nearest anchor's solution where the anchors agree on it (all within tol), else the anchor
        # solution that scores best on the target's image; refined there
        starts = np.zeros((n, nb_t.shape[1], 4))
        starts[t] = np.where(has_t[:, :, None], resc[k].quaternions[safe], 0.0)
        differs = np.zeros(len(t), bool)
        for c in range(1, nb_t.shape[1]):
            m = has_t[:, c]
            differs[m] |= disorientation_angle(starts[t[m], c], starts[t[m], 0], lib.symmetry_quaternions) > tol
        score = np.full(starts.shape[:2], -1.0)
        score[t, 0] = 0.0
        for c in range(nb_t.shape[1] if differs.any() else 0):
            m = np.zeros(n, bool)
            m[t[has_t[:, c] & differs]] = True
            if m.any():
                score[:, c] = _cpu.image_scores(np.ascontiguousarray(starts[:, c]), m, ctx.imgs, ctx.centers, ctx.affine, g_c, F2,
                                                ctx.lam, params.excitation_error_sigma, ctx.q_min, params.k_max, power)
        pick = np.argmax(score, axis=1)
        q0 = np.ascontiguousarray(starts[idx, pick])
        step = np.deg2rad(lib.params["step_deg"])
        q0, _ = _cpu.refine_chunk(q0, mask, ctx.imgs, ctx.centers, ctx.affine, g_c, F2, ctx.lam, params.excitation_error_sigma,
                                  ctx.q_min, params.k_max, power, 0.5 * step, params.refine_max_eval, np.deg2rad(params.refine_xtol_deg))
        # hypotheses: the chosen anchor's distinct ones, the rival its R_c was measured against where they do not
        # hold it (else a target's R_c misses it: medians 81 against the searched pixels' 36 on ci-nba-py4dstem),
        # and the other anchors' solutions
        h = resc[k].hypothesis_quaternions.shape[1]
        start_anchor = nb_t[np.arange(len(t)), pick[t]]
        hyp = np.zeros((n, h + 1 + nb_t.shape[1], 4))
        hyp[t, :h] = resc[k].hypothesis_quaternions[start_anchor]
        hyp[t, h] = resc[k].c_rival_quaternions[start_anchor]
        hyp[:, h + 1:] = starts
        hyp = _compact_hypotheses(hyp)
        per_phase.append(_rescore(q0, hyp, mask, ctx.peaks, ctx.fit_counts, ctx.imgs, ctx.centers, ctx.affine, lib, params, ctx.lam,
                                  ctx.q_min, listed_dist=tol))
    bv = np.argmax(np.stack([r.quality for r in per_phase]), axis=0)[t]
    q_v = np.stack([r.quaternions for r in per_phase])[bv, t]
    ci_v = np.stack([r.correlation_index for r in per_phase])[bv, t]
    fit_v = np.stack([r.n_explained for r in per_phase])[bv, t] / np.maximum(ctx.fit_counts[t], 1)
    # anchors holding the target's solution, and the floors they set
    support = has_t & (best[safe] == bv[:, None])
    for p_id, lib in enumerate(libraries):
        for c in range(nb_t.shape[1]):
            m = support[:, c] & (bv == p_id)
            if m.any():
                d = disorientation_angle(q_v[m], q_b[safe[m, c]], lib.symmetry_quaternions)
                support[np.flatnonzero(m)[d > tol], c] = False
    ci_floor = np.where(support, ci_b[safe], np.inf).min(axis=1)
    fit_floor = np.where(support, fit_b[safe], np.inf).min(axis=1)
    f = config.COHERENT_VERIFY_FRACTION
    keep_t = support.any(axis=1) & (ci_v >= f * ci_floor) & (fit_v >= f * fit_floor) & (ci_v >= params.min_correlation)
    keep = np.zeros(n, bool)
    keep[t[keep_t]] = True
    for r, rv in zip(resc, per_phase):
        for arr, new in zip(r, rv):
            arr[keep] = new[keep]
    todo &= ~keep
    return todo


_ANCHOR_BLOCK = 2**22  # candidate (target, anchor) pairs per block of anchor_neighbours


def anchor_neighbours(scan_shape: tuple[int, int], targets: np.ndarray, anchors: np.ndarray,
                      reach: int, block_rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each target pixel's anchors within ``reach`` scan px (Chebyshev), nearest first; with ``block_rows``, only
    anchors in the same block of that many rows (:func:`coherence_blocks`).

    ``targets`` and ``anchors`` are flat pixel indices (row-major) of a ``scan_shape`` grid, ``anchors`` ascending.
    Order: by ``max(|Δr|, |Δc|) + 1e-3 (|Δr| + |Δc|)``, ties in scan order. Returns ``(t, nb)``: the targets with
    at least one anchor near, (m,), and their anchors' pixel indices (m, w), −1 past each row's last, w the most any
    target has. Each target looks at the pixels of its window, or at every anchor where there are fewer anchors
    than window pixels, in blocks of targets: time and memory O(targets · min(window, anchors)) per block, bounded
    (a dense targets × anchors comparison of a 64-row chunk of a 256-wide scan held 26 M elements)."""
    ny, nx = scan_shape
    targets = np.asarray(targets, dtype=np.int64)
    anchors = np.asarray(anchors, dtype=np.int64)
    if not len(targets) or not len(anchors):
        return targets[:0], np.zeros((0, 0), np.int64)
    rr_max, rc_max = min(reach, ny - 1), min(reach, nx - 1)
    offs = [(dr, dc) for dr in range(-rr_max, rr_max + 1) for dc in range(-rc_max, rc_max + 1)]
    # nearest first; equal keys in scan order of the anchor, i.e. by (Δr, Δc) for one target
    offs.sort(key=lambda o: (max(abs(o[0]), abs(o[1])) + 1e-3 * (abs(o[0]) + abs(o[1])), o[0], o[1]))
    windowed = len(offs) <= len(anchors)
    is_anchor = np.zeros(ny * nx, bool)
    is_anchor[anchors] = True
    a_r, a_c = np.divmod(anchors, nx)
    per = max(1, _ANCHOR_BLOCK // (len(offs) if windowed else len(anchors)))
    t_out, nb_out = [], []
    for b0 in range(0, len(targets), per):
        tg = targets[b0:b0 + per]
        r, c = np.divmod(tg, nx)
        if windowed:
            cand = np.full((len(tg), len(offs)), -1, np.int64)
            for k, (dr, dc) in enumerate(offs):
                rr, cc = r + dr, c + dc
                inside = (rr >= 0) & (rr < ny) & (cc >= 0) & (cc < nx)
                if block_rows:
                    inside &= rr // block_rows == r // block_rows
                pix = np.where(inside, rr * nx + cc, 0)
                cand[:, k] = np.where(inside & is_anchor[pix], pix, -1)
        else:
            dr = np.abs(r[:, None] - a_r[None, :])
            dc = np.abs(c[:, None] - a_c[None, :])
            near = (dr <= reach) & (dc <= reach)
            if block_rows:
                near &= (r[:, None] // block_rows) == (a_r[None, :] // block_rows)
            order = np.argsort(np.where(near, np.maximum(dr, dc) + 1e-3 * (dr + dc), np.inf), axis=1, kind="stable")
            cand = np.where(np.take_along_axis(near, order, axis=1), anchors[order], -1)
        has = cand >= 0
        keep = has.any(axis=1)
        if not keep.any():
            continue
        cand, has = cand[keep], has[keep]
        order = np.argsort(~has, axis=1, kind="stable")  # valid ones to the front, their order kept
        width = int(has.sum(axis=1).max())
        t_out.append(tg[keep])
        nb_out.append(np.take_along_axis(cand, order, axis=1)[:, :width])
    if not t_out:
        return targets[:0], np.zeros((0, 0), np.int64)
    width = max(x.shape[1] for x in nb_out)
    nb = np.full((sum(len(x) for x in t_out), width), -1, np.int64)
    k = 0
    for x in nb_out:
        nb[k:k + len(x), :x.shape[1]] = x
        k += len(x)
    return np.concatenate(t_out), nb


def _compact_hypotheses(hyp: np.ndarray) -> np.ndarray:
    """Move each row's non-zero hypotheses to the front and drop the columns that are zero in every row."""
    nz = np.any(hyp != 0, axis=2)  # (n, h)
    order = np.argsort(~nz, axis=1, kind="stable")
    out = np.take_along_axis(hyp, order[:, :, None], axis=1)
    width = max(int(nz.sum(axis=1).max()), 1)
    return np.ascontiguousarray(out[:, :width])


def variant_kind(phase: Phase) -> int:
    """Which pseudo-symmetric turns a phase's solutions are settled against (:func:`._cpu.variant_turns`): 1 for
    trigonal and hexagonal phases (60° about c), 2 for cubic ones (the four Σ3 twins), 0 for the others."""
    from ..crystal.phase import is_hexagonal_like

    if is_hexagonal_like(phase):
        return 1
    pg = phase.point_group
    return 2 if pg is not None and pg.system == "cubic" else 0


def _rescore(quats, cands, mask, peaks, counts, imgs, centers, affine, lib, params, lam, q_min, listed_dist=0.0) -> PhaseFit:
    """:func:`._cpu.rescore_chunk` of one phase, as a :class:`PhaseFit`."""
    from ..crystal.phase import has_unique_c_axis

    step = np.deg2rad(lib.params["step_deg"])
    return PhaseFit(*_cpu.rescore_chunk(
        np.ascontiguousarray(quats), np.ascontiguousarray(cands), np.ascontiguousarray(mask), peaks, counts, imgs, centers,
        affine, lib.symmetry_quaternions, np.ascontiguousarray(lib.refl.g), np.ascontiguousarray(lib.refl.intensity), lam,
        params.excitation_error_sigma, params.fit_excitation_window, q_min, params.k_max, float(lib.params["intensity_power"]),
        params.fit_tolerance, params.fit_tolerance_rel, variant_kind(lib.phase),
        np.deg2rad(params.reliability_distance_deg), 0.5 * step, 0.5 * step, min(params.refine_max_eval, 60),
        np.deg2rad(5 * params.refine_xtol_deg), params.n_best, listed_dist, float(params.fit_score_power),
        np.deg2rad(params.reliability_distance_deg) if has_unique_c_axis(lib.phase) else 0.0,
    ))


def _neighbor_pass(scan_shape, phase_id, q, counts, imgs, centers, affine, libraries, params, lam, q_min):
    """Run :func:`._cpu.neighbor_pass` per phase on a chunk's results: each pixel tries its neighbours' solutions
    (refined) and keeps one where it explains the pixel's own pattern better. Returns the phase ids ``(n,)`` and
    quaternions ``(n, 4)`` after the pass (copies; the quality measures are recomputed by the caller)."""
    n = len(counts)
    ok = counts >= params.min_peaks
    power = [float(lib.params["intensity_power"]) for lib in libraries]
    refl = [(np.ascontiguousarray(lib.refl.g), np.ascontiguousarray(lib.refl.intensity)) for lib in libraries]
    sigma_s = params.excitation_error_sigma
    raw = np.zeros(n)  # current image score in each pixel's own phase (exact, unclipped)
    for k in range(len(libraries)):
        raw += _cpu.image_scores(q, ok & (phase_id == k), imgs, centers, affine, *refl[k], lam, sigma_s, q_min, params.k_max, power[k])
    new_q, new_raw, new_phase = q.copy(), raw.copy(), phase_id.copy()
    changed = np.zeros(n, bool)
    for k, lib in enumerate(libraries):
        step = np.deg2rad(lib.params["step_deg"])
        new_q, new_raw, ch = _cpu.neighbor_pass(
            new_q, new_raw, ok, ok & (new_phase == k), int(scan_shape[0]), int(scan_shape[1]), imgs, centers, affine,
            lib.symmetry_quaternions, *refl[k], lam, sigma_s, q_min, params.k_max, power[k], max(np.deg2rad(2.0), step),
            0.5 * step, params.refine_max_eval, np.deg2rad(params.refine_xtol_deg), int(sum(scan_shape)),
        )
        new_phase[ch] = k
        changed |= ch
    phase_out, q_out = phase_id.copy(), q.copy()
    phase_out[changed] = new_phase[changed]
    q_out[changed] = new_q[changed]
    return phase_out, q_out


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """SHA-256 (hex) of the package's Python sources (every ``*.py`` under ``stemgrains``, by relative path):
    what a checkpoint's results were computed with. The version number alone does not change with every change
    of the method, so a run interrupted before an upgrade (or, in a source checkout, an edit) would otherwise
    resume with chunks of the old method beside chunks of the new."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        h.update(f.relative_to(root).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def _run_key(dataset: Dataset4D, phases: list[Phase], params: IndexParams) -> str:
    from ..crystal import phase_cif_text

    return run_key(
        {
            "version": __version__,
            "code": code_digest(),  # chunks of another method are not resumed
            "input": dataset.describe(),
            "calibration": dataset.calibration.to_attrs(),
            "params": params.as_dict(),
            "fields": list(ChunkResult.FIELDS),  # a checkpoint of another layout is not resumed
            "phases": [hashlib.sha256(phase_cif_text(p).encode()).hexdigest() for p in phases],
        }
    )


#: what the first indexing of a process says where the numba kernels are compiled (a fresh install or cache)
FIRST_USE_MESSAGE = ("compiling the numba kernels of the indexing (about 2–3 min on 2 cores, once after an install; "
                     "later runs load them from numba's cache in seconds)")
_notice_given = False


def _kernels_loaded() -> bool:
    """Whether the CPU indexing kernels are loaded in this process (numba loads, or compiles, at first call)."""
    return bool(_cpu.index_chunk.signatures)


def _kernels_cached() -> bool:
    """Whether numba's on-disk cache (``NUMBA_CACHE_DIR``, else ``__pycache__``) holds the main indexing kernel
    (``_cpu.index_chunk``) compiled from this source, by this numba version, for this CPU: then the first indexing
    loads the kernels in seconds and compiles nothing. Reads one small index file (numba's own, which is empty
    where it is missing, of another numba version or of another source file); anything unexpected in numba's
    internals counts as not cached (the notice is then printed, as before)."""
    try:
        kernel = _cpu.index_chunk
        files = kernel._cache._cache_file
        overloads = files._load_index()
        if not overloads:
            return False
        magic = kernel.targetctx.codegen().magic_tuple()
        code = hashlib.sha256(kernel.py_func.__code__.co_code).hexdigest()
        return any(key[1] == magic and key[2][0] == code and os.path.isfile(files._data_path(name))
                   for key, name in overloads.items())
    except Exception:  # noqa: BLE001  numba's private cache API changed: say it, as where it is empty
        return False


def first_use_notice(bar: Any = None) -> None:
    """Explain the long silence of the first indexing in a process where the numba kernels will be compiled
    (2–3 min on 2 cores, 2.3 min measured on data_samples/ by benchmarks/bench_first_run.py: a fresh install, an
    empty or stale numba cache). With a progress ``bar`` (tqdm) its description says it; without
    (``--no-progress``, ``calibrate``), one line on stderr, once per process. Nothing once the kernels
    are loaded, or where numba's cache holds them (:func:`_kernels_cached`: they load in seconds). Where they
    are not cached, the recorded kernels are first compiled in parallel processes
    (:func:`stemgrains._precompile.precompile_kernels`, which prints two lines of its own), and only where that
    could not be done does this notice follow. This is no progress report: it is printed whatever ``progress``
    says."""
    global _notice_given
    if _kernels_loaded() or _kernels_cached():
        return
    from .._precompile import precompile_kernels

    if precompile_kernels() is not None and _kernels_cached():
        return  # compiled in parallel processes (it said so): they load from numba's cache now
    if bar is not None and not getattr(bar, "disable", False):
        bar.set_description(f"indexing (first chunk: {FIRST_USE_MESSAGE})")
        return
    if not _notice_given:
        _notice_given = True
        print(f"stemgrains: {FIRST_USE_MESSAGE}", file=sys.stderr, flush=True)


def _open_checkpoint(checkpoint_dir: Any, dataset: Dataset4D, phases: list[Phase], params: IndexParams,
                     shape: tuple[int, ...]) -> ChunkCheckpoint:
    """The checkpoint folder of an indexing job (:func:`_run_key`; ``shape`` of the scan, for people reading its
    manifest); where it held chunks of another job (other input, parameters or sources), they are discarded and
    one line on stderr says so."""
    ckpt = ChunkCheckpoint(checkpoint_dir, _run_key(dataset, phases, params), {"shape": list(shape)})
    if ckpt.discarded:
        many = ckpt.discarded != 1
        print(f"stemgrains: not resuming: the {ckpt.discarded} finished chunk{'s' if many else ''} in {checkpoint_dir} "
              f"{'were' if many else 'was'} made with other input, parameters or stemgrains sources (an upgrade or an "
              "edit); indexing from the start", file=sys.stderr, flush=True)
    return ckpt


def _resumed(bar: Any, rows: int, scan_shape: tuple[int, int], checkpoint_dir: Any) -> None:
    """Start the progress ``bar`` at the ``rows`` scan rows (of ``scan_shape``) a checkpoint held, and say so in one
    line on stderr (an interrupted run resumed): printed whatever ``progress`` says, like the other lines on
    how a map was made."""
    if rows <= 0:
        return
    rest = "indexing the rest" if rows < scan_shape[0] else "nothing left to index"
    line = (f"stemgrains: resuming: {rows} of {scan_shape[0]} scan rows were indexed before (checkpoint {checkpoint_dir}); "
            f"{rest}")
    if not getattr(bar, "disable", True):
        bar.write(line, file=sys.stderr)
    else:
        print(line, file=sys.stderr, flush=True)
    # counted as the bar's start, not as progress: an update showed the resumed rows as done in no time
    # ("1024/1024 [00:00, 83442 pattern/s]")
    bar.n = bar.last_print_n = bar.initial = rows * scan_shape[1]
    bar.refresh()


def index_block(block: np.ndarray, calibration: Any, shared: tuple[list[TemplateLibrary], IndexParams, str]) -> ChunkResult:
    """Index a block of scan rows ``(n_rows, nx, ky, kx)`` (or patterns ``(n, ky, kx)``): the chunk task of
    :func:`index_orientations` (serial or on dask workers); ``shared`` is ``(libraries, params, backend)``."""
    libraries, params, backend = shared
    ky, kx = block.shape[-2:]
    patterns = block.reshape(-1, ky, kx)
    kw: dict[str, Any] = {"scan_shape": tuple(block.shape[:2])} if block.ndim == 4 else {}
    if backend != "cpu":
        kw["backend"] = backend
    return with_kernel_lock(index_patterns, patterns, calibration, libraries, params, needed=backend == "cpu", **kw)


#: ``excitation_error_sigma_source`` where the subsample indexed no pattern with reliability ≥ 5 under any
#: candidate width: the default width was kept, nothing was chosen from the data
NO_SIGMA_EVIDENCE = ("the default: no subsample pattern was indexed with reliability ≥ "
                     f"{config.SIGMA_CONFIDENT_RELIABILITY:g} under any candidate width")


def _sigma_source(confident: dict[Any, float]) -> str:
    """``excitation_error_sigma_source`` of a width chosen on a subsample with these confident shares."""
    return "chosen from the data" if any(v > 0 for v in confident.values()) else NO_SIGMA_EVIDENCE


def _with_sigma(prm: IndexParams, sigma: float) -> IndexParams:
    """``prm`` with the search's relrod width σ_s found by :func:`index_orientations`; a set final-refinement width
    wider than it is dropped here (:func:`_refine_width` reports it as not applied) rather than refused: which σ_s
    the data give is known only now, after the output was claimed."""
    if prm.refine_excitation_error_sigma is not None and prm.refine_excitation_error_sigma > sigma:
        return replace(prm, excitation_error_sigma=sigma, refine_excitation_error_sigma=None)
    return replace(prm, excitation_error_sigma=sigma)


def _refine_width(dataset: Dataset4D, libraries: list[TemplateLibrary], prm: IndexParams, given: IndexParams,
                  progress: bool, subsample: tuple["_SearchInputs", ChunkResult] | None = None,
                  ) -> tuple[IndexParams, str, dict[float, int] | None]:
    """The final refinement's relrod width for :func:`index_orientations`: ``given``'s where set, else chosen from
    the data (:func:`choose_refine_sigma`; on ``subsample``, the spots, images and results of the σ_s choice at the
    chosen σ_s, where there is one) for scans of at least ``config.SIGMA_MIN_PATTERNS`` patterns, else the search's (no
    final refinement). Returns ``(prm with the width, how it was obtained, the choice's scores)``."""
    sigma = float(prm.excitation_error_sigma)
    if not given.final_refinement:  # (IndexParams refuses a width set with it)
        return replace(prm, refine_excitation_error_sigma=None), "off", None
    if given.refine_excitation_error_sigma is not None:  # (IndexParams refuses one wider than a set σ_s)
        width = float(given.refine_excitation_error_sigma)
        if width > sigma:  # σ_s found here (the data's, the default, the libraries'): a final refinement only narrows
            return (replace(prm, refine_excitation_error_sigma=sigma),
                    f"the search's: the set width {width:g} 1/Å is wider than σ_s {sigma:g} 1/Å, not applied", None)
        return replace(prm, refine_excitation_error_sigma=width), "set", None
    if len(_refine_widths(sigma)) == 1:
        return (replace(prm, refine_excitation_error_sigma=sigma),
                f"the search's: no candidate narrower than σ_s {sigma:g} 1/Å", None)
    if int(np.prod(dataset.scan_shape)) < config.SIGMA_MIN_PATTERNS:
        return (replace(prm, refine_excitation_error_sigma=prm.excitation_error_sigma),
                f"the search's: fewer than {config.SIGMA_MIN_PATTERNS} patterns to choose from", None)
    if subsample is None:
        first_use_notice()  # σ_s was set: this choice may be the process's first indexing
        width, scores = choose_refine_sigma(dataset, libraries, prm)
    else:
        base = replace(prm, refine_excitation_error_sigma=None, final_refinement=False)
        width, scores = _refine_choice(*subsample, libraries, base, _refine_widths(float(prm.excitation_error_sigma)))
    if len(scores) == 1:  # no pattern of the subsample indexed: nothing to choose on
        return replace(prm, refine_excitation_error_sigma=sigma), "the search's: no pattern of the subsample indexed", None
    if progress:
        print(f"final refinement: {refine_choice_text(width, sigma, scores)}", file=sys.stderr)
    return replace(prm, refine_excitation_error_sigma=width), "chosen from the data", scores



#: the relrod widths chosen from the data for the job of a checkpoint folder: an interrupted run resumes without
#: choosing them again (their key: :func:`_run_key` of the parameters as given)
WIDTHS_FILE = "relrod_widths.json"


def _saved_widths(checkpoint_dir: Any, key: str) -> dict[str, Any] | None:
    """The :data:`WIDTHS_FILE` record of ``checkpoint_dir`` made for the job ``key``, or None."""
    try:
        doc = json.loads((Path(checkpoint_dir) / WIDTHS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return None
    return doc if isinstance(doc, dict) and doc.get("key") == key else None


def _relrod_widths(dataset: Dataset4D, phase_list: list[Phase], params: dict[str, Any],
                   libraries: list[TemplateLibrary] | None, progress: bool, checkpoint_dir: Any,
                   ) -> tuple[IndexParams, list[TemplateLibrary], tuple[str, Any, str, Any]]:
    """The search's relrod width σ_s (given, the libraries', the default for small scans, or chosen from the data:
    :func:`_choose_sigma`) and the final refinement's (:func:`_refine_width`) for :func:`index_orientations`, with
    the libraries at σ_s. A checkpoint folder keeps the choice (:data:`WIDTHS_FILE`): the same job resumed takes
    it instead of choosing again. Returns ``(resolved params, libraries, (sigma_source, confident shares or None,
    refine_source, refine votes or None))``."""
    cal = dataset.calibration
    prm = IndexParams(**params)
    key = _run_key(dataset, phase_list, prm) if checkpoint_dir is not None else None
    saved = _saved_widths(checkpoint_dir, key) if key is not None and libraries is None else None
    sigma_source, confident, subsample = "set", None, None
    if prm.excitation_error_sigma is None and libraries is not None:  # the width the libraries were built for
        widths = {float(lib.params.get("excitation_error_sigma", config.EXCITATION_ERROR_SIGMA)) for lib in libraries}
        if len(widths) != 1:
            raise ParameterError(f"the libraries were built for different relrod widths {sorted(widths)}; give "
                                 "excitation_error_sigma")
        prm, sigma_source = _with_sigma(prm, widths.pop()), "the libraries'"
    if saved is not None:  # an interrupted job resumed: the widths chosen for it before
        prm = _with_sigma(prm, float(saved["sigma"])).resolved(cal, dataset.detector_shape)
        prm = replace(prm, refine_excitation_error_sigma=saved["refine"])
        if progress:
            refine = ("none" if saved["refine"] is None or saved["refine"] >= saved["sigma"]  # (as first said)
                      else f"{saved['refine']:g} 1/Å")
            print(f"relrod width σ_s = {saved['sigma']:g} 1/Å, final refinement: {refine}; as chosen before the "
                  f"interruption ({Path(checkpoint_dir) / WIDTHS_FILE})", file=sys.stderr)
        libraries = _libraries_at(phase_list, prm, cal, progress)
        votes, shares = saved["refine_votes"], saved["confident"]
        return prm, libraries, (saved["sigma_source"], None if shares is None else {float(c): v for c, v in shares.items()},
                                saved["refine_source"], None if votes is None else {float(w): int(v) for w, v in votes.items()})
    if prm.excitation_error_sigma is None and int(np.prod(dataset.scan_shape)) < config.SIGMA_MIN_PATTERNS:
        prm = _with_sigma(prm, config.EXCITATION_ERROR_SIGMA)
        sigma_source = f"the default: fewer than {config.SIGMA_MIN_PATTERNS} patterns to choose from"
    if prm.excitation_error_sigma is None:
        first_use_notice()  # the subsample search below is the process's first indexing: say why it may take minutes
        sigma, confident, libs_by_sigma, subsample = _choose_sigma(dataset, phase_list, params, progress)
        prm, libraries, sigma_source = _with_sigma(prm, sigma), libs_by_sigma[sigma], _sigma_source(confident)
        if progress:
            shares = ", ".join(f"{c:g}: {100 * v:.0f} %" for c, v in confident.items())
            print(f"relrod width σ_s = {sigma:g} 1/Å, {sigma_source.split(':')[0]} (patterns indexed with reliability ≥ "
                  f"{config.SIGMA_CONFIDENT_RELIABILITY:g} in a subsample, by σ_s: {shares})", file=sys.stderr)
    prm = prm.resolved(cal, dataset.detector_shape)
    if libraries is None:
        libraries = _libraries_at(phase_list, prm, cal, progress)
    prm, refine_source, refine_votes = _refine_width(dataset, libraries, prm, IndexParams(**params), progress, subsample)
    if key is not None:
        _save_widths(checkpoint_dir, {
            "key": key, "sigma": prm.excitation_error_sigma, "sigma_source": sigma_source,
            "confident": None if confident is None else {f"{c:g}": float(v) for c, v in confident.items()},
            "refine": prm.refine_excitation_error_sigma, "refine_source": refine_source,
            "refine_votes": None if refine_votes is None else {f"{w:g}": int(v) for w, v in refine_votes.items()}})
    return prm, libraries, (sigma_source, confident, refine_source, refine_votes)


def _libraries_at(phase_list: list[Phase], prm: IndexParams, cal: Any, progress: bool) -> list[TemplateLibrary]:
    """One template library per phase at the resolved indexing parameters ``prm`` (its σ_s) and the voltage of ``cal``."""
    return [build_library(p, step_deg=prm.step_deg, k_max=prm.k_max, accelerating_voltage_kV=cal.accelerating_voltage_kV,
                          excitation_error_sigma=prm.excitation_error_sigma, verbose=progress) for p in phase_list]


def _save_widths(checkpoint_dir: Any, record: dict[str, Any]) -> None:
    """The :data:`WIDTHS_FILE` ``record`` written into ``checkpoint_dir``, whole or not at all (a temporary name,
    then renamed)."""
    path = Path(checkpoint_dir) / WIDTHS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{WIDTHS_FILE}.tmp")
    tmp.write_text(json.dumps(record), encoding="utf-8")
    os.replace(tmp, path)


def index_orientations(
    dataset: Dataset4D,
    phases: Any,
    *,
    checkpoint_dir: str | os.PathLike | None = None,
    progress: bool = True,
    backend: str = "cpu",
    client: Any = None,
    libraries: list[TemplateLibrary] | None = None,
    **params: Any,
) -> CrystalMap:
    """Index every pattern of a 4D-STEM dataset.

    Parameters
    ----------
    dataset
        :class:`~stemgrains.data.Dataset4D` (streamed by rows; never loaded whole).
    phases
        One or several phases: CIF paths or orix ``Phase`` objects with structures.
    checkpoint_dir
        Folder for finished chunks; a rerun with the same input, parameters and stemgrains sources
        (:func:`code_digest`) resumes from them; chunks made otherwise are discarded, with one line on stderr.
    progress
        Show a progress bar.
    backend
        ``"cpu"`` (numba). Other backends are imported lazily when asked for.
    client
        A ``dask.distributed.Client``: chunks run on its workers.
    **params
        Fields of :class:`IndexParams` (``step_deg``, ``k_max``, ``spots=SpotParams(...)`` ...).

    Returns
    -------
    orix.crystal_map.CrystalMap
        Rotations (orix convention, sample → crystal), phase_id (−1 = not indexed), x/y in nm, and the props of
        docs/data-dictionary.md (/orientation): ``correlation_index``, ``reliability``, ``twin_reliability``,
        ``c_axis_reliability`` (NaN for cubic phases), ``phase_reliability``, ``n_peaks``, ``n_summed``,
        ``grain_vote``, ``center_row``/``col``, ``spot_fit_*``, ``candidate_scores``, ``candidate_quaternions``.
    """
    if not isinstance(dataset, Dataset4D):
        raise InputError(f"dataset must be a Dataset4D (see stemgrains.io.load_4d), got {type(dataset).__name__}")
    if backend not in ("cpu", "gpu"):
        raise ParameterError(f"backend must be 'cpu' or 'gpu', got {backend!r}")
    if backend == "gpu":
        from . import _gpu  # noqa: F401  (imported only when asked for; raises a clear error without a GPU)
    cal = dataset.calibration
    cal.require_q_pixel_size(dataset.source)
    phase_list = coerce_phases(phases)
    prm, libraries, widths = _relrod_widths(dataset, phase_list, params, libraries, progress, checkpoint_dir)
    sigma_source, confident, refine_source, refine_votes = widths
    ny, nx = dataset.scan_shape
    ky, kx = dataset.detector_shape
    dataset = read_as_indexed(dataset, prm)
    # chunks of whole coherence blocks (the result does not depend on chunk_rows; see coherence_blocks)
    b = config.COHERENT_BLOCK_ROWS
    chunks = row_chunks(ny, -(-prm.chunk_rows // b) * b)
    ckpt = None if checkpoint_dir is None else _open_checkpoint(checkpoint_dir, dataset, phase_list, prm, (ny, nx, ky, kx))

    from .._progress import progress_bar as tqdm

    bar = tqdm(total=ny * nx, unit="pattern", desc="indexing", disable=not progress)
    first_use_notice(bar if progress else None)
    resumed = [0]  # scan rows a checkpoint held (not indexed in this call)

    def started(rows: int) -> None:
        resumed[0] = rows
        _resumed(bar, rows, (ny, nx), checkpoint_dir)

    def chunk_done(r0: int, r1: int) -> None:
        bar.set_description("indexing")
        bar.update((r1 - r0) * nx)

    try:
        results = run_chunks(
            dataset, chunks, index_block, (libraries, prm, backend), client=client, checkpoint=ckpt,
            to_arrays=ChunkResult.arrays, from_arrays=lambda a: ChunkResult(**a), fields=ChunkResult.FIELDS,
            is_complete=lambda res, r0, r1: len(res.phase_id) == (r1 - r0) * nx,
            on_start=started, on_chunk=chunk_done,
        )
    finally:
        bar.close()
    merged = {k: np.concatenate([getattr(results[c], k) for c in chunks]) for k in ChunkResult.FIELDS}
    merged["n_summed"] = _n_summed(dataset, chunks)
    bad_line = _bad_values_warning(dataset.source, merged["bad_values"])
    if bad_line is not None:
        print(bad_line, file=sys.stderr)
    merged["grain_vote"] = np.zeros(ny * nx, np.int8)
    if prm.grain_vote:
        withdrawn = _grain_vote(merged, dataset, libraries, prm)
    xmap = _crystal_map(merged, phase_list, (ny, nx), cal.scan_step_nm, prm)
    xmap.excitation_error_sigma_source = sigma_source  # type: ignore[attr-defined]  # how σ_s was obtained (CLI)
    xmap.resumed_rows = resumed[0]  # type: ignore[attr-defined]  # from a checkpoint: not timed in this call
    if prm.grain_vote:  # decisions that did not hold at the final refinement's width (_robust_decisions)
        xmap.parameters["grain_decisions_withdrawn"] = withdrawn  # type: ignore[attr-defined]
    xmap.parameters["refine_excitation_error_sigma_source"] = refine_source  # type: ignore[attr-defined]
    if refine_votes is not None:
        xmap.parameters["refine_excitation_error_sigma_votes"] = {f"{w:g}": v for w, v in refine_votes.items()}  # type: ignore[attr-defined]
    xmap.parameters["excitation_error_sigma_source"] = sigma_source  # type: ignore[attr-defined]
    if confident is not None:  # the subsample's share indexed with R ≥ the cut, per candidate width
        xmap.parameters["excitation_error_sigma_confident"] = {f"{c:g}": float(v) for c, v in confident.items()}  # type: ignore[attr-defined]
    return xmap


def estimate_excitation_error_sigma(
    dataset: Dataset4D, phases: Any, candidates: tuple[float, ...] | None = None, n_patterns: int | None = None,
    progress: bool = False, **params: Any,
) -> tuple[float, dict[float, float]]:
    """Choose the relrod width σ_s of the kinematic model from the data.

    A subsample of about ``n_patterns`` scan positions (a grid of rows and columns spread over the scan, read as the
    indexing reads them, i.e. with the neighbour summation) is indexed in full with each candidate σ_s (1/Å), and
    the patterns indexed with reliability ≥ ``config.SIGMA_CONFIDENT_RELIABILITY`` are counted: a model that
    describes the data tells each pattern's solution from the alternatives. ``config.EXCITATION_ERROR_SIGMA`` (the
    default) is kept unless another candidate is confident on significantly more of the same patterns — a paired
    sign test: with b patterns confident under the other candidate only and a under the default only,
    b − a > 2·√(a + b) (two standard deviations of the difference under equal models) — and among those the most
    confident wins. Measured: on multislice (abTEM) patterns of 20–30 nm lamellae σ_s = 0.010 is chosen and indexes
    more pixels right than 0.015; on kinematic data (py4DSTEM's and ours) 0.015 stays (see the README, "How
    indexing works").

    Returns ``(sigma, {candidate: fraction of the subsample indexed with reliability ≥ the cut})``. ``candidates``
    default ``config.SIGMA_CANDIDATES`` (the default σ_s is always among them), ``n_patterns``
    ``config.SIGMA_SUBSAMPLE``; ``params``: the other fields of :class:`IndexParams`. Raises ParameterError for
    non-positive candidates.
    """
    sigma, confident, _, _ = _choose_sigma(dataset, coerce_phases(phases), params, progress, candidates, n_patterns)
    return sigma, confident


def _subsample(dataset: Dataset4D, prm: IndexParams, n_patterns: int | None = None) -> np.ndarray:
    """About ``n_patterns`` (default ``config.SIGMA_SUBSAMPLE``) patterns ``(m, ky, kx)`` on a grid of rows and
    columns spread over the scan, read as the indexing reads them (:func:`read_as_indexed`)."""
    ny, nx = dataset.scan_shape
    m = max(1, int(n_patterns or config.SIGMA_SUBSAMPLE))
    n_r = min(ny, max(1, int(round(np.sqrt(m * ny / nx)))))
    n_c = min(nx, max(1, -(-m // n_r)))
    rows = np.unique(np.linspace(0, ny - 1, n_r + 2)[1:-1].round().astype(np.int64)) if ny > 2 else np.arange(min(ny, n_r))
    cols = np.unique(np.linspace(0, nx - 1, n_c + 2)[1:-1].round().astype(np.int64)) if nx > 2 else np.arange(min(nx, n_c))
    data = read_as_indexed(dataset, prm).data
    return np.concatenate([np.asarray(data[r:r + 1])[0][cols] for r in rows])


def _refine_widths(sigma: float, candidates: tuple[float, ...] | None = None) -> list[float]:
    """The search's width σ_s and the candidates narrower than it, widest first."""
    return [sigma] + sorted({float(c) for c in (candidates or config.REFINE_SIGMA_CANDIDATES) if c < sigma}, reverse=True)


def choose_refine_sigma(dataset: Dataset4D, libraries: list[TemplateLibrary], params: IndexParams | dict[str, Any] | None = None,
                        candidates: tuple[float, ...] | None = None, n_patterns: int | None = None,
                        ) -> tuple[float, dict[float, int]]:
    """Choose the relrod width of the final refinement (``IndexParams.refine_excitation_error_sigma``) from the data.

    A subsample of about ``n_patterns`` patterns (default ``config.SIGMA_SUBSAMPLE``, spread over the scan) is
    indexed with ``params`` (an :class:`IndexParams` or a dict of its fields; σ_s = its ``excitation_error_sigma``,
    default ``config.EXCITATION_ERROR_SIGMA``, which the ``libraries`` (one per phase) must have been built for);
    each solution is then refined at σ_s and at every candidate narrower than σ_s (``candidates``, default
    ``config.REFINE_SIGMA_CANDIDATES`` where None or empty; wider ones are not tried;
    :func:`final_refinement`). Each indexed pattern votes for the width its refined image score is highest at;
    where a paired sign test favours the narrower widths together over σ_s, the most voted of them is taken
    (:func:`refine_vote`); else σ_s stays (no final refinement). The image score Σ_j b_j P(x_j)/‖b‖ is the
    projection of the processed pattern P, sampled at the model's spot positions, onto the model's spot amplitudes
    b; the larger it is, the smaller the residual ‖P − αb‖² of the best-scaled model: a least-squares choice of
    the relrod model per pattern (kinematic spot shape: Reimer & Kohl, *Transmission Electron Microscopy*, 5th ed.,
    §7.1; its use as a template-matching weight: Rauch & Dupuy, *Arch. Metall. Mater.* 50 (2005) 87). Counting the
    patterns a width fits better, rather than comparing mean squares, asks every pattern: on kinematic patterns the
    votes are nearly unanimous for the width they were simulated with (py4DSTEM at 0.010 and at 0.015, ours at
    0.015), though the mean squares differ by only 1–2 % (see the README, "How indexing works").

    Any scan size is taken (:func:`index_orientations` asks only for scans of at least
    ``config.SIGMA_MIN_PATTERNS`` patterns: fewer cannot tell the widths apart).

    Returns ``(width, {width (1/Å): votes})``; σ_s alone (0 votes) where no pattern is indexed. Raises
    ParameterError for candidates that are not positive numbers, a non-positive ``n_patterns``, unknown ``params``
    fields, no libraries and libraries built for another width than σ_s.
    """
    cands = tuple(np.ravel(candidates)) if candidates is not None else ()
    if not all(isinstance(c, (int, float, np.integer, np.floating)) and not isinstance(c, (bool, np.bool_))
               and np.isfinite(c) and c > 0 for c in cands):
        raise ParameterError(f"candidates must be positive relrod widths (1/Å), got {candidates!r}")
    if n_patterns is not None and not (isinstance(n_patterns, (int, np.integer)) and not isinstance(n_patterns, bool)
                                       and n_patterns >= 1):
        raise ParameterError(f"n_patterns must be a positive integer, got {n_patterns!r}")
    if not libraries:
        raise ParameterError("libraries: give one template library per phase (stemgrains.library.build_library)")
    if not isinstance(params, IndexParams):
        try:
            params = IndexParams(**(params or {}))
        except TypeError as err:
            raise ParameterError(f"params: {err}") from None
    cal = dataset.calibration
    prm = params.resolved(cal, dataset.detector_shape)
    sigma = float(prm.excitation_error_sigma)
    built = {float(lib.params.get("excitation_error_sigma", sigma)) for lib in libraries}
    if built and built != {sigma}:
        raise ParameterError(f"the libraries were built for relrod widths {sorted(built)}, the search's is {sigma:g} 1/Å: "
                             "give excitation_error_sigma equal to the libraries'")
    widths = _refine_widths(sigma, cands or None)
    base = replace(prm, refine_excitation_error_sigma=None, final_refinement=False)  # the search alone
    patterns, bad_values = _finite_counts(_subsample(dataset, base, n_patterns))
    ctx = _search_inputs(patterns, cal, _spots_as_indexed(base))
    res = with_kernel_lock(_index_inputs, ctx, bad_values, libraries, base, _cpu.index_chunk)
    return _refine_choice(ctx, res, libraries, base, widths)


def _refine_choice(ctx: "_SearchInputs", res: ChunkResult, libraries: list[TemplateLibrary], base: IndexParams,
                   widths: list[float]) -> tuple[float, dict[float, int]]:
    """:func:`choose_refine_sigma` on a subsample already indexed (``res``) with ``base`` (resolved; its
    ``excitation_error_sigma`` = ``widths[0]``), from its spots and images ``ctx``."""
    sigma = widths[0]
    indexed = res.phase_id >= 0
    if not indexed.any():
        return sigma, {sigma: 0}
    scores = []
    for w in widths:
        at_w = replace(base, refine_excitation_error_sigma=w, final_refinement=True)
        _, score, _ = final_refinement(res.quaternions, res.phase_id, ctx, libraries, at_w)
        scores.append(score[indexed])
    return refine_vote(widths, np.array(scores))


def refine_vote(widths: list[float], scores: np.ndarray) -> tuple[float, dict[float, int]]:
    """The final refinement's width from the refined image scores ``scores`` (n_widths, n_patterns) of a subsample
    at ``widths`` (1/Å; the first is σ_s): each pattern votes for the width its refined score is highest at (the
    widest of equal ones). A narrower width is taken where the paired sign test says the narrower widths together
    fit more patterns than σ_s beyond chance, b − a > z·√(a + b), b and a their and σ_s's votes,
    z = ``config.REFINE_VOTE_Z`` (two-sided sign test, Dixon & Mood, *J. Am. Stat. Assoc.* 41 (1946) 557); then
    the most voted of them (the widest of equal counts). Returns ``(width, {width: votes})``."""
    scores = np.asarray(scores, dtype=np.float64).reshape(len(widths), -1)
    best = np.argmax(scores, axis=0)  # argmax takes the first (widest) of equal scores
    votes = {float(w): int(np.sum(best == i)) for i, w in enumerate(widths)}
    sigma = float(widths[0])
    a, b = votes[sigma], sum(v for w, v in votes.items() if w != sigma)
    if len(votes) == 1 or not b - a > config.REFINE_VOTE_Z * np.sqrt(a + b):
        return sigma, votes
    return max((w for w in votes if w != sigma), key=lambda w: (votes[w], w)), votes


def _choose_sigma(dataset: Dataset4D, phase_list: list[Phase], params: dict[str, Any], progress: bool,
                  candidates: tuple[float, ...] | None = None, n_patterns: int | None = None,
                  ) -> tuple[float, dict[float, float], dict[float, list[TemplateLibrary]], tuple["_SearchInputs", ChunkResult]]:
    """:func:`estimate_excitation_error_sigma`, also returning each candidate's libraries (the indexing then uses
    those of the chosen width instead of loading them again) and the subsample's spots and images (detected once
    for every width) with its results at the chosen width
    (the final refinement's width is chosen on them: :func:`_refine_width`)."""
    params = {k: v for k, v in params.items() if k not in ("excitation_error_sigma", "progress")}
    default = float(config.EXCITATION_ERROR_SIGMA)
    cands = tuple(dict.fromkeys([default] + [float(c) for c in (candidates or config.SIGMA_CANDIDATES)]))
    if not all(np.isfinite(c) and c > 0 for c in cands):
        raise ParameterError(f"candidates must be positive relrod widths (1/Å), got {candidates!r}")
    cal = dataset.calibration
    prm = IndexParams(**params).resolved(cal, dataset.detector_shape)
    patterns, bad_values = _finite_counts(_subsample(dataset, prm, n_patterns))
    ctx = _search_inputs(patterns, cal, _spots_as_indexed(prm))  # the same spots and images for every width
    confident: dict[float, np.ndarray] = {}
    libs: dict[float, list[TemplateLibrary]] = {}
    results: dict[float, ChunkResult] = {}
    for c in cands:
        p_c = replace(prm, excitation_error_sigma=c, refine_excitation_error_sigma=None, final_refinement=False)  # the search alone
        libs[c] = [build_library(p, step_deg=p_c.step_deg, k_max=p_c.k_max, accelerating_voltage_kV=cal.accelerating_voltage_kV,
                                 excitation_error_sigma=c, verbose=progress) for p in phase_list]
        res = results[c] = with_kernel_lock(_index_inputs, ctx, bad_values, libs[c], p_c, _cpu.index_chunk, spread=False)
        confident[c] = (res.phase_id >= 0) & (res.reliability >= config.SIGMA_CONFIDENT_RELIABILITY)
    best, best_n = default, int(confident[default].sum())
    for c in cands[1:]:
        b = int(np.sum(confident[c] & ~confident[default]))
        a = int(np.sum(confident[default] & ~confident[c]))
        if b - a > config.RELROD_CHOICE_Z * np.sqrt(a + b) and int(confident[c].sum()) > best_n:
            best, best_n = c, int(confident[c].sum())
    return best, {c: float(v.mean()) for c, v in confident.items()}, libs, (ctx, results[best])


def _grain_vote(a: dict[str, np.ndarray], dataset: Dataset4D, libraries: list[TemplateLibrary], prm: IndexParams) -> int:
    """Apply :func:`._vote.grain_vote` per phase to the merged chunk results ``a`` (in place): switched pixels take
    the majority's solution (their own refined hypothesis), reliability, twin and c-axis reliability 0 (also where
    the tie was with the 60° turn about c, which keeps the c axis: the vote does not tell), ``grain_vote`` 1,
    and their correlation index, spot fit and model spread recomputed on their patterns (read again: they are few).
    ``grain_reliability`` = max(R, the strength of the group's decision) where the pixel holds the solution its group
    decided significantly (:func:`._vote.grain_vote`, ``config.GRAIN_DECISION_Z``) and that decision still holds at
    the final refinement's relrod width (:func:`_robust_decisions`), R elsewhere. Returns the number of decisions
    withdrawn by that test."""
    from . import _vote

    ny, nx = dataset.scan_shape
    tol = np.deg2rad(config.GRAIN_VOTE_TOL_DEG)
    switched = np.zeros(ny * nx, bool)
    strength = np.zeros(ny * nx)
    withdrawn = 0
    for k, lib in enumerate(libraries):
        q, sw, labels, st = _vote.grain_vote(
            np.ascontiguousarray(a["quaternions"], dtype=np.float64), a["phase_id"] == k,
            np.ascontiguousarray(a["candidate_quaternions"], dtype=np.float64),
            np.ascontiguousarray(a["candidate_scores"], dtype=np.float64), np.asarray(a["reliability"], np.float64),
            ny, nx, lib.symmetry_quaternions, tol, config.GRAIN_VOTE_TIE, config.GRAIN_VOTE_RELIABILITY,
            config.GRAIN_VOTE_MIN_GROUP, config.GRAIN_VOTE_MAJORITY,
            np.ascontiguousarray(a["n_summed"], dtype=np.float64), config.GRAIN_DECISION_Z)
        a["quaternions"][sw] = q[sw]
        switched |= sw
        withdrawn += _robust_decisions(st, labels, a, dataset, lib, prm)
        strength = np.maximum(strength, st)
    a["reliability"][switched] = 0.0
    a["grain_reliability"] = np.maximum(a["reliability"], strength)
    if not switched.any():
        return withdrawn
    a["grain_vote"][switched] = 1
    a["twin_reliability"][switched] = 0.0
    a["c_axis_reliability"][switched & np.isfinite(a["c_axis_reliability"])] = 0.0
    rows = np.unique(np.flatnonzero(switched) // nx)
    for r0 in rows:  # the patterns as indexed, one scan row at a time
        sel = np.flatnonzero(switched[r0 * nx:(r0 + 1) * nx])
        block = np.asarray(dataset.data[r0:r0 + 1]).reshape(nx, *dataset.detector_shape)[sel]
        idx = r0 * nx + sel
        for k, lib in enumerate(libraries):
            m = a["phase_id"][idx] == k
            if m.any():
                q, ci, fit, resid, chance, spread = _solution_fit(block[m], a["quaternions"][idx[m]], dataset.calibration, lib, prm)
                for name, v in (("quaternions", q), ("correlation_index", ci), ("spot_fit_fraction", fit), ("spot_fit_residual", resid),
                                ("spot_fit_chance", chance), ("model_spread_deg", spread)):
                    a[name][idx[m]] = v
    return withdrawn


def decision_held(score_decided: np.ndarray, score_rival: np.ndarray, majority: float = config.GRAIN_VOTE_MAJORITY) -> bool:
    """Whether a group's decision holds under another model: more than ``majority`` of its sampled pixels score
    their decided solution (``score_decided``, (m,)) above their rival (``score_rival``, (m,); NaN where a pixel
    lists no rival: it does not count). With no rival at all it holds."""
    valid = np.isfinite(score_rival)
    if not valid.any():
        return True
    return float(np.mean(score_decided[valid] > score_rival[valid])) > majority


def _rival_of(q: np.ndarray, hyp: np.ndarray, sym: np.ndarray, min_dist: float) -> np.ndarray | None:
    """The first (best-scoring) of the listed hypotheses ``hyp`` (h, 4; zero rows unused) more than ``min_dist``
    rad from ``q`` (4,) over ``sym``, or None."""
    listed = hyp[np.any(hyp != 0, axis=1)]
    if not len(listed):
        return None
    far = np.flatnonzero(disorientation_angle(np.ascontiguousarray(listed), np.repeat(q[None], len(listed), 0), sym) > min_dist)
    return listed[far[0]] if far.size else None


def _scores_at(q: np.ndarray, mask: np.ndarray, ctx: "_SearchInputs", lib: TemplateLibrary, params: IndexParams,
               sigma: float) -> np.ndarray:
    """The final choice's score (image score × spot-fit factor ** ``fit_score_power``, :func:`._cpu.rescore_one`)
    of each orientation ``q`` (m, 4) where ``mask``, refined on its pattern at relrod width ``sigma`` (1/Å)
    (:func:`_refined_at`); NaN elsewhere. Returns (m,)."""
    qk, sk = _refined_at(q, mask, ctx, lib, params, sigma)
    g_c = np.ascontiguousarray(lib.refl.g)
    out = np.full(len(q), np.nan)
    for t in np.flatnonzero(mask):
        n = int(ctx.fit_counts[t])
        px, py = np.ascontiguousarray(ctx.peaks[t, :n, 0]), np.ascontiguousarray(ctx.peaks[t, :n, 1])
        out[t] = sk[t] * _cpu.fit_factor(qk[t], g_c, ctx.lam, params.fit_excitation_window, ctx.q_min, params.k_max, px, py,
                                         params.fit_tolerance, params.fit_tolerance_rel, float(params.fit_score_power))
    return out


def _patterns_at(dataset: Dataset4D, idx: np.ndarray) -> np.ndarray:
    """The patterns of the scan positions ``idx`` (m,) (row-major), as ``dataset`` reads them, one scan row at a time.
    Returns (m, ky, kx)."""
    nx = dataset.scan_shape[1]
    rows = idx // nx
    parts = {}
    for r in np.unique(rows):
        parts[r] = np.asarray(dataset.data[r:r + 1]).reshape(nx, *dataset.detector_shape)[idx[rows == r] % nx]
    out = np.empty((len(idx), *dataset.detector_shape), dtype=parts[rows[0]].dtype)
    for r, block in parts.items():
        out[rows == r] = block
    return out


def _robust_decisions(strength: np.ndarray, labels: np.ndarray, a: dict[str, np.ndarray], dataset: Dataset4D,
                      lib: TemplateLibrary, prm: IndexParams) -> int:
    """Withdraw (in place: ``strength`` 0) each significant group decision of :func:`._vote.grain_vote` that does not
    hold at the final refinement's relrod width, where that differs from the search's. Up to
    ``config.GRAIN_DECISION_SAMPLE`` of the group's decided pixels (evenly spaced in its visiting order) each compare
    their solution with their best listed hypothesis more than ``reliability_distance_deg`` away, both refined on the
    pattern at that width (:func:`_scores_at`); the decision holds where :func:`decision_held`. Why: the search's
    width can prefer one of two near-tied solutions in every pattern alike (on py4DSTEM Au simulated at 0.010 1/Å
    and searched at 0.015, a Σ3 twin and a 37° variant, grain reliability 95–100), and the agreement of the grain's
    pixels then measures that bias, not the data. Returns the number of decisions withdrawn."""
    sigma = prm.refine_excitation_error_sigma
    if sigma is None or abs(sigma - prm.excitation_error_sigma) <= 1e-12 or not prm.final_refinement:
        return 0
    sym = lib.symmetry_quaternions
    min_dist = np.deg2rad(prm.reliability_distance_deg)
    decided = np.flatnonzero(strength > 0)
    withdrawn = 0
    for g in np.unique(labels[decided]):
        members = decided[labels[decided] == g]
        pick = np.unique(np.linspace(0, len(members) - 1, min(len(members), config.GRAIN_DECISION_SAMPLE)).round().astype(int))
        sample = members[pick]
        rivals = [_rival_of(a["quaternions"][i], a["candidate_quaternions"][i], sym, min_dist) for i in sample]
        has = np.array([r is not None for r in rivals])
        if not has.any():
            continue
        rival_q = np.array([r if r is not None else np.zeros(4) for r in rivals])
        patterns = _patterns_at(dataset, sample)
        ctx = _search_inputs(patterns, dataset.calibration, _spots_as_indexed(prm))
        own = _scores_at(np.ascontiguousarray(a["quaternions"][sample], dtype=np.float64), has, ctx, lib, prm, sigma)
        other = _scores_at(rival_q, has, ctx, lib, prm, sigma)
        if not decision_held(own[has], other[has]):
            strength[members] = 0.0
            withdrawn += 1
    return withdrawn


def _solution_fit(patterns: np.ndarray, quats: np.ndarray, calibration: Any, lib: TemplateLibrary,
                  params: IndexParams) -> tuple[np.ndarray, ...]:
    """The orientations ``quats`` (m, 4) on ``patterns`` (m, ky, kx) as :func:`index_patterns` finishes them: after
    the final refinement (:func:`final_refinement`), with their correlation index, spot-fit fraction, residual and
    chance level and model spread (:func:`model_spread`). Returns ``(quats, ci, fit, resid, chance, spread)``."""
    ctx = _search_inputs(patterns, calibration, _spots_as_indexed(params))
    every = np.zeros(len(quats), np.int64)
    quats = np.ascontiguousarray(quats, dtype=np.float64)
    if params.refine_excitation_error_sigma not in (None, params.excitation_error_sigma):
        quats, _, _ = final_refinement(quats, every, ctx, [lib], params)
    ci, n_fit, resid = _refit(quats, every, ctx, [lib], params)
    chance = _cpu.fit_chances(quats, every == 0, np.ascontiguousarray(lib.refl.g), ctx.lam, params.fit_excitation_window,
                              ctx.q_min, params.k_max, params.fit_tolerance, params.fit_tolerance_rel, 256)
    fit = np.where(ctx.fit_counts > 0, n_fit / np.maximum(ctx.fit_counts, 1), 0.0)
    return quats, ci, fit, resid, chance, model_spread(quats, every, ctx, [lib], params)


def _n_summed(dataset: Dataset4D, chunks: list[tuple[int, int]]) -> np.ndarray:
    """Patterns summed per scan position, ``(ny·nx,)`` int64, of ``dataset`` as :func:`read_as_indexed` returned it
    (all 1 without neighbour summation): the counts kept by the rows read for the chunks here, recomputed for the
    chunks that were not (resumed from a checkpoint, or indexed on dask workers)."""
    from ..preprocess.averaging import NeighborSummedData

    data = dataset.data
    if not isinstance(data, NeighborSummedData):
        return np.ones(dataset.scan_shape[0] * dataset.scan_shape[1], np.int64)
    return np.concatenate([data.counts(r0, r1).reshape(-1) for r0, r1 in chunks]).astype(np.int64)


def read_as_indexed(dataset: Dataset4D, prm: IndexParams) -> Dataset4D:
    """``dataset`` read as the indexing reads it: each pattern summed with its similar neighbours
    (:func:`~stemgrains.preprocess.averaging.summed_dataset` with ``prm.neighbor_*``); the dataset itself for
    radius 0. The calibration fit reads its subsample through it too."""
    from ..preprocess.averaging import summed_dataset

    return summed_dataset(dataset, prm.neighbor_average_radius, q_min=prm.spots.resolved_q_min(dataset.calibration),
                          min_similarity=prm.neighbor_min_similarity,
                          relative_similarity=prm.neighbor_relative_similarity)


def _crystal_map(a: dict[str, np.ndarray], phases: list[Phase], shape: tuple[int, int], step_nm: float, prm: IndexParams) -> CrystalMap:
    ny, nx = shape
    rows, cols = np.divmod(np.arange(ny * nx), nx)
    pl = PhaseList(phases=phases, ids=list(range(len(phases))))
    if np.any(a["phase_id"] == -1):
        pl.add_not_indexed()
    n_best = a["candidate_scores"].shape[1]
    xmap = CrystalMap(
        rotations=Rotation(a["quaternions"]),
        phase_id=a["phase_id"].astype(int),
        x=cols * step_nm,
        y=rows * step_nm,
        phase_list=pl,
        prop={
            "correlation_index": a["correlation_index"].astype(np.float64),
            "reliability": a["reliability"].astype(np.float64),
            "phase_reliability": a["phase_reliability"].astype(np.float64),
            "n_peaks": a["n_peaks"].astype(np.int64),
            "center_row": a["centers"][:, 0],
            "center_col": a["centers"][:, 1],
            "candidate_scores": a["candidate_scores"].reshape(-1, n_best),
            "candidate_quaternions": a["candidate_quaternions"].reshape(-1, n_best * 4),
            "spot_fit_fraction": a["spot_fit_fraction"].astype(np.float64),
            "spot_fit_residual": a["spot_fit_residual"].astype(np.float64),
            "twin_reliability": a["twin_reliability"].astype(np.float64),
            "c_axis_reliability": a["c_axis_reliability"].astype(np.float64),
            "spot_fit_chance": a["spot_fit_chance"].astype(np.float64),
            "spot_fit_n_peaks": a["spot_fit_n_peaks"].astype(np.int64),
            "model_spread_deg": a["model_spread_deg"].astype(np.float64),
            **({"n_summed": a["n_summed"].astype(np.int64)} if "n_summed" in a else {}),
            **({"grain_vote": a["grain_vote"].astype(np.int8)} if "grain_vote" in a else {}),
            **({"grain_reliability": a["grain_reliability"].astype(np.float64)} if "grain_reliability" in a else {}),
        },
        scan_unit="nm",
    )
    xmap.parameters = prm.as_dict()  # type: ignore[attr-defined]
    from .._grid import attach_scan_step

    return attach_scan_step(xmap, step_nm)
