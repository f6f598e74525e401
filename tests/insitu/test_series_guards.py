"""``stemgrains series`` refuses what a fresh user could give by mistake (exit 2, one line): a frame 0 that does not
match the map image (unrelated texture, blank), a frame pixel size making the frames far larger than the map,
times not increasing; frames whose drift registration is doubtful are left out of the event detection."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from insitu_helpers import FRAME_OFFSET, FRAME_PIXEL, STEP, filament_series, four_grain_labels, write_lamella

from stemgrains.cli import main
from stemgrains.insitu import FrameTransform, analyse_series, load_sites
from stemgrains.simulate.series import simulate_series


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    """A results file whose recorded 4D input gives a smooth random virtual ADF image, and that image."""
    from scipy import ndimage

    from stemgrains.data import Calibration
    from stemgrains.io import load_4d, write_4d
    from stemgrains.virtual import annulus, virtual_image

    tmp = tmp_path_factory.mktemp("scan")
    ny, nx = four_grain_labels().shape
    adf = 1 + 0.5 * ndimage.gaussian_filter(np.random.default_rng(7).normal(size=(ny, nx)), 2.0)
    k = 24
    rr, cc = np.mgrid[0:k, 0:k]
    ring = (np.hypot(rr - 11.5, cc - 11.5) >= 5) & (np.hypot(rr - 11.5, cc - 11.5) <= 11)
    data = np.where(ring[None, None], 100 * adf[..., None, None], 0.0).astype(np.float32)
    data[..., 10:14, 10:14] += 5000
    write_4d(tmp / "scan.h5", data, Calibration(q_pixel_size=0.05, scan_step_nm=STEP, center=(11.5, 11.5)))
    write_lamella(tmp / "results.h5")
    with h5py.File(tmp / "results.h5", "r+") as f:
        f.require_group("input").attrs["path"] = "scan.h5"
    return tmp / "results.h5", virtual_image(load_4d(tmp / "scan.h5"), annulus(k / 12, k / 2))


def _save(tmp_path, frames, stem="g"):
    names = []
    for i, f in enumerate(frames):
        names.append(str(tmp_path / f"{stem}{i}.npy"))
        np.save(names[-1], f)
    return names


def _run(results, names, tmp_path, *extra):
    return main(["series", str(results), *names, "--frame-pixel-size", str(FRAME_PIXEL), "--no-figures",
                 "-o", str(tmp_path / "out"), *extra])


def _frames(m, **kw):
    return simulate_series([], n_frames=3, shape=(120, 130), pixel_size_nm=FRAME_PIXEL, offset_nm=(3.0, -5.0),
                           drift_px=np.array([[0, 0], [1.5, -1.0], [3.0, -2.0]]), base_image=m, base_pixel_nm=STEP,
                           seed=3, **kw)[0]


def test_right_placement_accepted_with_high_r(scan, tmp_path, capsys):
    results, m = scan
    assert _run(results, _save(tmp_path, _frames(m)), tmp_path) == 0
    out = capsys.readouterr()
    r = float(out.out.split("r = ")[1].split(")")[0])
    assert r > 0.8 and "placement" not in out.err, out
    # series.h5 carries the data dictionary's units; the CSV columns are all in it
    from stemgrains.data_dictionary import GROUPS

    with h5py.File(tmp_path / "out" / "series.h5") as f:
        assert f["series/drift_px"].attrs["unit"] == "px" and "rows" in f["series/drift_px"].attrs["description"]
        for name in ("peak_ncc", "peak_ratio", "masked_fraction", "doubtful", "iterations"):
            assert f[f"series/registration/{name}"].attrs["description"]
    for csv_name, group in (("events.csv", "series/events"), ("enrichment.csv", "series/enrichment")):
        header = (tmp_path / "out" / csv_name).read_text().splitlines()[0].split(",")
        assert set(header) == set(GROUPS[group]), (csv_name, header)


@pytest.mark.parametrize("kind", ["unrelated", "blank"])
def test_wrong_placement_refused(scan, tmp_path, capsys, kind):
    results, m = scan
    frames = _frames(None) if kind == "unrelated" else np.full((3, 120, 130), 200.0)
    capsys.readouterr()
    assert _run(results, _save(tmp_path, frames), tmp_path) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--offset" in err[0] and "r = " in err[0], err
    r = float(err[0].split("r = ")[1].split()[0])
    assert r < 0.6
    assert not (tmp_path / "out" / "events.csv").exists()


@pytest.mark.parametrize("factor", [0.5, 2.0, 10.0])
def test_pixel_size_that_frame_0_contradicts_is_refused(scan, tmp_path, capsys, factor):
    """A --frame-pixel-size 2× or 10× off used to place frame 0 with r 0.68–0.77 (above the 0.6 gate) and put the
    events on the wrong sites (fresh-user test): frame 0 correlates better at another size, which is named."""
    results, m = scan
    names = _save(tmp_path, _frames(m))
    capsys.readouterr()
    rc = main(["series", str(results), *names, "--frame-pixel-size", str(FRAME_PIXEL * factor), "--no-figures", "-o",
               str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "looks wrong" in err[0], err
    better = float(err[0].split(" at ")[-1].split(" nm")[0])
    assert abs(better / FRAME_PIXEL - 1) < 0.1, err  # the true pixel size, within the ladder's 2^(1/4) steps
    assert not (tmp_path / "out" / "events.csv").exists()


def test_implausible_pixel_size_refused_before_work(scan, tmp_path, capsys):
    results, m = scan
    names = _save(tmp_path, _frames(m))
    capsys.readouterr()
    rc = main(["series", str(results), *names, "--frame-pixel-size", "500", "--no-figures", "-o",
               str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--frame-pixel-size 500" in err[0] and "nm" in err[0], err


def test_times_not_increasing_refused(scan, tmp_path, capsys):
    results, m = scan
    names = _save(tmp_path, _frames(m))
    capsys.readouterr()
    assert _run(results, names, tmp_path, "--times", "0,30,20") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--times" in err[0] and "increasing" in err[0], err


def test_doubtful_frame_left_out_of_events(tmp_path):
    """A blank frame 1 (the beam blanked): doubtful, and none of the events come from it (the old code counted
    its whole field as change)."""
    results, *_ = write_lamella(tmp_path / "results.h5")
    frames, _ = filament_series(seed=1, shape=(128, 128))
    frames[1] = np.random.default_rng(0).poisson(frames[1].mean(), frames[1].shape)
    res = analyse_series(frames, FRAME_PIXEL, load_sites(results), transform=FrameTransform(FRAME_PIXEL, 0.0,
                                                                                            FRAME_OFFSET))
    assert list(np.nonzero(res.registration.doubtful)[0]) == [1]
    assert res.parameters["frames_left_out"] == [1]
    ff = np.asarray(res.events["first_frame"])
    assert len(ff) >= 1 and not np.any(ff == 1), ff


@pytest.mark.parametrize("option, value, want", [
    ("--n-sigma", "0", "--n-sigma expects a number > 0, got 0"),
    ("--tolerance", "-3", "--tolerance expects a distance > 0 (nm), got -3"),
    ("--max-rotation", "200", "--max-rotation expects degrees in [0, 180], got 200"),
])
def test_an_option_out_of_range_names_its_range(tmp_path, capsys, option, value, want):
    """It said "--n-sigma out of range: 0.0", without the range."""
    results, *_ = write_lamella(tmp_path / "results.h5")
    frames, _ = filament_series(seed=1, with_filament=False, shape=(64, 64))
    assert _run(results, _save(tmp_path, frames[:2]), tmp_path, f"{option}={value}") == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"stemgrains series: error: {want}"]
