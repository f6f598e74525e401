"""In-situ image series against the grain-boundary map: register, difference, detect, attribute, count.

:func:`analyse_series` takes the frames, their pixel size, the sites of the map (:class:`SiteMap`) and either the
placement of frame 0 on the map (:class:`FrameTransform`) or a map image to find it by correlation; it returns
a :class:`SeriesResult` (registered frames, differential stack, events with their sites, enrichment table).
:func:`load_sites` reads grains, boundaries, classification and the electrodes from a results file;
:func:`map_image_from_results` makes a virtual ADF image of the 4D input recorded there (when reachable);
:func:`write_series` writes ``events.csv``, ``enrichment.csv``, ``series.h5`` and the figures.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from .._table import Table
from ..errors import FileFormatError, InputError, ParameterError, StemgrainsError
from .detect import detect_events, differential_images
from .register import DriftRegistration, FrameTransform, register_drift, register_to_map, shift_image
from .sites import EDGES, SiteMap, enrichment
from .._repr import compact_repr

#: A frame more than this many times the map's extent (largest side) is a wrong pixel size.
MAX_EXTENT_RATIO = 20.0
#: A map fewer than this many frame pixels across is a wrong pixel size.
MIN_MAP_FRAME_PIXELS = 4
#: The event detection's noise is taken as at least this fraction of frame 0's median intensity (noise-free frames).
NOISE_FLOOR = 1e-3

__all__ = ["SeriesResult", "EVENT_COLUMNS", "analyse_series", "load_sites", "map_image_from_results", "write_series"]

#: Columns of ``events.csv`` (positions in the map frame, nm).
EVENT_COLUMNS = ("event_id", "first_frame", "time", "x_nm", "y_nm", "area_nm2", "contrast", "site", "boundary_id",
                 "grain_a", "grain_b", "label", "behaviour", "distance_nm", "boundaries_reached")


@dataclass
class SeriesResult:
    """Result of :func:`analyse_series`.

    Attributes
    ----------
    registered
        ``(n, rows, cols)`` frames registered to frame 0 (NaN where a frame has no data).
    differential
        ``(n, rows, cols)`` ``registered[k] − registered[0]``.
    drift_px
        ``(n, 2)`` shift ``(dy, dx)`` of each frame relative to frame 0, frame pixels.
    transform
        Frame-0 pixel → map nm.
    times
        ``(n,)`` time of each frame (frame index when none was given).
    events
        Table with :data:`EVENT_COLUMNS`.
    enrichment
        Table from :func:`~stemgrains.insitu.sites.enrichment`.
    region
        ``(rows, cols)`` bool: frame-0 pixels searched (valid in every frame and on the map).
    footprints
        ``(rows, cols)`` int32: event id + 1 over each event's footprint (0 elsewhere).
    parameters
        Everything that was used.
    registration
        Per-frame quality of the drift registration (:class:`~stemgrains.insitu.register.DriftRegistration`:
        masked NCC peak, peak ratio, fraction masked as changed, doubtful frames and one warning line each).
    """

    def __repr__(self) -> str:  # one line, arrays by shape (print() dumped them)
        return compact_repr(self)

    registered: np.ndarray
    differential: np.ndarray
    drift_px: np.ndarray
    transform: FrameTransform
    times: np.ndarray
    events: Table
    enrichment: Table
    region: np.ndarray
    footprints: np.ndarray
    parameters: dict[str, Any] = field(default_factory=dict)
    registration: DriftRegistration | None = None

    @property
    def warnings(self) -> list[str]:
        """One line per doubtful frame registration, then one for an uncertain placement of frame 0 (empty when all
        are fine). The doubtful frames are left out of the event detection (``parameters["frames_left_out"]``)."""
        return ((list(self.registration.warnings) if self.registration is not None else [])
                + list(self.parameters.get("notes", [])))


def load_sites(results: str | os.PathLike, interface: tuple[str, ...] | None = None) -> SiteMap:
    """Grains, boundaries and (if present) classification of a results file as a :class:`SiteMap`.

    ``interface``: map edges that are electrode interfaces; default the edges of the electrodes recorded by
    ``stemgrains transport`` (none when the file has no transport stage).
    """
    from ..boundaries import read_boundaries, read_classification
    from ..grains import read_grains
    from ..io.results import read_parameters, read_with

    grains = read_grains(results)
    bounds = read_boundaries(results)

    def opt(f: Any, source: str) -> tuple[Any, Any]:
        cls = read_classification(f) if "classification" in f else None
        return cls, read_parameters(f, "transport")

    classification, transport = read_with(results, opt)
    if interface is None:
        interface = ()
        if transport and isinstance(transport.get("electrodes"), dict):
            interface = tuple(sorted({str(v.get("edge")) for v in transport["electrodes"].values()
                                      if isinstance(v, dict) and str(v.get("edge")) in EDGES}))
    return SiteMap.from_results(grains, bounds, classification, interface)


def recorded_input_files(results: str | os.PathLike) -> tuple[str | None, list[Path]]:
    """The input a results file records (``None`` when it records none) and the existing files that may be it:
    as recorded, relative to the results file's folder, and by name next to it."""
    from ..io.outputs import recorded_input

    recorded = recorded_input(results)
    if not recorded:
        return None, []
    base = Path(results).resolve().parent
    cands = dict.fromkeys((Path(recorded), base / recorded, base / Path(recorded).name))
    return recorded, [c for c in cands if c.is_file()]


