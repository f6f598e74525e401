"""In-situ series: planted filaments in a drifting, noisy series are found at their frame and attributed to the
right boundary / triple junction / interior; enrichment equals a hand computation; bad input exits 2."""

from __future__ import annotations

import csv
import shutil
import math

import h5py
import numpy as np
import pytest
from insitu_helpers import STEP, four_grain_labels, write_lamella

from stemgrains._table import Table
from stemgrains.cli import main
from stemgrains.insitu import (
    EVENT_COLUMNS,
    FrameTransform,
    analyse_series,
    enrichment,
    load_sites,
    phase_correlation,
    register_series,
    register_to_map,
)
from stemgrains.simulate.series import PlantedEvent, simulate_series

OFFSET = (-4.0, -8.0)
PIXEL = 0.5
DRIFT = np.array([[0, 0], [2.5, -3.2], [5.1, -4.0], [6.3, -7.7], [4.2, -9.9], [8.8, -6.1]])

# (x_nm, y_nm, first frame, expected site, grains on either side (pixel (row, col) pairs) or None)
PLANTED = [
    (59.0, 20.0, 2, "boundary", ((10, 29), (10, 30))),  # vertical boundary x = 29.5 px
    (25.0, 49.0, 3, "boundary", ((24, 12), (25, 12))),  # left horizontal boundary y = 24.5 px
    (95.0, 69.0, 1, "boundary", ((34, 47), (35, 47))),  # right horizontal boundary y = 34.5 px
    (59.0, 49.0, 2, "triple_junction", None),
    (90.0, 25.0, 4, "interior", None),
    (25.0, 80.0, 3, "interior", None),  # darker feature
]


@pytest.fixture(scope="module")
def lamella(tmp_path_factory):
    path = tmp_path_factory.mktemp("lam") / "results.h5"
    return write_lamella(path)


def _series(seed=1):
    ev = [PlantedEvent(x, y, f, amplitude=-0.4 if k == 5 else 0.5) for k, (x, y, f, _, _) in enumerate(PLANTED)]
    return simulate_series(ev, n_frames=6, shape=(256, 256), pixel_size_nm=PIXEL, offset_nm=OFFSET, drift_px=DRIFT,
                           seed=seed)


def _expected_boundary(bt, labels, pix):
    (r1, c1), (r2, c2) = pix
    a, b = sorted((int(labels[r1, c1]), int(labels[r2, c2])))
    hit = np.nonzero((bt.boundaries["grain_a"] == a) & (bt.boundaries["grain_b"] == b))[0]
    assert len(hit) == 1
    return int(bt.boundaries["boundary_id"][hit[0]]), a, b


def _check_events(events, bt, labels):
    x, y = np.asarray(events["x_nm"]), np.asarray(events["y_nm"])
    matched = set()
    for px, py, frame, site, pix in PLANTED:
        d = np.hypot(x - px, y - py)
        i = int(np.argmin(d))
        assert d[i] <= 3.0, (px, py, d[i])
        assert events["first_frame"][i] in (frame, frame + 1)
        assert events["site"][i] == site
        if pix is not None:
            bid, a, b = _expected_boundary(bt, labels, pix)
            assert (events["boundary_id"][i], events["grain_a"][i], events["grain_b"][i]) == (bid, a, b)
        else:
            assert events["boundary_id"][i] == -1
        matched.add(i)
    assert len(events["x_nm"]) - len(matched) <= 1  # at most one false event


@pytest.mark.parametrize("seed", [1, 2])
def test_planted_events_found_and_attributed(lamella, seed):
    path, gm, bt, cls = lamella
    frames, drift = _series(seed)
    sites = load_sites(path)
    assert sites.interface == ("left", "right")
    res = analyse_series(frames, PIXEL, sites, transform=FrameTransform(PIXEL, 0.0, OFFSET))
    np.testing.assert_allclose(res.drift_px, drift, atol=0.5)
    _check_events(res.events, bt, gm.labels)
    # the darker feature has negative contrast, the others positive
    k = int(np.argmin(np.hypot(res.events["x_nm"] - 25.0, res.events["y_nm"] - 80.0)))
    assert res.events["contrast"][k] < 0 < np.delete(res.events["contrast"], k).min()
    # label / behaviour of boundary events are those of their segment in the classification
    seg = cls.segments
    for i in np.nonzero(res.events["site"] == "boundary")[0]:
        j = np.nonzero(seg["boundary_id"] == res.events["boundary_id"][i])[0][0]
        assert res.events["label"][i] == seg["label"][j] and res.events["behaviour"][i] == seg["behaviour"][j]


