"""Command-line interface: ``stemgrains <command> ...``.

Each subcommand lives in :mod:`stemgrains.commands` as a module with ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``; this file only discovers and dispatches them.
No science here.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import os
import pkgutil
import re
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from . import commands as _commands_pkg
from ._version import __version__
from .errors import StemgrainsError

__all__ = ["main", "build_parser"]

#: commands whose -o is one file (the others' is a folder)
_FILE_OUTPUT = ("index", "calibrate", "segment", "classify", "transport", "virtual", "simulate", "config")

#: commands that keep finished work and pick it up when run again with the same arguments
_RESUMABLE = ("index", "run")


def _kept_aside(args: argparse.Namespace) -> str:
    """Where an interrupted ``run --overwrite`` keeps the results it was replacing (``""`` where none are kept)."""
    from pathlib import Path

    from .io.outputs import REPLACED

    out = getattr(args, "output", None)
    if args.command != "run" or not out or not (Path(out) / REPLACED).is_dir():
        return ""
    return f" (the results it replaces are kept in {Path(out) / REPLACED} until it finishes)"


def _interrupted(err: BaseException) -> bool:
    """True if ``err`` is a KeyboardInterrupt or was caused by one.

    Ctrl-C arriving while numba calls back into Python surfaces as ``SystemError: ... returned a result with
    an exception set`` chained to the KeyboardInterrupt, not as the KeyboardInterrupt itself.
    """
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, KeyboardInterrupt):
            return True
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return False


def _command_modules():
    mods = []
    for info in pkgutil.iter_modules(_commands_pkg.__path__):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{_commands_pkg.__name__}.{info.name}")
        mods.append(mod)
    return sorted(mods, key=lambda m: getattr(m, "ORDER", 100))


def _in_numba(frame) -> bool:
    return frame is not None and str(frame.f_globals.get("__name__", "")).startswith("numba")


@contextlib.contextmanager
def _safe_interrupts():
    """Raise Ctrl-C's KeyboardInterrupt only outside numba's own Python code.

    A compiled kernel calls back into Python (to unpickle constants, for instance); an exception raised there
    leaves the kernel with an exception set, which surfaces as a chained ``SystemError`` or, at worst, a
    crash. While the main thread is in numba's code the interrupt is put off and retried every 20 ms
    (``SIGALRM``), so it lands in our code and the checkpoint stays valid.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def on_signal(signum, frame):
        if _in_numba(frame):
            signal.setitimer(signal.ITIMER_REAL, 0.02)  # try again shortly
            return
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_alrm)
        raise KeyboardInterrupt

    def on_alarm(signum, frame):
        on_signal(signum, frame)

    old_int = signal.signal(signal.SIGINT, on_signal)
    old_alrm = signal.getsignal(signal.SIGALRM)
    signal.signal(signal.SIGALRM, on_alarm)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGALRM, old_alrm)


class _OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (what was wrong, and where the help is), exit status 2.

    An option the command does not have (``--q-pixelsize``, ``--min-reliabilty``) is refused before anything
    else (argparse would first ask for a required option, or say "unrecognized arguments" without a hint),
    naming it and the command's closest options (:func:`_unknown_option`)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        if self._subparsers is not None:  # the top-level parser: look at the command's options first
            argv = list(sys.argv[1:] if args is None else args)
            found = _unknown_option(self, argv)
            if found is not None:
                sub, message = found
                sub.error(message)
        return super().parse_known_args(args, namespace)

    def _check_value(self, action, value):  # type: ignore[override]
        """An invalid choice (a command, ``--method``) with the closest one (difflib), if any is close."""
        if action.choices is not None and value not in action.choices:
            choices = [str(c) for c in action.choices]
            close = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}? " if close else ""
            raise argparse.ArgumentError(action, f"invalid choice: {value!r} ({hint}choose from {', '.join(choices)})")

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        ns, extras = self.parse_known_args(args, namespace)
        if extras:  # words left over (a second input where the command takes one): named by the command
            sub = _command_parsers(self).get(getattr(ns, "command", None), self)
            sub.error(f"unexpected argument{'s' if len(extras) > 1 else ''} {' '.join(extras)}")
        return ns


