"""A file that is not 4D-STEM data given to a command that reads 4D-STEM data: one line naming the file, what it
looks like (a 2-D image or map, a stack without the scan's shape, a spectrum image, an orientation map, an
image file) and what was expected, exit status 2, nothing written — the same for every reader (.npy, HDF5,
rosettasciio's .hspy and .mib, .ang/.ctf, images)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from stemgrains.cli import main
from stemgrains.simulate import sample_cif

AU = str(sample_cif("au"))
EXPECTED = "expected 4-D data (scan_row, scan_col, det_row, det_col)"


def _npy(shape):
    def make(path):
        np.save(path, np.zeros(shape, np.float32))
    return make


def _h5(shape):
    def make(path):
        with h5py.File(path, "w") as f:
            f.create_dataset("data", data=np.zeros(shape, np.float32)).attrs["q_pixel_size"] = 0.02
    return make


def _hspy(shape, n_scan):
    def make(path):
        hspy = pytest.importorskip("rsciio.hspy")
        axes = [dict(name=f"a{i}", units="", scale=1.0, offset=0.0, size=s, navigate=i < n_scan)
                for i, s in enumerate(shape)]
        hspy.file_writer(str(path), dict(
            data=np.zeros(shape, np.float32), axes=axes, original_metadata={}, attributes={"_lazy": False},
            tmp_parameters={}, package_info={"package": "hyperspy", "package_version": "2.0"}, learning_results={},
            models={}, metadata={"General": {"title": "t"}, "Signal": {"signal_type": ""}}))
    return make


def _text(text):
    def make(path):
        path.write_text(text)
    return make


def _results(path):
    with h5py.File(path, "w") as f:
        f.create_group("orientation").create_dataset("phase_id", data=np.zeros((3, 4), np.int32))


CASES = {
    "image.npy": (_npy((16, 16)), ["2 dimensions (16, 16)", "2-D image", EXPECTED]),
    "quaternions.npy": (_npy((6, 7, 4)), ["(6, 7, 4)", "values per pixel", EXPECTED]),
    "line.npy": (_npy((10,)), ["1 dimensions", EXPECTED]),
    "five.npy": (_npy((2, 2, 2, 8, 8)), ["5 dimensions", EXPECTED]),
    "stack.npy": (_npy((6, 8, 8)), ["3-D (6, 8, 8)", "stack of 6 patterns", "scan shape", EXPECTED]),
    "image.h5": (_h5((16, 16)), ["2 dimensions (16, 16)", "2-D image", EXPECTED]),
    "image.hspy": (_hspy((16, 16), 0), ["0 scan and 2 detector axes", "2-D image", EXPECTED]),
    "spectra.hspy": (_hspy((4, 5, 32), 2), ["2 scan and 1 detector axes", "spectrum", EXPECTED]),
    "stack.hspy": (_hspy((6, 8, 8), 1), ["stack of 6 patterns", EXPECTED]),
    "virtual.tif": (_text("II*\0"), ["an image", "unsupported", "expected one of", ".npy"]),
    "map.ang": (_text("# ang\n"), ["orientation map", "not 4D-STEM data", "stemgrains segment"]),
    "map.ctf": (_text("Channel Text File\n"), ["orientation map", "not 4D-STEM data", "stemgrains segment"]),
    "results.h5": (_results, ["results file", "orientation map", "not 4D-STEM data", "stemgrains segment"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("command", ["index", "run", "virtual", "calibrate"])
def test_not_4d_input_gets_a_one_line_hint(tmp_path, capsys, name, command):
    make, needles = CASES[name]
    src = tmp_path / name
    make(src)
    out = tmp_path / "out"
    args = {"index": ["--phase", AU, "-o", str(out / "o.h5"), "--q-pixel-size", "0.02", "--no-progress"],
            "run": ["--phase", AU, "--field", "1,0", "-o", str(out), "--q-pixel-size", "0.02", "--no-progress"],
            "virtual": ["--bf", "2", "-o", str(out / "v.npy")],
            "calibrate": ["--phase", AU, "-o", str(out / "c.json")]}[command]
    assert main([command, str(src), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(src) in err, err
    for needle in needles:
        assert needle in err, (needle, err)
    assert not out.exists()


def test_single_frame_merlin_file(shared_data, tmp_path, capsys, monkeypatch):
    """A Merlin .mib holding one frame (no .hdr): a 2-D image, read by rosettasciio."""
    import logging

    # rosettasciio logs "`hdr` file couldn't be found" (to the stream of whichever test imported it first)
    monkeypatch.setattr(logging.getLogger("rsciio.quantumdetector._api"), "disabled", True)
    whole = shared_data / "formats" / "001_4x2_6bit.mib"
    one = tmp_path / "one.mib"
    one.write_bytes(whole.read_bytes()[: whole.stat().st_size // 8])  # 8 frames of equal size
    assert main(["index", str(one), "--phase", AU, "-o", str(tmp_path / "o.h5"), "--q-pixel-size", "0.02",
                 "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "one.mib" in err and "2-D image" in err and EXPECTED in err, err
    assert not (tmp_path / "o.h5").exists()