def test_interface_and_edge_sites(lamella):
    path, gm, bt, cls = lamella
    sites = load_sites(path)
    ny, nx = gm.labels.shape
    x_right = (nx - 0.5) * STEP
    t = sites.attribute([x_right - 1.0, 40.0, 40.0, 59.2], [10.0, (ny - 0.5) * STEP - 1.0, 20.0, 20.0], 3.0)
    assert list(t["site"]) == ["interface", "edge", "interior", "boundary"]
    assert t["grain_a"][0] == gm.labels[5, nx - 1] and t["grain_b"][0] == -1
    assert t["distance_nm"][3] == pytest.approx(0.2)
    assert list(load_sites(path, interface=()).attribute([x_right - 1.0], [10.0], 3.0)["site"]) == ["edge"]


def test_enrichment_equals_hand_computation():
    segments = Table({"length_nm": [10.0, 20.0, 10.0, 40.0],
                      "label": ["I a1", "III b1", "I a1", "II b2"],
                      "behaviour": ["blocking", "transmitting", "blocking", "parallel"]})
    events = Table({"site": ["boundary"] * 5 + ["interior", "triple_junction"],
                    "label": ["I a1", "I a1", "I a1", "II b2", "III b1", "", ""],
                    "behaviour": ["blocking", "blocking", "blocking", "parallel", "transmitting", "", ""]})
    t = enrichment(events, segments)

    def row(level, name):
        i = [k for k in range(len(t)) if t["level"][k] == level and t["name"][k] == name][0]
        return {c: t[c][i] for c in t}

    def binom_two_sided(k, n, p):  # sum of the probabilities not larger than P(k)
        pmf = [math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(n + 1)]
        return sum(v for v in pmf if v <= pmf[k] * (1 + 1e-7))

    r = row("label", "I a1")  # 20 of 80 nm -> f = 0.25, N = 5, expected 1.25, observed 3
    assert (r["length_nm"], r["length_fraction"], r["observed"]) == (20.0, 0.25, 3)
    assert r["expected"] == pytest.approx(1.25) and r["ratio"] == pytest.approx(2.4)
    assert r["p_value"] == pytest.approx(binom_two_sided(3, 5, 0.25), rel=1e-9)
    r = row("label", "II b2")  # f = 0.5, observed 1
    assert r["expected"] == pytest.approx(2.5) and r["p_value"] == pytest.approx(binom_two_sided(1, 5, 0.5))
    r = row("behaviour", "transmitting")
    assert r["observed"] == 1 and r["expected"] == pytest.approx(1.25) and r["ratio"] == pytest.approx(0.8)
    assert row("site", "boundary")["observed"] == 5 and row("site", "interior")["observed"] == 1
    assert row("site", "interface")["observed"] == 0


def test_phase_correlation_and_drift():
    from scipy import ndimage

    rng = np.random.default_rng(4)
    a = ndimage.gaussian_filter(rng.random((160, 180)), 3) * 300 + 50
    shifts = [(0, 0), (3.3, -5.6), (-7.25, 2.5), (12.2, -9.7)]
    frames = np.stack([rng.poisson(ndimage.shift(a, s, order=3, mode="nearest")).astype(float) for s in shifts])
    np.testing.assert_allclose(register_series(frames), shifts, atol=0.35)
    assert phase_correlation(a, ndimage.shift(a, (4, -6), order=0, mode="wrap")) == (4.0, -6.0)


def test_register_to_map_recovers_offset_and_rotation():
    from scipy import ndimage

    rng = np.random.default_rng(5)
    m = ndimage.gaussian_filter(rng.random((40, 40)), 1.5)
    s, p = 2.0, 0.5
    for off, rot in (((-10.0, -6.0), 0.0), ((-3.0, 4.0), 3.0)):
        t = FrameTransform(p, rot, off)
        rr, cc = np.mgrid[0:180, 0:190]
        x, y = t.to_map(rr, cc)
        frame = ndimage.map_coordinates(m, [y / s, x / s], order=1, mode="nearest")
        got = register_to_map(frame, p, m, s, rotations_deg=np.arange(-4, 5, 1.0))
        assert got.rotation_deg == rot
        np.testing.assert_allclose(got.offset_nm, off, atol=0.5)
        assert got.score > 0.95


