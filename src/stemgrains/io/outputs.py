"""Output paths that never destroy data: checks against the inputs, and the manifest of a ``run`` folder.

* :func:`check_outputs` refuses an output path that is an input file — the same path, a symbolic link to it,
  a hard link to it, or a companion file the input is read together with (Merlin ``.hdr`` of a ``.mib``,
  EMPAD ``.raw`` of an ``.xml``) —, two outputs that are the same file, and an output inside the folder of a
  ``run`` or a batch (:func:`refuse_run_folders`) unless the caller is that run or batch (``own=``, or
  :func:`writing_into` around a batch's jobs). Called before any work is done.
* :func:`prepare_run_folder` / :func:`finish_run_folder` keep ``OUTDIR/stemgrains_run.json``, the manifest of
  what ``stemgrains run`` wrote into a folder and from which input. A folder holding the results of another
  run is refused unless ``overwrite=True``, and then the files the earlier run wrote are moved out of the way
  first (into ``OUTDIR/``:data:`REPLACED`, deleted when the new run finishes, put back where it is refused before
  writing anything), so no stale figure or table of another dataset is left beside the new ones and a run that
  fails does not take the earlier results with it. An interrupted run of the same input
  (manifest not marked complete) resumes without ``overwrite``. The manifest also records the input's checksum
  and the parameters' fingerprint (those of :mod:`stemgrains.batch`): :func:`completed_run` recognises a
  finished run of the same content and parameters, which the CLI does not redo, as long as every file it wrote
  still has the size and modification time (or, copied with new times, the content) recorded when it finished.
  A batch folder (:data:`BATCH_PARAMETERS`) is refused the same way, and with ``overwrite`` the batch's files and
  its inputs' subfolders are removed first.
* :func:`refuse_run_folders` keeps the outputs of other commands out of run and batch folders (every output
  :func:`check_outputs` sees, and a results file a command would update in place).
* :func:`claim_batch_folder` is the converse for a batch (:mod:`stemgrains.batch`): a folder holding the results
  of a single run is refused unless ``overwrite``, which removes the files that run wrote.

* :func:`refuse_results_of_another_input` (``-o``), :func:`refuse_foreign_side_output` (``--csv`` tables,
  ``--export-ang``/``--export-ctf``) and :func:`refuse_foreign_calibration` (the ``*calibration.json``/``.png``
  of ``--auto-calibrate``) replace an existing file only when it is ours for the same input, unless
  ``--force``; :func:`describe_file` says what a refused file is, :func:`require_suffix` checks extensions.

Every file itself is written under a temporary name and renamed (:mod:`stemgrains.io.results`).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as _dt
import json
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .._version import __version__
from ..errors import ParameterError

__all__ = [
    "input_files",
    "keep_edited_copy",
    "same_file",
    "groups_held",
    "check_outputs",
    "RUN_MANIFEST",
    "RUN_OUTPUTS",
    "prepare_run_folder",
    "finish_run_folder",
    "abandon_run_folder",
    "completed_run",
    "BATCH_SUMMARY_CSV",
    "BATCH_SUMMARY_PNG",
    "BATCH_PARAMETERS",
    "BATCH_CONFIG_TOML",
    "read_batch_parameters",
    "claim_batch_folder",
    "refuse_run_folders",
    "writing_into",
    "IMAGE_INPUT_KEY",
    "recorded_input",
    "refuse_results_of_another_input",
    "refuse_results_of_other_data",
    "require_suffix",
    "describe_file",
    "CSV_TABLES",
    "is_our_csv",
    "refuse_foreign_side_output",
    "refuse_foreign_calibration",
    "CSV_RECORD_ATTR",
    "record_csv_tables",
    "csv_recorded",
    "run_folder_files",
    "FIGURE_KIND_KEY",
    "export_input_line",
    "require_output_folder",
    "record_folder",
    "FILES_WRITTEN_KEY",
    "files_written_record",
    "refuse_foreign_recorded_outputs",
]

#: manifest of a ``stemgrains run`` output folder
RUN_MANIFEST = "stemgrains_run.json"
#: every file name ``stemgrains run`` may write into its folder (removed with ``overwrite`` when no manifest
#: lists what an earlier run wrote)
RUN_OUTPUTS = (
    "results.h5",
    "boundaries.csv",
    "segments.csv",
    "summary.json",
    "config.toml",
    "orientation_ipf_z.png",
    "correlation_index.png",
    "reliability.png",
    "grains_ipf.png",
    "grains_random.png",
    "misorientation_histogram.png",
    "grain_traces.png",
    "boundary_behaviour.png",
    "boundary_table.png",
    "transport_current.png",
    "transport_potential.png",
    "transport_mismatch.png",
)
RUN_CHECKPOINT = ".checkpoint"
#: the folder inside a run folder where ``overwrite`` keeps the results of the run being replaced until the new run
#: finishes (:func:`finish_run_folder` deletes it; a run refused before writing anything puts them back)
REPLACED = ".stemgrains_replaced"
#: the files a batch writes into each input's subfolder besides the command's own: its record (checksum,
#: parameters, state) and the traceback of an unexpected failure (:data:`stemgrains.batch.DONE_MARKER`,
#: :data:`stemgrains.batch.ERROR_LOG`)
BATCH_DONE_MARKER = "batch_done.json"
BATCH_ERROR_LOG = "batch_error.txt"
BATCH_SUBFOLDER_FILES = (BATCH_DONE_MARKER, BATCH_ERROR_LOG)
#: the files of a batch folder (:mod:`stemgrains.batch`): summary table and figure, parameters (with the inputs
#: and their subfolders' names), effective config
BATCH_SUMMARY_CSV = "batch_summary.csv"
BATCH_SUMMARY_PNG = "batch_summary.png"
BATCH_PARAMETERS = "batch_parameters.json"
BATCH_CONFIG_TOML = "config.toml"
#: folders the code running in this context writes as their owner (:func:`writing_into`)
_OWNED: contextvars.ContextVar[tuple[Path, ...]] = contextvars.ContextVar("stemgrains_owned_folders", default=())
_COMPANIONS = {".mib": (".hdr",), ".hdr": (".mib",), ".xml": (".raw",), ".raw": (".xml",)}


def input_files(path: str | os.PathLike) -> list[Path]:
    """The files an input is read from: itself and its companion files that exist (same stem)."""
    p = Path(path)
    out = [p]
    for ext in _COMPANIONS.get(p.suffix.lower(), ()):
        for cand in (p.with_suffix(ext), p.with_suffix(ext.upper())):
            if cand.exists() and cand not in out:
                out.append(cand)
    return out


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True if two paths name the same file: equal after resolving symbolic links, or one inode (hard links)."""
    pa, pb = Path(a), Path(b)
    try:
        if pa.resolve() == pb.resolve():
            return True
    except (OSError, RuntimeError):  # a symlink loop: compare as given
        if os.path.abspath(pa) == os.path.abspath(pb):
            return True
    try:
        return pa.exists() and pb.exists() and os.path.samefile(pa, pb)
    except OSError:
        return False


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except (ValueError, OSError, RuntimeError):
        return False


def check_outputs(outputs: Mapping[str, str | os.PathLike | None], inputs: Iterable[str | os.PathLike | None], *,
                  own: str | os.PathLike | None = None) -> None:
    """Refuse outputs that would overwrite an input or each other, or land in another run's folder (before any
    work is done).

    Parameters
    ----------
    outputs
        ``{option name: path}`` of every file or folder the command will write (``None`` entries are skipped),
        e.g. ``{"-o": "out.h5", "--export-ang": "map.ang", "--figures": "figs/"}``.
    inputs
        Paths of the files the command reads (their companion files are added, see :func:`input_files`).
    own
        The folder the caller is the owner of (a ``run`` claiming its ``-o`` folder, a batch its ``-o``): the
        run or batch records in it and in its subfolders are the caller's. Folders claimed with
        :func:`writing_into` count too.

    Raises
    ------
    ParameterError
        An output is an input (same path, symbolic or hard link, companion file), lies inside an input file's
        path, two outputs are the same file, or an output is or lies inside the folder of a ``run``
        (:data:`RUN_MANIFEST`) or a batch (:data:`BATCH_PARAMETERS`) the caller does not own
        (:func:`refuse_run_folders`).
    """
    ins: list[Path] = []
    for i in inputs:
        if i is not None:
            ins.extend(input_files(i))
    seen: list[tuple[str, Path]] = []
    for name, out in outputs.items():
        if out is None:
            continue
        o = Path(out)
        if name.startswith("--figures") and o.exists() and not o.is_dir():  # a folder of figures, not a file
            raise ParameterError(f"{name} {o}: is {describe_file(o)}, not a folder; give a folder for the figures")
        for i in ins:
            if same_file(o, i):
                raise ParameterError(
                    f"{name} {o}: is the input file {i}; it would be overwritten; choose another output path"
                )
            if i.is_file() and _inside(o, i):
                raise ParameterError(f"{name} {o}: lies inside the input file {i}; choose another output path")
        for other_name, other in seen:
            if same_file(o, other):
                raise ParameterError(f"{name} {o}: is also given as {other_name}; give each output its own path")
        seen.append((name, o))
    for name, o in seen:
        refuse_run_folders(o, name, own=own)


