"""[calibrate] of a config file: the options of `stemgrains calibrate` (--method, --k-max, --max-patterns,
--n-index, --max-index, --no-confirm, --neighbor-average-radius) set from a file, overridden by the options, checked
by `config --check`, and the fit options of `index`/`run --auto-calibrate`; the fit records them (report.options)."""

from __future__ import annotations

import json

import h5py
import pytest

from stemgrains import settings
from stemgrains.cli import main


def test_calibrate_section_in_the_schema_with_the_cli_names():
    d = settings.default_config()["calibrate"]
    assert d == {"method": "auto", "k_max": 1.5, "max_patterns": 1024, "n_index": 16, "max_index": 64,
                 "neighbor_average_radius": 1, "confirm": True}
    flags = {k.name: k.flag for k in settings.schema() if k.section == "calibrate"}
    assert flags["n_index"] == "--n-index" and flags["max_index"] == "--max-index" and flags["confirm"] == "--no-confirm"
    assert "[calibrate]" in settings.dump_config()


@pytest.mark.parametrize("text, expect", [
    ("[calibrate]\nmax_index = 0\n", "[calibrate] max_index: expected an integer of at least 1, got 0"),
    ("[calibrate]\nn_index = 2.5\n", "[calibrate] n_index: expected an integer"),
    ("[calibrate]\nmethod = \"ring\"\n", '[calibrate] method: expected one of auto, rings, orientations, got "ring" '
                                         "(did you mean rings?)"),
    ("[calibrate]\nk_max = 9.0\n", "[calibrate] k_max: expected a value above 0 and at most 4"),
    ("[calibrate]\nneighbor_average_radius = 11\n", "[calibrate] neighbor_average_radius: expected a value from 0 to 10"),
    ("[calibrate]\nconfirm = 1\n", "[calibrate] confirm: expected true or false"),
    ("[calibrate]\nn_idx = 3\n", "unknown key [calibrate] n_idx (did you mean n_index?)"),
])
def test_config_check_validates_calibrate(tmp_path, capsys, text, expect):
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    assert main(["config", "--check", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{cfg}: " in err and expect in err, err
    cfg.write_text("[calibrate]\nmethod = \"orientations\"\nn_index = 4\nmax_index = 8\nconfirm = false\n")
    assert main(["config", "--check", str(cfg)]) == 0


def test_index_records_calibrate_only_with_auto_calibrate():
    """Without --auto-calibrate nothing reads [calibrate]: it is not recorded (nor fingerprinted) by index/run."""
    cfg = settings.default_config()
    assert "calibrate" not in settings.used_config(cfg, "index") and "calibrate" not in settings.used_config(cfg, "run")
    cfg["calibration"]["auto"] = True
    for command in ("index", "run"):  # the fit's k_max and neighbour summation are the indexing's
        assert set(settings.used_config(cfg, command)["calibrate"]) == {"method", "max_patterns", "n_index",
                                                                         "max_index", "confirm"}
    assert set(settings.used_config(cfg, "calibrate")) == {"calibration", "calibrate", "spots"}


def test_calibrate_reads_the_config_and_options_override_it(au_scan_3x3, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[calibrate]\nmethod = \"orientations\"\nn_index = 4\nmax_index = 20\nconfirm = false\n")
    out = tmp_path / "cal.json"
    assert main(["calibrate", str(au_scan_3x3), "--phase", "au", "-o", str(out), "--no-figure", "--config", str(cfg),
                 "--n-index", "6"]) == 0
    options = json.loads(out.read_text())["report"]["options"]
    assert options == {"method": "orientations", "n_index": 6, "max_index": 20, "confirm": False,
                       "max_patterns": 1024, "k_max": 1.5, "neighbor_average_radius": 1}
    assert json.loads(out.read_text())["method"] == "orientations"


def test_auto_calibrate_of_index_takes_the_calibrate_section(au_scan_3x3, tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[calibrate]\nmethod = \"orientations\"\nn_index = 4\nmax_index = 8\nconfirm = false\n")
    out = tmp_path / "m.h5"
    assert main(["index", str(au_scan_3x3), "--phase", "au", "-o", str(out), "--config", str(cfg), "--auto-calibrate",
                 "--no-progress"]) == 0
    assert "calibrate: reading" not in capsys.readouterr().err  # the fit's step lines are progress
    assert main(["index", str(au_scan_3x3), "--phase", "au", "-o", str(out), "--config", str(cfg), "--auto-calibrate",
                 "--force"]) == 0
    assert "calibrate: joint fit of the detector map" in capsys.readouterr().err  # (it ran silently)
    fit = json.loads(out.with_name("m.calibration.json").read_text())
    assert fit["report"]["options"] == {"method": "orientations", "n_index": 4, "max_index": 8, "confirm": False,
                                        "max_patterns": 1024}
    rounds = fit["report"]["orientations"]["patterns_indexed"]
    assert rounds[0] == 4 and max(rounds) <= 8 and fit["method"] == "orientations"
    assert "confirmation" not in fit["report"]  # confirm = false: no check by indexing
    assert settings.load_config(out)["calibrate"]["max_index"] == 8  # recorded in the results' config
    with h5py.File(out) as f:
        assert "calibration_fit" in json.loads(f["parameters"].attrs["index"])


def test_index_batch_prints_the_fit_with_no_progress(au_scan_3x3, tmp_path, capsys):
    """--no-progress removes progress bars, not results: a serial batch with --auto-calibrate prints each fit."""
    d = tmp_path / "in"
    d.mkdir()
    (d / "a.h5").write_bytes(au_scan_3x3.read_bytes())
    cfg = tmp_path / "c.toml"
    cfg.write_text("[calibrate]\nmethod = \"orientations\"\nn_index = 4\nmax_index = 4\n")
    assert main(["index", str(d), "--phase", "au", "-o", str(tmp_path / "out"), "--config", str(cfg),
                 "--auto-calibrate", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert f"→ {tmp_path / 'out' / 'a' / 'results.calibration.json'}" in printed, printed
    assert "[1/1] " in printed and ": done in " in printed