def _command_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _unknown_option(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[argparse.ArgumentParser, str] | None:
    """The first option in ``argv`` that its command does not have, as ``(that command's parser, message)``:
    ``no option --q-pixelsize (did you mean --q-pixel-size?)``, the suggestions being the command's closest
    options (difflib; ``_`` read as ``-``; at most two), else the other commands that have it; ``None`` when every option is
    known or is a prefix of known ones (argparse's abbreviations; it reports ambiguous ones itself)."""
    commands = _command_parsers(parser)
    name = next((a for a in argv if not a.startswith("-")), None)
    if "-h" in argv or "--help" in argv:
        return None
    at = argv.index(name) if name in argv else len(argv)
    # the options before the command (or without one: stemgrains --verison) are stemgrains's, then the command's
    for sub, rest in [(parser, argv[:at])] + ([(commands[name], argv[at + 1:])] if name in commands else []):
        found = _unknown_in(sub, rest, commands if sub is not parser else {}, name)
        if found is not None:
            return sub, found
    return None


def _unknown_in(sub: argparse.ArgumentParser, rest: list[str], commands: dict[str, argparse.ArgumentParser],
                name: str | None) -> str | None:
    """:func:`_unknown_option`'s message for the first option of ``rest`` that ``sub`` does not have."""
    known = [o for a in sub._actions for o in a.option_strings]
    for token in rest[:rest.index("--")] if "--" in rest else rest:
        if not token.startswith("-") or token == "-" or token[1] in "0123456789." or " " in token:
            continue  # a value (-1, -1,2: argparse says what it makes of them)
        opt = token.split("=", 1)[0]
        if opt.startswith("--") and any(k.startswith(opt) for k in known):
            continue
        if not opt.startswith("--") and opt[:2] in known:  # -o, -oFILE, -h
            continue
        spelled = opt.replace("_", "-")
        ratios = sorted(((difflib.SequenceMatcher(None, spelled, k).ratio(), k) for k in known if k.startswith("--")),
                        reverse=True)
        close = [k for r, k in ratios[:2] if r >= 0.6 and r >= ratios[0][0] - 0.05]
        others = [n for n, p in commands.items()
                  if n != name and spelled in (o for a in p._actions for o in a.option_strings)]
        if close and (ratios[0][0] >= 0.85 or not others):
            hint = f" (did you mean {' or '.join(close)}?)"
        elif others:  # right for another command (--min-reliability is run's and segment's, not index's)
            hint = f" (an option of stemgrains {', '.join(others)})"
        else:
            hint = ""
        return f"no option {opt}{hint}"
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="stemgrains",
        description="4D-STEM orientation maps, grains, grain boundaries and Na+ conduction-plane classification.",
    )
    parser.add_argument("--version", action="version", version=f"stemgrains {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in _command_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP))
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


#: the API's parameter names whose CLI option has another destination name (``dest``); a name equal to its
#: option's dest (``chunk_rows`` → ``--chunk-rows``) needs no entry
_API_NAMES = {
    "step_deg": "step", "threshold_deg": "threshold", "low_angle_deg": "low_angle", "conductivity_ratio": "ratio",
    "flat_tolerance_deg": "flat_tol", "gb_conductivity": "gb_sigma", "scan_shape": "scan", "detector_shape": "detector",
    "scan_step_nm": "step_nm", "accelerating_voltage_kV": "voltage", "min_grain_size": "min_size",
    "frame_thickness": "frame", "grains": "grains", "n_grains": "grains", "field": "field", "delta_deg": "delta",
    "conducting_phases": "conducting_phase", "min_overlap_fraction": "min_overlap", "max_rotation_deg": "max_rotation",
    "move_tolerance_px": "move_tolerance", "max_angle_deg": "max_angle", "disk_radius_px": "disk_radius",
}
_NAME_AT_START = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(\s*\([^)]*\))?(?=[ :])")