def _identity(path: str | os.PathLike) -> dict[str, Any]:
    p = Path(path)
    try:
        st = p.stat()
        return {"input": str(p.resolve()), "input_size": int(st.st_size)}
    except OSError:
        return {"input": str(p.resolve()), "input_size": None}


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    m = folder / RUN_MANIFEST
    if not m.is_file():
        return None
    try:
        data = json.loads(m.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"input": "(unreadable manifest)", "complete": True, "files": list(RUN_OUTPUTS)}
    return data if isinstance(data, dict) else {"input": "(unreadable manifest)", "complete": True, "files": []}


def run_folder_files(folder: str | os.PathLike) -> list[Path]:
    """The files the manifest of a ``run`` folder lists as written by that run (``[]``: no manifest)."""
    out = Path(folder)
    manifest = _read_manifest(out) if out.is_dir() else None
    names = manifest.get("files", []) if manifest is not None else []
    return [out / str(n) for n in names if Path(str(n)).name == str(n)] if isinstance(names, list) else []


#: key of the input path (JSON text) in the metadata of the images we write (.tif ImageJ/shaped description,
#: .png text chunk); ``.h5`` outputs record it as attributes (``/input`` ``path``, ``/image`` ``source``)
IMAGE_INPUT_KEY = "stemgrains_input"
#: key of what a ``.png`` figure of ours is (``"calibration"``) in its text chunks, beside :data:`IMAGE_INPUT_KEY`
FIGURE_KIND_KEY = "stemgrains_figure"


def recorded_input(path: str | os.PathLike, group: str | None = None) -> str | None:
    """The input path an existing output file of ours records, or ``None`` (a file that is not ours, unreadable,
    or of a format that records none: ``.npy``).

    Looks at ``/input`` ``path`` (or ``source``) and ``/image`` ``source`` of an HDF5 file (results files:
    :func:`stemgrains.io.results.write_provenance`; virtual images), at :data:`IMAGE_INPUT_KEY` in the
    metadata of a ``.tif`` (ImageJ or tifffile description) or the text chunks of a ``.png``, at the header
    comment line :func:`export_input_line` of an ``.ang``/``.ctf`` export, and at ``"input"`` of a calibration
    JSON (:func:`_calibration_json`). With ``group``, an
    HDF5 file without that group or dataset (``"orientation"``: a results file; ``"image"``: a virtual image)
    is another kind of file: ``None``; so is a ``.png`` of another kind: ``"image"`` wants a virtual image (no
    :data:`FIGURE_KIND_KEY`), any other ``group`` a figure of that kind (``"calibration"``), so that a virtual
    image never replaces the calibration figure of the same input, nor the reverse.
    """
    p = Path(path)
    ext = p.suffix.lower()
    v: Any = None
    try:
        if ext in (".ang", ".ctf"):
            v = _export_recorded_input(p)
        elif ext == ".json":
            doc = _calibration_json(p)
            v = doc.get("input") if doc is not None else None
        elif ext in (".csv", ".cif", ".toml", ".txt"):
            v = None
        elif ext in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(p) as t:
                md = t.imagej_metadata or (t.shaped_metadata[0] if t.shaped_metadata else None) or {}
            v = json.loads(md[IMAGE_INPUT_KEY]) if IMAGE_INPUT_KEY in md else None
        elif ext == ".png":
            from PIL import Image

            with Image.open(p) as im:
                text = getattr(im, "text", {}) or {}
            kind = text.get(FIGURE_KIND_KEY)
            if group is not None and kind != (None if group == "image" else group):
                return None
            v = json.loads(text[IMAGE_INPUT_KEY]) if IMAGE_INPUT_KEY in text else None
        elif ext != ".npy":
            import h5py

            with h5py.File(p, "r") as f:
                if group is not None and group not in f:
                    return None
                if "input" in f:
                    v = f["input"].attrs.get("path")
                    if v is None:
                        v = f["input"].attrs.get("source")
                if v is None and "image" in f:
                    v = f["image"].attrs.get("source")
    except Exception:  # not ours or damaged: it is still someone's data
        v = None
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    return str(v) if isinstance(v, str) and v else None


def _json_document(path: Path, max_bytes: int) -> Any:
    """The parsed JSON of ``path``, or ``None`` where it is larger than ``max_bytes``, unreadable or not JSON."""
    try:
        if path.stat().st_size > max_bytes:
            return None
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _calibration_json(path: Path) -> dict[str, Any] | None:
    """The document of a calibration JSON written by us (:func:`stemgrains.io.calibration.write_calibration_json`:
    a ``"calibration"`` object and ``"software": "stemgrains ..."``), else ``None`` (never raises)."""
    doc = _json_document(path, 1 << 24)
    if isinstance(doc, dict) and isinstance(doc.get("calibration"), dict) and \
            str(doc.get("software", "")).startswith("stemgrains"):
        return doc
    return None


def _png_text(path: Path) -> dict[str, str]:
    """The text chunks of a ``.png`` (``{}`` when unreadable)."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            return dict(getattr(im, "text", {}) or {})
    except Exception:  # noqa: BLE001 - not a PNG, damaged: no text
        return {}


def is_figure_of_ours(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a ``.png`` stemgrains wrote (``Software: stemgrains ...`` or one of our keys in its text
    chunks; :func:`stemgrains.io.results.atomic_savefig`)."""
    text = _png_text(Path(path))
    return str(text.get("Software", "")).startswith("stemgrains") or FIGURE_KIND_KEY in text or IMAGE_INPUT_KEY in text


def refuse_foreign_figures(folder: str | os.PathLike | None, names: Iterable[str], *, option: str = "--figures",
                           replace: bool = False) -> None:
    """Before any work: the figures a command writes into ``folder`` (file ``names``) replace only figures of ours
    (:func:`is_figure_of_ours`), unless ``replace`` (``--force``). Raises ParameterError, one line naming the option,
    the file and what it is; nothing for a missing folder or file."""
    if folder is None or replace:
        return
    for name in names:
        p = Path(folder) / name
        if p.is_file() and not is_figure_of_ours(p):
            raise ParameterError(f"{option} {folder}: {name} there is {describe_file(p)}, which the figure of that "
                                 "name would replace; choose another folder, or give --force to replace it")


def export_input_line(input_path: str | os.PathLike) -> str:
    """The header comment line naming the input (absolute path, JSON text) that ``.ang``/``.ctf`` exports carry
    (:mod:`stemgrains.io.export`), so that :func:`recorded_input` recognises them: ``# stemgrains_input: "..."``
    (no newline). EDAX ``.ang`` headers are ``#`` lines; the ``.ctf`` readers (orix, ours) keep every line before
    the ``Phase X Y`` column header as header."""
    return f"# {IMAGE_INPUT_KEY}: {json.dumps(str(_absolute(input_path)))}"


def _export_recorded_input(path: Path) -> Any:
    """The input an ``.ang``/``.ctf`` export records in its header (:func:`export_input_line`), or ``None``."""
    prefix = f"# {IMAGE_INPUT_KEY}: "
    with open(path, encoding="utf-8", errors="replace") as fh:
        for k, line in enumerate(fh):
            if line.startswith(prefix):
                return json.loads(line[len(prefix):])
            if k > 200 or line.startswith("Phase\tX\tY") or (line.strip() and not line.startswith("#")
                                                                  and path.suffix.lower() == ".ang"):
                return None
    return None


def _results_input(results: Path) -> str:
    """The input path recorded in an existing results file (``/input`` attrs), or a placeholder."""
    return recorded_input(results) or "an unknown dataset"


