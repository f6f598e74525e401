"""Virtual detectors: numba kernel vs the slow reference, images vs an independent numpy sum, streaming, CLI."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import h5py
import numpy as np
import pytest

from stemgrains.cli import main
from stemgrains.data import Calibration, Dataset4D
from stemgrains.errors import InputError, ParameterError
from stemgrains.io import load_4d
from stemgrains.virtual import (
    annulus,
    bright_field,
    dark_field,
    mask_detector,
    virtual_image,
    virtual_images,
)
from stemgrains.virtual import _kernels as K
from stemgrains.virtual._reference import virtual_block_reference
from stemgrains.virtual.api import _sparse


def _disk(shape, r0, c0, rad):
    rr, cc = np.mgrid[0 : shape[0], 0 : shape[1]]
    return (rr - r0) ** 2 + (cc - c0) ** 2 <= rad**2


@pytest.mark.parametrize("dtype", [np.uint16, np.float32, np.float64, np.int32])
def test_kernel_matches_reference_random(dtype):
    rng = np.random.default_rng(1)
    block = (rng.random((3, 4, 9, 11)) * 100).astype(dtype)
    masks = rng.random((3, 9, 11)) * (rng.random((3, 9, 11)) > 0.6)
    shifts = rng.integers(-3, 4, size=(3, 4, 2))
    rows, cols, w, ptr = _sparse(masks)
    fast = K.virtual_block(block, rows, cols, w, ptr, shifts)
    slow = virtual_block_reference(block, masks, shifts)
    np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-9)
    py = K.virtual_block.py_func(block, rows, cols, w, ptr, shifts)
    np.testing.assert_allclose(py, slow, rtol=1e-12, atol=1e-9)


def test_images_equal_numpy_sum_random():
    rng = np.random.default_rng(2)
    data = rng.poisson(20, size=(7, 5, 24, 20)).astype(np.uint16)
    cal = Calibration(q_pixel_size=0.05, center=(11.5, 9.0))
    ds = Dataset4D(data, cal)
    wmask = rng.random((24, 20))
    dets = [bright_field(4), annulus(5, 9), dark_field([[3, 4], [18, 15]], 2), mask_detector(wmask),
            mask_detector(wmask > 0.5), dark_field([0.2, -0.25], 0.1, units="q"), annulus(0.2, 0.4, units="q")]
    ims = virtual_images(ds, dets, memory_mb=0.001)  # one scan row per block
    d = data.astype(np.float64)
    expect = [
        d[..., _disk((24, 20), 11.5, 9.0, 4)].sum(-1),
        (d * (~_disk((24, 20), 11.5, 9.0, 5 - 1e-9) & _disk((24, 20), 11.5, 9.0, 9))).sum((-1, -2)),
        d[..., _disk((24, 20), 3, 4, 2) | _disk((24, 20), 18, 15, 2)].sum(-1),
        np.einsum("ijkl,kl->ij", d, wmask),
        d[..., wmask > 0.5].sum(-1),
        d[..., _disk((24, 20), 11.5 + 4, 9.0 - 5, 2)].sum(-1),
        (d * (~_disk((24, 20), 11.5, 9.0, 4 - 1e-9) & _disk((24, 20), 11.5, 9.0, 8))).sum((-1, -2)),
    ]
    for k, e in enumerate(expect):
        np.testing.assert_allclose(ims[k], e, rtol=1e-12, err_msg=dets[k].name)
    # the same in one block, and with the reference backend
    np.testing.assert_allclose(virtual_images(ds, dets, memory_mb=512), ims, rtol=1e-12)
    np.testing.assert_allclose(virtual_images(ds, dets[:3], backend="reference"), ims[:3], rtol=1e-12)


def test_images_equal_numpy_sum_on_sample(data_samples):
    ds = load_4d(data_samples / "nba_sample.h5")
    c = ds.calibration.center
    ims = virtual_images(ds, [bright_field(6), annulus(12, 60)], memory_mb=4)
    with h5py.File(data_samples / "nba_sample.h5") as f:
        d = f["data"][:, :, :, :].astype(np.float64)
    shape = ds.detector_shape
    bf = d[..., _disk(shape, *c, 6)].sum(-1)
    adf = d[..., _disk(shape, *c, 60) & ~_disk(shape, *c, 12 - 1e-9)].sum(-1)
    np.testing.assert_array_equal(ims[0], bf)
    np.testing.assert_array_equal(ims[1], adf)


def test_follow_center_moves_the_detector():
    """Patterns whose beam wanders by whole pixels: a BF disk that follows the centre sees the whole beam."""
    ny, nx, k = 4, 5, 32
    rng = np.random.default_rng(3)
    data = np.zeros((ny, nx, k, k))
    offs = rng.integers(-3, 4, size=(ny, nx, 2))
    for i in range(ny):
        for j in range(nx):
            data[i, j][_disk((k, k), 15 + offs[i, j, 0], 15 + offs[i, j, 1], 2.5)] = 100.0
    ds = Dataset4D(data, Calibration(q_pixel_size=0.1, center=(15.0, 15.0)))
    fixed = virtual_image(ds, bright_field(2.5))
    moving = virtual_image(ds, bright_field(2.5), follow_center=True)
    full = 100.0 * _disk((k, k), 15, 15, 2.5).sum()
    np.testing.assert_allclose(moving, full)
    assert fixed.min() < full
    given = virtual_image(ds, bright_field(2.5), follow_center=15.0 + offs.astype(float))
    np.testing.assert_allclose(given, full)


def test_bad_detectors():
    ds = Dataset4D(np.ones((2, 2, 8, 8)), Calibration(q_pixel_size=0.1, center=(3.5, 3.5)))
    with pytest.raises(ParameterError, match="annulus"):
        annulus(5, 2)
    with pytest.raises(ParameterError, match="radius"):
        bright_field(0)
    with pytest.raises(ParameterError, match="mask shape"):
        virtual_image(ds, mask_detector(np.ones((4, 4))))
    with pytest.raises(ParameterError, match="covers no detector pixel"):
        virtual_image(ds, dark_field([50, 50], 1))
    with pytest.raises(ParameterError, match="calibrated"):
        virtual_image(np.ones((2, 2, 8, 8)), bright_field(1, units="q"))
    with pytest.raises(InputError, match="4-D"):
        virtual_image(np.ones((2, 8, 8)), bright_field(1))


def test_cli_outputs_and_errors(data_samples, tmp_path, capsys):
    src = str(data_samples / "nba_sample.h5")
    for ext in ("npy", "h5", "png", "tif"):
        if ext == "tif":
            pytest.importorskip("tifffile", reason="tifffile not installed")
        assert main(["virtual", src, "--annulus", "12,60", "-o", str(tmp_path / f"adf.{ext}")]) == 0
    img = np.load(tmp_path / "adf.npy")
    ds = load_4d(src)
    np.testing.assert_array_equal(img, virtual_image(ds, annulus(12, 60)))
    with h5py.File(tmp_path / "adf.h5") as f:
        np.testing.assert_array_equal(f["image"][()], img)
    # --q-units: a disk at q offsets (0, 0.5) 1/Å, radius 0.1 1/Å, equals the same disk in pixels
    q = ds.calibration.q_pixel_size
    c = ds.calibration.center
    assert main(["virtual", src, "--disk", "0,0.5,0.1", "--q-units", "-o", str(tmp_path / "q.npy")]) == 0
    px = virtual_image(ds, dark_field([c[0], c[1] + 0.5 / q], 0.1 / q))
    np.testing.assert_allclose(np.load(tmp_path / "q.npy"), px)
    np.save(tmp_path / "m.npy", np.ones((5, 5)))
    for argv, needle in (
        (["--bf", "-1"], "radius"),
        (["--annulus", "9"], "--annulus"),
        (["--disk", "1,2"], "--disk"),
        (["--mask", str(tmp_path / "none.npy")], "not found"),
        (["--mask", str(tmp_path / "m.npy")], "mask shape"),
    ):
        capsys.readouterr()
        assert main(["virtual", src, *argv, "-o", str(tmp_path / "x.npy")]) == 2
        err = capsys.readouterr().err.strip()
        assert needle in err and "\n" not in err and "Traceback" not in err
    assert main(["virtual", src, "--bf", "3", "-o", str(tmp_path / "x.jpg")]) == 2


def test_cli_keeps_the_image_of_another_input(data_samples, tmp_path, capsys):
    """`virtual -o` onto the image of another input (or a file that is not ours) is refused in one line, the file
    untouched; the same input again replaces its image; --force replaces any. .h5/.tif/.png record the input; a
    .npy records none, so only an identical image replaces it."""
    from stemgrains.io import write_4d
    from stemgrains.io.outputs import recorded_input

    ds = load_4d(data_samples / "nba_sample.h5")
    a = write_4d(tmp_path / "a.h5", np.asarray(ds.data[:3, :4]), ds.calibration)
    b = write_4d(tmp_path / "b.h5", np.asarray(ds.data[4:7, :4]), ds.calibration)
    exts = ["h5", "png", "npy"] + (["tif"] if importlib.util.find_spec("tifffile") else [])
    for ext in exts:
        out = tmp_path / f"v.{ext}"
        assert main(["virtual", str(a), "--bf", "6", "-o", str(out)]) == 0
        assert recorded_input(out) == (None if ext == "npy" else str(a.resolve()))
        assert main(["virtual", str(a), "--bf", "6", "-o", str(out)]) == 0  # the same command again
        if ext != "npy":
            assert main(["virtual", str(a), "--annulus", "8,30", "-o", str(out)]) == 0  # same input, other detector
        before = out.read_bytes()
        capsys.readouterr()
        assert main(["virtual", str(b), "--bf", "6", "-o", str(out)]) == 2
        # (a .npy of the same shape is compared after the work: the progress bar came before the one line)
        err = [x for x in capsys.readouterr().err.strip().splitlines() if x.strip() and "virtual images" not in x]
        assert len(err) == 1 and str(out) in err[0] and "--force" in err[0], err
        assert (str(a.resolve()) in err[0]) if ext != "npy" else "records no input" in err[0]
        assert out.read_bytes() == before
        assert main(["virtual", str(b), "--bf", "6", "-o", str(out), "--force"]) == 0
        assert out.read_bytes() != before
        if ext != "npy":
            assert recorded_input(out) == str(b.resolve())
    # a results file of the same input is no virtual image: refused
    from stemgrains.io.results import atomic_h5, write_provenance

    res = tmp_path / "results.h5"
    with atomic_h5(res) as f:
        write_provenance(f, input_path=a)
        f.create_group("orientation")
    before = res.read_bytes()
    capsys.readouterr()
    assert main(["virtual", str(a), "--bf", "6", "-o", str(res)]) == 2
    assert "not an image of this input" in capsys.readouterr().err and res.read_bytes() == before
    # .npy of another shape: refused before the work; a file that is not ours: refused
    np.save(tmp_path / "big.npy", np.zeros((5, 5)))
    assert main(["virtual", str(a), "--bf", "6", "-o", str(tmp_path / "big.npy")]) == 2
    assert "shape (5, 5)" in capsys.readouterr().err
    for name in ("notes.h5", "notes.png", "notes.npy"):
        (tmp_path / name).write_bytes(b"my notes")
        assert main(["virtual", str(a), "--bf", "6", "-o", str(tmp_path / name)]) == 2
        assert "--force" in capsys.readouterr().err and (tmp_path / name).read_bytes() == b"my notes"


def test_recorded_input_of_written_images(tmp_path):
    """write_image records the input (absolute, any characters) in every format but .npy; recorded_input reads
    it back, also from a .tif without pixel size (tifffile's own description instead of ImageJ's)."""
    from stemgrains.io.images import write_image
    from stemgrains.io.outputs import recorded_input

    src = tmp_path / "dätä ünïcode=1.h5"
    exts = [".h5", ".png", ".npy"] + ([".tif"] if importlib.util.find_spec("tifffile") else [])
    for ext in exts:
        for step in (None, 2.0):
            out = write_image(tmp_path / f"img{step}{ext}", np.arange(6.0).reshape(2, 3), pixel_size_nm=step,
                              input_path=src)
            assert recorded_input(out) == (None if ext == ".npy" else str(src.resolve()))
    write_image(tmp_path / "plain.h5", np.ones((2, 2)))
    assert recorded_input(tmp_path / "plain.h5") is None and recorded_input(tmp_path / "missing.h5") is None


def test_cli_subprocess_exit_status(tmp_path):
    r = subprocess.run([sys.executable, "-m", "stemgrains.cli", "virtual", str(tmp_path / "missing.h5"), "--bf", "3",
                        "-o", str(tmp_path / "x.npy")], capture_output=True, text=True)
    assert r.returncode == 2 and "not found" in r.stderr and "Traceback" not in r.stderr


class _CountingArray:
    """A 4-D array-like that records how many scan rows each read asks for."""

    def __init__(self, data):
        self._data = data
        self.shape = data.shape
        self.dtype = data.dtype
        self.max_rows = 0

    def __getitem__(self, key):
        if isinstance(key, slice):
            start, stop, _ = key.indices(self.shape[0])
            self.max_rows = max(self.max_rows, stop - start)
        else:
            self.max_rows = self.shape[0]
        return self._data[key]


def test_streaming_reads_blocks_bounded_by_memory_budget():
    rng = np.random.default_rng(6)
    data = rng.integers(0, 50, size=(40, 8, 16, 16)).astype(np.uint16)
    arr = _CountingArray(data)
    ds = Dataset4D(arr, Calibration(q_pixel_size=0.1, center=(7.5, 7.5)))
    row_mb = 8 * 16 * 16 * 8 / 2**20  # one scan row as float64
    img = virtual_image(ds, annulus(2, 7), memory_mb=3.5 * row_mb)
    assert arr.max_rows == 3
    np.testing.assert_array_equal(img, virtual_image(Dataset4D(data, ds.calibration), annulus(2, 7)))


@pytest.mark.shared
def test_virtual_image_of_a_vendor_file(shared_data):
    """A real NanoMegas blockfile (rosettasciio, lazy): the streamed virtual image equals a numpy sum."""
    pytest.importorskip("rsciio", reason="rosettasciio not installed")
    ds = load_4d(shared_data / "formats" / "test1.blo", q_pixel_size=0.01)
    ky, kx = ds.detector_shape
    data = np.asarray(ds.data[:], dtype=np.float64) if not hasattr(ds.data, "compute") else ds.data.compute()
    img = virtual_image(ds, annulus(2, min(ky, kx) / 2), center=((ky - 1) / 2, (kx - 1) / 2), memory_mb=0.01)
    rr, cc = np.mgrid[0:ky, 0:kx]
    d = np.hypot(rr - (ky - 1) / 2, cc - (kx - 1) / 2)
    np.testing.assert_allclose(img, np.asarray(data, float)[..., (d >= 2) & (d <= min(ky, kx) / 2)].sum(-1))


def test_cli_names_the_positions_without_a_value(tmp_path, capsys):
    # a pattern with NaN counts under the detector gives a NaN pixel: the summary said "min nan, max nan" and the
    # PNG drew it white (the brightest grey)
    data = np.random.default_rng(2).poisson(50, (4, 5, 16, 16)).astype(np.float32)
    data[1, 2, 6:10, 6:10] = np.nan
    src = tmp_path / "nan.h5"
    with h5py.File(src, "w") as f:
        f.create_dataset("data", data=data)
    assert main(["virtual", str(src), "--bf", "3", "--center", "8,8", "--no-progress",
                 "-o", str(tmp_path / "bf.png")]) == 0
    out = capsys.readouterr().out
    assert "1 of 20 positions NaN" in out and "min nan" not in out and "max nan" not in out
    from stemgrains.plot.virtual import plot_virtual_image

    image = np.arange(20.0).reshape(4, 5)
    image[1, 2] = np.nan
    fig = plot_virtual_image(image)
    assert "red: 1 of 20 positions" in fig.axes[0].get_title()
    assert tuple(fig.axes[0].images[0].cmap.get_bad()) == (1.0, 0.0, 0.0, 1.0)
    assert "red" not in plot_virtual_image(np.ones((4, 5))).axes[0].get_title()


def test_an_annulus_far_past_the_detector_is_noted(au_scan_3x3, tmp_path, capsys):
    """--annulus 12,600 on a 64 x 64 detector was taken without a word (every pixel beyond 12 px counted)."""
    from stemgrains.cli import main

    assert main(["virtual", str(au_scan_3x3), "--annulus", "12,600", "-o", str(tmp_path / "a.npy"), "--no-progress"]) == 0
    notes = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("note:")]
    assert len(notes) == 1 and notes[0].startswith("note: --annulus 12,600: R_OUT reaches 600 px, past the detector's "
                                                   "farthest pixel ("), notes
    assert main(["virtual", str(au_scan_3x3), "--annulus", "12,30", "-o", str(tmp_path / "b.npy"), "--no-progress"]) == 0
    assert "note:" not in capsys.readouterr().err
