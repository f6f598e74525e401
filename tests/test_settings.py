"""Config files (stemgrains.settings, `stemgrains config`, --config): schema, round trips, precedence, errors,
and a run repeated from its own results file."""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

import h5py
import numpy as np
import pytest

from stemgrains import config, settings
from stemgrains.cli import build_parser, main
from stemgrains.errors import FileFormatError, ParameterError
from stemgrains.index.api import IndexParams
from stemgrains.preprocess.api import SpotParams

REPO = Path(__file__).resolve().parents[1]
AU = REPO / "data_samples" / "au.cif"


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


# ---------------------------------------------------------------------------------------------- schema
def test_dump_parses_back_to_the_defaults():
    text = settings.dump_config()
    data = tomllib.loads(text)
    parsed = settings.parse_config(data, "dump")
    assert settings.merge_config(settings.default_config(), parsed) == settings.default_config()
    defaults = settings.default_config()
    for key in settings.schema():
        set_ = defaults[key.section][key.name] is not None
        assert (key.name in data[key.section]) == set_, key.path  # unset keys are written commented out
        if not set_:
            assert f"\n# {key.name} =\n" in text, key.path
        # a comment per key: meaning, unit, default
        assert f"# {key.meaning} [{key.unit}]" in text, key.path


def test_every_option_of_the_configurable_commands_maps_to_a_key():
    parsers = _subparsers()
    dests = {k.dest for k in settings.schema() if k.dest}
    for command in settings.COMMAND_SECTIONS:
        for action in parsers[command]._actions:
            if action.dest in settings.NOT_CONFIG:
                continue
            assert action.dest in dests, f"{command} {action.option_strings}: no config key (stemgrains.settings)"
            assert action.default is None, f"{command} {action.option_strings}: default must be None (in the schema)"
    every_dest = {a.dest for p in parsers.values() for a in p._actions}
    assert dests <= every_dest, f"keys name options no command has: {dests - every_dest}"


def test_defaults_come_from_the_code():
    d = settings.default_config()
    assert d["grains"]["threshold_deg"] == config.GRAIN_THRESHOLD_DEG
    assert d["grains"]["low_angle_deg"] == config.LOW_ANGLE_DEG
    assert d["classify"]["type_tolerance_deg"] == config.TYPE_TOLERANCE_DEG
    assert d["transport"]["gb_conductivity"] == config.GB_CONDUCTIVITY_FRACTION
    # every IndexParams / SpotParams field has a key, and the defaults rebuild the default parameters
    assert set(IndexParams.__dataclass_fields__) - {"spots"} <= set(d["index"])
    assert set(SpotParams.__dataclass_fields__) == set(d["spots"])
    assert IndexParams(**settings.index_params(d)) == IndexParams()


def test_toml_writer_round_trips_awkward_values():
    cfg = {"calibration": {"file": 'C:\\data\\"cal"\t\x7fé.json', "center": [12.5, -3.0], "q_flip": True},
           "transport": {"electrodes": {"left": 1.0, "my mask.npy": -0.25}, "unassigned": 1e-10,
                         "gb_conductivity": float("inf")},
           "grains": {"special": ["twin:86.3:1,1,-2,0:5"], "min_grain_size": 3}}
    assert settings.parse_config(tomllib.loads(settings.config_to_toml(cfg))) == cfg


