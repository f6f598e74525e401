"""Messages name what the user typed: the option (--q-rotation, --ellipticity, --affine, --center, --bf, --disk,
--conducting-phase) or the config file and key, never an internal name (q_rotation_deg, conducting_phases,
"bright-field radius" alone)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from stemgrains.cli import main
from stemgrains.simulate import sample_cif

AU = str(sample_cif("au"))


@pytest.fixture(scope="module")
def cube(tmp_path_factory):
    path = tmp_path_factory.mktemp("names") / "a.h5"
    with h5py.File(path, "w") as f:
        d = f.create_dataset("data", data=np.ones((2, 3, 16, 16), np.float32))
        d.attrs["q_pixel_size"] = 0.02
    return path


def _error(capsys, argv):
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


CAL = [
    (["--q-rotation", "nan"], "--q-rotation must be finite"),
    (["--ellipticity", "0,10"], "--ellipticity ratio must be a finite positive number"),
    (["--ellipticity", "1.1,inf"], "--ellipticity angle must be finite"),
    (["--affine", "1,0,0,0"], "--affine (1.0, 0.0, 0.0, 0.0) is singular"),
    (["--affine", "1,0,0,nan"], "--affine must be four finite numbers"),
    (["--center", "1,nan"], "--center col must be finite"),
]


@pytest.mark.parametrize("command", ["index", "virtual", "calibrate"])
@pytest.mark.parametrize("opts, needle", CAL)
def test_calibration_options_are_named(cube, tmp_path, capsys, command, opts, needle):
    out = {"index": ["-o", tmp_path / "m.h5", "--phase", AU, "--no-progress"], "virtual": ["--bf", "3", "-o", tmp_path / "v.png"],
           "calibrate": ["--phase", AU, "-o", tmp_path / "c.json"]}[command]
    msg = _error(capsys, [command, cube, *out, *opts])
    assert needle in msg and "_deg" not in msg, msg
    assert list(tmp_path.iterdir()) == []


def test_config_calibration_names_file_and_key(cube, tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[calibration]\nellipticity = [0, 3]\n")
    msg = _error(capsys, ["index", cube, "--phase", AU, "-o", tmp_path / "m.h5", "--config", cfg])
    assert f"{cfg}: [calibration] ellipticity ratio must be a finite positive number" in msg


@pytest.mark.parametrize("opts, needle", [(["--bf", "-1"], "--bf: bright-field radius"),
                                          (["--bf", "nan"], "--bf: bright-field radius"),
                                          (["--disk", "1,1,-1"], "--disk: dark-field disk radius")])
def test_virtual_detector_options_are_named(cube, tmp_path, capsys, opts, needle):
    assert needle in _error(capsys, ["virtual", cube, *opts, "-o", tmp_path / "v.png"])


def test_conducting_phase_is_named(tmp_path, capsys):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent / "grains"))
    from synthetic_grains import synthetic_polycrystal

    from stemgrains.io import write_orientation_map
    from stemgrains.io.results import atomic_h5, write_provenance

    xmap, _, _ = synthetic_polycrystal(shape=(12, 14), n_grains=3, seed=0)
    res = tmp_path / "res.h5"
    with atomic_h5(res) as f:
        write_provenance(f, input_path=tmp_path / "scan.h5")
        write_orientation_map(f, xmap)
    seg = tmp_path / "seg.h5"
    assert main(["segment", str(res), "-o", str(seg), "--min-size", "1"]) == 0
    msg = _error(capsys, ["classify", seg, "--field", "1,0", "--conducting-phase", "nope"])
    assert msg.startswith("stemgrains classify: error: --conducting-phase: no phase 'nope'"), msg