def map_image_from_results(results: str | os.PathLike, detector: str = "adf") -> tuple[np.ndarray, float, str] | None:
    """Virtual ADF (or ``"bf"``) image of the 4D input recorded in a results file, with its scan step (nm) and
    path; ``None`` when the input is not reachable (:func:`recorded_input_files`) or not 4D data."""
    from ..io import load_4d
    from ..virtual import annulus, bright_field, virtual_image

    for cand in recorded_input_files(results)[1]:
        try:
            ds = load_4d(cand)
        except StemgrainsError:
            continue
        k = min(ds.detector_shape)
        det = annulus(k / 12, k / 2) if detector == "adf" else bright_field(k / 16)
        return virtual_image(ds, det), ds.calibration.scan_step_nm, str(cand)
    return None


def _check_series_inputs(frames: np.ndarray, pixel_size_nm: float, times: Any, sites: SiteMap) -> np.ndarray:
    """The checks of :func:`analyse_series` on its inputs; returns the frame times ``(n,)``."""
    n = frames.shape[0]
    if n < 2:
        raise ParameterError(f"an in-situ series needs at least 2 frames (frame 0 is the reference), got {n}")
    if not (np.isfinite(pixel_size_nm) and pixel_size_nm > 0):
        raise ParameterError(f"frame pixel size must be a positive number of nm, got {pixel_size_nm!r}")
    if times is None:
        t = np.arange(n, dtype=float)
    else:
        t = np.asarray(times, dtype=float).ravel()
        if t.shape != (n,) or not np.all(np.isfinite(t)):
            raise ParameterError(f"times: expected {n} finite values (one per frame), got {len(t)}")
        if np.any(np.diff(t) <= 0):
            raise ParameterError(f"times must increase strictly (frames in time order), got {t.tolist()}")
    H, W = frames.shape[1:]
    x0, x1, y0, y1 = sites.extent_nm
    frame_ext = max(H, W) * float(pixel_size_nm)
    map_ext = max(x1 - x0, y1 - y0)
    # a frame 20 × larger than the map, or a map only a few frame pixels across, is a wrong pixel size (e.g.
    # 500 for 0.5 nm; the placement canvas would need (frame extent / map step)² pixels: 22 GB there)
    if frame_ext > MAX_EXTENT_RATIO * map_ext or map_ext < MIN_MAP_FRAME_PIXELS * float(pixel_size_nm):
        raise ParameterError(
            f"--frame-pixel-size {pixel_size_nm:g} nm is implausible: the frames ({H} x {W} px) would span "
            f"{frame_ext:.4g} nm, the map {map_ext:.4g} nm (expected a frame at most {MAX_EXTENT_RATIO:g} x the map "
            f"and a map at least {MIN_MAP_FRAME_PIXELS} frame pixels across)")
    return t