# ---------------------------------------------------------------------------------------------- precedence
def _args(argv: list[str]) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def test_command_line_overrides_the_file_which_overrides_the_defaults(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("[grains]\nthreshold_deg = 3\n[index]\nstep_deg = 2.5\nneighbor_pass = false\n"
                 "[transport]\nelectrodes = {left = 1, right = 0}\n")
    base = ["run", "in.h5", "--phase", "a.cif", "-o", "out"]
    cfg = settings.resolve(_args(base), "run")
    assert cfg["grains"]["threshold_deg"] == config.GRAIN_THRESHOLD_DEG and cfg["index"]["neighbor_pass"] is True
    cfg = settings.resolve(_args([*base, "--config", str(f)]), "run")
    assert cfg["grains"]["threshold_deg"] == 3.0 and cfg["index"]["step_deg"] == 2.5
    assert cfg["index"]["neighbor_pass"] is False and cfg["transport"]["electrodes"] == {"left": 1.0, "right": 0.0}
    cfg = settings.resolve(_args([*base, "--config", str(f), "--threshold", "7", "--electrode", "top=2",
                                  "--electrode", "bottom=0", "--q-flip", "--center", "10,11"]), "run")
    assert cfg["grains"]["threshold_deg"] == 7.0 and cfg["index"]["step_deg"] == 2.5
    assert cfg["transport"]["electrodes"] == {"top": 2.0, "bottom": 0.0}
    assert cfg["calibration"]["q_flip"] is True and cfg["calibration"]["center"] == [10.0, 11.0]
    idx = settings.resolve(_args(["index", "in.h5", "--phase", "a.cif", "-o", "o.h5", "--config", str(f),
                                  "--no-neighbor-pass", "--n-prefilter", "99"]), "index")
    assert idx["index"]["n_prefilter"] == 99 and idx["index"]["step_deg"] == 2.5
    assert settings.used_config(idx, "index").keys() == {"calibration", "index", "spots"}
    assert settings.used_config(idx, "segment") == {"calibration": {"scan_step_nm": None},
                                                    "grains": dict(settings.default_config()["grains"], threshold_deg=3.0)}


@pytest.mark.parametrize("text, needle", [
    ("[grains]\ntreshold_deg = 3\n", "unknown key [grains] treshold_deg (did you mean threshold_deg?)"),
    ("[grain]\nthreshold_deg = 3\n", "unknown section [grain] (did you mean grains?)"),
    ("[grains]\nthreshold_deg = \"3\"\n", '[grains] threshold_deg: expected a number, got "3"'),
    ("[grains]\nmin_grain_size = 2.5\n", "[grains] min_grain_size: expected an integer, got 2.5"),
    ("[classify]\nbasis = \"2d\"\n", '[classify] basis: expected one of trace, 3d, got "2d"'),
    ("[transport]\nmodel = \"tensr\"\n",
     '[transport] model: expected one of tensor, resistor, got "tensr" (did you mean tensor?)'),
    ("[transport]\nmodel = 3\n", "[transport] model: expected a string (one of tensor, resistor), got 3"),
    ("[index]\nsearch_stride = 0\n", "[index] search_stride: expected an integer of at least 1, got 0"),
    ("[index]\nchunk_rows = 0\n", "[index] chunk_rows: expected an integer of at least 1, got 0"),
    ("[index]\nstep_deg = 0\n", "[index] step_deg: expected a finite positive number, got 0"),
    ("[index]\nexcitation_error_sigma = 0\n", "[index] excitation_error_sigma: expected a value from 0.0005 to 0.5 1/Å, got 0.0"),
    ("[index]\nrefine_excitation_error_sigma = 1e-6\n",
     "[index] refine_excitation_error_sigma: expected a value from 0.0005 to 0.5 1/Å, got 1e-06"),
    ("[grains]\nthreshold_deg = -3\n", "[grains] threshold_deg: expected a finite positive number, got -3"),
    ("[grains]\nthreshold_deg = nan\n", "[grains] threshold_deg: expected a finite positive number, got nan"),
    ("[grains]\nmin_reliability = nan\n", "[grains] min_reliability: expected a number, got nan"),
    ("[classify]\nfield = [0, 0]\n", "[classify] field: expected a non-zero direction, got [0, 0]"),
    ("[classify]\nfield = [1, 0, 0]\n", "[classify] field: expected two numbers"),
    ("[figures]\nenabled = 1\n", "[figures] enabled: expected true or false, got 1"),
    ("[classify]\nr_block = 0\n", "[classify] r_block: expected a finite positive number, got 0"),
    ("[transport]\nunassigned = -1.0\n",
     '[transport] unassigned: expected "gb", "pore" or a finite conductivity of at least 0, got -1.0'),
    ("[transport]\ngb_thickness_nm = -1\n", "[transport] gb_thickness_nm: expected a finite number of at least 0, got -1"),
    # values are shown as they read in the file (TOML), not in Python's form
    ("[grains]\nthreshold_deg = true\n", "[grains] threshold_deg: expected a number, got true"),
    ("[grains]\nthreshold_deg = [1, 2]\n", "[grains] threshold_deg: expected a number, got [1, 2]"),
    ("[grains\nthreshold_deg = 3\n", "not valid TOML"),
    ("threshold_deg = 3\n", "key threshold_deg is outside any section; it belongs under [grains]"),
    # the field's and our options' names for the same thing (docs/classification.md: delta), and keys of another section
    ("[classify]\ndelta = 5\n", "unknown key [classify] delta (did you mean type_tolerance_deg?)"),
    ("[index]\nsigma_s = 0.01\n", "unknown key [index] sigma_s (did you mean excitation_error_sigma"),
    ('[classify]\n"δ" = 5\n', "unknown key [classify] δ (did you mean type_tolerance_deg?)"),
    ("[classify]\nflat_tol = 5\n", "unknown key [classify] flat_tol (did you mean flat_tolerance_deg?)"),
    ("[transport]\nratio = 5\n", "unknown key [transport] ratio (did you mean conductivity_ratio?)"),
    ("[grains]\ndelta = 5\n", "unknown key [grains] delta (did you mean [classify] type_tolerance_deg?)"),
    ("[grains]\nflat_tolerance_deg = 5\n", "unknown key [grains] flat_tolerance_deg (did you mean [classify] flat_tolerance_deg?)"),
    ("delta = 5\n", "key delta is outside any section (did you mean [classify] type_tolerance_deg?)"),
    ("[classify]\ntype_tolerence_deg = 5\n", "unknown key [classify] type_tolerence_deg (did you mean type_tolerance_deg?)"),
])
def test_bad_config_is_one_line_naming_file_and_key(tmp_path, capsys, text, needle):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    for argv in (["config", "--check", str(f)],
                 ["run", str(tmp_path / "missing.h5"), "--phase", str(AU), "-o", str(tmp_path / "o"), "--config", str(f)]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(f) in err[0] and needle in err[0], err
    assert not (tmp_path / "o").exists()  # refused before any work


def test_a_cif_given_as_config_is_named_as_such(tmp_path):
    cif = tmp_path / "au.cif"
    cif.write_text(Path(AU).read_text())
    with pytest.raises(FileFormatError, match=r"not valid TOML .*--config takes a TOML config file .* not a \.cif file"):
        settings.load_config(cif)


def test_load_config_errors(tmp_path):
    with pytest.raises(FileFormatError, match="config file not found"):
        settings.load_config(tmp_path / "nope.toml")
    # a folder (a run's output folder, say) was "not found" too, though it exists
    with pytest.raises(FileFormatError, match=r"is a folder; expected a config file .*config\.toml"):
        settings.load_config(tmp_path)
    h5 = tmp_path / "old.h5"
    with h5py.File(h5, "w") as f:
        f.create_group("parameters").attrs["index"] = "{}"
    with pytest.raises(FileFormatError, match="holds no config"):
        settings.load_config(h5)
    from stemgrains.data import Calibration
    from stemgrains.io import write_4d

    raw = write_4d(tmp_path / "raw.h5", np.zeros((2, 2, 8, 8), np.uint16),
                   Calibration(q_pixel_size=0.05, accelerating_voltage_kV=200.0, scan_step_nm=2.0))
    with pytest.raises(FileFormatError, match="4D diffraction data, not a results file"):
        settings.load_config(raw)
    with pytest.raises(ParameterError, match=r"command line: \[grains\] min_grain_size"):
        settings.effective_config({"min_size": 2.5}, "segment")


def test_config_command_writes_the_dump(tmp_path, capsys):
    out = tmp_path / "d.toml"
    assert main(["config", "--dump", "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == settings.dump_config()
    assert main(["config", "--check", str(out)]) == 0
    assert "ok" in capsys.readouterr().out
    assert main(["config", "--dump"]) == 0
    assert capsys.readouterr().out == settings.dump_config()


def test_config_dump_keeps_an_edited_config_unless_forced(tmp_path, capsys):
    out = tmp_path / "d.toml"
    assert main(["config", "--dump", "-o", str(out)]) == 0
    assert main(["config", "--dump", "-o", str(out)]) == 0  # the same values again: replaced, nothing lost
    edited = out.read_text(encoding="utf-8").replace("\nstep_deg = 1.0\n", "\nstep_deg = 2.0\n")
    assert "step_deg = 2.0" in edited
    out.write_text(edited, encoding="utf-8")
    capsys.readouterr()
    assert main(["config", "--dump", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "[index] step_deg" in err and "--force" in err and err.count("\n") == 1
    assert out.read_text(encoding="utf-8") == edited
    assert main(["config", "--dump", "-o", str(out), "--force"]) == 0
    assert out.read_text(encoding="utf-8") == settings.dump_config()
    out.write_text(settings.dump_config() + "# my note: sample A\n", encoding="utf-8")  # same values, a comment added
    capsys.readouterr()
    assert main(["config", "--dump", "-o", str(out)]) == 2
    assert "other comments or layout" in capsys.readouterr().err
    assert out.read_text(encoding="utf-8").endswith("# my note: sample A\n")


# ---------------------------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def scan(tmp_path_factory) -> Path:
    from stemgrains.simulate import simulate_polycrystal

    path = tmp_path_factory.mktemp("cfg") / "scan.h5"
    simulate_polycrystal(path, phases=[str(AU)], scan_shape=(6, 8), detector_shape=(48, 48), n_grains=3, seed=5,
                         dose=None, progress=False)
    return path


def _datasets(path: Path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def _params(path: Path, stage: str) -> dict:
    import json

    with h5py.File(path, "r") as f:
        return json.loads(f["parameters"].attrs[stage])


def test_edited_dump_drives_run_cli_overrides_and_results_repeat_the_run(tmp_path, scan, capsys):
    # config --dump → edit one value → run --config uses it
    dump = tmp_path / "c.toml"
    assert main(["config", "--dump", "-o", str(dump)]) == 0
    text = dump.read_text(encoding="utf-8")
    assert "\nthreshold_deg = 5.0\n" in text and "\nstep_deg = 1.0\n" in text
    text = text.replace("\nthreshold_deg = 5.0\n", "\nthreshold_deg = 2.5\n").replace("\nstep_deg = 1.0\n", "\nstep_deg = 4.0\n")
    text = text.replace("\n# field =\n", "\nfield = [1, 0]\n").replace("\nenabled = true\n", "\nenabled = false\n")
    text = text.replace("\nmin_grain_size = 5\n", "\nmin_grain_size = 1\n")
    dump.write_text(text, encoding="utf-8")
    out1 = tmp_path / "out1"
    base = ["run", str(scan), "--phase", str(AU), "--no-progress"]
    assert main([*base, "-o", str(out1), "--config", str(dump)]) == 0
    res1 = out1 / "results.h5"
    assert _params(res1, "run")["segment"]["threshold_deg"] == 2.5
    assert _params(res1, "index")["step_deg"] == 4.0
    with h5py.File(res1, "r") as f:
        assert f["grains"].attrs["parameters"] and "threshold_deg = 2.5" in f["parameters"].attrs["config"]
    assert not (out1 / "grains_ipf.png").exists()  # [figures] enabled = false
    recorded = settings.load_config(out1 / "config.toml")
    assert recorded["grains"]["threshold_deg"] == 2.5 and recorded == settings.load_config(res1)
    import json

    assert "config.toml" in json.loads((out1 / "stemgrains_run.json").read_text())["files"]

    # an option on the command line overrides the file
    out2 = tmp_path / "out2"
    assert main([*base, "-o", str(out2), "--config", str(dump), "--threshold", "9"]) == 0
    assert _params(out2 / "results.h5", "run")["segment"]["threshold_deg"] == 9.0
    assert settings.load_config(out2 / "results.h5")["grains"]["threshold_deg"] == 9.0

    # the results file's config repeats the run: identical results
    out3 = tmp_path / "out3"
    assert main([*base, "-o", str(out3), "--config", str(res1)]) == 0
    a, b = _datasets(res1), _datasets(out3 / "results.h5")
    assert a.keys() == b.keys() and len(a) > 10
    for name in a:
        assert np.array_equal(a[name], b[name], equal_nan=a[name].dtype.kind == "f"), name
    assert _params(out3 / "results.h5", "run") == _params(res1, "run")
    # config --from gives the same config as a file
    extracted = tmp_path / "x.toml"
    assert main(["config", "--from", str(res1), "-o", str(extracted)]) == 0
    assert settings.load_config(extracted) == settings.load_config(res1)
    capsys.readouterr()

    # --overwrite removes the config.toml of the run it replaces
    (out1 / "config.toml").rename(out1 / "config.toml.keep")
    (out1 / "config.toml").write_text("stale")
    # (the same command again would be recognised as complete: another threshold makes it another run)
    assert main([*base, "-o", str(out1), "--overwrite", "--config", str(dump), "--no-figures", "--threshold", "3"]) == 0
    assert (out1 / "config.toml").read_text(encoding="utf-8").startswith("# effective config")

    # segment, classify and transport read their sections and add them to the file's config
    seg = tmp_path / "seg.toml"
    seg.write_text("[grains]\nthreshold_deg = 4\nmin_grain_size = 1\n[classify]\nfield = [0, 1]\ntau_flow = 0.3\n"
                   "[transport]\nelectrodes = {top = 1, bottom = 0}\ngb_thickness_nm = 2\n")
    r = tmp_path / "r.h5"
    assert main(["segment", str(res1), "-o", str(r), "--config", str(seg)]) == 0
    assert _params(r, "segment")["grains"]["threshold_deg"] == 4.0
    assert main(["transport", str(r), "--config", str(seg)]) == 2  # Au: no conducting phase, no transport model
    assert main(["classify", str(r), "--config", str(seg)]) == 0
    # Au: the [classify] field of the config is read but not used (nothing conducts), as run does
    assert "under no field (none needed: nothing conducts; the one given is not used)" in capsys.readouterr().out
    with h5py.File(r, "r") as f:
        cp = json.loads(f["classification"].attrs["parameters"])
    assert cp["tau_flow"] == 0.3
    cfg = settings.load_config(r)
    assert cfg["grains"]["threshold_deg"] == 4.0 and cfg["index"]["step_deg"] == 4.0  # index's part kept
    assert cfg["classify"]["tau_flow"] == 0.3
    # transport reads its section (on a map of a conducting phase, Na-β″-alumina)
    n = _nba_results(tmp_path / "n.h5")
    assert main(["segment", str(n), "-o", str(n), "--config", str(seg)]) == 0
    assert main(["transport", str(n), "--config", str(seg)]) == 0
    with h5py.File(n, "r") as f:
        tp = json.loads(f["transport"].attrs["parameters"])
    assert tp["gb_thickness_nm"] == 2.0
    assert settings.load_config(n)["transport"]["electrodes"] == {"top": 1.0, "bottom": 0.0}
    capsys.readouterr()
    assert main(["classify", str(n), "--config", str(seg), "--field-from-transport"]) == 0
    assert "local transport field" in capsys.readouterr().out


def _nba_results(path: Path) -> Path:
    """A results file holding a 12 × 14 Voronoi orientation map (4 grains) of Na-β″-alumina, written as `index` does."""
    from orix.crystal_map import CrystalMap, PhaseList
    from orix.quaternion import Rotation

    from stemgrains.crystal import load_phase
    from stemgrains.io import write_orientation_map
    from stemgrains.io.results import atomic_h5, write_provenance

    phase = load_phase(REPO / "data_samples" / "na_beta2_alumina.cif")
    rng = np.random.default_rng(3)
    ny, nx = 12, 14
    seeds = rng.uniform([0, 0], [ny, nx], size=(4, 2))
    rr, cc = np.indices((ny, nx))
    lab = np.argmin((rr[..., None] - seeds[:, 0]) ** 2 + (cc[..., None] - seeds[:, 1]) ** 2, axis=-1)
    gq = rng.normal(size=(4, 4))
    gq /= np.linalg.norm(gq, axis=1, keepdims=True)
    r, c = np.divmod(np.arange(ny * nx), nx)
    xmap = CrystalMap(rotations=Rotation(gq[lab].reshape(-1, 4)), phase_id=np.zeros(ny * nx, int), x=c * 2.0,
                      y=r * 2.0, phase_list=PhaseList(phases=[phase], ids=[0]), scan_unit="nm",
                      prop={"correlation_index": np.full(ny * nx, 0.5), "reliability": np.full(ny * nx, 30.0)})
    with atomic_h5(path) as f:
        write_provenance(f, phases=xmap.phases)
        write_orientation_map(f, xmap)
    return path


def test_paths_in_a_config_are_relative_to_its_folder_and_field_options_exclude_each_other(tmp_path, monkeypatch):
    sub = tmp_path / "cfgs"
    sub.mkdir()
    f = sub / "c.toml"
    f.write_text('[calibration]\nfile = "cal.json"\n[transport]\nelectrodes = {"m.npy" = 1, right = 0}\n'
                 "[classify]\nfield_from_transport = true\n")
    monkeypatch.chdir(tmp_path)
    cfg = settings.load_config(f)
    assert cfg["calibration"]["file"] == str(sub / "cal.json")
    assert cfg["transport"]["electrodes"] == {str(sub / "m.npy"): 1.0, "right": 0.0}
    args = _args(["classify", "r.h5", "--config", str(f), "--field", "0,1"])
    c = settings.resolve(args, "classify")["classify"]
    assert c["field"] == [0.0, 1.0] and c["field_from_transport"] is False
    args = _args(["run", "in.h5", "--phase", "a.cif", "-o", "o", "--electrode", "k.npy=2", "--electrode", "left=0",
                  "--calibration", "x.json"])
    cfg = settings.resolve(args, "run")
    assert cfg["transport"]["electrodes"] == {str(tmp_path / "k.npy"): 2.0, "left": 0.0}
    assert cfg["calibration"]["file"] == str(tmp_path / "x.json")
    with pytest.raises(ParameterError, match="left is given twice"):
        settings.resolve(_args(["run", "in.h5", "--phase", "a.cif", "-o", "o", "--electrode", "left=1",
                                "--electrode", "left=0"]), "run")


def test_index_reads_its_sections_and_records_them(tmp_path, scan):
    f = tmp_path / "c.toml"
    f.write_text("[index]\nstep_deg = 4.0\nmin_peaks = 3\n[spots]\nn_sigma = 4.5\n[grains]\nthreshold_deg = 1.0\n")
    out = tmp_path / "idx.h5"
    assert main(["index", str(scan), "--phase", str(AU), "-o", str(out), "--config", str(f), "--no-progress",
                 "--n-prefilter", "200"]) == 0
    p = _params(out, "index")
    assert p["step_deg"] == 4.0 and p["min_peaks"] == 3 and p["n_prefilter"] == 200 and p["spots"]["n_sigma"] == 4.5
    rec = settings.load_config(out)
    assert rec.keys() == {"calibration", "index", "spots"}  # index records what it used, not [grains]
    assert rec["index"]["n_prefilter"] == 200 and rec["spots"]["n_sigma"] == 4.5


def test_config_from_to_dash_writes_standard_output(tmp_path, capsys, monkeypatch):
    f = tmp_path / "c.toml"
    f.write_text("[grains]\nthreshold_deg = 3\n")
    monkeypatch.chdir(tmp_path)
    assert main(["config", "--from", str(f), "-o", "-"]) == 0
    assert "threshold_deg = 3.0" in capsys.readouterr().out
    assert not (tmp_path / "-").exists()