def _option_names(message: str, subparser: argparse.ArgumentParser | None, typed: list[str]) -> str:
    """A message that starts with an API parameter name (``chunk_rows must be ...``) as the user typed it
    (``--chunk-rows must be ...``), where the command has that option and it is among the ``typed`` arguments
    (a value from a config file keeps the name: the file's own checks name file, section and key); so does one that
    starts with a config key (``[index] k_max 0.05: ...`` → ``--k-max 0.05: ...``) whose option was typed; other
    messages unchanged."""
    key = re.match(r"^\[(\w+)\] (\w+)(?=[ :])", message)  # a config key, [index] k_max: as typed, --k-max
    if key is not None and subparser is not None:
        from .settings import schema

        flag = next((k.flag for k in schema() if (k.section, k.name) == key.groups() and k.flag), None)
        if flag and flag in {o for a in subparser._actions for o in a.option_strings} \
                and any(t == flag or t.startswith(flag + "=") for t in typed):
            return flag + message[key.end():]
        return message
    m = _NAME_AT_START.match(message)
    if subparser is None or m is None:
        return message
    name = m.group(1)
    dest = _API_NAMES.get(name, name)
    for action in subparser._actions:
        if action.dest == dest and action.option_strings:
            if not any(t == o or t.startswith(o + "=") for t in typed for o in action.option_strings):
                return message
            option = max(action.option_strings, key=len)
            return option + (m.group(2) or "") + message[m.end():]
    return message


def _center_origin(message: str, args: argparse.Namespace, typed: list[str]) -> str:
    """A beam centre off the detector (``center (row, col) = ... lies outside ...``,
    :meth:`stemgrains.data.Calibration.check_detector`) named by where it came from when ``--center`` was not
    typed: ``FILE: [calibration] center`` of ``--config FILE``, else the ``--calibration`` JSON (or the config's
    ``[calibration] file``) that holds one; otherwise it is the centre stored in the data file, which the message
    names, and a command with ``--center`` says so and that the option overrides it."""
    if not message.startswith("center (row, col) =") or any(t == "--center" or t.startswith("--center=") for t in typed):
        return message
    try:
        from .io.calibration import read_calibration_json
        from .settings import load_config

        cal = load_config(args.config).get("calibration", {}) if getattr(args, "config", None) else {}
        if cal.get("center") is not None:
            return f"{args.config}: [calibration] {message}"
        for js in (getattr(args, "calibration", None), cal.get("file")):
            if js and read_calibration_json(js).get("center") is not None:
                return f"{js}: {message}"
    except Exception:  # noqa: BLE001 - the original message is still right
        pass
    if hasattr(args, "center"):
        return (f"{message}; that centre is stored in the file's attributes (center_row/center_col of /data): give "
                "--center ROW,COL to override it")
    return message


def _config_origin(message: str, args: argparse.Namespace) -> str:
    """A message about a config key (``[section] key: ...``, checks that need the data, e.g.
    :func:`stemgrains.settings.check_q_range`) prefixed with the ``--config`` file where that file sets the key, or
    with the ``--calibration`` file where that file gives a ``[calibration]`` value."""
    m = re.match(r"^\[(\w+)\] (\w+)", message)
    if m is not None and m.group(1) == "calibration" and getattr(args, "calibration", None):
        try:
            from .io.calibration import read_calibration_json

            if m.group(2) in read_calibration_json(args.calibration):
                return f"{args.calibration}: {message}"
        except Exception:  # noqa: BLE001 - the original message is still right
            pass
    if m is None or not getattr(args, "config", None):
        return message
    try:
        from .settings import load_config

        if m.group(2) in load_config(args.config).get(m.group(1), {}):
            return f"{args.config}: {message}"
    except Exception:  # noqa: BLE001 - the original message is still right
        pass
    return message


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices.get(command)
    return None


#: a value that starts with a minus sign: a negative number or a comma-separated list starting with one
_NEGATIVE_VALUE = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?(,\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)*$")


