"""`stemgrains run --special` (issue: the Σ-list of special boundaries was reachable only through `[grains] special`
of a config file): the same meaning and checks as `segment --special`, bad values named by the option, before any
work."""

from __future__ import annotations

import csv
import json

import h5py
import pytest

from stemgrains.cli import main
from stemgrains.io.results import read_parameters
from stemgrains.simulate import sample_cif

AU = str(sample_cif("au"))


@pytest.fixture(scope="module")
def scan(au_scan_3x3):
    return au_scan_3x3


def test_run_special_reaches_the_boundaries(scan, tmp_path, capsys):
    out = tmp_path / "r"
    # "any" (0° about [100] within 180°) matches every boundary, so the tables cannot pass with empty columns
    assert main(["run", str(scan), "--phase", AU, "--field", "1,0", "--step", "3", "--no-progress", "--no-figures",
                 "--special", "twin:60:1,1,1:5", "--special", "s3:60:1,1,1:8.66", "--special", "any:0:1,0,0:180",
                 "--min-size", "1", "-o", str(out)]) == 0
    with h5py.File(out / "results.h5", "r") as f:
        specials = read_parameters(f, "run")["boundaries"]["special"]
        b = f["boundaries/boundaries"]
        names = b["special"][()].astype(str).tolist()
        sigma = b["csl_sigma"][()].tolist()
        length = b["length_nm"][()]
    assert [s["name"] if isinstance(s, dict) else s[0] for s in specials] == ["twin", "s3", "any"]
    assert 'special = ["twin:60:1,1,1:5", "s3:60:1,1,1:8.66", "any:0:1,0,0:180"]' in (out / "config.toml").read_text()
    assert names and all(names)
    # issue: the special boundaries were only in results.h5; boundaries.csv/segments.csv carry them (the column
    # names of /boundaries/boundaries and `segment --csv`), summary.json and stdout count them
    with open(out / "boundaries.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["special"] for r in rows] == names and [int(r["csl_sigma"]) for r in rows] == sigma
    with open(out / "segments.csv", newline="") as fh:
        seg = list(csv.DictReader(fh))
    assert {(int(r["boundary_id"]), r["special"]) for r in seg} == {(int(r["boundary_id"]), r["special"]) for r in rows}
    summary = json.loads((out / "summary.json").read_text())["special"]
    stdout = capsys.readouterr().out
    printed = [ln for ln in stdout.splitlines() if ln.startswith("  special ")]
    assert list(summary) == ["twin", "s3", "any"] and len(printed) == 3
    assert "  (a boundary within the tolerance of several specials counts under the closest only)" in stdout
    for name, line in zip(summary, printed):
        n = names.count(name)
        assert summary[name]["n_boundaries"] == n
        assert summary[name]["length_nm"] == pytest.approx(sum(x for x, m in zip(length, names) if m == name))
        assert line.startswith(f"  special {name}: {n} boundaries, {summary[name]['length_nm']:.1f} nm (")


@pytest.mark.parametrize("spec, needle", [("twin:60:1,1", "axis '1,1' has 2 indices"), ("t:x:1,1,1", "ANGLE 'x' is not a number"),
                                          ("twin", "NAME:ANGLE:U,V,W")])
def test_run_bad_special_is_named_before_any_work(scan, tmp_path, capsys, spec, needle):
    out = tmp_path / "r"
    assert main(["run", str(scan), "--phase", AU, "--field", "1,0", "--no-progress", "--special", spec,
                 "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("stemgrains run: error: --special:") and needle in err[0], err
    assert not out.exists()


def test_config_special_is_named_by_file_and_key(scan, tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[grains]\nspecial = ["x:1"]\n')
    assert main(["run", str(scan), "--phase", AU, "--field", "1,0", "--no-progress", "--config", str(cfg),
                 "-o", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{cfg}: [grains] special: " in err[0], err


def test_a_special_name_given_twice_is_refused(scan, tmp_path, capsys):
    """Issue: `--special w:... --special w:...` printed one `special w:` line but stored both; a boundary is
    named after the closest special only, so names must be distinct."""
    out = tmp_path / "r"
    argv = ["run", str(scan), "--phase", AU, "--field", "1,0", "--no-progress", "-o", str(out)]
    assert main([*argv, "--special", "w:90:1,1,1:90", "--special", "w:30:0,0,1:10"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["stemgrains run: error: --special: special misorientation 'w' is given twice; give each special "
                   "misorientation its own NAME"]
    cfg = tmp_path / "c.toml"
    cfg.write_text('[grains]\nspecial = ["w:90:1,1,1:90", "v:1:1,0,0", "w:30:0,0,1:10"]\n')
    assert main([*argv, "--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"stemgrains run: error: {cfg}: [grains] special: special "
                                               "misorientation 'w' is given twice"), err
    assert not out.exists()


@pytest.mark.parametrize("spec, message", [
    # a 4-index axis for no hexagonal/trigonal phase: refused as such first, not for U + V + T != 0
    ("twin:60:1,1,1,1:2", "--special: special misorientation 'twin': axis 1,1,1,1 has 4 (Miller–Bravais [UVTW]) "
                          "indices, which only hexagonal/trigonal phases take; the phases are 0:au (cubic)"),
    ("x:60:1,1,1:inf", "--special: special misorientation 'x:60:1,1,1:inf': TOL must be a finite number > 0 degrees, "
                       "got inf; expected NAME:ANGLE:U,V,W[:TOL]"),
    # a 2-index axis used to read "axis needs 3 (uvw) or 4 (UVTW) indices, not all 0" (and named it 'a' only)
    ("a:60:1,1:5", "--special: special misorientation 'a:60:1,1:5': axis '1,1' has 2 indices, not 3 or 4; expected "
                   "NAME:ANGLE:U,V,W[:TOL] (ANGLE, TOL in degrees, TOL default 5; axis [uvw] or Miller–Bravais U,V,T,W)"),
])
def test_special_refusals_say_what_is_wrong_first(scan, tmp_path, capsys, spec, message):
    out = tmp_path / "r"
    assert main(["run", str(scan), "--phase", AU, "--field", "1,0", "--no-progress", "--special", spec,
                 "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"stemgrains run: error: {message}"), err
    assert not out.exists()