def _imaged_enrichment(events: Table, at: Table, sites: SiteMap, region: np.ndarray, transform: Any,
                       tolerance_nm: float) -> tuple[Table, dict[str, Any]]:
    """:func:`~stemgrains.insitu.sites.enrichment` with the expected counts over the boundary length (and
    interface) the frames show (:meth:`SiteMap.imaged`: within ``tolerance_nm`` of the analysed region, where an
    event could be attributed to them; an electrode just outside the drifting frames still is); and the parameters
    ``boundary_length_map_nm``, ``boundary_length_imaged_nm``, ``interface_length_map_nm``,
    ``interface_length_imaged_nm`` and ``coverage_note`` (a sentence where the frames show less than 99 % of the
    map's boundary or interface length, else empty)."""
    gap = ndimage.distance_transform_edt(~region) if not region.all() else np.zeros(region.shape)
    tol_px = tolerance_nm / transform.pixel_size_nm
    seen_segments, seen_interface = sites.imaged(lambda x, y: _inside(gap, tol_px, transform, x, y))
    enr = enrichment(Table({**{k: events[k] for k in events}, "interface_class": at["interface_class"]}),
                     seen_segments, seen_interface)
    map_length = float(np.sum(sites.segments["length_nm"])) if len(sites.segments) else 0.0
    imaged_length = float(np.sum(seen_segments["length_nm"])) if len(seen_segments) else 0.0
    if_map = float(np.sum(sites.interface_pieces()["length_nm"])) if sites.interface else 0.0
    if_seen = float(np.sum(seen_interface["length_nm"])) if seen_interface is not None and len(seen_interface) else 0.0
    parts = [f"{seen:.0f} of the map's {whole:.0f} nm of {what} ({100 * seen / whole:.0f} %)"
             for seen, whole, what in ((imaged_length, map_length, "boundary"), (if_seen, if_map, "electrode interface"))
             if whole > 0 and seen < 0.99 * whole]
    note = (f"the frames show {' and '.join(parts)}: the enrichment's expected counts are over that length"
            if parts else "")
    return enr, {"boundary_length_map_nm": map_length, "boundary_length_imaged_nm": imaged_length,
                 "interface_length_map_nm": if_map, "interface_length_imaged_nm": if_seen, "coverage_note": note}


def _inside(gap_px: np.ndarray, tolerance_px: float, transform: Any, x_nm: Any, y_nm: Any) -> np.ndarray:
    """Which map points ``(x_nm, y_nm)`` lie within ``tolerance_px`` frame pixels of the analysed region under
    ``transform``; ``gap_px`` is the distance of every frame pixel to the region (0 inside,
    ``scipy.ndimage.distance_transform_edt``). Points beyond the frame's edge add their distance to it."""
    r, c = transform.to_frame(np.asarray(x_nm, float), np.asarray(y_nm, float))
    rc = np.clip(r, 0, gap_px.shape[0] - 1)
    cc = np.clip(c, 0, gap_px.shape[1] - 1)
    gap = gap_px[np.rint(rc).astype(np.int64), np.rint(cc).astype(np.int64)] + np.hypot(r - rc, c - cc)
    return gap <= tolerance_px


def _events_table(found: list, transform: Any, sites: SiteMap, t: np.ndarray, pixel_size_nm: float,
                  tolerance_nm: float, shape: tuple[int, int]) -> tuple[Table, Any, np.ndarray]:
    """``events.csv`` of :func:`analyse_series` (events attributed to the map's sites), the attribution and the
    events' footprints ``shape`` (event id + 1, 0 elsewhere)."""
    ex, ey = transform.to_map(np.array([e.row for e in found]), np.array([e.col for e in found]))
    at = sites.attribute(ex, ey, tolerance_nm) if found else sites.attribute(np.zeros(0), np.zeros(0), tolerance_nm)
    footprints = np.zeros(shape, dtype=np.int32)
    for i, e in enumerate(found):
        footprints[e.footprint & (footprints == 0)] = i + 1
    events = Table({
        "event_id": np.arange(len(found), dtype=np.int64),
        "first_frame": np.array([e.first_frame for e in found], dtype=np.int64),
        "time": t[np.array([e.first_frame for e in found], dtype=np.int64)] if found else np.zeros(0),
        "x_nm": np.asarray(ex, float).reshape(-1), "y_nm": np.asarray(ey, float).reshape(-1),
        "area_nm2": np.array([e.area_px * pixel_size_nm**2 for e in found], dtype=float),
        "contrast": np.array([e.contrast for e in found], dtype=float),
        "site": at["site"], "boundary_id": at["boundary_id"].astype(np.int64),
        "grain_a": at["grain_a"].astype(np.int64), "grain_b": at["grain_b"].astype(np.int64),
        "label": at["label"], "behaviour": at["behaviour"], "distance_nm": at["distance_nm"].astype(float),
        "boundaries_reached": np.array([" ".join(map(str, sites.boundaries_reached(
            *transform.to_map(*np.nonzero(e.footprint)), tolerance_nm))) for e in found], dtype=str),
    })
    return events, at, footprints