def _join_negative_values(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """``--field -1,0`` as ``--field=-1,0``: argparse reads a token starting with ``-`` that is not a plain
    negative number (``-1,0``, ``-0.5,0,0.1``) as an option, and refuses the option's value as missing. Joined only
    after a long option of the command that takes a value."""
    command = next((a for a in argv if not a.startswith("-")), None)
    sub = _subparser(parser, command) if command else None
    if sub is None:
        return argv
    out: list[str] = []
    i = 0
    while i < len(argv):
        tok = argv[i]
        action = sub._option_string_actions.get(tok) if tok.startswith("--") and "=" not in tok else None
        if action is not None and action.nargs != 0 and i + 1 < len(argv) and _NEGATIVE_VALUE.match(argv[i + 1]):
            out.append(f"{tok}={argv[i + 1]}")
            i += 2
            continue
        out.append(tok)
        i += 1
    return out


def _option_of_path(args: argparse.Namespace, filename: Any) -> str:
    """``"-o PATH: "`` (or ``"--name PATH: "``, ``"PATH: "`` for the positional input) where ``filename`` is the path a
    command-line option gave, lies inside it, is a working file beside it (``OUT.h5.partial``: named as the option's
    path), or is a folder above it (a missing or unusable parent of an output file); ``"FILENAME: "`` where none did."""
    target = os.path.abspath(str(filename))
    for key, value in vars(args).items():
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if not isinstance(v, (str, os.PathLike)) or not str(v) or key.startswith("_"):
                continue
            given = os.path.abspath(str(v))
            flag = {"output": "-o ", "input": ""}.get(key, f"--{key.replace('_', '-')} ")
            if target == given or target.startswith(given.rstrip(os.sep) + os.sep):
                return f"{flag}{filename!s}: "
            if key == "output" and (target.startswith(given + ".") or given.startswith(target.rstrip(os.sep) + os.sep)):
                return f"{flag}{v!s}: "
    return f"{filename!s}: "


def _phase_given_twice(phases: Any) -> tuple[str, str] | None:
    """The first two ``--phase`` values that name the same phase (the same file, or the same shipped name with or
    without ``.cif``), or None: two templates of one phase would split every pattern between them."""
    if not isinstance(phases, list):
        return None
    seen: dict[str, str] = {}
    for p in phases:
        text = str(p)
        path = Path(text)
        key = str(path.resolve()) if path.is_file() else text.lower().removesuffix(".cif")
        if key in seen:
            return seen[key], text
        seen[key] = text
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_join_negative_values(parser, list(sys.argv[1:] if argv is None else argv)))
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 2
    output = getattr(args, "output", None)
    if isinstance(output, str) and (not output.strip() or (args.command in _FILE_OUTPUT and Path(output).name in ("", "."))):
        # an unset shell variable (-o "$OUT") would make the current folder a run folder, or crash a file output
        what = "an empty path" if not output.strip() else "a folder"
        print(f"stemgrains {args.command}: error: -o {output!r}: {what}; give "
              f"{'a file name' if args.command in _FILE_OUTPUT else 'an output folder'}", file=sys.stderr)
        return 2
    twice = _phase_given_twice(getattr(args, "phase", None))
    if twice:
        print(f"stemgrains {args.command}: error: --phase {twice[1]}: the same phase as --phase {twice[0]}; give each "
              "phase once", file=sys.stderr)
        return 2
    try:
        with _safe_interrupts():
            return int(args._run(args) or 0)
    except StemgrainsError as err:
        typed = list(sys.argv[1:] if argv is None else argv)
        msg = _config_origin(_option_names(_center_origin(str(err), args, typed), _subparser(parser, args.command),
                                           typed), args)
        print(f"stemgrains {args.command}: error: {msg}{_kept_aside(args)}", file=sys.stderr)
        return 2
    except MemoryError as err:  # e.g. numpy's "Unable to allocate 298. GiB for an array with shape ..."
        print(f"stemgrains {args.command}: error: not enough memory for what was asked ({err}); a smaller scan, "
              "detector, frame or --k-max needs less", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (FileExistsError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError) as err:
        # a path that cannot be used (an output where a file stands in for a folder, a missing or read-only folder)
        where = _option_of_path(args, err.filename) if getattr(err, "filename", None) else ""
        print(f"stemgrains {args.command}: error: {where}{err.strerror or err}", file=sys.stderr)
        return 2
    except BaseException as err:
        if not _interrupted(err):
            raise
        what = "rerun the same command to resume" if args.command in _RESUMABLE else "no output was written"
        what += _kept_aside(args)
        lead = "\n" if sys.stderr.isatty() else ""  # a progress bar may have left the cursor mid-line
        print(f"{lead}stemgrains {args.command}: interrupted; {what}", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
