"""Batches: one command over many 4D-STEM scans, with a summary table and figure.

``stemgrains index`` and ``stemgrains run`` given several inputs (files, shell globs — also quoted ones the
shell did not expand —, folders) run them through :func:`run_batch`:

* :func:`expand_inputs` turns the command-line items into the list of data files (folders: every file whose
  extension :func:`stemgrains.io.load_4d` reads, optionally recursive; our own outputs are left out).
* :func:`plan_outputs` gives each input its own subfolder of ``OUTDIR``, named after the input's stem;
  inputs with the same stem get the names of their parent folders prefixed (``a/scan.h5`` → ``a_scan``),
  then their extension appended, so the names do not depend on the order in which files are found;
  :func:`keep_earlier_folders` keeps the subfolder an earlier batch into ``OUTDIR`` gave an input, so a rerun
  with more or fewer inputs finds its results there whatever the other inputs are now.
* :func:`run_batch` runs ``job(input, folder, params) -> dict`` for every input — one after another, in a
  process pool (``jobs``), or on a ``dask.distributed`` cluster (``scheduler``) — and keeps
  ``OUTDIR/batch_summary.csv`` (rewritten atomically as each input finishes), ``OUTDIR/batch_summary.png`` and
  ``OUTDIR/batch_parameters.json`` (and, given ``config_toml``, ``OUTDIR/config.toml``: the effective config
  every input ran with). An input that fails is recorded with a one-line reason and never stops the
  others; Ctrl-C stops all, and the same command resumes.

Skipping and resuming
---------------------
Each input's folder holds :data:`DONE_MARKER`, a JSON record with the input's checksum
(:func:`input_checksum`), the fingerprint of the parameters (:func:`params_fingerprint`) and ``state``
(``"started"`` or ``"done"``, with the job's numbers). An input whose marker is ``done`` with the same checksum
and fingerprint is skipped (``force`` redoes it). An input that was ``started`` with the same checksum and
fingerprint resumes from its checkpoint (the job's own: ``.checkpoint`` / ``results.h5.partial``); with another
checksum or fingerprint, or with ``force``, the stale checkpoints are deleted first. A folder that holds files
but no marker was not written by a batch and is refused (a ``failed`` row) unless ``force``. A new input whose
name is the subfolder of an earlier input of ``OUTDIR`` (``batch_parameters.json``) gets the first free name
``NAME_2``, ``NAME_3``, … (:func:`keep_earlier_folders`). A folder whose marker records another input (another
path and another checksum) is never replaced, not even with ``force``: that input fails with a one-line reason
naming the folder and the input it holds.

One output folder, several batches
----------------------------------
A batch into a folder that holds a single ``run``'s results (``stemgrains_run.json``) is refused before any
work unless ``overwrite``, which deletes the files that run wrote
(:func:`stemgrains.io.outputs.claim_batch_folder`). A batch into the folder of an earlier batch of other inputs
keeps the earlier inputs: their rows stay in ``batch_summary.csv`` and their paths and subfolders in
``batch_parameters.json`` (merged by input); ``config.toml`` and the parameters recorded are the latest batch's
(each subfolder's :data:`DONE_MARKER` and results file keep their own).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import csv
import datetime as _dt
import glob
import hashlib
import io
import json
import multiprocessing
import os
import re
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._relrod import row_refine_label
from ._version import __version__
from .errors import ParameterError, StemgrainsError
from .io.outputs import (BATCH_CONFIG_TOML, BATCH_DONE_MARKER, BATCH_ERROR_LOG, BATCH_PARAMETERS, BATCH_SUMMARY_CSV,
                         BATCH_SUMMARY_PNG, REPLACED, RUN_CHECKPOINT)

__all__ = [
    "DONE_MARKER",
    "SUMMARY_CSV",
    "SUMMARY_PNG",
    "PARAMETERS_JSON",
    "CONFIG_TOML",
    "SUMMARY_COLUMNS",
    "expand_inputs",
    "plan_outputs",
    "keep_earlier_folders",
    "input_checksum",
    "params_fingerprint",
    "run_batch",
    "BatchResult",
]

DONE_MARKER = BATCH_DONE_MARKER
SUMMARY_CSV = BATCH_SUMMARY_CSV
SUMMARY_PNG = BATCH_SUMMARY_PNG
PARAMETERS_JSON = BATCH_PARAMETERS
#: the effective config of the batch (:mod:`stemgrains.settings`), given to ``run_batch(config_toml=...)``
CONFIG_TOML = BATCH_CONFIG_TOML
#: traceback of an input that failed with an unexpected error (not a StemgrainsError or OSError)
ERROR_LOG = BATCH_ERROR_LOG

#: names of checkpoints our commands keep in an output folder while they run
_CHECKPOINTS = (RUN_CHECKPOINT, "results.h5.partial")
#: files smaller than this are hashed whole; larger ones are sampled (see :func:`input_checksum`)
FULL_HASH_BYTES = 2 * 1024**3
_SAMPLE_BLOCKS = 256
_SAMPLE_BYTES = 1 << 16
_EDGE_BYTES = 4 << 20


def _labels_behaviours() -> tuple[tuple[str, ...], tuple[str, ...]]:
    from .boundaries import BEHAVIOURS, LABELS, OTHER_PHASE

    return (*LABELS, OTHER_PHASE), (*BEHAVIOURS, OTHER_PHASE)


def _col(prefix: str, name: str) -> str:
    return f"{prefix}_{name.replace(' ', '_').replace('-', '_')}"


def _summary_columns() -> tuple[str, ...]:
    labels, behaviours = _labels_behaviours()
    return (
        "input", "output", "status", "reason", "parameters", "seconds", "scan_rows", "scan_cols", "patterns_per_s",
        "indexed_percent", "median_reliability", "reliable_percent", "grain_reliable_percent", "excitation_error_sigma", "excitation_error_sigma_source",
        "refine_excitation_error_sigma", "refine_excitation_error_sigma_source", "phase_fit_warning", "warnings", "n_grains",
        "n_boundaries", "c_axis_uncertain_percent", *(_col("label_fraction", n) for n in labels),
        *(_col("behaviour_fraction", n) for n in behaviours),
    )


#: columns of ``batch_summary.csv``, in order (units in docs/data-dictionary.md)
SUMMARY_COLUMNS: tuple[str, ...] = _summary_columns()


# --------------------------------------------------------------------------------------------- inputs
def _is_glob(text: str) -> bool:
    return glob.has_magic(text)


def _results_file(p: Path) -> bool:
    """True for an HDF5 file holding ``/orientation``: a results file of ours, not 4D data."""
    if p.suffix.lower() not in (".h5", ".hdf5", ".hdf"):
        return False
    try:
        import h5py

        with h5py.File(p, "r") as f:
            return "orientation" in f and "data" not in f
    except (OSError, ValueError):
        return False


def _own_output(p: Path) -> bool:
    """Files and folders stemgrains writes: results, checkpoints, temporary files, batch markers."""
    parts = p.parts
    if any(x.endswith(".partial") or x == RUN_CHECKPOINT for x in parts[:-1]):
        return True
    name = p.name
    return name.startswith(".") or name.endswith((".partial", ".tmp")) or name == RUN_CHECKPOINT or _results_file(p)


def _readable(p: Path, exts: tuple[str, ...]) -> bool:
    return p.suffix.lower() in exts and (p.is_file() or (p.suffix.lower() == ".zspy" and p.is_dir()))


def _from_folder(folder: Path, recursive: bool, exts: tuple[str, ...]) -> list[Path]:
    found: list[Path] = []
    walker = os.walk(folder) if recursive else [(str(folder), [d.name for d in folder.iterdir() if d.is_dir()],
                                                  [f.name for f in folder.iterdir() if not f.is_dir()])]
    for root, dirs, files in walker:
        dirs[:] = sorted(d for d in dirs if not (d.startswith(".") or d.endswith(".partial") or d.lower().endswith(".zspy")))
        names = sorted(files) + sorted(d for d in os.listdir(root) if d.lower().endswith(".zspy")
                                       and os.path.isdir(os.path.join(root, d)))
        for name in names:
            p = Path(root) / name
            if _readable(p, exts) and not _own_output(p):
                found.append(p)
    return sorted(found)


def expand_inputs(items: Iterable[str | os.PathLike], recursive: bool = False) -> list[Path]:
    """The data files named by command-line items, in order, each once.

    Parameters
    ----------
    items
        File paths (taken as given, whatever their extension: the reader reports what it cannot read), folders
        (every file inside whose extension :func:`stemgrains.io.load_4d` reads, sorted by name) and glob
        patterns (``*``, ``?``, ``[...]``; also patterns the shell passed through unexpanded, quoted ones;
        ``**`` matches across folders when ``recursive``).
    recursive
        Also search the subfolders of folders.

    Returns
    -------
    list of Path
        The inputs, duplicates (same resolved path) removed, first occurrence kept. Inside folders and glob
        matches our own outputs are left out: results files (HDF5 with ``/orientation``), checkpoints
        (``*.partial``, ``.checkpoint``), temporary and hidden files.

    Raises
    ------
    ParameterError
        An item names nothing that exists, or a folder or pattern matches no readable file (one line naming
        the item and the extensions expected).
    """
    from .io.fourd import supported_extensions

    exts = tuple(e.lower() for e in supported_extensions())
    out: list[Path] = []
    seen: set[Path] = set()

    def add(p: Path) -> None:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            out.append(p)

    for item in items:
        text = os.fspath(item)
        p = Path(text)
        if p.is_dir() and not (p.suffix.lower() == ".zspy"):
            found = _from_folder(p, recursive, exts)
            if not found:
                raise ParameterError(f"{text}: folder holds no 4D-STEM file (expected {', '.join(exts)}"
                                     f"{'' if recursive else '; add --recursive to search its subfolders'})")
        elif p.exists():
            found = [p]
        elif _is_glob(text):
            found = []
            for m in sorted(glob.glob(text, recursive=recursive)):
                mp = Path(m)
                if mp.is_dir() and mp.suffix.lower() != ".zspy":
                    found.extend(_from_folder(mp, recursive, exts))
                elif _readable(mp, exts) and not _own_output(mp):
                    found.append(mp)
            if not found:
                raise ParameterError(f"{text}: matches no 4D-STEM file (expected {', '.join(exts)})")
        else:
            raise ParameterError(f"{text}: no such file or folder")
        for f in found:
            add(f)
    return out


def _safe_name(text: str) -> str:
    keep = "".join(c if (c.isalnum() or c in "-_.+") else "_" for c in text)
    return keep.strip("._") or "input"


def plan_outputs(inputs: Sequence[str | os.PathLike], outdir: str | os.PathLike) -> list[Path]:
    """One output folder per input, ``OUTDIR/<name>``, named after the input's stem.

    Collisions are resolved deterministically (the same names whatever the order of the inputs): inputs
    sharing a name get the names of their parent folders prefixed, one level at a time, until the names differ
    (``a/scan.h5``, ``b/scan.h5`` → ``a_scan``, ``b_scan``); names still equal (``scan.h5`` and ``scan.npy`` in
    one folder) get their extension appended (``scan_h5``, ``scan_npy``). Names use letters, digits and
    ``-_.+`` only.

    Parameters
    ----------
    inputs
        Input paths (from :func:`expand_inputs`).
    outdir
        The batch's output folder.

    Returns
    -------
    list of Path
        Folder per input, in the order of ``inputs``.
    """
    paths = [Path(p).resolve() for p in inputs]
    if len(set(paths)) != len(paths):
        raise ParameterError("the same input is given twice")
    depth = [0] * len(paths)
    with_ext = [False] * len(paths)

    def name(i: int) -> str:
        parents = paths[i].parent.parts[1:]  # without the root
        parts = [*parents[len(parents) - min(depth[i], len(parents)):], paths[i].stem]
        text = "_".join(_safe_name(x) for x in parts)
        return f"{text}_{_safe_name(paths[i].suffix.lstrip('.'))}" if with_ext[i] and paths[i].suffix else text

    names = [name(i) for i in range(len(paths))]
    while True:
        groups: dict[str, list[int]] = {}
        for i, n in enumerate(names):
            groups.setdefault(n.lower(), []).append(i)
        changed = False
        for g in (g for g in groups.values() if len(g) > 1):
            deeper = [i for i in g if depth[i] < len(paths[i].parent.parts) - 1]
            if len({paths[i].parent for i in g}) > 1 and deeper:
                for i in deeper:
                    depth[i] += 1
                changed = True
            elif not all(with_ext[i] for i in g):
                for i in g:
                    with_ext[i] = True
                changed = True
        names = [name(i) for i in range(len(paths))]
        if not changed:
            break
    # last resort (names equal up to case or characters replaced by "_"): numbered in path order
    used: set[str] = set()
    for i in sorted(range(len(paths)), key=lambda i: str(paths[i])):
        base, k = names[i], 2
        while names[i].lower() in used:
            names[i] = f"{base}_{k}"
            k += 1
        used.add(names[i].lower())
    out = Path(outdir)
    return [out / n for n in names]


def keep_earlier_folders(outdir: str | os.PathLike, inputs: Sequence[str | os.PathLike],
                         folders: Sequence[str | os.PathLike], checksums: dict[str, str] | None = None) -> list[Path]:
    """The subfolders of a batch into ``outdir`` where an earlier batch into it already ran some inputs.

    :func:`plan_outputs` names depend on the other inputs of the batch (``scan.h5`` alone is ``scan``, beside
    ``scan.npy`` it is ``scan_h5``). An input that an earlier batch into ``outdir`` ran (its
    ``batch_parameters.json`` lists the input's absolute path and its subfolder) keeps that subfolder, so a rerun
    with more or fewer inputs skips or resumes it instead of redoing it into a new folder. An input new to
    ``outdir`` with the content of an input the record lists at a path that no longer exists (the file moved or
    renamed, :func:`input_checksum`) takes that input's subfolder. Another whose planned name is the subfolder
    of another input (one the record lists, or one kept here) gets
    ``_2``, ``_3``, … appended (the first free name), so it never lands in another input's results; one whose
    content is that of the folder's input (the same file moved, :func:`input_checksum`) keeps the name.

    Parameters
    ----------
    outdir
        The batch's output folder (it may not exist yet).
    inputs, folders
        The inputs and their planned folders (:func:`plan_outputs`), in the same order.
    checksums
        :func:`input_checksum` by absolute input path, filled where one is computed here (the batch reuses them).

    Returns
    -------
    list of Path
        Folder per input, in the order of ``inputs``.
    """
    from .io.outputs import read_batch_parameters

    out = Path(outdir)
    record = read_batch_parameters(out) or {}
    old_in, old_out = record.get("inputs"), record.get("outputs")
    if not (isinstance(old_in, list) and isinstance(old_out, list) and len(old_in) == len(old_out)):
        return [Path(f) for f in folders]
    # plain names directly inside outdir only: a hand-edited record never sends results elsewhere
    earlier = {str(i): str(o) for i, o in zip(old_in, old_out)
               if isinstance(o, str) and o and Path(o).name == o and o not in (".", "..")}
    result: list[Path | None] = [None] * len(inputs)
    for k, src in enumerate(inputs):
        name = earlier.get(str(Path(src).resolve()))
        if name is not None:
            result[k] = out / name
    # an input moved since (its recorded path gone): a new input with its content takes its folder
    gone = sorted({n for i, n in earlier.items() if not Path(i).exists()} - {p.name for p in result if p is not None})
    for k, src in enumerate(inputs):
        if result[k] is None and gone:
            name = next((n for n in gone if _same_content(out / n, src, checksums)), None)
            if name is not None:
                result[k] = out / name
                gone.remove(name)
    kept = {p.name.lower() for p in result if p is not None}
    used = {n.lower() for n in earlier.values()} | kept
    for k, planned in enumerate(folders):
        if result[k] is not None:
            continue
        base, name, n = Path(planned).name, Path(planned).name, 2
        if name.lower() in used and name.lower() not in kept and _same_content(out / name, inputs[k], checksums):
            used.add(name.lower())  # the same content moved elsewhere is the same input: its folder
            result[k] = Path(planned)
            continue
        while name.lower() in used:
            name, n = f"{base}_{n}", n + 1
        used.add(name.lower())
        result[k] = Path(planned).with_name(name)
    return [p for p in result if p is not None]


def folder_files(folder: str | os.PathLike) -> dict[str, list[int]]:
    """The files of an input's subfolder as a finished job left them: relative path → [size in bytes], without
    the batch's own files (:data:`DONE_MARKER`, :data:`ERROR_LOG`), hidden ones (checkpoints, kept-aside
    results) and a user's versions kept as ``NAME.edited-<time>``. Sizes, not modification times: a batch folder
    copied elsewhere is still complete."""
    root = Path(folder)
    out: dict[str, list[int]] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or str(rel) in (DONE_MARKER, ERROR_LOG) or not p.is_file() \
                or ".edited-" in p.name:  # a user's version kept aside is theirs to delete
            continue
        out[rel.as_posix()] = [p.stat().st_size]
    return out


def changed_files(folder: str | os.PathLike, recorded: Any) -> dict[str, str]:
    """The files of :func:`folder_files` ``recorded`` when the job finished that are gone or changed in size in
    ``folder``: name → ``"gone"`` or ``"edited"``; {} where nothing was recorded (a marker of an older version)."""
    if not isinstance(recorded, dict):
        return {}
    now = folder_files(folder)
    return {name: "gone" if name not in now else "edited" for name, was in recorded.items()
            if name not in now or list(now[name]) != list(was)}


def _keep_edited_outputs(folder: Path, changed: dict[str, str]) -> list[str]:
    """Copies (:func:`stemgrains.io.outputs.keep_edited_copy`) of the files :func:`changed_files` found edited in
    an input's subfolder, before its job replaces them; not in a ``run`` folder (its manifest: the run keeps them
    itself). Returns the copies' names."""
    from .io.outputs import RUN_MANIFEST, keep_edited_copy

    if (folder / RUN_MANIFEST).is_file():
        return []
    return [keep_edited_copy(folder / name).name for name, how in changed.items()
            if how == "edited" and (folder / name).is_file()]