def refuse_results_of_another_input(out: Path, input_path: str | os.PathLike | None, *, replace: bool = False,
                                    option: str = "-o", what: str = "the results",
                                    group: str | None = "orientation", drops: Iterable[str] = ()) -> None:
    """A one-line :class:`ParameterError` when ``out`` is a folder, or exists and does not record
    ``input_path`` as its input (:func:`recorded_input`: the results of another input, or a file that is not
    ours) unless ``replace`` (``--force``): ``index``, ``segment``, ``classify``, ``transport`` and ``virtual``
    never replace someone else's data, while the same command again on the same input replaces its own output.

    Parameters
    ----------
    out
        The output file (need not exist).
    input_path
        The dataset the new output is made from, as the output will record it (``None``: unknown, so an existing
        ``out`` is never taken for its results).
    replace
        ``--force``: replace whatever ``out`` holds.
    option, what
        The option naming ``out`` and what it holds (``"the results"``, ``"the image"``), for the message.
    group
        What an HDF5 ``out`` must hold to be an output of the same kind (see :func:`recorded_input`): a virtual
        image is no results file, and a results file of the same input is no virtual image.
    drops
        Groups the new output does not write (``index``: the grains, boundaries, classification and transport of
        later stages): a file of the same input holding any of them is not replaced either, since they would be
        lost.
    """
    out = Path(out)
    if out.is_dir():
        raise ParameterError(f"{option} {out}: is a folder; give a file name for the output of one input")
    if replace or not out.exists():
        return
    recorded = recorded_input(out, group)
    try:
        same = recorded is not None and input_path is not None and \
            Path(recorded).resolve() == Path(input_path).resolve()
    except (OSError, ValueError, RuntimeError):
        same = False
    if not same:
        if recorded is not None:
            raise ParameterError(f"{option} {out}: holds {what} of another input ({recorded}); choose another name, "
                                 "or give --force to replace it")
        kind = "an image" if "image" in what else "a results file"
        raise ParameterError(f"{option} {out}: is {describe_file(out)}, not {kind} of this input; choose another "
                             "name, or give --force to replace it")
    held = groups_held(out, drops)
    if held:
        raise ParameterError(f"{option} {out}: also holds the {', '.join(held)} of this input, which the new output "
                             "would not keep; choose another name, or give --force to replace it")


def refuse_results_of_other_data(results: str | os.PathLike, input_path: str | os.PathLike, *,
                                 option: str = "--results", replace: bool = False) -> None:
    """Before any work: a results file read beside a 4D-STEM input (``vdf-grains --results``) must be the results
    of that input — the input it records (``/input`` ``path``, :func:`recorded_input`) is ``input_path``, or its
    recorded ``sha256`` is the input's (the data moved or copied since) — unless ``replace`` (``--force``: the
    results of another scan of the same area, say). A results file that records no input is taken as it is.

    Raises
    ------
    ParameterError
        One line naming ``option``, the results file, the input it records and ``--force``.
    """
    if replace:
        return
    rec = recorded_input(results)
    if rec is None or _absolute(rec) == _absolute(input_path):
        return
    try:
        import h5py

        with h5py.File(results, "r") as f:
            digest = f["input"].attrs.get("sha256") if "input" in f else None
    except Exception:  # noqa: BLE001 - unreadable: the reader of the results says so
        digest = None
    if isinstance(digest, bytes):
        digest = digest.decode("ascii", "replace")
    if digest:
        from .results import file_sha256

        if file_sha256(input_path) == digest:
            return
    raise ParameterError(f"{option} {results}: holds the results of another input ({rec}), not of {input_path}; "
                         f"give the results of {input_path}, or --force to use these")


def groups_held(path: Path, groups: Iterable[str]) -> list[str]:
    """Which of ``groups`` the HDF5 file ``path`` holds (none for a file that is not HDF5)."""
    groups = list(groups)
    if not groups:
        return []
    try:
        import h5py

        with h5py.File(path, "r") as f:
            return [g for g in groups if g in f]
    except (OSError, ValueError):
        return []


def require_suffix(path: str | os.PathLike, option: str, suffixes: Iterable[str], what: str) -> None:
    """Refuse an output name whose extension is not one of ``suffixes`` (case-insensitive), before any work.

    Raises
    ------
    ParameterError
        One line naming ``option``, the path and the expected extension(s), e.g. ``--csv x.cif: the file name
        must end in .csv (a CSV table)``.
    """
    sufs = tuple(suffixes)
    if Path(path).suffix.lower() not in sufs:
        raise ParameterError(f"{option} {path}: the file name must end in {' or '.join(sufs)} ({what})")


#: the CSV tables the commands write beside a results file, by data-dictionary group
#: (:data:`stemgrains.data_dictionary.GROUPS`), with what they are called in messages
CSV_TABLES = {
    "boundaries/boundaries": "boundary table (segment --csv)",
    "boundaries/segments": "segment table (segment --csv)",
    "classification/boundaries": "classified boundary table (classify --csv)",
    "classification/segments": "classified segment table (classify --csv)",
    "series/events": "series event table (events.csv)",
    "series/enrichment": "series enrichment table (enrichment.csv)",
    "compare/grains": "compare matched-grain table (grains_matched.csv)",
    "compare/boundaries": "compare boundary-change table (boundaries_changed.csv)",
}


def _csv_header(path: Path) -> list[str] | None:
    import csv

    try:
        with open(path, encoding="utf-8", newline="") as fh:
            return next(csv.reader([fh.readline(1 << 16)]), None)
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def is_our_csv(path: str | os.PathLike, group: str) -> bool:
    """True when the header row of the CSV file ``path`` is one our writers produce for the table ``group``
    (a key of :data:`CSV_TABLES`): it starts with the group's first documented column (its id column:
    ``boundary_id``, ``segment_id``, ``event_id``, ...) and
    every column is one of the group's documented columns (vector columns spread into ``name_0``, ``name_1``
    …; :meth:`stemgrains._table.Table.to_csv`), each once. The columns themselves depend on the data (the
    number of Miller-Bravais indices, optional columns), so this is what can be told before the table exists."""
    import re

    from ..data_dictionary import GROUPS

    header = _csv_header(Path(path))
    cols = GROUPS.get(group)
    if not header or cols is None or len(set(header)) != len(header):
        return False
    return header[0] == next(iter(cols)) and all(h in cols or re.sub(r"_\d+$", "", h) in cols for h in header)


#: root attribute of a results file recording the ``--csv`` tables written with it: JSON text
#: ``{path: [size in bytes, modification time in ns, SHA-256 of the content]}`` (:func:`_file_record`; files of
#: older versions hold no checksum), the path relative to the results file's folder for a
#: table in that folder or below (``compare``, ``series``: the file name), else absolute (:func:`record_csv_tables`;
#: files of older versions hold absolute paths only)
CSV_RECORD_ATTR = "csv_tables"


def _csv_keys(path: str | os.PathLike, results: str | os.PathLike) -> list[str]:
    """The keys a results file ``results`` may record the CSV ``path`` under: its path relative to the results
    file's folder (when inside it; a folder moved or copied keeps it), and its absolute path (older files)."""
    p, folder = _absolute(path), _absolute(results).parent
    keys = []
    with contextlib.suppress(ValueError):
        keys.append(p.relative_to(folder).as_posix())
    return [*keys, str(p)]


def record_csv_tables(f: Any, paths: Iterable[str | os.PathLike]) -> None:
    """Record in the open results file ``f`` (root attribute :data:`CSV_RECORD_ATTR`) the CSV tables just
    written beside it, with their size, modification time and SHA-256 (keyed by the path relative to the results
    file's folder where the table lies in it, so that the folder may be moved or copied), keeping the earlier entries (a
    classification added to a segmented file keeps the record of the segment tables). A CSV records no input itself (a comment
    line would break ``pandas.read_csv`` and spreadsheets): this is how :func:`csv_recorded` tells that an
    existing table was made from the same input."""
    try:
        rec = json.loads(f.attrs.get(CSV_RECORD_ATTR, "{}"))
    except (TypeError, ValueError):
        rec = {}
    rec = rec if isinstance(rec, dict) else {}
    for p in paths:
        keys = _csv_keys(p, f.filename)  # f.filename: the temporary name beside the results file
        for k in keys[1:]:
            rec.pop(k, None)
        rec[keys[0]] = _file_record(Path(p))
    f.attrs[CSV_RECORD_ATTR] = json.dumps(rec, sort_keys=True)