#: frame pixel sizes tried beside the given one (as factors, 2^(1/4) apart from 1/32 to 16: the correlation falls
#: from 0.99 to 0.88 for a 10 % error; 1/32 reaches below 1/MAX_EXTENT_RATIO, the largest error not refused
#: otherwise) when frame 0 is placed by correlation
SCALE_FACTORS = tuple(float(2.0 ** (k / 4)) for k in range(-20, 17) if k)
#: an alternative pixel size is judged only where frame 0 then covers at least this fraction of the map image (a
#: frame a few map pixels wide correlates by chance)
SCALE_MIN_COVER = 0.25
#: a factor whose placement correlates this much better than the given pixel size's refuses the given one
SCALE_MARGIN = 0.1


def _check_frame_scale(frame: np.ndarray, pixel_size_nm: float, map_image: np.ndarray, step_nm: float,
                       rotations_deg: Any, r_given: float, r_sure: float) -> None:
    """Refuse a frame pixel size that frame 0 itself contradicts: placed at ``SCALE_FACTORS`` × the given size it
    correlates with the map image better by more than ``SCALE_MARGIN`` (r), and at least ``r_sure`` (a placement
    to trust: an unrelated frame's best scale is no evidence). A pixel size 2× or 10× off still placed
    frame 0 with r 0.68–0.77 (above the 0.6 gate, where the right size gives 0.99) and put its events on the wrong
    boundaries (fresh-user test)."""
    best_r, best_p = r_given, pixel_size_nm
    mh, mw = np.shape(map_image)
    fh, fw = np.shape(frame)
    for f in SCALE_FACTORS:
        cover = min(1.0, fh * pixel_size_nm * f / (mh * step_nm)) * min(1.0, fw * pixel_size_nm * f / (mw * step_nm))
        if cover < SCALE_MIN_COVER or max(fh, fw) * pixel_size_nm * f > MAX_EXTENT_RATIO * max(mh, mw) * step_nm:
            continue
        try:
            r = register_to_map(frame, pixel_size_nm * f, map_image, step_nm, rotations_deg).score
        except ParameterError:  # no placement with enough overlap at that scale
            continue
        if r > best_r:
            best_r, best_p = r, pixel_size_nm * f
    if best_r > r_given + SCALE_MARGIN and best_r >= r_sure:
        raise ParameterError(
            f"--frame-pixel-size {pixel_size_nm:g} nm looks wrong: frame 0 matches the map image with r = "
            f"{r_given:.3f} at it, but r = {best_r:.3f} at {best_p:.3g} nm; give the frames' true pixel size "
            "(or --offset X_NM,Y_NM to place them yourself)")


