"""``stemgrains virtual INPUT (--bf R | --annulus R_IN,R_OUT | --disk ROW,COL,R ... | --mask FILE.npy) -o OUT``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FileFormatError, ParameterError, StemgrainsError
from ._common import add_calibration_overrides, calibration_overrides, parse_pair

NAME = "virtual"
HELP = "virtual bright-field, annular dark-field, dark-field (disks) or mask image of a 4D-STEM scan"
DESCRIPTION = (
    "Integrate every diffraction pattern over a virtual detector and write the image (scan_row, scan_col). "
    "Radii and positions are detector pixels (positions absolute on the detector) unless --q-units: then 1/Å, "
    "positions relative to the beam centre (ROW, COL offsets along the detector rows and columns). Several "
    "--disk options make one virtual dark-field image of their union. The data are streamed over blocks of "
    "scan rows (memory bounded by --memory-mb)."
)
ORDER = 25


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="INPUT", help="4D-STEM file (.h5, .npy, .mib, .blo, .app5, .dm4, .xml)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--bf", type=float, metavar="R", help="bright-field disk of radius R around the beam centre")
    g.add_argument("--annulus", metavar="R_IN,R_OUT", help="annular detector between R_IN and R_OUT (ADF)")
    g.add_argument("--disk", action="append", metavar="ROW,COL,R", help="dark-field disk (repeatable: union)")
    g.add_argument("--mask", metavar="FILE.npy", help="boolean or weighted mask (det_row, det_col), detector pixels")
    p.add_argument("--q-units", action="store_true", help="radii and positions in 1/Å relative to the beam centre")
    p.add_argument("--follow-center", action="store_true",
                   help="find the direct beam in every pattern and move the detector with it (whole pixels)")
    p.add_argument("--memory-mb", type=float, default=128.0, metavar="MB",
                   help="memory for one block of scan rows (default %(default)g)")
    p.add_argument("--scan-shape", default=None, metavar="ROWS,COLS", help="scan shape of a flat stack of patterns")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("-o", "--output", required=True, metavar="OUT.{npy,tif,h5,png}", help="output image")
    p.add_argument("--force", action="store_true",
                   help="replace OUT even when it holds the image of another input or a file that is not ours "
                        "(default: refused; .h5, .tif and .png record their input, and the same input's image is "
                        "replaced; a .npy records none: only an identical image is replaced)")
    add_calibration_overrides(p)


def _triple(text: str) -> tuple[float, float, float]:
    try:
        a, b, c = (float(s) for s in text.split(","))
    except (ValueError, AttributeError):
        raise ParameterError(f"--disk expects ROW,COL,R (three numbers), got {text!r}") from None
    return a, b, c


def _npy_shape(path: Path) -> tuple[int, ...] | None:
    """The array shape in the header of a ``.npy`` file, or ``None`` when it is not one."""
    try:
        shape = np.load(path, mmap_mode="r", allow_pickle=False).shape  # reads the header only
    except Exception:
        return None
    return tuple(int(n) for n in shape)


def _refuse_other_npy(out: Path, image: np.ndarray | None, scan_shape: tuple[int, int]) -> None:
    """An existing ``.npy`` records no input: it is replaced only by an identical image (the same command again on
    the same input). Before the work (``image`` None) one of another shape is refused; after it, one that differs."""
    if not out.is_file():
        return
    shape = _npy_shape(out)
    if shape is None:
        raise ParameterError(f"-o {out}: holds a file that is not a .npy image; choose another name, or give --force "
                             "to replace it")
    if shape != tuple(scan_shape):
        raise ParameterError(f"-o {out}: holds another array, of shape {shape} (this image is {tuple(scan_shape)}); "
                             "a .npy records no input; choose another name, or give --force to replace it")
    if image is not None:
        try:
            old = np.load(out, allow_pickle=False)
        except Exception:
            old = None
        if old is None or not np.array_equal(old, image):
            raise ParameterError(f"-o {out}: holds another image of the same shape (a .npy records no input, so "
                                 "only an identical image is replaced); choose another name, or give --force to "
                                 "replace it")


def _named(option: str, make: Any, *a: Any, **kw: Any) -> Any:
    """``make(*a, **kw)`` (a detector) with its one-line error named by the option typed (``--bf: ...``)."""
    try:
        return make(*a, **kw)
    except ParameterError as err:
        raise ParameterError(f"{option}: {err}") from None


def _check_on_detector(ds: Any, items: list[tuple[str, Any]], follow: bool, source: str) -> tuple[float, float] | None:
    """Each virtual detector of the command line (``items``: the option as typed, e.g. ``--disk 500,500,3``, and
    its :class:`~stemgrains.virtual.Detector`) placed on the detector of ``ds`` before any work: one that covers no
    detector pixel is a one-line error naming the option and the detector's extent. Returns the beam centre
    (row, col) px used (:func:`~stemgrains.virtual.estimate_center`), or ``None`` when nothing needs it."""
    from ..virtual.api import estimate_center

    ky, kx = ds.detector_shape
    q = ds.calibration.q_pixel_size
    center = estimate_center(ds) if follow or any(d.relative_to_center for _, d in items) else None
    for text, det in items:
        try:
            det.weights(ds.detector_shape, center, q)
        except ParameterError as err:
            if "covers no detector pixel" not in str(err):
                raise ParameterError(f"{text}: {err}") from None
            where = (f"positions and radii in 1/Å from the beam centre ({center[0]:g}, {center[1]:g}) px, "
                     f"{q:g} 1/Å per px" if det.units == "q" else
                     f"radii in px about the beam centre ({center[0]:g}, {center[1]:g})" if center is not None
                     else "ROW, COL and R in detector pixels")
            raise ParameterError(f"{text}: covers no pixel of the {ky} x {kx} detector of {source}; expected a "
                                 f"detector overlapping rows 0–{ky - 1} and columns 0–{kx - 1} ({where})") from None
        if det.kind == "annulus" and center is not None:  # an R_OUT far past the detector was taken silently
            reach = max(np.hypot(r - center[0], c - center[1]) for r in (0, ky - 1) for c in (0, kx - 1))
            r_out = det.radii[1] / (q if det.units == "q" else 1.0)
            if r_out > 1.5 * reach:
                print(f"note: {text}: R_OUT reaches {r_out:.0f} px, past the detector's farthest pixel ({reach:.0f} px "
                      "from the beam centre): the annulus takes every pixel beyond R_IN", file=sys.stderr)
    return center


def value_range(img: np.ndarray) -> str:
    """``min …, max …`` of the finite pixels, and how many have no value: a pattern with non-finite counts under
    the detector gives a NaN pixel (numpy's min and max would print nan for the whole image)."""
    finite = np.isfinite(img)
    n_bad = int(img.size - finite.sum())
    if not finite.any():
        return f"no finite value: all {img.size} patterns hold non-finite counts under the detector"
    text = f"min {img[finite].min():.4g}, max {img[finite].max():.4g}"
    if n_bad:
        text += f"; {n_bad} of {img.size} positions NaN: their patterns hold non-finite counts under the detector"
    return text


def run(args: argparse.Namespace) -> int:
    from ..io import load_4d
    from ..io.images import IMAGE_OUTPUTS, write_image
    from ..virtual import annulus, bright_field, dark_field, mask_detector, virtual_image

    from ..io.outputs import check_outputs, refuse_results_of_another_input

    out = Path(args.output)
    if out.suffix.lower() not in IMAGE_OUTPUTS:
        raise ParameterError(f"-o {out}: output must end in .npy, .tif, .h5 or .png")
    check_outputs({"-o": out}, [args.input, args.mask, getattr(args, "calibration", None)])
    npy = out.suffix.lower() == ".npy"
    if not npy or out.is_dir():
        refuse_results_of_another_input(out, args.input, replace=args.force, what="the image", group="image")
    units = "q" if args.q_units else "px"
    typed: list[tuple[str, Any]] = []  # (option as typed, detector) of each detector to place before the work
    if args.bf is not None:
        det = _named("--bf", bright_field, args.bf, units=units)
        typed.append((f"--bf {args.bf:g}", det))
    elif args.annulus is not None:
        det = annulus(*parse_pair(args.annulus, "--annulus"), units=units)
        typed.append((f"--annulus {args.annulus}", det))
    elif args.disk:
        disks = [_triple(t) for t in args.disk]
        radii = {d[2] for d in disks}
        if len(radii) != 1:
            raise ParameterError(f"--disk: all disks of one image need the same radius, got {sorted(radii)}")
        det = _named("--disk", dark_field, [d[:2] for d in disks], disks[0][2], units=units)
        typed += [(f"--disk {t}", dark_field([d[:2]], d[2], units=units)) for t, d in zip(args.disk, disks)]
    else:
        mpath = Path(args.mask)
        if not mpath.is_file():
            raise FileFormatError(f"{mpath}: mask file not found")
        try:
            m = np.load(mpath, allow_pickle=False)
        except Exception:
            raise FileFormatError(f"{mpath}: not a readable .npy array (expected a (det_row, det_col) mask)") from None
        if args.q_units:
            raise ParameterError("--q-units does not apply to --mask (a mask is in detector pixels)")
        try:
            det = mask_detector(m)
        except StemgrainsError as err:
            raise ParameterError(f"--mask {mpath}: {err}") from None
        if not np.any(np.asarray(m) != 0):
            raise ParameterError(f"--mask {mpath}: the mask selects no detector pixel (all False or 0); expected a "
                                 "(det_row, det_col) mask with at least one non-zero pixel")
        typed.append((f"--mask {mpath}", det))  # its shape against the detector's, before any work
    scan_shape = parse_pair(args.scan_shape, "--scan-shape") if args.scan_shape else None
    ds = load_4d(args.input, scan_shape=None if scan_shape is None else tuple(int(v) for v in scan_shape),
                 **calibration_overrides(args))
    center = _check_on_detector(ds, typed, args.follow_center, args.input)
    if npy and not args.force:
        _refuse_other_npy(out, None, ds.scan_shape)
    # (load_4d is lazy) an unreadable input creates nothing; an unusable output folder fails here, before the work
    out.parent.mkdir(parents=True, exist_ok=True)
    img = virtual_image(ds, det, center=center, follow_center=args.follow_center, memory_mb=args.memory_mb,
                        progress=not args.no_progress)
    if npy and not args.force:
        _refuse_other_npy(out, img, ds.scan_shape)
    attrs = {"detector": det.kind, "radii": list(det.radii), "units": units,
             "follow_center": bool(args.follow_center)}
    if det.positions is not None:
        attrs["positions"] = det.positions.tolist()
    write_image(out, img, attrs=attrs, title=f"virtual {det.kind} ({Path(args.input).name})",
                pixel_size_nm=ds.calibration.scan_step_nm, input_path=args.input)
    print(f"virtual {det.kind} image {img.shape[0]} x {img.shape[1]} ({value_range(img)}) -> {out}")
    return 0
