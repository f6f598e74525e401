"""`virtual -o X.png` and the calibration figure guard tell our PNGs apart by kind (issue: a calibration figure of
the same input, or any other figure of ours that records the input, was silently replaced by a virtual image, and
the calibration figure guard took a virtual image of the same input for a calibration)."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
from file_helpers import cube_file

from stemgrains.cli import main
from stemgrains.io.outputs import FIGURE_KIND_KEY, IMAGE_INPUT_KEY, describe_file
from stemgrains.io.results import atomic_savefig


def _figure(path, meta=None):
    fig = plt.figure(figsize=(1, 1))
    atomic_savefig(fig, path, metadata=meta)
    plt.close(fig)
    return path


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_virtual_keeps_a_calibration_figure_of_the_same_input(tmp_path, capsys, data_samples):
    cube = cube_file(tmp_path / "cube.h5")
    cal = _figure(tmp_path / "calibration.png", {IMAGE_INPUT_KEY: json.dumps(str(cube.resolve())),
                                                 FIGURE_KIND_KEY: "calibration"})
    before = cal.read_bytes()
    assert main(["virtual", str(cube), "--bf", "2", "-o", str(cal), "--no-progress"]) == 2
    assert _one_line(capsys) == (f"stemgrains virtual: error: -o {cal}: is a calibration figure of {cube.resolve()}, "
                                 "not an image of this input; choose another name, or give --force to replace it")
    assert cal.read_bytes() == before
    # a figure of ours that records no input (--figures of index/segment/classify) is named as ours, and refused
    fig = _figure(tmp_path / "orientation_ipf_z.png")
    assert describe_file(fig) == "a figure written by stemgrains (no input recorded)"
    assert main(["virtual", str(cube), "--bf", "2", "-o", str(fig), "--no-progress"]) == 2
    assert "is a figure written by stemgrains (no input recorded), not an image" in _one_line(capsys)
    # our own virtual image of the same input: replaced; --force replaces the calibration figure
    img = tmp_path / "bf.png"
    assert main(["virtual", str(cube), "--bf", "2", "-o", str(img), "--no-progress"]) == 0
    assert main(["virtual", str(cube), "--bf", "3", "-o", str(img), "--no-progress"]) == 0
    assert main(["virtual", str(cube), "--bf", "2", "-o", str(cal), "--no-progress", "--force"]) == 0
    # the reverse: a virtual image of the same input at the calibration figure's name is no calibration
    before = img.read_bytes()
    capsys.readouterr()
    assert main(["calibrate", str(cube), "--phase", str(data_samples / "au.cif"), "-o", str(tmp_path / "c.json"),
                 "--figure", str(img)]) == 2
    assert f"--figure {img}: is a virtual image of {cube.resolve()}, not a calibration of this input" in \
        _one_line(capsys)
    assert img.read_bytes() == before