def csv_recorded(path: str | os.PathLike, results: Iterable[str | os.PathLike]) -> bool:
    """True when one of the results files ``results`` records the CSV ``path`` (:func:`record_csv_tables`) as it
    is now (:func:`_unchanged`: its size and modification time, or, for a copy, its size and content): the table
    is the one written with that results file, unchanged since. Never raises (an unreadable file records
    nothing)."""
    if not Path(path).is_file():
        return False
    for r in results:
        try:
            import h5py

            with h5py.File(r, "r") as f:
                rec = json.loads(f.attrs.get(CSV_RECORD_ATTR, "{}"))
        except Exception:  # noqa: BLE001 - not ours, damaged: records nothing
            continue
        if isinstance(rec, dict) and any(_unchanged(Path(path), rec.get(k)) for k in _csv_keys(path, r)):
            return True
    return False


def describe_file(path: str | os.PathLike) -> str:
    """What an existing file is, in words, for the messages refusing to replace it: ``the results of X``,
    ``a virtual image of X``, ``an orientation map exported from X``, ``a 4D-STEM scan (shape ...)``, ``a
    crystal structure (CIF)``, one of our CSV tables (:data:`CSV_TABLES`), or ``a ... file not written by
    stemgrains``. Never raises."""
    p = Path(path)
    ext = p.suffix.lower()
    if p.is_dir():
        return "a folder"
    try:
        rec = recorded_input(p)
        if ext in (".ang", ".ctf"):
            return f"an orientation map exported from {rec}" if rec else \
                f"an {ext} file not written by stemgrains"
        if ext == ".csv":
            for group, name in CSV_TABLES.items():
                if is_our_csv(p, group):
                    return f"a {name}"
            return "a CSV file not written by stemgrains"
        if ext == ".cif":
            return "a crystal structure (CIF)"
        if ext == ".json":
            if _calibration_json(p) is not None:
                return f"a calibration of {rec}" if rec else "a calibration written by stemgrains that records no input"
            return _describe_json_of_ours(p) or "a JSON file not written by stemgrains"
        if ext == ".png" and _png_text(p).get(FIGURE_KIND_KEY):
            return f"a {_png_text(p)[FIGURE_KIND_KEY]} figure of {rec or 'an unknown dataset'}"
        if ext == ".png" and not rec and is_figure_of_ours(p):
            return "a figure written by stemgrains (no input recorded)"
        if ext in (".png", ".tif", ".tiff"):
            return f"a virtual image of {rec}" if rec else f"a {ext} image not written by stemgrains"
        from .files import HDF5_SIGNATURE, file_signature

        if file_signature(p) == HDF5_SIGNATURE:
            import h5py

            with h5py.File(p, "r") as f:
                if "orientation" in f:
                    return f"the results of {rec or 'an unknown dataset'}"
                if "image" in f:
                    return f"a virtual image of {rec or 'an unknown dataset'}"
                ours = str(f.attrs.get("software", "")).startswith("stemgrains")
                for group, attr, what in (("series", "inputs", "the in-situ series of"),
                                          ("compare", "scans", "the comparison of")):
                    if ours and group in f:
                        held = recorded_inputs(p, group, attr)
                        return f"{what} {', '.join(held)}" if held else f"{what} unknown inputs"
        else:
            ours = False
        import warnings

        from .fourd import load_4d

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                shape = tuple(load_4d(p).data.shape)
        except Exception:  # noqa: BLE001 - not 4D data
            if ours:
                return "an HDF5 file written by stemgrains"
            raise
        return f"a 4D-STEM scan (shape {shape})"
    except Exception:  # noqa: BLE001 - a description never fails the refusal
        pass
    return f"a {ext} file not written by stemgrains" if ext else "an extension-less file not written by stemgrains"


def _describe_json_of_ours(path: Path) -> str | None:
    """What a JSON file of ours other than a calibration is (``summary.json`` and the manifest of a ``run``, the
    record of ``vdf-grains``, ``compare.json``, a batch's parameters), or ``None``."""
    doc = _json_document(path, 1 << 26)
    if not isinstance(doc, dict):
        return None
    inp = doc.get("input")
    of = f" of {inp}" if isinstance(inp, str) and inp else ""
    if {"input", "scan_shape", "n_grains", "classification"} <= doc.keys():
        return f"the summary.json of a run on {inp}"
    if {"input", "files", "complete", "software_version"} <= doc.keys():
        return f"the {RUN_MANIFEST} of a run on {inp}"
    if isinstance(doc.get("inputs"), list) and isinstance(doc.get("outputs"), list) and "fingerprint" in doc:
        return f"the {BATCH_PARAMETERS} of a batch of {len(doc['inputs'])} input(s)"
    if str(doc.get("software", "")).startswith("stemgrains") or "scans" in doc and "comparisons" in doc:
        return f"a JSON record written by stemgrains{of}"
    return None


def record_folder(path: str | os.PathLike, record: str, group: str, attr: str = "inputs") -> Path:
    """The output folder ``-o PATH`` names for a command that writes a folder around a ``record`` file (``series``:
    ``series.h5``, ``compare``: ``compare.h5``): ``PATH`` itself, except that ``-o DIR/<record>`` (a user reaching
    for a file, as the other commands' ``-o``) means ``DIR`` when that file is missing or is a ``record`` of ours
    (:func:`recorded_inputs`), so that the same command again replaces its own outputs; a user's file of that name
    stays ``PATH`` (refused by :func:`require_output_folder`), an existing folder of that name stays the folder."""
    p = Path(path)
    if p.name == record and not p.is_dir() and (not p.exists() or recorded_inputs(p, group, attr) is not None):
        return p.parent
    return p


def refuse_foreign_side_output(path: str | os.PathLike | None, option: str, *,
                               input_path: str | os.PathLike | None = None, csv_table: str | None = None,
                               replace: bool = False, records: Iterable[str | os.PathLike] = ()) -> None:
    """A side output (``--csv`` tables and their ``*.segments.csv``, ``--export-ang``, ``--export-ctf``) under
    the rule of ``-o`` (:func:`refuse_results_of_another_input`): an existing file is replaced only when it is
    ours for the same input — a CSV whose header row is one of ours for ``csv_table`` (:func:`is_our_csv`) and
    that one of ``records`` (the results files of the same input, e.g. the ``-o`` about to be replaced) lists
    as written with it, unchanged since (:func:`csv_recorded`; a CSV records no input itself), an export whose
    header names ``input_path`` (:func:`export_input_line`) — or with ``replace`` (``--force``). Called before
    any work; the extension is checked by the caller (:func:`require_suffix`).

    Raises
    ------
    ParameterError
        ``path`` is a folder, or an existing file that is not ours for this input (one line saying what it is,
        :func:`describe_file`).
    """
    if path is None:
        return
    p = Path(path)
    if p.is_dir():
        raise ParameterError(f"{option} {p}: is a folder; give a file name")
    if replace or not p.exists():
        return
    if csv_table is not None:
        if is_our_csv(p, csv_table):
            if csv_recorded(p, records):
                return
            raise ParameterError(f"{option} {p}: is a {CSV_TABLES[csv_table]} that no results file of this input "
                                 "records (made from another input, or changed since); choose another name, or "
                                 "give --force to replace it")
        raise ParameterError(f"{option} {p}: is {describe_file(p)}, not a {CSV_TABLES[csv_table]} of ours; choose "
                             "another name, or give --force to replace it")
    rec = recorded_input(p)
    if rec is not None and input_path is not None and _absolute(rec) == _absolute(input_path):
        return
    held = f"an orientation map exported from another input ({rec})" if rec is not None else \
        f"{describe_file(p)}, not an export of this input"
    raise ParameterError(f"{option} {p}: is {held}; choose another name, or give --force to replace it")


def recorded_inputs(record: str | os.PathLike, group: str, attr: str = "inputs") -> list[str] | None:
    """The input paths (absolute) an HDF5 output of ours records as JSON list text in attribute ``attr`` of
    ``group`` (``compare.h5``: ``compare`` ``scans``; ``series.h5``: ``series`` ``inputs``), or ``None``: a
    missing, unreadable or foreign file, or one without that record. Never raises."""
    try:
        import h5py

        with h5py.File(record, "r") as f:
            v = json.loads(f[group].attrs[attr])
    except Exception:  # noqa: BLE001 - not ours, damaged: records nothing
        return None
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        return None
    return [str(_absolute(x)) for x in v]


