"""Command-line mistakes give one line naming the option and what was expected, exit status 2."""

from __future__ import annotations

import pytest

from stemgrains.cli import main


@pytest.mark.parametrize(
    "argv, expect",
    [
        (["index"], "the following arguments are required"),
        (["index", "x.h5", "--phase", "a.cif", "-o", "o.h5", "--step", "abc"], "argument --step: invalid float value"),
        (["no-such-command"], "invalid choice"),
    ],
)
def test_argparse_errors_are_one_line(argv, expect, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expect in err and "--help" in err


def test_bad_pixel_size_names_the_option(data_samples, tmp_path, capsys):
    rc = main(["index", str(data_samples / "nba_sample.h5"), "--phase", str(data_samples / "na_beta2_alumina.cif"), "-o", str(tmp_path / "o.h5"), "--q-pixel-size", "-1"])
    err = capsys.readouterr().err
    assert rc == 2 and "--q-pixel-size expects a finite positive number" in err and err.count("\n") == 1


def test_electrode_given_twice_is_refused(data_samples, tmp_path, capsys):
    rc = main(["run", str(data_samples / "nba_sample.h5"), "--phase", str(data_samples / "na_beta2_alumina.cif"), "-o", str(tmp_path / "r"), "--field", "1,0",
               "--electrode", "left=1", "--electrode", "left=0"])
    err = capsys.readouterr().err
    assert rc == 2 and "--electrode left is given twice" in err


@pytest.mark.parametrize("opt, name", [("--export-ang", "map.h5"), ("--export-ang", "map.txt"), ("--export-ctf", "map.txt")])
def test_export_name_must_carry_its_format(data_samples, tmp_path, capsys, opt, name):
    rc = main(["index", str(data_samples / "nba_sample.h5"), "--phase", str(data_samples / "na_beta2_alumina.cif"),
               "-o", str(tmp_path / "o.h5"), opt, str(tmp_path / name)])
    err = capsys.readouterr().err
    assert rc == 2 and "must end in" in err and err.count("\n") == 1
    assert not (tmp_path / "o.h5").exists()  # refused before any work
