"""`stemgrains run --special` (issue: the Σ-list of special boundaries was reachable only through `[grains] special`
of a config file): the same meaning and checks as `segment --special`, bad values named by the option, before any
work."""

from __future__ import annotations

import h5py
import pytest

from stemgrains.cli import main
from stemgrains.io.results import read_parameters
from stemgrains.simulate import sample_cif

AU = str(sample_cif("au"))


@pytest.fixture(scope="module")
def scan(au_scan_3x3):
    return au_scan_3x3


def test_run_special_reaches_the_boundaries(scan, tmp_path):
    out = tmp_path / "r"
    assert main(["run", str(scan), "--phase", AU, "--field", "1,0", "--step", "3", "--no-progress", "--no-figures",
                 "--special", "twin:60:1,1,1:5", "--special", "s3:60:1,1,1:8.66", "-o", str(out)]) == 0
    with h5py.File(out / "results.h5", "r") as f:
        specials = read_parameters(f, "run")["boundaries"]["special"]
    assert [s["name"] if isinstance(s, dict) else s[0] for s in specials] == ["twin", "s3"]
    assert 'special = ["twin:60:1,1,1:5", "s3:60:1,1,1:8.66"]' in (out / "config.toml").read_text()


@pytest.mark.parametrize("spec, needle", [("twin:60:1,1", "axis needs 3"), ("t:x:1,1,1", "must be numbers"),
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