def analyse_series(
    frames: np.ndarray,
    pixel_size_nm: float,
    sites: SiteMap,
    *,
    transform: FrameTransform | None = None,
    map_image: np.ndarray | None = None,
    map_image_step_nm: float | None = None,
    rotations_deg: Any = (0.0,),
    times: Any = None,
    tolerance_nm: float = 3.0,
    smooth_px: float = 1.5,
    n_sigma: float = 5.0,
    min_area_nm2: float | None = None,
    min_frames: int = 2,
    min_map_r: float = 0.6,
    warn_map_r: float = 0.8,
) -> SeriesResult:
    """Register a series, find what appears, and attribute it to the map's sites.

    Parameters
    ----------
    frames
        ``(n, rows, cols)`` images, ``n ≥ 2``; frame 0 is the reference.
    pixel_size_nm
        Frame pixel size, nm.
    sites
        From :func:`load_sites` (map grid and step define the map frame).
    transform
        Placement of frame 0 on the map; otherwise found from ``map_image`` (required then) by
        :func:`~stemgrains.insitu.register.register_to_map` over ``rotations_deg``; ``map_image`` has its pixel
        (0, 0) at the map origin and pixel size ``map_image_step_nm`` (default the map's scan step).
    times
        ``(n,)`` frame times (any unit), strictly increasing; default the frame index.
    tolerance_nm
        Attribution distance, nm.
    smooth_px, n_sigma, min_frames
        Detection (see :func:`~stemgrains.insitu.detect.detect_events`).
    min_area_nm2
        Smallest event, nm² (default 4 frame pixels).
    min_map_r, warn_map_r
        Frame 0 placed by correlation: refused below ``min_map_r``, a warning below ``warn_map_r``. Measured
        (``stemgrains series`` on the fresh user's frames of a virtual ADF of ``data_samples/nba_sample.h5``):
        right placements r = 0.926 (dose 200; > 0.95 in the tests), wrong ones 0.000 (a blank frame), 0.156
        (unrelated texture), 0.490–0.737 (``--frame-pixel-size`` 10 × too large). A pixel size that frame 0
        contradicts (:func:`_check_frame_scale`) is refused.

    Raises
    ------
    ParameterError
        Fewer than 2 frames, bad times or parameters, no way to place frame 0, frame 0 matching the map image
        with r < ``min_map_r`` or better at another frame pixel size, a frame pixel size making the frames more than 20 × the map's extent or the map
        fewer than 4 frame pixels across.
    InputError
        Frames that do not overlap the map.
    """
    notes: list[str] = []
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim != 3:
        raise InputError(f"frames must be a stack (n, rows, cols), got shape {frames.shape}")
    n = frames.shape[0]
    t = _check_series_inputs(frames, pixel_size_nm, times, sites)
    H, W = frames.shape[1:]
    x0, x1, y0, y1 = sites.extent_nm
    if transform is None:
        if map_image is None:
            raise ParameterError("frame 0 cannot be placed on the map: give an offset (--offset X_NM,Y_NM) or a "
                                 "reachable 4D input for a virtual image")
        transform = register_to_map(frames[0], pixel_size_nm, map_image, map_image_step_nm or sites.scan_step_nm,
                                    rotations_deg)
        _check_frame_scale(frames[0], pixel_size_nm, map_image, map_image_step_nm or sites.scan_step_nm, rotations_deg,
                           transform.score, warn_map_r)
        if not transform.score >= min_map_r:
            raise ParameterError(
                f"frame 0 does not match the map image: best placement correlation r = {transform.score:.3f} < "
                f"{min_map_r:g}; check --frame-pixel-size ({pixel_size_nm:g} nm) or give --offset X_NM,Y_NM")
        if transform.score < warn_map_r:
            notes.append(f"frame 0 placement on the map is uncertain: correlation r = {transform.score:.3f} < "
                         f"{warn_map_r:g} (check montage.png, or give --offset X_NM,Y_NM)")
    # overlap of frame 0 with the map
    rr, cc = np.mgrid[0:H, 0:W]
    x, y = transform.to_map(rr, cc)
    on_map = (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
    if not np.any(on_map):
        raise InputError(
            f"the frames do not overlap the map: frame 0 spans x {x.min():.1f}..{x.max():.1f} nm, y "
            f"{y.min():.1f}..{y.max():.1f} nm; the map x {x0:.1f}..{x1:.1f} nm, y {y0:.1f}..{y1:.1f} nm")
    reg = register_drift(frames)
    drift = reg.drift_px
    registered = np.stack([frames[0]] + [shift_image(frames[k], drift[k]) for k in range(1, n)])
    # frames whose drift registration is doubtful are left out of the event detection and the statistics (their
    # differential image would show the specimen itself as change: 147 events from one blank frame)
    keep = np.array([0] + [k for k in range(1, n) if not reg.doubtful[k]], dtype=np.int64)
    left_out = [int(k) for k in range(1, n) if reg.doubtful[k]]
    region = on_map & np.all(np.isfinite(registered[keep]), axis=0)
    if not np.any(region):
        raise InputError("after drift correction no part of the frames lies on the map in every frame")
    diff = differential_images(registered)
    ref_level = float(np.median(frames[0][region])) or 1.0
    min_area_px = max(1, int(round((min_area_nm2 if min_area_nm2 is not None else 4 * pixel_size_nm**2)
                                   / pixel_size_nm**2)))
    # NOISE_FLOOR: the interpolation residue of noise-free frames is no event
    dropped: list = []
    found = detect_events(diff[keep], region, smooth_px=smooth_px, n_sigma=n_sigma, min_area_px=min_area_px,
                          min_frames=min_frames, reference_level=ref_level,
                          noise_floor=NOISE_FLOOR * abs(ref_level), dropped=dropped) if len(keep) > 1 else []
    for e in found:  # back to the indices of all frames
        e.first_frame = int(keep[e.first_frame])
        e.frames = [int(keep[i]) for i in e.frames]
    events, at, footprints = _events_table(found, transform, sites, t, pixel_size_nm, tolerance_nm, (H, W))
    enr, coverage = _imaged_enrichment(events, at, sites, region, transform, tolerance_nm)
    params = {"pixel_size_nm": float(pixel_size_nm), "tolerance_nm": tolerance_nm, "smooth_px": smooth_px,
              "n_sigma": n_sigma, "min_area_px": min_area_px, "min_frames": min_frames,
              "rotations_deg": np.atleast_1d(np.asarray(rotations_deg, float)).tolist(),
              "transform": {"rotation_deg": transform.rotation_deg, "offset_nm": list(transform.offset_nm),
                            "score": transform.score}, "interface": list(sites.interface),
              "reference_level": ref_level, "drift_registration": "masked NCC, changed pixels masked (Padfield 2012)",
              "frames_left_out": left_out, "min_map_r": min_map_r, "warn_map_r": warn_map_r, "notes": notes,
              **coverage, "features_dropped_min_frames": len(dropped)}
    return SeriesResult(registered, diff, drift, transform, t, events, enr, region, footprints, params, reg)


def series_output_names(figures: bool = True) -> list[str]:
    """File names :func:`write_series` writes into its folder (the figures with ``figures``)."""
    return ["events.csv", "enrichment.csv", "series.h5",
            *(["event_sites.png", "montage.png", "enrichment.png"] if figures else [])]


def write_series(outdir: str | os.PathLike, result: SeriesResult, sites: SiteMap, *, names: list[str] | None = None,
                 figures: bool = True, inputs: list[str | os.PathLike] | None = None) -> list[Path]:
    """Write ``events.csv``, ``enrichment.csv``, ``series.h5`` (registered frames, differential stack, drift,
    transform, events; atomic) and the figures ``event_sites.png``, ``montage.png``, ``enrichment.png``.

    ``inputs`` (the results file and the frame files) are recorded as ``series`` attribute ``inputs`` (absolute
    paths, JSON) and the two tables, with their size and time, as the root attribute ``csv_tables``
    (:func:`stemgrains.io.outputs.record_csv_tables`): what ``stemgrains series`` checks before replacing a file
    of the folder (:func:`stemgrains.io.outputs.refuse_foreign_folder_outputs`)."""
    from ..data_dictionary import annotate_units
    from ..io.outputs import record_csv_tables
    from ..io.results import atomic_h5, atomic_write_text, json_default

    out = Path(outdir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise FileFormatError(f"{out}: cannot create the output folder ({err})") from None
    written = []
    ev = Table({k: result.events[k] for k in EVENT_COLUMNS})
    atomic_write_text(out / "events.csv", ev.to_csv())
    atomic_write_text(out / "enrichment.csv", result.enrichment.to_csv())
    written += [out / "events.csv", out / "enrichment.csv"]
    with atomic_h5(out / "series.h5") as f:
        g = f.create_group("series")
        g.create_dataset("registered", data=result.registered.astype(np.float32), compression="gzip", shuffle=True)
        g.create_dataset("differential", data=result.differential.astype(np.float32), compression="gzip", shuffle=True)
        g.create_dataset("drift_px", data=result.drift_px)
        if result.registration is not None:  # per-frame registration quality (frame 0: the reference)
            r = result.registration
            q = g.create_group("registration")
            for name in ("peak_ncc", "peak_ratio", "masked_fraction", "iterations", "doubtful"):
                q.create_dataset(name, data=getattr(r, name))
            q.attrs["warnings"] = json.dumps(list(r.warnings))
        g.create_dataset("times", data=result.times)
        g.create_dataset("region", data=result.region, compression="gzip")
        g.create_dataset("footprints", data=result.footprints, compression="gzip")
        g.attrs["parameters"] = json.dumps(result.parameters, default=json_default, sort_keys=True)
        g.attrs["frame_names"] = json.dumps(names or [])
        g.attrs["inputs"] = json.dumps([str(Path(p).resolve()) for p in inputs or []])
        record_csv_tables(f, [out / "events.csv", out / "enrichment.csv"])
        ev.to_hdf5(g.create_group("events"))
        result.enrichment.to_hdf5(g.create_group("enrichment"))
        annotate_units(f)  # unit and description of every dataset (docs/data-dictionary.md)
    written.append(out / "series.h5")
    if figures:
        from ..plot.insitu import plot_enrichment, plot_event_sites, plot_montage

        plot_event_sites(result, sites, path=out / "event_sites.png")
        plot_montage(result, sites, path=out / "montage.png")
        plot_enrichment(result.enrichment, path=out / "enrichment.png")
        written += [out / "event_sites.png", out / "montage.png", out / "enrichment.png"]
    return written
