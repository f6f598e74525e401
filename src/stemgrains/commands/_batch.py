"""Several inputs for ``index`` and ``run``: the options, the choice between one input and a batch, the report."""

from __future__ import annotations

import argparse
import glob
import hashlib
from pathlib import Path
from typing import Any

from ..errors import ParameterError


def _jobs(text: str) -> int:
    """``--jobs``: a whole number >= 1 (argparse reports the error in one line)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return n


def add_batch_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "several inputs (files, folders, globs): -o is a folder with one subfolder per input, batch_summary.csv "
        "and batch_summary.png; exit status 1 if any input failed")
    g.add_argument("--recursive", action="store_true", help="also take the 4D-STEM files in the subfolders of folders")
    g.add_argument("--jobs", type=_jobs, default=1, metavar="N",
                   help="inputs processed at once, in N processes sharing the cores (default %(default)d: one after another, all cores)")
    g.add_argument("--force", action="store_true",
                   help="redo inputs done before with the same content and parameters (default: skip them; "
                        "also `run` of one input into its finished folder, and `index -o`, `--export-ang`, "
                        "`--export-ctf` onto files that are not ours for this input)")


def is_batch(items: list[str], output: str | None = None) -> bool:
    """Several items, or one that is a folder or a glob pattern (not an existing file), or one input whose
    ``output`` is the folder of a batch (``batch_parameters.json``: the input is run, skipped or redone with
    ``--force`` in its subfolder, as in that batch): a batch."""
    from ..io.outputs import BATCH_PARAMETERS

    if len(items) != 1:
        return True
    if output is not None and (Path(output) / BATCH_PARAMETERS).is_file():
        return True
    p = Path(items[0])
    return p.is_dir() and p.suffix.lower() != ".zspy" or (not p.exists() and glob.has_magic(items[0]))


def file_sha256s(paths: list[str]) -> list[str]:
    """SHA-256 of small files (the CIFs), for the parameters' fingerprint."""
    out = []
    for p in paths:
        try:
            out.append(hashlib.sha256(Path(p).read_bytes()).hexdigest())
        except OSError:
            out.append("")  # unreadable: the job reports it
    return out


def check_batch_arguments(phases: list[str], cfg: dict[str, dict[str, Any]], command: str) -> None:
    """What one input checks before any work, done once for a whole batch of ``command`` (``run`` or ``index``):
    the phase CIFs load, the ``[calibration] file`` reads, and for ``run`` the field and electrodes are valid
    (:func:`stemgrains.pipeline.check_run_config`).

    Raises
    ------
    ParameterError, FileFormatError
        One line naming the file or parameter (the CLI: exit status 2, nothing created).
    """
    from ..crystal import load_phase
    from ..settings import calibration_overrides

    for c in phases:
        load_phase(c)
    calibration_overrides(cfg["calibration"])
    if command == "run":
        from ..pipeline import check_run_config

        check_run_config(cfg, phases)
    else:
        from ..pipeline import check_index_config

        check_index_config(cfg)


def check_batch_calibration(inputs: list[Path], cfg: dict[str, dict[str, Any]]) -> None:
    """A pixel size or beam centre given to the whole batch (an option, a config or ``--calibration`` file) that
    cannot be used refused once, before the batch, as for one input: a centre off the detector, or a pixel size
    that leaves nothing to index (:func:`stemgrains.settings.pixel_size_refusal`), checked on the detector of the first
    input that opens (the others fail on their own where theirs differs).

    Raises
    ------
    ParameterError
        One line naming where the value was given and the input it was checked on."""
    from ..io import load_4d
    from ..settings import calibration_overrides, index_params, load_calibrated, pixel_size_refusal

    given = calibration_overrides(cfg["calibration"])
    if given.get("q_pixel_size") is None and given.get("center") is None:
        return
    where = "the batch's first input, before the batch"
    for path in inputs:
        try:
            ds = load_calibrated(path, cfg["calibration"])
        except ParameterError as err:  # the centre given lies off this detector, where the input itself opens
            if given.get("center") is not None and str(err).startswith("center (row, col) ="):
                try:
                    load_4d(path)
                except Exception:  # noqa: BLE001 - the input fails on its own, in its own words
                    continue
                raise ParameterError(f"{err} (checked on {path}, {where})") from None
            continue
        except Exception:  # noqa: BLE001 - an input that does not open fails on its own, in its own words
            continue
        err = pixel_size_refusal(index_params(cfg), ds) if given.get("q_pixel_size") is not None else None
        if err is not None:  # (not a q-range of one input's own file)
            raise ParameterError(f"{err} (checked on {path}, {where})") from None
        return