def test_cli_series(lamella, tmp_path, capsys):
    path = lamella[0]
    frames, _ = _series(1)
    names = []
    for k, f in enumerate(frames):
        names.append(str(tmp_path / f"f{k}.npy"))
        np.save(names[-1], f)
    out = tmp_path / "out"
    times = ",".join(str(10 * k) for k in range(len(frames)))
    argv = ["series", str(path), *names, "--frame-pixel-size", str(PIXEL), f"--offset={OFFSET[0]},{OFFSET[1]}",
            "--times", times, "-o", str(out)]
    assert main(argv) == 0
    with h5py.File(out / "series.h5") as f:  # the drift's length (it printed the largest single component)
        longest = float(np.hypot(*f["series/drift_px"][()].T).max())
    assert f"max drift {longest:.1f} px" in capsys.readouterr().out
    with open(out / "events.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0].keys()) == EVENT_COLUMNS
    ev = {k: np.array([r[k] for r in rows]) for k in EVENT_COLUMNS}
    ev = {k: (v.astype(float) if k in ("x_nm", "y_nm", "time", "distance_nm") else
              v.astype(int) if k in ("first_frame", "boundary_id", "grain_a", "grain_b") else v) for k, v in ev.items()}
    _check_events(ev, lamella[2], lamella[1].labels)
    np.testing.assert_allclose(ev["time"], 10 * ev["first_frame"])
    with open(out / "enrichment.csv", newline="") as f:
        enr = list(csv.DictReader(f))
    assert {r["level"] for r in enr} == {"label", "behaviour", "site", "interface"}
    with h5py.File(out / "series.h5") as f:
        assert f["series/registered"].shape == frames.shape and f["series/differential"].shape == frames.shape
    for fig in ("event_sites.png", "montage.png", "enrichment.png"):
        assert (out / fig).stat().st_size > 5000
    # one 3-D stack gives the same events
    np.save(tmp_path / "stack.npy", frames)
    assert main(["series", str(path), str(tmp_path / "stack.npy"), "--frame-pixel-size", str(PIXEL),
                 f"--offset={OFFSET[0]},{OFFSET[1]}", "--no-figures", "-o", str(tmp_path / "out2")]) == 0
    with open(tmp_path / "out2" / "events.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == len(rows)


def test_cli_bad_input(lamella, tmp_path, capsys):
    path = str(lamella[0])
    rng = np.random.default_rng(0)
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    np.save(a, rng.random((64, 64)))
    np.save(b, rng.random((64, 80)))
    cases = [
        ([str(a), str(b), "--frame-pixel-size", "1", "--offset", "0,0"], "differs from the first frame"),
        ([str(a), "--frame-pixel-size", "1", "--offset", "0,0"], "at least 2 frames"),
        ([str(a), str(a), "--frame-pixel-size", "1", "--offset", "500,500"], "do not overlap the map"),
        ([str(a), str(a), "--frame-pixel-size", "1", "--offset=nan,0"], "--offset/--rotation expect finite numbers"),
        ([str(a), str(a), "--offset", "0,0"], "--frame-pixel-size"),
        ([str(a), str(a), "--frame-pixel-size", "1"], "no virtual ADF image to register frame 0 on ("),
        ([str(a), str(a), "--frame-pixel-size", "1", "--offset", "0,0", "--times", "1,2,3"], "--times"),
        ([str(a), str(tmp_path / "none.npy"), "--frame-pixel-size", "1", "--offset", "0,0"], "not found"),
        ([str(a), str(a), "--frame-pixel-size", "-1", "--offset", "0,0"], "--frame-pixel-size"),
    ]
    for extra, needle in cases:
        capsys.readouterr()
        assert main(["series", path, *extra, "-o", str(tmp_path / "o")]) == 2, needle
        err = capsys.readouterr().err.strip()
        assert needle in err and "\n" not in err and "Traceback" not in err, err
    capsys.readouterr()
    assert main(["series", str(tmp_path / "missing.h5"), str(a), str(a), "-o", str(tmp_path / "o")]) == 2


def test_tiff_frames_carry_pixel_size(tmp_path):
    tifffile = pytest.importorskip("tifffile", reason="tifffile not installed")
    from stemgrains.io.images import read_frames

    img = np.arange(30 * 40, dtype=np.float32).reshape(30, 40)
    tifffile.imwrite(tmp_path / "f.tif", img, imagej=True, resolution=(1 / 0.25, 1 / 0.25), metadata={"unit": "nm"})
    frames, size, names = read_frames([tmp_path / "f.tif", tmp_path / "f.tif"])
    assert frames.shape == (2, 30, 40) and size == pytest.approx(0.25) and names == ["f.tif", "f.tif"]
    np.testing.assert_array_equal(frames[0], img)


def test_noise_free_frames_give_only_the_real_change(lamella):
    """Noise-free frames (simulated): the robust σ of the differences is ~0, so the residue of the drift
    correction's interpolation (contrast ~1e-4) passed --n-sigma: as a second event beside the real one (fresh
    user), or here as part of the real feature's footprint (4.6× its area, its contrast diluted to 0.007). The noise
    floor leaves the one planted feature, compact."""
    from scipy import ndimage

    from stemgrains.insitu import FrameTransform, analyse_series

    rng = np.random.default_rng(4)
    base = 100.0 + 20.0 * ndimage.gaussian_filter(rng.random((96, 96)), 6)
    rows, cols = np.mgrid[:96, :96]
    blob = 15.0 * np.exp(-((rows - 40) ** 2 + (cols - 30) ** 2) / (2 * 2.0**2))
    frames = np.stack([base, base + blob, base + blob])  # the blob biases the drift estimate by a hair
    sites = load_sites(lamella[0])
    res = analyse_series(frames, PIXEL, sites, transform=FrameTransform(PIXEL, 0.0, OFFSET), min_frames=1)
    assert len(res.events["x_nm"]) == 1, res.events
    assert abs(float(res.events["contrast"][0])) > 0.02 and float(res.events["area_nm2"][0]) < 50.0


def test_series_without_classification_says_what_its_statistics_lack(lamella, tmp_path, capsys):
    """A results file without /classification (e.g. segmented again) gives site statistics only: said in a line
    (the label and behaviour rows of enrichment.csv disappeared without a word)."""
    src = tmp_path / "plain.h5"
    shutil.copyfile(lamella[0], src)
    with h5py.File(src, "a") as f:
        del f["classification"]
    frames, _ = _series(1)
    names = []
    for k, fr in enumerate(frames[:3]):
        names.append(str(tmp_path / f"f{k}.npy"))
        np.save(names[-1], fr)
    capsys.readouterr()
    assert main(["series", str(src), *names, "--frame-pixel-size", str(PIXEL), f"--offset={OFFSET[0]},{OFFSET[1]}",
                 "--no-figures", "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "holds no classification" in out and "stemgrains classify" in out, out
    with open(tmp_path / "out" / "enrichment.csv", newline="") as f:
        assert {r["level"] for r in csv.DictReader(f)} <= {"site", "interface"}


def test_h5_frames_are_virtual_images_and_other_h5_files_are_named(tmp_path, data_samples):
    """`stemgrains virtual -o X.h5` writes an image a series can read (with its pixel size); a 4D scan or a
    results file given as a frame is named, with what to do (it read "unsupported frame type .h5")."""
    from stemgrains.errors import FileFormatError
    from stemgrains.io.images import read_frames, write_image

    img = np.arange(12 * 9, dtype=np.float64).reshape(12, 9)
    write_image(tmp_path / "v.h5", img, pixel_size_nm=0.5, input_path=tmp_path / "scan.h5")
    frames, size, names = read_frames([tmp_path / "v.h5", tmp_path / "v.h5"])
    assert frames.shape == (2, 12, 9) and size == pytest.approx(0.5) and names == ["v.h5", "v.h5"]
    np.testing.assert_array_equal(frames[1], img)
    with pytest.raises(FileFormatError, match=r"4D-STEM scan.*not an image frame.*stemgrains virtual\)?"):
        read_frames([data_samples / "nba_sample.h5"])
    results = tmp_path / "r.h5"
    with h5py.File(results, "w") as f:
        f.create_group("input").attrs["path"] = str(data_samples / "nba_sample.h5")
        f.create_group("orientation")
    with pytest.raises(FileFormatError, match="the results file goes first"):
        read_frames([tmp_path / "v.h5", results])


def test_frames_made_from_another_scan_are_noted(lamella, tmp_path, capsys):
    """Virtual-image frames recording another 4D input than the map's: allowed (a later scan of the same area),
    said in one note (a fresh user's frames of an Au scan were placed on a Na-β″ map without a word)."""
    from stemgrains.io.images import write_image

    src = tmp_path / "map.h5"
    shutil.copyfile(lamella[0], src)
    with h5py.File(src, "a") as f:
        f.require_group("input").attrs["path"] = str(tmp_path / "map_scan.h5")
    frames, _ = _series(1)
    names = []
    for k, fr in enumerate(frames[:3]):
        names.append(str(tmp_path / f"f{k}.h5"))
        write_image(names[-1], fr, pixel_size_nm=PIXEL, input_path=tmp_path / "other_scan.h5")
    capsys.readouterr()
    assert main(["series", str(src), *names, f"--offset={OFFSET[0]},{OFFSET[1]}", "--no-figures",
                 "-o", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "f0.h5, f1.h5, f2.h5 were made from" in err and "other_scan.h5, the map from" in err, err


def test_cli_registers_frame0_on_virtual_adf(tmp_path):
    """No --offset: frame 0 is placed by correlation with a virtual ADF image of the 4D input recorded in the
    results file (here a small scan whose ADF signal is a smooth random image)."""
    from scipy import ndimage

    from stemgrains.data import Calibration
    from stemgrains.io import write_4d
    from stemgrains.virtual import annulus, virtual_image
    from stemgrains.io import load_4d

    labels = four_grain_labels()
    ny, nx = labels.shape
    rng = np.random.default_rng(7)
    adf = 1 + 0.5 * ndimage.gaussian_filter(rng.normal(size=(ny, nx)), 2.0)
    k = 24
    rr, cc = np.mgrid[0:k, 0:k]
    ring = (np.hypot(rr - 11.5, cc - 11.5) >= 5) & (np.hypot(rr - 11.5, cc - 11.5) <= 11)
    data = np.where(ring[None, None], 100 * adf[..., None, None], 0.0).astype(np.float32)
    data[..., 10:14, 10:14] += 5000
    cube = tmp_path / "scan.h5"
    write_4d(cube, data, Calibration(q_pixel_size=0.05, scan_step_nm=STEP, center=(11.5, 11.5)))
    path = tmp_path / "results.h5"
    write_lamella(path)
    with h5py.File(path, "r+") as f:
        f.require_group("input").attrs["path"] = "scan.h5"  # relative to the results file's folder
    m = virtual_image(load_4d(cube), annulus(k / 12, k / 2))
    ev = [PlantedEvent(59.0, 20.0, 2), PlantedEvent(90.0, 25.0, 3)]
    frames, _ = simulate_series(ev, n_frames=5, shape=(220, 230), pixel_size_nm=PIXEL, offset_nm=(3.0, -5.0),
                                drift_px=DRIFT[:5], base_image=m, base_pixel_nm=STEP, seed=3)
    for i, f in enumerate(frames):
        np.save(tmp_path / f"g{i}.npy", f)
    out = tmp_path / "out"
    assert main(["series", str(path), *[str(tmp_path / f"g{i}.npy") for i in range(5)], "--frame-pixel-size",
                 str(PIXEL), "--no-figures", "-o", str(out)]) == 0
    with h5py.File(out / "series.h5") as f:
        import json

        t = json.loads(f["series"].attrs["parameters"])["transform"]
    np.testing.assert_allclose(t["offset_nm"], (3.0, -5.0), atol=1.0)
    with open(out / "events.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    got = sorted((r["site"], int(r["first_frame"])) for r in rows)
    assert got == [("boundary", 2), ("interior", 3)]


def test_hspy_frames_carry_pixel_size(tmp_path):
    pytest.importorskip("rsciio", reason="rosettasciio not installed")
    from rsciio.hspy import file_writer

    from stemgrains.io.images import read_frames

    data = np.arange(12.0).reshape(3, 4)
    axes = [{"size": n, "scale": 2.5, "offset": 0.0, "units": "Å", "name": a, "navigate": False}
            for n, a in ((3, "y"), (4, "x"))]
    file_writer(str(tmp_path / "f.hspy"), {"data": data, "axes": axes, "metadata": {"General": {"title": "f"},
                "Signal": {"signal_type": ""}}, "original_metadata": {}, "tmp_parameters": {},
                "attributes": {"_lazy": False}, "learning_results": {}, "models": {},
                "package_info": {"name": "test", "version": "0"}})
    frames, size, _ = read_frames([tmp_path / "f.hspy", tmp_path / "f.hspy"])
    assert size == pytest.approx(0.25)  # 2.5 Å
    np.testing.assert_array_equal(frames[1], data)


def test_interface_plane_classes(lamella):
    """Interface pieces and events are classed by how the touching grain's conduction-plane trace meets the edge."""
    path, gm, bt, cls = lamella
    sites = load_sites(path)
    ids = np.asarray(gm.table["id"])
    trace = dict(zip(ids.tolist(), np.asarray(gm.table["trace_angle_deg"], float).tolist()))

    def expect(g):  # left/right edges: normal along x (0°)
        t = trace[g]
        if not np.isfinite(t):
            return "planes flat"
        return "planes toward electrode" if min(abs(t), 180 - abs(t)) < 45 else "planes along electrode"

    pieces = sites.interface_pieces()
    ny, nx = gm.labels.shape
    assert len(pieces) == 2 * ny and np.allclose(pieces["length_nm"], STEP)
    for e, g, c in zip(pieces["edge"], pieces["grain"], pieces["class"]):
        assert c == expect(int(g))
    at = sites.attribute([1.0, (nx - 0.5) * STEP - 1.0], [10.0, 90.0], 3.0)
    assert list(at["site"]) == ["interface", "interface"]
    assert list(at["interface_class"]) == [expect(int(gm.labels[5, 0])), expect(int(gm.labels[45, nx - 1]))]


def test_interface_enrichment_by_hand():
    segments = Table({"length_nm": [10.0], "label": ["I a1"], "behaviour": ["blocking"]})
    interface = Table({"length_nm": [2.0] * 10, "class": ["planes toward electrode"] * 2 + ["planes along electrode"] * 8})
    events = Table({"site": ["interface"] * 4 + ["boundary"], "label": ["", "", "", "", "I a1"],
                    "behaviour": ["", "", "", "", "blocking"],
                    "interface_class": ["planes toward electrode"] * 3 + ["planes along electrode", ""]})
    t = enrichment(events, segments, interface)
    i = [k for k in range(len(t)) if t["level"][k] == "interface" and t["name"][k] == "planes toward electrode"][0]
    assert t["length_nm"][i] == 4.0 and t["length_fraction"][i] == pytest.approx(0.2)
    assert t["observed"][i] == 3 and t["expected"][i] == pytest.approx(0.8) and t["ratio"][i] == pytest.approx(3.75)
    pmf = [math.comb(4, j) * 0.2**j * 0.8 ** (4 - j) for j in range(5)]
    assert t["p_value"][i] == pytest.approx(sum(v for v in pmf if v <= pmf[3] * (1 + 1e-7)))


def test_enrichment_figure_without_events_on_boundaries_says_so():
    """One event, not on a boundary: three panels of empty axes (legend, no bars, no word)."""
    from stemgrains.plot.insitu import plot_enrichment

    table = {"level": np.array(["label", "label", "behaviour", "behaviour"]),
             "name": np.array(["II a1", "III b2", "blocking", "transmitting"]),
             "observed": np.zeros(4), "expected": np.zeros(4), "p_value": np.full(4, np.nan)}
    fig = plot_enrichment(table)
    notes = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert notes.count("no event on a classified boundary:\nnothing to compare") == 2, notes
    table["observed"] = np.array([1.0, 0, 0, 1.0])
    assert not [t for ax in plot_enrichment(table).axes for t in ax.texts if t.get_text().startswith("no event")]


def test_event_sites_use_the_behaviour_colours_of_the_boundary_map():
    """event_sites.png drew transmitting green and parallel blue, boundary_behaviour.png black and cyan."""
    from stemgrains.plot import classification, insitu

    for name, colour in classification.BEHAVIOUR_COLORS.items():
        assert insitu.BEHAVIOUR_COLORS[name] == colour
