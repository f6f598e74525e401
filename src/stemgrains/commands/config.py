"""``stemgrains config --dump [-o FILE.toml]``: the config file of every parameter, with its defaults."""

from __future__ import annotations

import argparse
import sys

from ..errors import ParameterError, StemgrainsError

NAME = "config"
HELP = "write the default config file (--dump), extract a results file's config (--from) or check one (--check)"
DESCRIPTION = (
    "Config files hold every parameter of every stage ([calibration], [index], [spots], [grains], [classify], "
    "[transport], [figures]); run, index, segment, classify and transport read them with --config FILE, and "
    "options given on the command line override the file. --dump writes the defaults with a comment per key "
    "(meaning, unit, default, option); --from RESULTS.h5 writes the config a results file was made with; "
    "--check validates a file (exit status 2 and one line naming the key if it is wrong)."
)
ORDER = 90


def add_arguments(p: argparse.ArgumentParser) -> None:
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--dump", action="store_true", help="write the default config, a comment per key")
    what.add_argument("--from", dest="from_file", metavar="RESULTS.h5",
                      help="write the config recorded in a results file (or a config file, normalised)")
    what.add_argument("--check", metavar="FILE.toml", help="validate a config file (or a results file's config)")
    p.add_argument("-o", "--output", default=None, metavar="FILE.toml",
                   help="write there (atomically) instead of to standard output (\"-\": standard output); an "
                        "existing file is replaced only when it is a config file holding the same values (an edited config is kept)")
    p.add_argument("--force", action="store_true", help="replace an existing -o file whatever it holds")


def run(args: argparse.Namespace) -> int:
    from ..settings import check_config_values, config_to_toml, dump_config, load_config

    if args.check:
        cfg = load_config(args.check)
        check_config_values(cfg, str(args.check))
        n = sum(len(v) for v in cfg.values())
        print(f"{args.check}: ok ({n} key{'' if n == 1 else 's'} set in {len(cfg)} section{'' if len(cfg) == 1 else 's'})")
        return 0
    to_file = bool(args.output) and args.output != "-"
    if to_file:
        from pathlib import Path

        from ..io.outputs import check_outputs

        check_outputs({"-o": args.output}, [args.from_file])  # before anything is read
        if Path(args.output).suffix.lower() != ".toml":
            raise ParameterError(f"-o {args.output}: a config is TOML text; give a .toml file")
        if Path(args.output).is_file() and not args.force:
            try:
                existing = load_config(args.output)
            except StemgrainsError:
                from ..io.outputs import describe_file

                raise ParameterError(f"-o {args.output}: is {describe_file(Path(args.output))}, not a config file; "
                                     "choose another name, or give --force to replace it") from None
    if args.dump:
        text = dump_config()
    else:
        cfg = load_config(args.from_file)
        text = config_to_toml(cfg, header=f"config recorded in {args.from_file}")
    if to_file and Path(args.output).is_file() and not args.force:
        _refuse_other_values(args.output, existing, text)
    if to_file:
        from ..io.results import atomic_write_text

        atomic_write_text(args.output, text)
        print(f"config → {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def _refuse_other_values(path: str, existing: dict, text: str) -> None:
    """Refuse (ParameterError) to replace the config file ``path`` (values ``existing``) by ``text`` unless it holds
    exactly that text: a config someone edited (values or comments) is not lost to ``--dump`` (``--force`` replaces
    it); the changed keys are named."""
    import tomllib

    from ..settings import parse_config

    new = parse_config(tomllib.loads(text))
    changed = sorted(f"[{sec}] {key}" for sec in set(existing) | set(new)
                     for key in set(existing.get(sec, {})) | set(new.get(sec, {}))
                     if existing.get(sec, {}).get(key, _UNSET) != new.get(sec, {}).get(key, _UNSET))
    if changed:
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        raise ParameterError(f"-o {path}: is a config file whose values this would change ({', '.join(changed[:3])}{more}); "
                             "choose another name, or give --force to replace it")
    from pathlib import Path

    if Path(path).read_text(encoding="utf-8", errors="replace") != text:
        raise ParameterError(f"-o {path}: is a config file with the same values but other comments or layout (edited "
                             "by hand?), which this would lose; choose another name, or give --force to replace it")


_UNSET = object()