def _same_content(folder: Path, src: str | os.PathLike, checksums: dict[str, str] | None = None) -> bool:
    """True when ``folder``'s marker records the content of ``src`` (False when either cannot be read)."""
    marker = _read_marker(folder)
    try:
        return marker is not None and marker.get("checksum") == _checksum(src, checksums)
    except OSError:
        return False


def _checksum(src: str | os.PathLike, checksums: dict[str, str] | None) -> str:
    """:func:`input_checksum` of ``src``, taken from / kept in ``checksums`` (by absolute path) when given."""
    if checksums is None:
        return input_checksum(src)
    key = str(Path(src).resolve())
    if key not in checksums:
        checksums[key] = input_checksum(src)
    return checksums[key]


# --------------------------------------------------------------------------------------------- markers
def input_checksum(path: str | os.PathLike) -> str:
    """Content checksum of an input and its companion files (Merlin ``.hdr``, EMPAD ``.raw``).

    SHA-256 over, per file, its size and its whole content when it is at most :data:`FULL_HASH_BYTES`
    (2 GiB: about 1–3 s per GiB); above that its first and last 4 MiB and 256 evenly spaced 64 KiB blocks
    (24 MiB read, so a 100 GiB scan is checked in a second; a change confined to bytes between the samples
    goes unnoticed — use ``--force`` after editing such a file in place). A folder store (``.zspy``) is hashed
    over its files' relative names, sizes and modification times.

    Returns
    -------
    str
        ``"sha256:<hex>"`` (whole files) or ``"sha256-sampled:<hex>"``.
    """
    from .io.outputs import input_files

    h = hashlib.sha256()
    sampled = False
    for f in input_files(path):
        if f.is_dir():
            for root, _, files in sorted(os.walk(f)):
                for name in sorted(files):
                    p = Path(root) / name
                    st = p.stat()
                    h.update(f"{p.relative_to(f)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            continue
        size = f.stat().st_size
        h.update(f"{f.suffix.lower()}\0{size}\n".encode())
        with open(f, "rb") as fh:
            if size <= FULL_HASH_BYTES:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            else:
                sampled = True
                offsets = [0, size - _EDGE_BYTES]
                step = (size - 2 * _EDGE_BYTES) // (_SAMPLE_BLOCKS + 1)
                for off, n in [(offsets[0], _EDGE_BYTES), (offsets[1], _EDGE_BYTES)] + \
                        [(_EDGE_BYTES + (i + 1) * step, _SAMPLE_BYTES) for i in range(_SAMPLE_BLOCKS)]:
                    fh.seek(off)
                    h.update(fh.read(n))
    return f"{'sha256-sampled' if sampled else 'sha256'}:{h.hexdigest()}"


def params_fingerprint(params: Mapping[str, Any]) -> str:
    """SHA-256 (first 16 hex digits) of the parameters as canonical JSON (sorted keys).

    Keys starting with ``_`` (settings that do not change the results, e.g. ``_progress``) are left out.
    """
    from .io.results import json_default

    blob = json.dumps({k: v for k, v in params.items() if not str(k).startswith("_")}, sort_keys=True,
                      default=json_default)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _read_marker(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / DONE_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_marker(folder: Path, data: dict[str, Any]) -> None:
    from .io.results import atomic_write_text, json_default

    atomic_write_text(folder / DONE_MARKER, json.dumps(data, indent=2, sort_keys=True, default=json_default) + "\n")


def _clear_checkpoints(folder: Path) -> None:
    for name in _CHECKPOINTS:
        shutil.rmtree(folder / name, ignore_errors=True)


# --------------------------------------------------------------------------------------------- running
@dataclass
class BatchResult:
    """Outcome of :func:`run_batch`: one summary row per input (keys :data:`SUMMARY_COLUMNS`)."""

    rows: list[dict[str, Any]]
    outdir: Path
    seconds: float = 0.0
    summary_csv: Path | None = None
    summary_png: Path | None = None
    interrupted: bool = False
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.interrupted


def _one_line(err: BaseException) -> str:
    from .io.files import first_line

    text = first_line(err)
    if isinstance(err, StemgrainsError):
        return text
    if isinstance(err, OSError) and getattr(err, "filename", None):
        return f"{err.filename}: {err.strerror or text}"
    return f"{type(err).__name__}: {text}"


def _row_from(info: Mapping[str, Any]) -> dict[str, Any]:
    """Summary columns from a job's result dict (see :func:`run_batch`)."""
    row: dict[str, Any] = {}
    shape = info.get("scan_shape")
    if shape is not None:
        row["scan_rows"], row["scan_cols"] = int(shape[0]), int(shape[1])
    for key in ("patterns_per_s", "median_reliability", "excitation_error_sigma", "refine_excitation_error_sigma"):
        if info.get(key) is not None:
            row[key] = float(info[key])
    for key in ("excitation_error_sigma_source", "refine_excitation_error_sigma_source"):
        if info.get(key):
            row[key] = str(info[key])
    for key in ("indexed", "reliable", "grain_reliable"):
        if info.get(f"{key}_fraction") is not None:
            row[f"{key}_percent"] = 100.0 * float(info[f"{key}_fraction"])
    warnings = info.get("phase_fit_warnings") or []
    row["phase_fit_warning"] = " | ".join(str(w) for w in warnings)
    row["warnings"] = " | ".join(str(w) for w in info.get("warnings") or [])  # all of them, with the notes
    for key in ("n_grains", "n_boundaries"):
        if info.get(key) is not None:
            row[key] = int(info[key])
    if info.get("c_axis_uncertain_fraction") is not None:
        row["c_axis_uncertain_percent"] = 100.0 * float(info["c_axis_uncertain_fraction"])
    for prefix, key in (("label_fraction", "label_fraction"), ("behaviour_fraction", "behaviour_fraction")):
        for name, v in (info.get(key) or {}).items():
            row[_col(prefix, name)] = float(v)
    return row


_TEXT_COLUMNS = ("input", "output", "status", "reason", "parameters", "excitation_error_sigma_source",
                 "refine_excitation_error_sigma_source", "phase_fit_warning", "warnings")


def _parse_row(r: Mapping[str, str]) -> dict[str, Any]:
    """A row read back from ``batch_summary.csv``: numbers as floats, empty cells left out."""
    row: dict[str, Any] = {}
    for k, v in r.items():
        if k not in SUMMARY_COLUMNS or v in ("", None):
            continue
        if k in _TEXT_COLUMNS:
            row[k] = v
        else:
            with contextlib.suppress(ValueError):
                row[k] = float(v)
    return row


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _write_summary(outdir: Path, rows: list[dict[str, Any]]) -> Path:
    from .io.results import atomic_write_text

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(SUMMARY_COLUMNS)
    for r in rows:
        w.writerow([_fmt(r.get(c)) for c in SUMMARY_COLUMNS])
    path = outdir / SUMMARY_CSV
    atomic_write_text(path, buf.getvalue())
    return path


def read_summary(path: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a ``batch_summary.csv`` as dicts of strings (column → text)."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _worker_env(threads: int) -> dict[str, str]:
    return {"NUMBA_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
            "OPENBLAS_NUM_THREADS": str(threads)}


@contextlib.contextmanager
def _environ(values: Mapping[str, str]):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _guarded(job: Callable[..., dict], source: str, folder: str, params: dict) -> tuple[str, Any, float]:
    """Run one job: ``("done", its dict, seconds)``, or any exception but an interrupt as ``("failed", reason, seconds)``.

    Module-level, so it pickles for process pools and dask workers. ``params["_batch_folder"]`` (set by
    :func:`run_batch`) is the folder the job may write into (:func:`stemgrains.io.outputs.writing_into`).
    """
    from .io.outputs import writing_into

    t0 = time.perf_counter()
    try:
        # the job writes into the batch's folder (a run or batch folder other commands may not write into)
        with writing_into(params.get("_batch_folder")):
            return "done", dict(job(Path(source), Path(folder), params) or {}), time.perf_counter() - t0
    except KeyboardInterrupt:
        raise
    except BaseException as err:  # noqa: BLE001  (one bad input never stops the batch)
        from .cli import _interrupted

        if _interrupted(err):
            raise KeyboardInterrupt from err
        if not isinstance(err, (StemgrainsError, OSError)):
            # a bug rather than bad input: keep the traceback where the user can find it
            with contextlib.suppress(OSError):
                Path(folder).mkdir(parents=True, exist_ok=True)
                (Path(folder) / ERROR_LOG).write_text("".join(traceback.format_exception(err)), encoding="utf-8")
        return "failed", _one_line(err), time.perf_counter() - t0


def _guarded_on_worker(job: Callable[..., dict], source: str, folder: str, params: dict) -> tuple[str, Any, float]:
    """:func:`_guarded` on a dask worker: jobs on one worker process run one at a time unless numba's
    threading layer is thread-safe (see :func:`stemgrains._chunks.with_kernel_lock`)."""
    from ._chunks import with_kernel_lock

    return with_kernel_lock(_guarded, job, source, folder, params)


def run_batch(
    inputs: Sequence[str | os.PathLike],
    outdir: str | os.PathLike,
    job: Callable[[Path, Path, dict], dict],
    params: dict[str, Any],
    *,
    jobs: int = 1,
    scheduler: str | Any = None,
    force: bool = False,
    progress: bool = True,
    outputs: Sequence[str | os.PathLike] | None = None,
    log: Any = None,
    config_toml: str | None = None,
    overwrite: bool = False,
) -> BatchResult:
    """Run ``job`` on every input; one failing input never stops the others.

    Parameters
    ----------
    inputs
        Data files (from :func:`expand_inputs`).
    outdir
        Batch output folder: one subfolder per input (:func:`plan_outputs`), ``batch_summary.csv``,
        ``batch_summary.png``, ``batch_parameters.json`` (and ``config.toml``, see ``config_toml``).
    job
        ``job(input, folder, params) -> dict``, a module-level (picklable) function that processes one input
        into ``folder`` and returns its numbers: ``scan_shape`` (ny, nx), ``patterns_per_s`` (patterns per
        second of indexing), ``indexed_fraction`` (0–1), ``median_reliability`` (0–100), ``reliable_fraction`` and
        ``grain_reliable_fraction`` (0–1: reliability, grain_reliability ≥ 5),
        ``phase_fit_warnings`` (list of str), ``warnings`` (lines printed under the input's line: the
        calibration defaults note and the warnings; list of str), and for ``run`` ``n_grains``, ``n_boundaries``,
        ``label_fraction`` and ``behaviour_fraction`` ({name: length fraction}) and
        ``c_axis_uncertain_fraction`` (0–1 or None). Missing keys stay empty.
        It must resume from its own checkpoint when called again on an interrupted folder.
    params
        The job's parameters (JSON-able). Their fingerprint (:func:`params_fingerprint`) decides, with the
        input checksum, whether a done input is skipped. Keys starting with ``_`` are not fingerprinted.
    jobs
        Inputs processed at once in a process pool (spawn context; the job gets ``params["_progress"]`` False, and
        ``params["_serial"]`` True only when it runs in this process, where it may print); each worker gets
        ``NUMBA_NUM_THREADS = max(1, cores // jobs)``. 1: one after another in this process, all cores.
    scheduler
        A ``dask.distributed`` scheduler address (or a ``Client``): every input is a task on the cluster (the
        workers must see the input and output paths). Memory per task is that of one input's job (indexing
        streams its chunks of scan rows). An address is connected to before ``outdir`` is created or changed.
    force
        Redo inputs already done with the same content and parameters (and restart interrupted ones).
    progress
        Let a serial job show its own progress bars. The line per input (done, with where its results are;
        skipped; failed, with the reason) is printed either way: it is a result, not progress.
    outputs
        The folder per input; default :func:`plan_outputs`.
    log
        Text stream for the progress lines (default ``sys.stdout``).
    config_toml
        TOML text of the effective config the inputs run with (:func:`stemgrains.settings.config_to_toml`),
        written to ``OUTDIR/config.toml`` (:data:`CONFIG_TOML`) before any input runs; ``--config`` that file
        repeats the batch's parameters.
    overwrite
        ``outdir`` may hold a single run's results: they are deleted first (without it such a folder is refused;
        see :func:`stemgrains.io.outputs.claim_batch_folder`).

    Returns
    -------
    BatchResult
        Rows of these inputs (status ``done``, ``skipped``, ``failed`` with the reason, or ``pending`` when
        interrupted before the input ran), the summary paths, the time taken. Rows of other inputs of an earlier
        batch into ``outdir`` stay in ``batch_summary.csv`` but not here.

    Raises
    ------
    KeyboardInterrupt
        After the summary is written (finished inputs recorded, the others ``pending``); the same call resumes.
    ParameterError
        ``jobs`` < 1, ``outdir`` is a file, an output is an input, ``outdir`` is or lies inside the folder of a
        ``run`` or of another batch (:func:`stemgrains.io.outputs.refuse_run_folders`; its own folder from an
        earlier batch is not refused), or ``outdir`` holds a single run's results and ``overwrite`` is False.
    StemgrainsError
        ``scheduler`` cannot be reached (nothing created).
    """
    if int(jobs) != jobs or jobs < 1:
        raise ParameterError(f"--jobs expects a whole number ≥ 1, got {jobs!r}")
    jobs = int(jobs)
    out = Path(outdir)
    log = log if log is not None else sys.stdout
    inputs = [Path(p) for p in inputs]
    checksums: dict[str, str] = {}  # each input hashed once per batch
    folders = [Path(p) for p in outputs] if outputs is not None else \
        keep_earlier_folders(out, inputs, plan_outputs(inputs, out), checksums)
    _check_outdir(out, inputs, folders)
    client, own_client = _connect(scheduler)  # before anything is created or deleted: an unreachable one leaves no trace
    try:
        return _run_batch_into(out, inputs, folders, job, params, jobs=jobs, client=client, force=force, known=checksums,
                               progress=progress, log=log, config_toml=config_toml, overwrite=overwrite)
    finally:
        if own_client:
            client.close()


def _run_batch_into(out: Path, inputs: list[Path], folders: list[Path], job: Callable[[Path, Path, dict], dict],
                    params: dict[str, Any], *, jobs: int, client: Any, force: bool, progress: bool, log: Any,
                    config_toml: str | None, overwrite: bool, known: dict[str, str] | None = None) -> BatchResult:
    """:func:`run_batch` once its outputs are checked and its scheduler is connected (``client``, or None);
    ``known``: input checksums already computed (by absolute path)."""
    fingerprint, earlier, other_params = _start_outdir(out, inputs, folders, params, config_toml, overwrite)
    # the jobs write into this batch's folder and its subfolders (run folders of their own)
    params = dict(params, _batch_folder=str(out.resolve()))
    t_batch = time.perf_counter()

    def say(text: str) -> None:  # with or without progress bars (--no-progress): these lines are the results
        print(text, file=log, flush=True)

    if other_params:
        say(f"note: {other_params} earlier input(s) of {out} ran with other parameters: batch_parameters.json and "
            "config.toml now record this batch's, each subfolder's batch_done.json and results its own")
    planned: dict[int, str] = {}  # the lines of inputs skipped or failed before running, printed in input order
    rows, todo, checksums = _plan_inputs(inputs, folders, fingerprint, force, planned.__setitem__, known,
                                         recover=getattr(job, "recover", None))

    def say_planned(upto: int) -> None:
        for i in sorted(k for k in planned if k < upto):
            say(planned.pop(i))

    _write_summary(out, earlier + rows)
    started, finished = _job_callbacks(out, inputs, folders, rows, checksums, fingerprint, say, earlier)
    interrupted = False
    try:
        if client is not None or (jobs > 1 and len(todo) > 1):
            say_planned(len(inputs))  # lines come as inputs finish, in any order
            if client is not None:
                _run_distributed(todo, inputs, folders, job, params, client, started, finished)
            else:
                _run_pool(todo, inputs, folders, job, params, jobs, started, finished)
        else:
            for i in todo:
                say_planned(i + 1)  # the lines of the inputs before it, and its own note (why it is redone)
                started(i)
                finished(i, *_guarded(job, str(inputs[i]), str(folders[i]), dict(params, _progress=progress, _serial=True)))
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        say_planned(len(inputs))
        result = _finish_batch(out, rows, time.perf_counter() - t_batch, interrupted, earlier)
    return result


def _check_outdir(out: Path, inputs: list[Path], folders: list[Path]) -> None:
    """Refuse outputs that are inputs, or lie in the folder of a ``run`` or of another batch (before any work)."""
    from .io.outputs import check_outputs

    check_outputs({f"-o {out}": out, **{f"-o (for {i})": f for i, f in zip(inputs, folders)}}, inputs, own=out)


def _connect(scheduler: Any) -> tuple[Any, bool]:
    """The ``dask.distributed`` client of ``scheduler`` (an address, connected here, or a ``Client``, used as it
    is) and whether it is ours to close; ``(None, False)`` without a scheduler."""
    if scheduler is None:
        return None, False
    if not isinstance(scheduler, str):
        return scheduler, False
    from .pipeline import connect_scheduler

    return connect_scheduler(scheduler), True


def _start_outdir(out: Path, inputs: list[Path], folders: list[Path], params: dict[str, Any],
                  config_toml: str | None, overwrite: bool) -> tuple[str, list[dict[str, Any]], int]:
    """Claim ``out`` (:func:`stemgrains.io.outputs.claim_batch_folder`), create it and write
    ``batch_parameters.json`` (and ``config.toml``); returns the parameters' fingerprint, the summary rows of
    an earlier batch's other inputs (kept, see the module docstring) and how many of those ran with other
    parameters (another fingerprint)."""
    from .io.outputs import claim_batch_folder, read_batch_parameters
    from .io.results import atomic_write_text, json_default

    record = read_batch_parameters(out) or {}
    _refuse_other_command(out, record, params)
    claim_batch_folder(out, inputs, overwrite=overwrite)
    earlier_inputs, earlier_outputs, earlier = _earlier_inputs(out, record, inputs, folders)
    out.mkdir(parents=True, exist_ok=True)
    fingerprint = params_fingerprint(params)
    atomic_write_text(out / PARAMETERS_JSON, json.dumps(
        {"software_version": __version__, "fingerprint": fingerprint,
         "parameters": {k: v for k, v in params.items() if not str(k).startswith("_")},
         "inputs": [str(p.resolve()) for p in inputs] + earlier_inputs,
         "outputs": [f.name for f in folders] + earlier_outputs},
        indent=2, sort_keys=True, default=json_default) + "\n")
    if config_toml is not None:
        atomic_write_text(out / CONFIG_TOML, config_toml)
    before = record.get("fingerprint")
    return fingerprint, earlier, len(earlier_inputs) if before not in (None, fingerprint) else 0


def _refuse_other_command(out: Path, record: dict[str, Any], params: dict[str, Any]) -> None:
    """A one-line ParameterError when ``out`` is the batch folder (``record``: its batch_parameters.json) of
    another command (an ``index`` batch into a ``run`` batch's folder would replace each input's full results by
    an orientation map)."""
    recorded = record.get("parameters")
    before = recorded.get("command") if isinstance(recorded, dict) else None
    now = params.get("command")
    if before and now and before != now:
        raise ParameterError(f"-o {out}: is the batch folder of `stemgrains {before}` (batch_parameters.json); "
                             f"choose another folder for this {now} batch")


def _earlier_inputs(out: Path, record: dict[str, Any], inputs: list[Path],
                    folders: list[Path] = ()) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """The inputs of an earlier batch into ``out`` that are not among ``inputs`` and whose subfolder none of
    ``folders`` takes (an input moved: :func:`keep_earlier_folders`): their absolute paths, their subfolders' names
    (from ``record``, its ``batch_parameters.json``) and their rows of ``batch_summary.csv``."""
    old_in, old_out = record.get("inputs"), record.get("outputs")
    pairs = list(zip(old_in, old_out)) if isinstance(old_in, list) and isinstance(old_out, list) \
        and len(old_in) == len(old_out) else []
    now = {str(p.resolve()) for p in inputs}
    taken = {Path(f).name for f in folders}
    now |= {str(i) for i, o in pairs if str(o) in taken}  # their rows go too
    kept = [(str(i), str(o)) for i, o in pairs if str(i) not in now]
    try:
        old_rows = read_summary(out / SUMMARY_CSV)
    except (OSError, ValueError, csv.Error):
        old_rows = []
    by_output: dict[str, list[str]] = {}
    for i, o in pairs:
        by_output.setdefault(str(o), []).append(str(i))

    def resolved(r: dict[str, str]) -> str:
        # the input as its batch resolved it (the record of its subfolder), else as written in the row
        claimed = by_output.get(Path(r.get("output") or "").name, [])
        return claimed[0] if len(claimed) == 1 else str(Path(r.get("input") or "").resolve())

    rows = [_parse_row(r) for r in old_rows if r.get("input") and resolved(r) not in now]
    return [i for i, _ in kept], [o for _, o in kept], rows


def _plan_inputs(inputs: list[Path], folders: list[Path], fingerprint: str, force: bool,
                 note: Callable[[int, str], None], known: dict[str, str] | None = None,
                 recover: Callable[[Path, dict[str, str]], dict[str, Any] | None] | None = None,
                 ) -> tuple[list[dict[str, Any]], list[int], dict[int, str]]:
    """Summary rows (``pending``, or ``skipped``/``failed`` already), the indices of the inputs to run and the
    inputs' content checksums (``known``: those already computed, by absolute path); ``note(i, line)`` gets the
    line of each input skipped or failed here. ``recover(folder, {"checksum", "fingerprint"})`` (the job's
    ``recover`` attribute, where it has one) gives the result dict of a subfolder that lost its :data:`DONE_MARKER`
    but holds this input's finished results made with these parameters (they are then skipped, and the marker
    written again), None otherwise (they are redone)."""
    rows: list[dict[str, Any]] = [{"input": str(p.resolve()), "output": str(f.resolve()), "status": "pending"}
                                  for p, f in zip(inputs, folders)]  # absolute: readable from anywhere later
    todo: list[int] = []
    checksums: dict[int, str] = {}
    n = len(inputs)
    for i, (src, folder) in enumerate(zip(inputs, folders)):
        try:
            checksums[i] = _checksum(src, known)
        except OSError as err:
            rows[i].update(status="failed", reason=_one_line(err))
            note(i, f"[{i + 1}/{n}] {src}: failed: {rows[i]['reason']}")
            continue
        marker = _read_marker(folder)
        if _holds_another_input(marker, src, checksums[i]):
            rows[i].update(status="failed", reason=f"{folder}: holds the results of another input "
                                                   f"({marker.get('input')}); move that folder or choose another -o")
            note(i, f"[{i + 1}/{n}] {src}: failed: {rows[i]['reason']}")
            continue
        same = marker is not None and marker.get("checksum") == checksums[i] and marker.get("fingerprint") == fingerprint
        changed = changed_files(folder, marker.get("files")) if same and marker.get("state") == "done" else {}
        if changed and not force:  # redone; an edited file is kept as NAME.edited-<time> first (a run does it itself)
            first = next(iter(changed))
            more = f" and {len(changed) - 1} more" if len(changed) > 1 else ""
            kept = _keep_edited_outputs(folder, changed)
            note(i, f"[{i + 1}/{n}] {src}: its results changed since they were written ({first} {changed[first]}{more}): "
                    "redone"
                 + (f"; your version{'s are' if len(kept) > 1 else ' is'} kept as {', '.join(kept)}" if kept else ""))
        elif same and marker.get("state") == "done" and not force:
            rows[i].update(_row_from(marker.get("result", {})), status="skipped", parameters=fingerprint,
                           reason=f"done {marker.get('finished', '')} with the same content and parameters".strip(),
                           seconds=0.0)
            note(i, f"[{i + 1}/{n}] {src}: skipped (done before, same content and parameters)" + "".join(
                f"\n    {w}" for w in (marker.get("result") or {}).get("warnings") or []))  # as when it was done
            continue
        if marker is None and folder.is_dir() and any(folder.iterdir()) and not force and _results_of(folder, src):
            found = recover(folder, {"checksum": checksums[i], "fingerprint": fingerprint}) if recover else None
            if found is not None:  # its own record says: this content, these parameters, complete and unchanged
                _write_marker(folder, {"state": "done", "input": str(src.resolve()), "checksum": checksums[i],
                                       "fingerprint": fingerprint, "software_version": __version__, "result": found,
                                       "finished": _now(), "files": folder_files(folder), "recovered": True})
                rows[i].update(_row_from(found), status="skipped", parameters=fingerprint, seconds=0.0,
                               reason=f"done before with the same content and parameters (its run manifest says so; "
                                      f"{DONE_MARKER} was missing and is written again)")
                note(i, f"[{i + 1}/{n}] {src}: skipped ({folder} lost its {DONE_MARKER}, but its run manifest records "
                        "this content and these parameters, complete; the marker is written again)")
                continue
            note(i, f"[{i + 1}/{n}] {src}: {folder} holds its results but no {DONE_MARKER} (deleted?), and nothing "
                    "there records with which parameters they were made: redone")
        elif marker is None and folder.is_dir() and any(folder.iterdir()) and not force:
            rows[i].update(status="failed", reason=f"{folder}: holds files this batch did not write; move them, "
                                                   "choose another -o, or add --force")
            note(i, f"[{i + 1}/{n}] {src}: failed: {rows[i]['reason']}")
            continue
        if marker is not None and marker.get("checksum") not in (None, checksums[i]) and marker.get("state") == "done":
            note(i, f"[{i + 1}/{n}] {src}: its content changed since its results in {folder} were made: they are "
                    "replaced")
        elif marker is not None and marker.get("fingerprint") not in (None, fingerprint) and marker.get("state") == "done":
            note(i, f"[{i + 1}/{n}] {src}: its results in {folder} were made with other parameters: they are replaced")
        if force or not same:
            _clear_checkpoints(folder)  # another content or parameters: nothing of the old run is reusable
        todo.append(i)
    return rows, todo, checksums


def _results_of(folder: Path, src: Path) -> bool:
    """True when ``folder`` holds results of ours made from ``src``: a ``run`` folder whose manifest records it, or
    a ``results.h5`` that records it (:func:`stemgrains.io.outputs.recorded_input`): a subfolder of this batch that
    lost its :data:`DONE_MARKER`, not someone else's files."""
    from .io.outputs import RUN_MANIFEST, recorded_input

    me = str(src.resolve())
    try:
        manifest = json.loads((folder / RUN_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = None
    if isinstance(manifest, dict):
        return manifest.get("input") == me
    return (folder / "results.h5").is_file() and recorded_input(folder / "results.h5", "orientation") == me


def _holds_another_input(marker: dict[str, Any] | None, src: Path, checksum: str) -> bool:
    """True when a subfolder's marker records another input: another path and another content (the same content
    moved elsewhere is the same input)."""
    if marker is None or not marker.get("input"):
        return False
    return str(marker["input"]) != str(src.resolve()) and marker.get("checksum") != checksum


#: a temporary file of :func:`stemgrains.io.results.atomic_path` (``.NAME.XXXXXXXX.tmp``, ``.STEM.XXXXXXXX.EXT``)
_TEMPORARY = re.compile(r"^\.(?P<base>.+)\.[a-z0-9_]{8}(?P<ext>\.tmp|\.png|\.h5|\.csv|\.json|\.toml|\.txt)$")


def _remove_temporaries(folder: Path) -> None:
    """The temporary files a job of an interrupted batch left half-written in its subfolder (its worker was ended
    while writing: :func:`_stop_workers`); the subfolder is the batch's alone."""
    with contextlib.suppress(OSError):
        for p in folder.iterdir():
            if _TEMPORARY.match(p.name) and p.is_file():
                with contextlib.suppress(OSError):
                    p.unlink()


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _job_callbacks(out: Path, inputs: list[Path], folders: list[Path], rows: list[dict[str, Any]],
                   checksums: dict[int, str], fingerprint: str, say: Callable[[str], None],
                   earlier: list[dict[str, Any]]) -> tuple[Callable[[int], None], Callable[[int, str, Any, float], None]]:
    """``started(i)`` (folder, marker) and ``finished(i, status, value, seconds)`` (row, marker, progress line,
    summary, with the ``earlier`` batches' rows first) of the runners."""
    n = len(inputs)

    def started(i: int) -> None:
        folders[i].mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            (folders[i] / ERROR_LOG).unlink()  # of an earlier failure
        _remove_temporaries(folders[i])
        _write_marker(folders[i], {"state": "started", "input": str(inputs[i].resolve()), "checksum": checksums[i],
                                   "fingerprint": fingerprint, "software_version": __version__,
                                   "started": _now()})

    def finished(i: int, status: str, value: Any, seconds: float) -> None:
        row = rows[i]
        row["seconds"] = seconds
        if status == "done":
            row.update(_row_from(value), status="done", reason="", parameters=fingerprint)
            m = _read_marker(folders[i]) or {}
            m.update(state="done", result=value, finished=_now(), seconds=seconds, files=folder_files(folders[i]))
            _write_marker(folders[i], m)
            extra = f", indexed {row['indexed_percent']:.1f} %" if row.get("indexed_percent") is not None else ""
            if row.get("excitation_error_sigma") is not None:  # the relrod width of this scan, and how it was found
                extra += (f", relrod width σ_s {row['excitation_error_sigma']:g} 1/Å "
                          f"({row.get('excitation_error_sigma_source') or 'set'})")
                refine = row_refine_label(row)
                if refine is not None and refine != "none":  # (a set width not applied: "none (...)", said)
                    extra += f", final refinement: {refine}"
            say(f"[{i + 1}/{n}] {inputs[i]}: done in {seconds:.1f} s{extra} → {folders[i]}")
            for line in value.get("warnings") or []:  # the calibration note and warnings of this input
                say(f"    {line}")
        else:
            row.update(status="failed", reason=str(value))
            say(f"[{i + 1}/{n}] {inputs[i]}: failed: {value}")
            m = _read_marker(folders[i])
            if m is not None:
                m.update(state="failed", reason=str(value), finished=_now())
                _write_marker(folders[i], m)
        _write_summary(out, earlier + rows)

    return started, finished


def _finish_batch(out: Path, rows: list[dict[str, Any]], seconds: float, interrupted: bool,
                  earlier: list[dict[str, Any]]) -> BatchResult:
    """The summary CSV and figure written (the ``earlier`` batches' rows first), and the :class:`BatchResult`."""
    _write_summary(out, earlier + rows)
    png = None
    with contextlib.suppress(Exception):  # the figure never hides the outcome
        from .plot.batch import plot_batch_summary

        png = plot_batch_summary(earlier + rows, out / SUMMARY_PNG)
    counts = {s: sum(r["status"] == s for r in rows) for s in ("done", "skipped", "failed", "pending")}
    if not interrupted:  # the single run's results this batch replaced (--overwrite): no longer needed
        shutil.rmtree(out / REPLACED, ignore_errors=True)
    return BatchResult(rows=rows, outdir=out, seconds=seconds, summary_csv=out / SUMMARY_CSV,
                       summary_png=png, interrupted=interrupted, counts=counts)


def _submit_each(todo: list[int], started: Callable[[int], None], submit: Callable[[int], Any],
                 futures: dict[Any, int], t0: dict[int, float]) -> None:
    """``started(i)`` and ``submit(i)`` for every input to run, in order; ``futures`` maps each future to its
    input, ``t0`` each input to its start time (filled as they go: an interruption cancels those submitted)."""
    for i in todo:
        started(i)
        t0[i] = time.perf_counter()
        futures[submit(i)] = i


def _run_pool(todo, inputs, folders, job, params, jobs, started, finished) -> None:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = max(1, cores // jobs)
    # spawn (not fork: numba's threads and open HDF5 files do not survive a fork; not forkserver: its server keeps
    # the environment of the first pool) — the workers start with these in their environment (numba reads
    # NUMBA_NUM_THREADS on import)
    ctx = multiprocessing.get_context("spawn")
    with _environ(_worker_env(threads)):
        pool = cf.ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=ctx, initializer=_ignore_sigint)
        futures: dict[Any, int] = {}
        t0: dict[int, float] = {}
        recorded: set[int] = set()
        try:
            _submit_each(todo, started, lambda i: pool.submit(_guarded, job, str(inputs[i]), str(folders[i]),
                                                              dict(params, _progress=False)), futures, t0)
            for fut in cf.as_completed(futures):
                i = futures[fut]
                try:
                    status, value, seconds = fut.result()
                except cf.process.BrokenProcessPool as err:
                    status, value, seconds = "failed", f"worker process died ({_one_line(err)})", time.perf_counter() - t0[i]
                recorded.add(i)
                finished(i, status, value, seconds)
        except BaseException:
            # inputs that finished before the interrupt (not yet taken from the queue) are recorded as done, so a
            # rerun skips them
            for fut, i in futures.items():
                if i not in recorded and fut.done() and not fut.cancelled() and fut.exception() is None:
                    status, value, seconds = fut.result()
                    if status == "done":
                        finished(i, status, value, seconds)
            _stop_workers(pool)
            raise
        pool.shutdown(wait=True)


def _ignore_sigint() -> None:
    """Initializer of a batch's worker processes: Ctrl-C (SIGINT, sent to the whole process group) is the
    batch's to handle; a worker that took it would record its job as failed and go on with the next one. Its
    progress bars get a thread lock: tqdm's default one is a named semaphore that a worker ended by
    :func:`_stop_workers` leaves behind ("resource_tracker: There appear to be 2 leaked semaphore objects")."""
    import signal
    import threading

    from tqdm import tqdm

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tqdm.set_lock(threading.RLock())


def _stop_workers(pool: cf.ProcessPoolExecutor) -> None:
    """An interrupted batch's pool stopped now: queued jobs cancelled, running ones ended (their workers
    terminated; a job resumes from its checkpoint on the rerun, and every write of ours is atomic). Waiting for
    them instead kept the interrupted batch running for the length of a job, and finished jobs that nobody
    recorded: the rerun redid them."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # the executor has no public handle
    for proc in processes:
        with contextlib.suppress(Exception):
            proc.terminate()
    for proc in processes:
        with contextlib.suppress(Exception):
            proc.join(5)
    pool.shutdown(wait=True, cancel_futures=True)  # its workers gone: returns at once, its queues released


def _run_distributed(todo, inputs, folders, job, params, client, started, finished) -> None:
    """Every input to run as a task on the cluster of ``client`` (a ``dask.distributed`` client, connected
    by :func:`run_batch`)."""
    from ._chunks import _import_distributed

    dist = _import_distributed()
    futures: dict[Any, int] = {}
    t0: dict[int, float] = {}
    try:
        # absolute paths: a worker's working folder is not ours
        _submit_each(todo, started, lambda i: client.submit(
            _guarded_on_worker, job, str(inputs[i].resolve()), str(folders[i].resolve()), dict(params, _progress=False),
            pure=False, key=f"stemgrains-batch-{i}-{folders[i].name}-{time.time_ns()}"), futures, t0)
        for fut in dist.as_completed(list(futures)):
            i = futures[fut]
            try:
                status, value, seconds = fut.result()
            except Exception as err:  # noqa: BLE001  (a worker lost, a task that could not be unpickled …)
                status, value, seconds = "failed", f"on the cluster: {_one_line(err)}", time.perf_counter() - t0[i]
            finished(i, status, value, seconds)
    except BaseException:
        for fut in futures:
            with contextlib.suppress(Exception):
                fut.cancel()
        raise


def format_result(result: BatchResult) -> str:
    """One line: counts per status, the time, where the summary is; then the relrod widths σ_s the scans were
    indexed with (how many scans each, and how it was found) and the failed inputs."""
    c = result.counts
    parts = [f"{c.get('done', 0)} done", f"{c.get('skipped', 0)} skipped", f"{c.get('failed', 0)} failed"]
    if c.get("pending"):
        parts.append(f"{c['pending']} not run")
    line = f"batch: {', '.join(parts)} in {result.seconds:.1f} s → {result.summary_csv}"
    widths: dict[tuple[float, str], int] = {}  # the relrod widths σ_s the scans were indexed with, and how found
    for r in result.rows:
        if r.get("excitation_error_sigma") is not None and r.get("status") in ("done", "skipped"):
            key = (float(r["excitation_error_sigma"]), str(r.get("excitation_error_sigma_source") or "set"))
            widths[key] = widths.get(key, 0) + 1
    if widths:
        line += "\n  relrod width σ_s: " + "; ".join(
            f"{s:g} 1/Å ({how}) for {n} scan{'s' if n > 1 else ''}" for (s, how), n in sorted(widths.items())) + \
            " (per scan: column excitation_error_sigma)"
    finals: dict[str, int] = {}  # the final refinements' widths (none: σ_s kept)
    for r in result.rows:
        key = row_refine_label(r) if r.get("status") in ("done", "skipped") else None
        if key is not None:
            finals[key] = finals.get(key, 0) + 1
    if finals:
        line += "\n  final refinement: " + "; ".join(
            f"{k} for {n} scan{'s' if n > 1 else ''}" for k, n in sorted(finals.items())) + \
            " (per scan: columns refine_excitation_error_sigma and refine_excitation_error_sigma_source)"
    warned = [r for r in result.rows if r.get("status") in ("done", "skipped") and str(r.get("warnings") or "")]
    if warned:
        n_warn = sum("warning:" in str(r["warnings"]) for r in warned)
        n_note = sum("note:" in str(r["warnings"]) for r in warned)
        said = [f"{n_warn} with warnings" if n_warn else "", f"{n_note} with a calibration note" if n_note else ""]
        line += (f"\n  of the scans: {', '.join(x for x in said if x)} (the lines under their results above; column "
                 "warnings of batch_summary.csv, ! in batch_summary.png)")
    for r in result.failed:
        reason = str(r.get("reason", ""))
        line += f"\n  failed: {reason}" if _names_input(reason, r["input"]) else f"\n  failed: {r['input']}: {reason}"
    return line


def _names_input(reason: str, path: Any) -> bool:
    """Whether a failure's one-line ``reason`` starts by naming the input ``path`` (as given or relative to the
    working folder: ``bad.h5: q_pixel_size ...``), so that the input is not named twice."""
    head = reason.split(": ", 1)[0]
    try:
        return bool(head) and (head == str(path) or Path(head).resolve() == Path(path).resolve())
    except (OSError, RuntimeError, ValueError):
        return False