def _present(out: Path, names: Iterable[str]) -> Iterator[tuple[str, Path]]:
    """``(name, out / name)`` for the names that exist in ``out`` (broken links included)."""
    for name in names:
        p = out / name
        if p.exists() or p.is_symlink():
            yield name, p


def _refuse_replacing(option: str, out: Path, name: str, what: str) -> None:
    """The one-line refusal of the folder guards: ``name`` in ``out`` is ``what``, which the command would replace."""
    raise ParameterError(f"{option} {out}: {name} there is {what}, which this command would replace; choose "
                         "another folder, or give --force to replace it")


def refuse_foreign_folder_outputs(folder: str | os.PathLike, names: Iterable[str],
                                  inputs: Iterable[str | os.PathLike], *, record: str, group: str,
                                  attr: str = "inputs", option: str = "-o", replace: bool = False) -> None:
    """Before any work: the files a command writes under fixed ``names`` into the folder ``folder``
    (``compare``, ``series``) replace only its own outputs for the same ``inputs`` (in order), unless
    ``replace`` (``--force``).

    The folder's ``record`` file (an HDF5 output among ``names``) records the inputs (:func:`recorded_inputs`)
    and the CSV tables written with it (:func:`record_csv_tables`). An existing file there is replaced when it is:
    the ``record`` of the same inputs; a ``.csv`` that record lists, unchanged since (:func:`csv_recorded`; a CSV
    records no input itself); a ``.json`` of ours whose ``"scans"``/``"inputs"`` are the same inputs; a figure of
    ours (:func:`is_figure_of_ours`). Anything else — a user's table, the outputs of other inputs, a table
    edited since — is refused.

    Raises
    ------
    ParameterError
        One line naming ``option``, the folder, the file and what it is (:func:`describe_file`).
    """
    out = Path(folder)
    if replace or not out.is_dir():
        return
    want = [str(_absolute(p)) for p in inputs]
    rec = out / record
    held = recorded_inputs(rec, group, attr) if rec.is_file() else None
    same = held == want
    other = f"other inputs ({', '.join(held)})" if held is not None else "no inputs this command can tell"
    for name, p in _present(out, names):
        ext = p.suffix.lower()
        if p.is_dir():
            what, ok = "a folder", False
        elif ext == ".png":
            what, ok = describe_file(p), is_figure_of_ours(p)
        elif name == record:
            what, ok = f"the {record} of {other}" if held is not None else describe_file(p), same
        elif ext == ".csv":
            ok = same and csv_recorded(p, [rec])
            what = (describe_file(p) if held is None else f"a table beside the {record} of {other}" if not same
                    else f"a table that the {record} there does not list as written with it (changed since?)")
        elif ext == ".json":
            try:
                doc = json.loads(p.read_text(encoding="utf-8"))
                got = doc.get("scans", doc.get("inputs")) if isinstance(doc, dict) else None
                ok = same and isinstance(got, list) and [str(_absolute(x)) for x in got] == want
            except (OSError, ValueError, TypeError, AttributeError):
                ok = False
            what = f"the {name} of {other}" if held is not None else describe_file(p)
        else:
            what, ok = describe_file(p), False
        if not ok:
            _refuse_replacing(option, out, name, what)


#: extensions of the files our commands read or write: a missing ``-o`` folder named so is a file name mistaken
_FILE_SUFFIXES = (".h5", ".hdf5", ".csv", ".json", ".png", ".npy", ".npz", ".txt", ".toml", ".tif", ".tiff", ".ang",
                  ".ctf", ".mib", ".blo", ".emd")


def require_output_folder(folder: str | os.PathLike, inputs: Iterable[str | os.PathLike | None] = (), *,
                          option: str = "-o") -> None:
    """Refuse an output folder that is an existing file (one line; an input file is named as such), or a missing
    one named like a file (``-o out/results.h5`` became a folder of that name), before any work: ``compare``,
    ``series`` and ``vdf-grains`` write several files into ``-o OUTDIR``."""
    out = Path(folder)
    if not out.exists() and out.suffix.lower() in _FILE_SUFFIXES:  # would become a folder named like a file
        raise ParameterError(f"{option} {out}: names a {out.suffix} file, but this command writes several files into a "
                             f"folder; give a folder (e.g. {out.with_suffix('')})")
    if not out.exists() or out.is_dir():
        return
    for i in inputs:
        if i is not None and any(same_file(out, f) for f in input_files(i)):
            raise ParameterError(f"{option} {out}: is the input file {i}, not an output folder; give an output folder")
    raise ParameterError(f"{option} {out}: is a file ({describe_file(out)}), not a folder; give an output folder")


#: key of the JSON record of a folder's outputs (``vdf-grains``: ``vdf_grains.json``) listing the files written
#: with it: ``{name: [size in bytes, modification time in ns, SHA-256]}`` (:func:`files_written_record`)
FILES_WRITTEN_KEY = "files_written"


def files_written_record(folder: str | os.PathLike, names: Iterable[str]) -> dict[str, list[int]]:
    """``{name: [size, modification time in ns, SHA-256]}`` of the files ``names`` just written into ``folder``:
    what a JSON record of ours keeps under :data:`FILES_WRITTEN_KEY` (a ``.npy`` or a table cannot carry our
    tag), so that :func:`refuse_foreign_recorded_outputs` replaces them only while they are unchanged (in content:
    a byte-identical copy, ``cp -r``, counts as unchanged)."""
    return _file_stats(Path(folder), names)


def _json_record(path: Path) -> dict[str, Any] | None:
    """A JSON record of ours (``"software": "stemgrains ..."`` and an ``"input"``), else ``None``."""
    doc = _json_document(path, 1 << 26)
    if isinstance(doc, dict) and str(doc.get("software", "")).startswith("stemgrains") and \
            isinstance(doc.get("input"), str):
        return doc
    return None


def refuse_foreign_recorded_outputs(folder: str | os.PathLike, names: Iterable[str], input_path: str | os.PathLike,
                                    *, record: str, option: str = "-o", replace: bool = False) -> None:
    """Before any work: the files a command writes under fixed ``names`` into ``folder`` (``vdf-grains``) replace
    only its own outputs for the same input, unless ``replace`` (``--force``).

    The folder's JSON ``record`` (one of ``names``, written last) holds ``"software": "stemgrains ..."``, the
    ``"input"`` (absolute path) and, under :data:`FILES_WRITTEN_KEY`, the other files written with it and their
    size, modification time and SHA-256 (:func:`files_written_record`). An existing file is replaced when it is that
    record of the same input, or a file it lists, unchanged since; a figure of ours (:func:`is_figure_of_ours`)
    only where no record of another input is there. Anything else — a user's file, the outputs of another input,
    a file changed since — is refused.

    Raises
    ------
    ParameterError
        One line naming ``option``, the folder, the file and what it is (:func:`describe_file`).
    """
    out = Path(folder)
    if replace or not out.is_dir():
        return
    doc = _json_record(out / record)
    held = str(_absolute(doc["input"])) if doc is not None else None
    same = held is not None and held == str(_absolute(input_path))
    listed = doc.get(FILES_WRITTEN_KEY) if same and doc is not None else None
    listed = listed if isinstance(listed, dict) else {}
    for name, p in _present(out, names):
        if p.is_dir():
            what, ok = "a folder", False
        elif name == record:
            ok = same
            what = f"the {record} of another input ({held})" if held is not None else describe_file(p)
        else:
            ok = same and _unchanged(p, listed.get(name))
            if not ok and held is None and p.suffix.lower() == ".png":
                ok = is_figure_of_ours(p)
            what = (f"a file beside the {record} of another input ({held})" if held is not None and not same
                    else f"a file that the {record} there does not list as written with it (changed since?)"
                    if same else describe_file(p))
        if not ok:
            _refuse_replacing(option, out, name, what)


