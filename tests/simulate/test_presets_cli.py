"""Standard datasets, the sample CIFs shipped with the package, and the ``stemgrains simulate`` command."""

from __future__ import annotations

import json
from importlib.resources import files

import h5py
import numpy as np
import pytest

from stemgrains.cli import main
from stemgrains.crystal import load_phase
from stemgrains.errors import InputError, ParameterError
from stemgrains.simulate import PRESETS, SAMPLE_CIFS, preset_parameters, sample_cif, standard_dataset

SMALL = dict(scan_shape=(8, 8), detector_shape=(32, 32), k_max=0.8)


@pytest.mark.parametrize("name", SAMPLE_CIFS)
def test_packaged_cifs_equal_data_samples(data_samples, name):
    packaged = files("stemgrains.simulate").joinpath("cifs", f"{name}.cif").read_text(encoding="utf-8")
    assert packaged == (data_samples / f"{name}.cif").read_text(encoding="utf-8")
    assert sample_cif(name).read_text(encoding="utf-8") == packaged
    assert sample_cif(f"{name}.cif").is_file()


def test_sample_cif_passes_paths_and_rejects_unknown(tmp_path, data_samples):
    assert sample_cif(data_samples / "au.cif") == data_samples / "au.cif"
    with pytest.raises(InputError):
        sample_cif(tmp_path / "nothing.cif")


def test_sample_cif_point_groups():
    expected = {"na_beta2_alumina": "-3m", "au": "m-3m", "zro2_baddeleyite": "2/m"}
    for name in SAMPLE_CIFS:
        assert load_phase(sample_cif(name)).point_group.name == expected[name]


def test_preset_table():
    assert {"nba-64", "au-64", "nba-256", "nba-zro2"} <= set(PRESETS)
    cifs, params = preset_parameters("nba-256")
    assert cifs == ("na_beta2_alumina",) and params["scan_shape"] == (256, 256)
    params["seed"] = -1  # a copy: the table is not modified
    assert preset_parameters("nba-256")[1]["seed"] != -1
    with pytest.raises(ParameterError):
        preset_parameters("nope")


@pytest.mark.parametrize("name", ["nba-64", "au-64", "nba-zro2"])
def test_standard_dataset_small(tmp_path, name):
    out = standard_dataset(name, tmp_path / f"{name}.h5", progress=False, **SMALL)
    with h5py.File(out, "r") as f:
        assert f["data"].shape == (8, 8, 32, 32)
        params = json.loads(f["truth"].attrs["parameters"])
        assert params["metadata"] == {"preset": name}
        assert params["dose"] == PRESETS[name][1]["dose"]
        n_phases = len(f["phases"])
        phase_id = f["truth/phase_id"][:]
    assert n_phases == len(PRESETS[name][0])
    assert phase_id.max() <= n_phases - 1


def test_nba_zro2_has_small_particles(tmp_path):
    out = standard_dataset("nba-zro2", tmp_path / "z.h5", progress=False, detector_shape=(32, 32), k_max=0.8)
    with h5py.File(out, "r") as f:
        pid = f["truth/phase_id"][:]
        gid = f["truth/grain_id"][:]
    zr = pid == 1
    assert 0 < zr.mean() < 0.2  # a few particles in a Na-β″ matrix
    assert len(np.unique(gid[zr])) >= 2


def test_cli_simulate(tmp_path, data_samples, capsys):
    out = tmp_path / "cli.h5"
    rc = main(["simulate", "-o", str(out), "--phase", str(data_samples / "au.cif"), "--phase", "zro2_baddeleyite",
               "--scan", "3,4", "--compression", "lzf",
               "--detector", "32,32", "--grains", "2", "--seed", "4", "--dose", "1e3", "--k-max", "0.8",
               "--voltage", "200", "--rotation", "5", "--step-nm", "1.5", "--no-progress"])
    assert rc == 0
    with h5py.File(out, "r") as f:
        assert f["data"].shape == (3, 4, 32, 32) and f["data"].compression == "lzf"
        assert [f["phases"][k].attrs["name"] for k in sorted(f["phases"])] == ["au", "zro2_baddeleyite"]
        a = f["data"].attrs
        assert a["accelerating_voltage_kV"] == 200 and a["q_rotation_deg"] == 5 and a["scan_step_nm"] == 1.5
        assert json.loads(f["truth"].attrs["parameters"])["dose"] == 1e3