def _by_content(used: dict[str, dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """``used`` with its path values (``[calibration] file``, the electrode masks ``.npy`` among the
    ``[transport] electrodes`` keys) replaced by ``"sha256:<hex>"`` of the files' content (of a calibration file,
    the calibration values it gives: :func:`stemgrains.io.read_calibration_json`), and those digests by
    config key (``{"[calibration] file": digest, "[transport] electrodes": [digest per mask, in order]}``,
    ``{}`` when the config names no file)."""
    def digest(path: str) -> str:
        return f"sha256:{file_sha256s([path])[0]}"

    def calibration_digest(path: str) -> str:
        # the calibration values the file gives, not its bytes: a summary.json or a fit's uncertainties and notes
        # that change leave the results as they are
        import hashlib
        import json

        from ..io.calibration import read_calibration_json

        text = json.dumps(read_calibration_json(path), sort_keys=True)
        return f"sha256:{hashlib.sha256(text.encode()).hexdigest()}"

    out = {section: dict(keys) for section, keys in used.items()}
    files: dict[str, Any] = {}
    if out.get("calibration", {}).get("file"):
        out["calibration"]["file"] = files["[calibration] file"] = calibration_digest(out["calibration"]["file"])
    electrodes = out.get("transport", {}).get("electrodes")
    if electrodes and any(k.lower().endswith(".npy") for k in electrodes):
        out["transport"]["electrodes"] = {(digest(k) if k.lower().endswith(".npy") else k): v
                                          for k, v in electrodes.items()}
        files["[transport] electrodes"] = [k for k in out["transport"]["electrodes"] if k.startswith("sha256:")]
    return out, files


def batch_params(phases: list[str], cfg: dict[str, dict[str, Any]], command: str, **extra: Any) -> dict[str, Any]:
    """The parameters of one input's job in a batch of ``command`` (``run`` or ``index``), JSON-able, after
    :func:`check_batch_arguments`.

    Their fingerprint (:func:`stemgrains.batch.params_fingerprint`: the keys not starting with ``_``) decides
    whether an input done before is skipped, so they hold what changes the results and nothing else:
    ``command``; ``config``, the part of the effective config ``cfg`` (:func:`stemgrains.settings.resolve`) that ``command``
    reads (:func:`stemgrains.settings.used_config`) with the files it names (``[calibration] file``, electrode
    masks ``.npy``) given by their content's SHA-256 instead of their paths; ``file_sha256``, those digests by
    config key (``{}`` without such files); ``phase_sha256``, the phase CIFs' content, in order; and ``extra`` (e.g. the names of export files). Not fingerprinted: ``_config``, that part
    of the config as it is (with the paths; the jobs run with it and ``OUTDIR/config.toml`` records it), and
    ``_phases`` (the CIF paths, absolute): the same files moved or copied elsewhere give the same results. For
    ``run`` on phases none of which conducts, the field is left out of ``config`` (it is not used).
    """
    from ..crystal import resolve_cif
    from ..settings import used_config

    check_batch_arguments(phases, cfg, command)
    used = used_config(cfg, command)
    paths = [str(resolve_cif(c).resolve()) for c in phases]  # a built-in name (--phase au): the shipped CIF
    by_content, files = _by_content(used)
    if command == "run" and _nothing_conducts(phases, cfg):  # a field is not used: it changes no result
        by_content["classify"] = {k: v for k, v in by_content.get("classify", {}).items()
                                  if k not in ("field", "field_from_transport")}
    from ..settings import SOURCES_KEY

    if cfg.get("calibration", {}).get(SOURCES_KEY):  # where each calibration value was given (not a config key)
        used = {**used, "calibration": {**used.get("calibration", {}), SOURCES_KEY: cfg["calibration"][SOURCES_KEY]}}
    return dict(command=command, config=by_content, phase_sha256=file_sha256s(paths), file_sha256=files,
                _config=used, _phases=paths, **extra)


def _nothing_conducts(phases: list[str], cfg: dict[str, dict[str, Any]]) -> bool:
    """True where no phase has Na+ conduction planes and ``[classify] conducting_phases`` names none: the run
    classifies nothing and uses no field (so a field given, changed or dropped is not a new parameter)."""
    from ..crystal import has_conduction_planes, load_phase

    return cfg.get("classify", {}).get("conducting_phases") is None and not any(
        has_conduction_planes(load_phase(c)) for c in phases)


def run_batch_command(args: argparse.Namespace, job: Any, params: dict[str, Any],
                      cfg: dict[str, dict[str, Any]] | None = None) -> int:
    """Expand ``args.input``, run the batch into ``args.output`` and print its outcome; 1 if any input failed.

    ``params`` from :func:`batch_params`: its ``_config`` is also written to ``OUTDIR/config.toml``. A folder
    holding a single run's results is refused unless ``--overwrite`` (``run``). With the effective config ``cfg``,
    a pixel size or centre given to the batch is checked once first (:func:`check_batch_calibration`)."""
    from ..batch import expand_inputs, format_result, run_batch
    from ..settings import config_to_toml

    if Path(args.output).suffix.lower() in (".h5", ".hdf5") and not Path(args.output).is_dir():
        raise ParameterError(f"-o {args.output}: several inputs write a folder (one subfolder per input, each with "
                             "its results.h5); give a folder name")
    inputs = expand_inputs(args.input, recursive=args.recursive)
    if cfg is not None:
        check_batch_calibration(inputs, cfg)
    header = (f"effective config of the batch into {Path(args.output).resolve()} (every input ran with it); "
              "--config this file repeats it")
    result = run_batch(inputs, args.output, job, params, jobs=args.jobs, scheduler=args.scheduler, force=args.force,
                       progress=not args.no_progress, config_toml=config_to_toml(params["_config"], header=header),
                       overwrite=getattr(args, "overwrite", False))
    print(format_result(result))
    return 1 if result.failed else 0