def refuse_foreign_calibration(paths: Iterable[str | os.PathLike | None], input_path: str | os.PathLike, *,
                               option: str = "--auto-calibrate", replace: bool = False,
                               managed: Iterable[str | os.PathLike] = (), hint: str = "--force") -> None:
    """The files ``--auto-calibrate`` writes (``OUT.calibration.json`` and ``.png`` of ``index``,
    ``OUTDIR/calibration.json`` and ``.png`` of ``run``) under the rule of ``-o``: an existing one is replaced
    only when it is a calibration of ours recording ``input_path`` (:func:`recorded_input`: ``"input"`` of the
    JSON, the text chunks of the figure), unless ``replace``. Called before any work.

    Parameters
    ----------
    paths
        The files (need not exist; ``None`` skipped).
    input_path
        The dataset the calibration is fitted to.
    option
        Named in the message.
    replace
        ``--force`` (``run``: also ``--overwrite``): replace whatever is there.
    managed
        Files another check governs (those a ``run`` manifest lists: replaced or refused by
        :func:`prepare_run_folder`): skipped.
    hint
        The option that replaces them, for the message.

    Raises
    ------
    ParameterError
        One line naming ``option``, the file and what it is (:func:`describe_file`), e.g. ``--auto-calibrate
        m.calibration.json: is a JSON file not written by stemgrains, not a calibration of this input; ...``.
    """
    if replace:
        return
    skip = [Path(m) for m in managed]
    for path in paths:
        if path is None:
            continue
        p = Path(path)
        if p.is_dir():
            raise ParameterError(f"{option} {p}: is a folder, where the calibration would be written; move it or "
                                 "choose another output name")
        if not p.exists() or any(same_file(p, m) for m in skip):
            continue
        rec = recorded_input(p, "calibration")  # a .png: a calibration figure, not a virtual image of the input
        if rec is not None and _absolute(rec) == _absolute(input_path):
            continue
        held = f"{describe_file(p)}, not a calibration of this input"
        raise ParameterError(f"{option} {p}: is {held}; the calibration would replace it; move it, choose another "
                             f"output name, or give {hint} to replace it")


def _write_manifest(folder: Path, data: dict[str, Any]) -> None:
    from .results import atomic_write_text

    atomic_write_text(folder / RUN_MANIFEST, json.dumps(data, indent=2, sort_keys=True) + "\n")


def _remove_owned(folder: Path, names: Iterable[str]) -> list[str]:
    removed = []
    for name in names:
        p = folder / name
        # only plain files directly inside the folder: a manifest cannot make us delete anything else
        if Path(name).name != name or name in ("", ".", "..") or not (p.is_file() or p.is_symlink()):
            continue
        p.unlink()
        removed.append(name)
    return removed


def _remove_run(out: Path, manifest: dict[str, Any] | None, checkpoint: bool = True, keep: bool = False) -> None:
    """Delete what a single run wrote into ``out``: the files its manifest lists and every name in
    :data:`RUN_OUTPUTS` (plain files only), and with ``checkpoint`` its checkpoint folder. With ``keep`` the files
    of a finished run (``manifest`` complete, or an older run's without one) are moved into :data:`REPLACED` with
    the manifest instead (:func:`_set_aside`)."""
    names = set(RUN_OUTPUTS)
    if manifest is not None:
        names |= {str(n) for n in manifest.get("files", [])}
    if keep and (manifest is None or manifest.get("complete", True)):
        _set_aside(out, sorted(names | {RUN_MANIFEST}))  # (deleted where an unfinished replacement holds it)
    else:
        _remove_owned(out, sorted(names))
    if checkpoint:
        shutil.rmtree(out / RUN_CHECKPOINT, ignore_errors=True)


def _set_aside(out: Path, names: Iterable[str], folders: Iterable[Path] = ()) -> None:
    """Move the plain files ``names`` directly inside ``out`` and the subfolders ``folders`` of ``out`` into
    ``out/``:data:`REPLACED` (renames: nothing is copied): the results of a finished run (or batch), kept until
    the run replacing them finishes (:func:`finish_run_folder`) or put back (:func:`restore_replaced`).

    Where :data:`REPLACED` already holds something, an earlier replacement did not finish (a finished run or
    batch deletes it), so what ``out`` holds now is that unfinished run's or batch's: it is deleted and the
    finished results kept there stay."""
    files = [n for n in names if Path(n).name == n and n not in ("", ".", "..")
             and ((out / n).is_file() or (out / n).is_symlink())]
    folders = [d for d in folders if d.is_dir() and not d.is_symlink()]
    if not files and not folders:
        return
    keep = out / REPLACED
    if keep.is_dir() and not keep.is_symlink() and any(keep.iterdir()):
        _remove_owned(out, files)
        for d in folders:
            shutil.rmtree(d)
        return
    if keep.is_symlink() or keep.is_file():
        keep.unlink()
    shutil.rmtree(keep, ignore_errors=True)
    keep.mkdir()
    for n in files:
        os.replace(out / n, keep / n)
    for d in folders:
        os.replace(d, keep / d.name)


def restore_replaced(folder: str | os.PathLike) -> bool:
    """Put back the results :func:`_set_aside` kept in ``folder/``:data:`REPLACED` (a run replacing them was
    refused before it wrote anything); True where there were any. A name the folder holds again is left where it
    is (the kept copy is deleted with the rest)."""
    out = Path(folder)
    keep = out / REPLACED
    if not keep.is_dir() or keep.is_symlink():
        return False
    for p in sorted(keep.iterdir()):
        if not (out / p.name).exists() and not (out / p.name).is_symlink():
            os.replace(p, out / p.name)
    shutil.rmtree(keep, ignore_errors=True)
    return True