def test_cli_simulate_a_detector_with_an_unknown_calibration(tmp_path):
    """--q-pixel-size/--ellipticity distort the patterns; --stated-q-pixel-size/--unstated-distortion make the file
    state another calibration (to try `calibrate`); the true one is in /truth attribute 'calibration'."""
    from stemgrains.io import load_4d

    out = tmp_path / "d.h5"
    rc = main(["simulate", "-o", str(out), "--phase", "au", "--scan", "2,2", "--detector", "32,32", "--grains", "1",
               "--k-max", "0.8", "--q-pixel-size", "0.03", "--ellipticity", "1.05,112", "--stated-q-pixel-size",
               "0.031", "--unstated-distortion", "--no-progress"])
    assert rc == 0
    with h5py.File(out, "r") as f:
        a = dict(f["data"].attrs)
        true = json.loads(f["truth"].attrs["calibration"])
    assert a["q_pixel_size"] == 0.031 and "ellipticity_ratio" not in a and "ellipticity_angle_deg" not in a
    assert true["q_pixel_size"] == 0.03 and (true["ellipticity_ratio"], true["ellipticity_angle_deg"]) == (1.05, 112)
    cal = load_4d(out).calibration
    assert cal.q_pixel_size == 0.031 and cal.ellipticity is None
    with pytest.raises(ParameterError, match="ellipticity_ratio and ellipticity_angle_deg go together"):
        standard_dataset("au-64", tmp_path / "x.h5", scan_shape=(2, 2), detector_shape=(32, 32), k_max=0.8,
                         ellipticity=(1.05, 30.0), stated_calibration={"ellipticity_ratio": None})


def test_cli_preset_with_overrides(tmp_path):
    out = tmp_path / "p.h5"
    rc = main(["simulate", "-o", str(out), "--preset", "au-64", "--scan", "2,2", "--detector", "32,32",
               "--k-max", "0.8", "--noise-free", "--no-progress"])
    assert rc == 0
    with h5py.File(out, "r") as f:
        params = json.loads(f["truth"].attrs["parameters"])
    assert params["dose"] is None and params["scan_shape"] == [2, 2] and params["metadata"]["preset"] == "au-64"


def test_cli_simulate_keeps_an_existing_file(tmp_path, capsys):
    """An existing -o file is another simulation's (or someone's) data: one line naming it and what it holds,
    exit status 2, the file untouched; --force replaces it."""
    out = tmp_path / "s.h5"
    argv = ["simulate", "-o", str(out), "--phase", "au", "--scan", "2,2", "--detector", "16,16", "--k-max", "0.8",
            "--no-progress"]
    assert main(argv) == 0
    before = out.read_bytes()
    capsys.readouterr()
    assert main([*argv, "--seed", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(out) in err[0] and "simulated scan (seed 0, scan 2 x 2)" in err[0]
    assert "--force" in err[0] and out.read_bytes() == before
    notes = tmp_path / "notes.h5"
    notes.write_bytes(b"my notes")
    assert main([*argv[:2], str(notes), *argv[3:]]) == 2
    assert "holds a file" in capsys.readouterr().err and notes.read_bytes() == b"my notes"
    assert main([*argv, "--seed", "3", "--force"]) == 0
    with h5py.File(out, "r") as f:
        assert f["truth"].attrs["seed"] == 3


@pytest.mark.parametrize(
    "argv",
    [
        ["--scan", "3,4"],
        ["--phase", "missing.cif"],
        ["--phase", "au", "--scan", "3x4"],
        ["--preset", "nope"],
        ["--preset", "au-64", "--dose", "10", "--noise-free"],
        ["--phase", "au", "--unstated-distortion"],
        ["--phase", "au", "--q-pixel-size", "-1"],
        ["--phase", "au", "--stated-q-pixel-size", "nan"],
    ],
)
def test_cli_errors(tmp_path, argv, capsys):
    rc = main(["simulate", "-o", str(tmp_path / "e.h5"), "--no-progress", *argv])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("stemgrains simulate: error:") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "e.h5").exists()


@pytest.mark.parametrize("extra, expect", [
    (["--phase", "au", "--thickness", "-1"], "--thickness expects a finite positive number (nm), got -1"),
    (["--phase", "au", "--phonons", "0", "--engine", "abtem"], "--phonons expects at least 1"),
    # the kinematic engine has no thickness: the value did nothing, and was not recorded either
    (["--phase", "au", "--thickness", "20"], "--thickness applies to the multislice engine only (--engine abtem)"),
    (["--phase", "au", "--phonons", "2", "--engine", "py4dstem"], "the py4dstem engine has no specimen thickness"),
    (["--preset", "nope"], "unknown preset 'nope'"),
    (["--phase", "au", "--dose", "-5"], "--dose expects a finite positive number"),
    ([], "give at least one --phase CIF, or a --preset"),
])
def test_cli_simulate_checks_its_options_before_the_output(tmp_path, capsys, extra, expect):
    """Each of these was reported only as "-o ... exists" while the output existed (one error at a time), and a
    thickness was taken for engines that have none."""
    out = tmp_path / "s.h5"
    out.write_bytes(b"")
    assert main(["simulate", "-o", str(out), "--scan", "2,2", "--detector", "32,32", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expect in err[0], err