def read_batch_parameters(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The :data:`BATCH_PARAMETERS` record of a batch folder (``inputs``: absolute paths, ``outputs``: their
    subfolders' names, in the same order), ``{}`` when it is unreadable, ``None`` when the folder holds none."""
    p = Path(folder) / BATCH_PARAMETERS
    if not p.is_file():
        return None
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _replace_batch(out: Path, overwrite: bool, input_path: str | os.PathLike) -> None:
    """A single run into ``out``: refuse a batch folder, or with ``overwrite`` delete the batch's files and the
    subfolders its :data:`BATCH_PARAMETERS` lists (plain names directly inside ``out`` only; one holding the
    input is refused)."""
    params = read_batch_parameters(out) if out.is_dir() else None
    if params is None:
        return
    inputs = params.get("inputs") if isinstance(params.get("inputs"), list) else []
    if not overwrite:
        raise ParameterError(
            f"-o {out}: is the folder of a batch ({BATCH_PARAMETERS}, {len(inputs)} input(s)); choose another "
            "folder, or add --overwrite to replace its results")
    subfolders = params.get("outputs") if isinstance(params.get("outputs"), list) else []
    # a record cannot make us delete anything but a real subfolder of ``out``
    doomed = [out / n for n in sorted({str(n) for n in subfolders})
              if Path(n).name == n and n not in ("", ".", "..") and (out / n).is_dir() and not (out / n).is_symlink()]
    recorded = params.get("parameters") if isinstance(params.get("parameters"), dict) else {}
    named = recorded.get("outputs") if isinstance(recorded.get("outputs"), dict) else {}
    own = {*RUN_OUTPUTS, RUN_MANIFEST, *BATCH_SUBFOLDER_FILES, *(str(v) for v in named.values() if v)}
    for d in doomed:
        if any(_inside(f, d) for f in input_files(input_path)):
            raise ParameterError(f"-o {out}: --overwrite would delete the batch subfolder {d}, which holds the input "
                                 f"{input_path}; move the input or choose another output folder")
    foreign = [f for d in doomed for f in _not_written_by_us(d, own)]
    if foreign:
        more = f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else ""
        raise ParameterError(f"-o {out}: --overwrite would delete {foreign[0]}{more}, which stemgrains did not "
                             "write; move it out of the batch folder first, or choose another output folder")
    # kept until the single run replacing them finishes (a batch folder's parameters file says it was complete)
    _set_aside(out, [BATCH_SUMMARY_CSV, BATCH_SUMMARY_PNG, BATCH_CONFIG_TOML, BATCH_PARAMETERS], doomed)


def _not_written_by_us(folder: Path, own: set[str]) -> list[Path]:
    """Files under a batch's subfolder ``folder`` that no stemgrains command wrote: not named in ``own`` (top-level
    names), in the folder's run manifest, nor hidden (checkpoints, temporary files, :data:`REPLACED`)."""
    manifest = _read_manifest(folder) or {}
    names = own | {str(n) for n in manifest.get("files", []) if isinstance(n, str)}
    out = []
    for p in sorted(folder.rglob("*")):
        top = p.relative_to(folder).parts[0]
        if p.is_dir() or top in names or top.startswith("."):
            continue
        out.append(p)
    return out


def claim_batch_folder(folder: str | os.PathLike, inputs: Iterable[str | os.PathLike] = (), *,
                       overwrite: bool = False) -> None:
    """Check a batch's output folder before any work: it must not hold the results of a single ``run``.

    Parameters
    ----------
    folder
        The batch's ``-o`` folder (need not exist).
    inputs
        The batch's inputs: none may be among the files ``overwrite`` deletes.
    overwrite
        Replace the single run's results: the files its :data:`RUN_MANIFEST` lists, every name in
        :data:`RUN_OUTPUTS` and the manifest are moved into ``folder/``:data:`REPLACED` (deleted when the batch
        finishes uninterrupted; those of an unfinished run are deleted now), the checkpoint is deleted.

    Raises
    ------
    ParameterError
        ``folder`` is a file, or holds a single run's results (:data:`RUN_MANIFEST`, or ``results.h5`` of an
        older run without one) and ``overwrite`` is False, or an input is one of those files.
    """
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise ParameterError(f"-o {out}: is a file, not a folder; give an output folder for several inputs")
    if not out.is_dir():
        return
    manifest = _read_manifest(out)
    if manifest is None and not (out / "results.h5").is_file():
        return
    if _stopped_before_writing(out, manifest):
        _remove_owned(out, [RUN_MANIFEST])  # a run that stopped before writing anything: nothing to protect
        return
    previous = manifest.get("input", "an unknown dataset") if manifest is not None else _results_input(out / "results.h5")
    if not overwrite:
        raise ParameterError(
            f"-o {out}: holds the results of a single run on {previous} "
            f"({RUN_MANIFEST if manifest is not None else 'results.h5'}); choose another folder "
            "for the batch (or, with run, add --overwrite to replace them)")
    names = {*RUN_OUTPUTS, RUN_MANIFEST, *(str(n) for n in (manifest or {}).get("files", []))}
    for i in inputs:
        for f in input_files(i):
            if any(same_file(out / n, f) for n in names) or _inside(f, out / RUN_CHECKPOINT):
                raise ParameterError(f"-o {out}: --overwrite would delete the input {f}, a file of the single run "
                                     "there; move the input or choose another output folder")
    _remove_run(out, manifest, keep=True)  # a finished run's files kept aside until the batch finishes
    _remove_owned(out, [RUN_MANIFEST])


def _same_record(manifest: Mapping[str, Any] | None, record: Mapping[str, Any] | None) -> bool:
    """True when a manifest records the input checksum and parameters' fingerprint of ``record``."""
    return bool(manifest and record and record.get("checksum") and record.get("fingerprint")
                and manifest.get("checksum") == record["checksum"]
                and manifest.get("fingerprint") == record["fingerprint"])


def _file_record(path: Path) -> list[Any]:
    """``[size in bytes, modification time in ns, SHA-256 hex of the content]`` of a file we just wrote (raises
    OSError when it cannot be read): what our records keep to tell later whether it is unchanged
    (:func:`_unchanged`)."""
    import hashlib

    st = path.stat()
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return [int(st.st_size), int(st.st_mtime_ns), h.hexdigest()]


def _unchanged(path: Path, recorded: Any) -> bool:
    """Whether the file ``path`` is the one ``recorded`` (:func:`_file_record`; older records: ``[size, mtime]``)
    describes: the same size, and the same modification time or (a byte-identical copy: ``cp -r`` gives new
    times) the same SHA-256 of the content. The content is read only when the size matches and the time does not.
    Never raises (a missing or unreadable file is not unchanged)."""
    if not isinstance(recorded, list) or len(recorded) < 2:
        return False
    try:
        st = path.stat()
        if not path.is_file() or int(st.st_size) != recorded[0]:
            return False
        if int(st.st_mtime_ns) == recorded[1]:
            return True
        return len(recorded) > 2 and _file_record(path)[2] == recorded[2]
    except OSError:
        return False


def _file_stats(folder: Path, names: Iterable[str]) -> dict[str, list[Any]]:
    """``{name: [size in bytes, modification time in ns, SHA-256]}`` (:func:`_file_record`) of the files ``names``
    in ``folder`` (missing or unreadable ones left out): what :func:`completed_run` compares
    (:func:`_unchanged`)."""
    stats = {}
    for n in names:
        try:
            stats[n] = _file_record(folder / n)
        except OSError:
            continue
    return stats


def completed_run(folder: str | os.PathLike, record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The manifest of a finished run in ``folder`` of the same input content and parameters, else ``None``.

    Parameters
    ----------
    folder
        A ``run`` output folder (need not exist).
    record
        ``{"checksum": ..., "fingerprint": ...}``: the input's :func:`stemgrains.batch.input_checksum` and the
        :func:`stemgrains.batch.params_fingerprint` of the run's parameters (as a batch records them in each
        input's ``batch_done.json``).

    Returns
    -------
    dict or None
        The manifest, when it is marked complete, records that checksum and fingerprint, and every file it lists
        is still there as :func:`finish_run_folder` recorded it (``file_stats``: size and modification time, or
        for a copy with new times, ``cp -r``, size and SHA-256 of the content; a file is read only then);
        ``None`` otherwise (no manifest, an interrupted run, other content or parameters, files deleted,
        replaced or edited since, a manifest of an older version without ``file_stats``).
    """
    out = Path(folder)
    if not out.is_dir() or read_batch_parameters(out) is not None:
        return None
    manifest = _read_manifest(out)
    if manifest is None or not manifest.get("complete", False) or not _same_record(manifest, record):
        return None
    files = [str(n) for n in manifest.get("files", [])]
    recorded = manifest.get("file_stats")
    if not files or not isinstance(recorded, dict) or sorted(recorded) != sorted(files):
        return None
    if any(not _unchanged(out / n, recorded.get(n)) for n in files):
        return None
    return manifest


def _absolute(path: str | os.PathLike) -> Path:
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return Path(os.path.abspath(path))


@contextlib.contextmanager
def writing_into(folder: str | os.PathLike | None) -> Iterator[None]:
    """Within this context the caller owns ``folder`` (``None``: nothing more): :func:`check_outputs` and
    :func:`refuse_run_folders` let it write there although the folder, or one inside it, is a run's or a
    batch's. A batch wraps its jobs in it (they write its subfolders, each a ``run`` folder of its own); the
    claim holds for this thread or task only (:mod:`contextvars`)."""
    if folder is None:
        yield
        return
    token = _OWNED.set((*_OWNED.get(), _absolute(folder)))
    try:
        yield
    finally:
        _OWNED.reset(token)


def refuse_run_folders(path: str | os.PathLike, option: str = "-o", what: str = "output", *,
                       own: str | os.PathLike | None = None, hint: str | None = None) -> None:
    """Refuse an output (file or folder) that is, or lies inside, the folder of a ``run`` (:data:`RUN_MANIFEST`)
    or of a batch (:data:`BATCH_PARAMETERS`): their files are that run's — listed in its manifest, trusted by
    ``run`` given again, replaced or deleted by its ``--overwrite``.

    Parameters
    ----------
    path
        The output (need not exist); it and every existing folder above it are checked.
    option, what
        The option and what it holds, for the message (e.g. ``"-o"``, ``"comparison"``).
    own
        A folder the caller owns (see :func:`check_outputs`): a run or batch folder at or inside it is no
        reason to refuse. Folders claimed with :func:`writing_into` count too.
    hint
        The end of the message (default: choose a folder outside it for the ``what``).

    Raises
    ------
    ParameterError
        One line naming ``option``, ``path``, the run or batch folder and its record file.
    """
    out = Path(path)
    here = _absolute(out)
    owned = (*_OWNED.get(), *((_absolute(own),) if own is not None else ()))
    for d in (here, *here.parents):
        if not d.is_dir() or any(d == w or w in d.parents for w in owned):
            continue
        for record, kind in ((RUN_MANIFEST, "a run"), (BATCH_PARAMETERS, "a batch")):
            if (d / record).is_file():
                where = "is the folder" if d == here else f"lies inside the folder {d}"
                tail = hint or f"choose a folder outside it for the {what}"
                raise ParameterError(f"{option} {out}: {where} of {kind} ({record}); its files belong to that run; "
                                     f"{tail}")


def prepare_run_folder(folder: str | os.PathLike, input_path: str | os.PathLike, *, overwrite: bool = False,
                       record: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Check and claim a ``run`` output folder before any work.

    Parameters
    ----------
    folder
        The output folder (created if missing).
    input_path
        The dataset the run reads.
    overwrite
        Replace the results of another run found in ``folder``: the files that run wrote (its manifest, or
        every name in :data:`RUN_OUTPUTS` when it left none) are moved into ``folder/``:data:`REPLACED` (its
        checkpoint deleted), of a batch its files and the subfolders its :data:`BATCH_PARAMETERS` lists, and
        files of ours a user left there; they stay there until :func:`finish_run_folder` (deleted) or
        :func:`abandon_run_folder` (put back). An unfinished run's files are deleted (a finished run kept there
        by an earlier replacement stays kept).
    record
        ``{"checksum": ..., "fingerprint": ...}`` of this run (see :func:`completed_run`), written into the
        manifest. A finished run in ``folder`` with the same record is this very run: it is redone without
        ``overwrite`` (the caller asked for it, ``--force``, or some of its files are gone).

    Returns
    -------
    dict
        The manifest written (``complete: False`` until :func:`finish_run_folder`).

    Raises
    ------
    ParameterError
        ``folder`` is a file, lies inside the folder of another run or of a batch (:func:`refuse_run_folders`;
        a batch's own jobs claim theirs with :func:`writing_into`), the input lies in ``folder`` under a name the
        run writes, or ``folder`` holds the results of another run (complete, or of another input) or of a batch
        (:data:`BATCH_PARAMETERS`) and ``overwrite`` is False.
    """
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise ParameterError(f"-o {out}: is a file, not a folder; give an output folder")
    check_outputs({"-o": out}, [input_path], own=out)
    for name in (*RUN_OUTPUTS, RUN_MANIFEST):
        if same_file(out / name, input_path):
            raise ParameterError(
                f"-o {out}: the input {input_path} is {name} of that folder, which the run writes; "
                "choose another output folder"
            )
    ident = _identity(input_path)
    _replace_batch(out, overwrite, input_path)
    old = _read_manifest(out) if out.is_dir() else None
    if _stopped_before_writing(out, old):
        old = None  # a run that stopped before writing anything (bad input, say): nothing to protect
    legacy = old is None and (out / "results.h5").is_file()
    if old is None and not legacy and out.is_dir():
        foreign = [n for n in RUN_OUTPUTS if (out / n).exists()]
        if foreign and not overwrite:  # files a run writes, in a folder no run claimed: someone's own files
            shown = ", ".join(foreign[:4]) + (" ..." if len(foreign) > 4 else "")
            raise ParameterError(f"-o {out}: holds files the run writes ({shown}) that no stemgrains run made; choose "
                                 "another folder, or add --overwrite to replace them")
        _set_aside(out, foreign)  # replaced: kept until this run finishes
    if old is not None or legacy:
        previous = old.get("input", "an unknown dataset") if old is not None else _results_input(out / "results.h5")
        resumable = old is not None and not old.get("complete", True) and old.get("input") == ident["input"]
        same_run = old is not None and old.get("complete", True) and _same_record(old, record)
        if not resumable and not same_run and not overwrite:
            what = "the same dataset" if previous == ident["input"] else f"another dataset ({previous})"
            if old is not None and record is not None and old.get("checksum") and previous == ident["input"]:
                what += (" with other parameters" if old.get("checksum") == record.get("checksum")
                         else " whose content has changed since")
            unfinished = old is not None and not old.get("complete", True)
            kept = (f" (the finished results it was replacing are kept in {out / REPLACED})"
                    if unfinished and (out / REPLACED).is_dir() else "")
            raise ParameterError(
                f"-o {out}: already holds {'an unfinished run' if unfinished else 'the results of a run'} on "
                f"{what}{kept}; choose another folder, or add --overwrite to replace {'it' if unfinished else 'them'}"
            )
        if old is not None and old.get("complete", True) and (same_run or overwrite):
            _keep_edited(out, old)  # redone, or replaced with --overwrite: a user's edits are not lost
        if not resumable:  # a finished run's results are kept aside until this run finishes
            _remove_run(out, old, checkpoint=previous != ident["input"], keep=True)
    out.mkdir(parents=True, exist_ok=True)
    manifest = {
        **ident,
        **{k: record[k] for k in ("checksum", "fingerprint") if record and record.get(k)},
        "complete": False,
        "files": [],
        "software_version": __version__,
        "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    _write_manifest(out, manifest)
    return manifest


def keep_edited_copy(src: str | os.PathLike, stamp: str | None = None) -> Path:
    """Copy a file a user changed since stemgrains wrote it to ``NAME.edited-YYYYmmddTHHMMSS.EXT`` beside it (``-2``,
    ``-3``, ... appended where that exists), before it is replaced. Returns the copy."""
    src = Path(src)
    stamp = stamp or _dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    dst = src.with_name(f"{src.stem}.edited-{stamp}{src.suffix}")
    k = 1
    while dst.exists():
        k += 1
        dst = src.with_name(f"{src.stem}.edited-{stamp}-{k}{src.suffix}")
    shutil.copy2(src, dst)
    return dst


def _keep_edited(out: Path, manifest: dict[str, Any]) -> list[Path]:
    """Copies of the files of the finished run ``manifest`` in ``out`` that were changed since it recorded them
    (:func:`_unchanged`: a user's annotations in ``boundaries.csv``, say), made before the run is redone, or
    replaced with ``overwrite``: ``NAME.edited-YYYYmmddTHHMMSS.EXT`` beside them, with one line on stderr naming both;
    files of it that are gone are named in one line. Files the manifest holds no record of are left alone. Returns
    the copies."""
    import sys

    stats = manifest.get("file_stats")
    if not isinstance(stats, dict):
        return []
    stamp = _dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    kept = []
    gone = [str(n) for n in manifest.get("files", []) if str(n) in stats and not (out / str(n)).exists()]
    if gone:
        shown = ", ".join(gone[:4]) + (" ..." if len(gone) > 4 else "")
        print(f"stemgrains: {out}: {shown} {'is' if len(gone) == 1 else 'are'} gone since the run finished; "
              f"this run writes {'it' if len(gone) == 1 else 'them'} again", file=sys.stderr)
    for name in manifest.get("files", []):
        src = out / str(name)
        if str(name) not in stats or not src.is_file() or _unchanged(src, stats[str(name)]):
            continue
        dst = keep_edited_copy(src, stamp)
        kept.append(dst)
        print(f"stemgrains: {src} was changed since the run wrote it; this run replaces it: your version is kept "
              f"as {dst.name}", file=sys.stderr)
    return kept


def _stopped_before_writing(out: Path, manifest: dict[str, Any] | None) -> bool:
    """Whether the run folder ``out`` with ``manifest`` holds a run that stopped before writing anything: an
    unfinished manifest, no checkpoint and none of :data:`RUN_OUTPUTS` (nothing there to protect or resume)."""
    return manifest is not None and not manifest.get("complete", True) and not (out / RUN_CHECKPOINT).exists() \
        and not any((out / n).exists() for n in RUN_OUTPUTS)


def abandon_run_folder(folder: str | os.PathLike, created: bool) -> None:
    """Undo :func:`prepare_run_folder` for a run refused before it wrote anything (a parameter that only the data
    decide, say): where the folder holds no output of a run and no checkpoint, its unfinished manifest is removed
    (the folder is no run's then), and the folder too where the run ``created`` it and nothing else is in it. A
    checkpoint, an output or a user's file stays."""
    out = Path(folder)
    try:
        if not _stopped_before_writing(out, _read_manifest(out)):
            return
        (out / RUN_MANIFEST).unlink()
        restore_replaced(out)  # the results this run was to replace, back where they were
        if created and not any(out.iterdir()):
            out.rmdir()
    except OSError:
        pass


def finish_run_folder(folder: str | os.PathLike, manifest: dict[str, Any], written: Iterable[str | os.PathLike]) -> None:
    """Mark a run folder complete and record every file the run wrote into it (``files``: names relative to the
    folder; ``file_stats``: their size, modification time and SHA-256, which :func:`completed_run` checks)."""
    out = Path(folder)
    names = sorted({Path(p).name for p in written if Path(p).parent.resolve() == out.resolve()})
    data = dict(manifest, complete=True, files=names, file_stats=_file_stats(out, names),
                finished=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    _write_manifest(out, data)
    shutil.rmtree(out / REPLACED, ignore_errors=True)  # the results this run replaced: no longer needed
