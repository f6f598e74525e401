"""simulate_patterns / simulate_polycrystal: geometry against hand computations, noise, determinism, file layout."""

from __future__ import annotations

import json
import math

import h5py
import numpy as np
import pytest
from orix.quaternion import Orientation
from scipy import ndimage

from stemgrains.crystal import kinematic_spots, load_phase, read_phases, reflections
from stemgrains.data import Calibration
from stemgrains.errors import FileFormatError, InputError, ParameterError
from stemgrains.simulate import simulate_patterns, simulate_polycrystal

A_AU = 4.0782  # Å; {200}: d = a/2 = 2.0391 Å
DET = (64, 64)


@pytest.fixture(scope="module")
def au(data_samples):
    return load_phase(data_samples / "au.cif")


@pytest.fixture(scope="module")
def nba(data_samples):
    return load_phase(data_samples / "na_beta2_alumina.cif")


def _about_z(phi_deg):
    t = math.radians(phi_deg)
    return np.array([[math.cos(t / 2), 0.0, 0.0, math.sin(t / 2)]])


def _au_one_grain(au, phi_deg=0.0, **kw):
    """A single [001] Au grain rotated by phi about the beam, noise-free, no background."""
    params = dict(
        labels=np.ones((2, 2), dtype=np.int32),
        orientations=_about_z(phi_deg),
        detector_shape=DET,
        k_max=1.0,
        q_pixel_size=0.025,
        background=0.0,
        dose=None,
        dtype="float64",
    )
    params.update(kw)
    return simulate_patterns(au, **params)


def _centroid(img, r, c, half=4):
    r0, c0 = int(round(r)), int(round(c))
    win = img[r0 - half : r0 + half + 1, c0 - half : c0 + half + 1]
    rr, cc = np.mgrid[r0 - half : r0 + half + 1, c0 - half : c0 + half + 1]
    return (win * rr).sum() / win.sum(), (win * cc).sum() / win.sum()


def _expected_200(phi_deg, rot_deg=0.0, centre=(32.0, 32.0), qpix=0.025):
    """Hand geometry: the crystal [100] of a grain rotated by φ about z lies at −φ in the sample frame
    (O maps sample → crystal); a detector rotation θ (detector → sample) shows sample angle α at α − θ.
    Detector col offset ∥ x, row offset ∥ y."""
    radius = (1 / 2.0391) / qpix
    ang = np.radians(-phi_deg - rot_deg + 90.0 * np.arange(4))
    return np.column_stack([centre[0] + radius * np.sin(ang), centre[1] + radius * np.cos(ang)])


@pytest.mark.parametrize("phi", [0.0, 23.0])
def test_au_001_hand_geometry(au, phi):
    sim = _au_one_grain(au, phi)
    img = sim.data[0, 0]
    expected = _expected_200(phi)
    for r, c in expected:
        cr, cc = _centroid(img, r, c)
        assert cr == pytest.approx(r, abs=0.05) and cc == pytest.approx(c, abs=0.05)
    # the four {200} disks are the brightest features apart from the direct beam
    rr, cc = np.indices(img.shape)
    mask = np.hypot(rr - 32, cc - 32) > 6
    for r, c in expected:
        mask &= np.hypot(rr - r, cc - c) > 5
    peaks = [img[int(round(r)), int(round(c))] for r, c in expected]
    assert img[mask].max() < 0.8 * min(peaks)
    # nothing at the fcc-forbidden {100} and {110} radii (the (200)/(220) are the first rings)
    rho = np.hypot(rr - 32, cc - 32) * 0.025
    for q_forbidden in (1 / A_AU, math.sqrt(2) / A_AU):
        ring = np.abs(rho - q_forbidden) < 0.03
        assert img[ring].max() < 0.05 * min(peaks)


def test_truth_orientation_matches_spots_nba(nba):
    """Brightest local maxima of a noise-free Na-β″ pattern sit on spots of kinematic_spots for the truth."""
    sim = simulate_patterns(
        nba, scan_shape=(1, 2), n_grains=1, seed=5, detector_shape=(96, 96), k_max=1.0, background=0.0, dtype="float64"
    )
    cal = sim.calibration
    img = sim.data[0, 0]
    refl = reflections(nba, k_max=1.0)
    sp = kinematic_spots(refl, sim.quaternions[0, 0], cal.wavelength, 0.015)
    strong = sp.intensity > 0
    pos = cal.sample_q_to_detector(sp.q_xy[strong]) + np.array(cal.center)
    peaks = (img == ndimage.maximum_filter(img, size=5)) & (img > 0)
    pr, pc = np.nonzero(peaks)
    order = np.argsort(img[pr, pc])[::-1]
    centre = np.array(cal.center)
    checked = 0
    for i in order:
        if np.hypot(pr[i] - centre[0], pc[i] - centre[1]) < 4:
            continue  # direct beam
        d = np.hypot(pos[:, 0] - pr[i], pos[:, 1] - pc[i]).min()
        assert d < 1.0, f"peak at ({pr[i]}, {pc[i]}) is {d:.2f} px from any predicted spot"
        checked += 1
        if checked == 5:
            break
    assert checked == 5


def test_detector_rotation_moves_spots(au):
    sim = _au_one_grain(au, 10.0, q_rotation_deg=30.0)
    img = sim.data[0, 0]
    for r, c in _expected_200(10.0, rot_deg=30.0):
        cr, cc = _centroid(img, r, c)
        assert cr == pytest.approx(r, abs=0.05) and cc == pytest.approx(c, abs=0.05)


def test_centre_offset_translates_pattern(au):
    ref = _au_one_grain(au, 17.0).data[0, 0]
    off = _au_one_grain(au, 17.0, center_row=28.0, center_col=37.0).data[0, 0]
    # shift by (−4, +5) px: compare the interior
    np.testing.assert_allclose(off[8:50, 13:56], ref[12:54, 8:51], rtol=1e-9, atol=1e-9)


def test_flip_transposes_pattern(au):
    ref = _au_one_grain(au, 17.0).data[0, 0]
    flipped = _au_one_grain(au, 17.0, q_flip=True).data[0, 0]
    np.testing.assert_allclose(flipped, ref.T, rtol=1e-9, atol=1e-9)


def test_ellipticity_stretches_along_its_axis(au):
    img = _au_one_grain(au, 0.0, ellipticity=(1.1, 0.0)).data[0, 0]
    radius = (1 / 2.0391) / 0.025
    # axis at 0°: the x (column) direction is stretched by 1.1, y unchanged
    for r, c in [(32, 32 + 1.1 * radius), (32, 32 - 1.1 * radius), (32 + radius, 32), (32 - radius, 32)]:
        cr, cc = _centroid(img, r, c)
        assert cr == pytest.approx(r, abs=0.05) and cc == pytest.approx(c, abs=0.05)


def test_poisson_noise_scales_with_dose(au):
    dose = 5000.0
    common = dict(labels=np.ones((10, 10), dtype=np.int32), orientations=_about_z(12.0), detector_shape=(48, 48), k_max=1.0)
    clean = simulate_patterns(au, dose=None, dtype="float64", **common).data[0, 0]
    noisy = simulate_patterns(au, dose=dose, dtype="uint16", **common).data.astype(np.float64)
    totals = noisy.sum(axis=(2, 3))
    # identical expected patterns, independent noise in every pixel (row and column streams differ)
    assert len({noisy[r, c].tobytes() for r in range(10) for c in range(10)}) == 100
    # each pattern: Poisson total with mean = dose (all counts land on the detector)
    assert abs(totals.mean() - dose) < 5 * math.sqrt(dose / totals.size)
    assert totals.std() == pytest.approx(math.sqrt(dose), rel=0.3)
    # the mean pattern is the expected pattern scaled to the dose
    expected = clean * dose / clean.sum()
    mean = noisy.mean(axis=(0, 1))
    bright = expected > 5
    np.testing.assert_allclose(mean[bright].sum(), expected[bright].sum(), rtol=5 / math.sqrt(expected[bright].sum() * 100))
    # Poisson: variance = mean on bright pixels
    var = noisy.var(axis=(0, 1))
    assert np.median(var[bright] / mean[bright]) == pytest.approx(1.0, abs=0.2)


def test_deterministic_and_seed_dependent(au):
    kw = dict(scan_shape=(6, 5), detector_shape=(32, 32), k_max=1.0, n_grains=3, dose=2e3, orientation_noise_deg=0.5)
    a = simulate_patterns(au, seed=7, **kw)
    b = simulate_patterns(au, seed=7, n_threads=2, **kw)
    c = simulate_patterns(au, seed=8, **kw)
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.quaternions, b.quaternions)
    np.testing.assert_array_equal(a.grain_id, b.grain_id)
    assert not np.array_equal(a.data, c.data)


def test_orientation_noise_scatter(au):
    sigma = 1.0
    sim = simulate_patterns(
        au, labels=np.ones((20, 20), dtype=np.int32), orientations=_about_z(0.0), orientation_noise_deg=sigma,
        detector_shape=(32, 32), k_max=0.8,
    )
    q = sim.quaternions.reshape(-1, 4)
    angles = np.degrees(2 * np.arccos(np.clip(np.abs(q[:, 0]), 0, 1)))  # misorientation from identity
    assert np.sqrt(np.mean(angles**2)) == pytest.approx(sigma, rel=0.15)
    assert len(np.unique(q, axis=0)) == len(q)


def test_labels_vacuum_and_two_phases(au, nba):
    labels = np.ones((6, 8), dtype=np.int32)
    labels[:, 4:] = 2  # a straight vertical boundary
    vacuum = np.zeros((6, 8), dtype=bool)
    vacuum[0, 0] = True
    sim = simulate_patterns(
        [au, nba], labels=labels, vacuum_mask=vacuum, grain_phase=np.array([0, 1]), detector_shape=(32, 32), k_max=0.8,
        orientations=np.vstack([_about_z(0), _about_z(45)]),
    )
    assert sim.grain_id[0, 0] == 0 and sim.phase_id[0, 0] == -1
    np.testing.assert_array_equal(sim.grain_id[1:, :4], 1)
    np.testing.assert_array_equal(sim.grain_id[:, 4:], 2)
    np.testing.assert_array_equal(sim.phase_id[:, 4:], 1)
    np.testing.assert_allclose(sim.quaternions[:, 4:], np.broadcast_to(_about_z(45), (6, 4, 4)))
    np.testing.assert_array_equal(sim.quaternions[0, 0], [1, 0, 0, 0])
    # vacuum: the direct beam only
    vac = sim.data[0, 0].astype(float)
    rr, cc = np.indices(vac.shape)
    assert vac[np.hypot(rr - 16, cc - 16) > 5].sum() == 0


def test_random_orientations_are_orix_compatible(au):
    sim = simulate_patterns(au, scan_shape=(8, 8), n_grains=4, detector_shape=(32, 32), k_max=0.8, seed=3)
    ori = Orientation(sim.quaternions.reshape(-1, 4), symmetry=au.point_group)
    assert np.allclose(np.linalg.norm(ori.data, axis=1), 1)
    assert 1 <= len(np.unique(sim.grain_id)) <= 4


@pytest.mark.parametrize(
    "kw, err",
    [
        (dict(scan_shape=(0, 4)), ParameterError),
        (dict(detector_shape=(4, 4)), ParameterError),
        (dict(dose=-1), ParameterError),
        (dict(seed=-3), ParameterError),
        (dict(n_grains=0), ParameterError),
        (dict(orientations=np.ones((2, 4))), InputError),
        (dict(labels=np.zeros((3, 3), dtype=int)), InputError),
        (dict(vacuum_mask=np.zeros((2, 2), dtype=bool)), InputError),
        (dict(center_row=500.0), ParameterError),
        (dict(dtype="U4"), ParameterError),
        (dict(no_such_option=1), ParameterError),
    ],
)
def test_bad_parameters(au, kw, err):
    params = dict(scan_shape=(4, 4), detector_shape=(32, 32), k_max=0.8, n_grains=3)
    params.update(kw)
    with pytest.raises(err):
        simulate_patterns(au, **params)


def test_bad_phase(tmp_path):
    with pytest.raises(InputError):
        simulate_patterns(tmp_path / "missing.cif", scan_shape=(2, 2))
    with pytest.raises(ParameterError):
        simulate_patterns([], scan_shape=(2, 2))


# --- files ----------------------------------------------------------------------------------------


def _small_file(path, au, **kw):
    params = dict(phases=au, scan_shape=(20, 20), detector_shape=(24, 24), k_max=0.8, n_grains=4, seed=11,
                  dose=3e3, orientation_noise_deg=0.3, progress=False)
    params.update(kw)
    return simulate_polycrystal(path, **params)


def test_file_layout(tmp_path, au):
    out = _small_file(tmp_path / "sim.h5", au, vacuum_mask=np.eye(20, dtype=bool), q_rotation_deg=12.5,
                      ellipticity=(1.05, 30.0))
    assert out == tmp_path / "sim.h5"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sim.h5"]  # no temporary file left
    with h5py.File(out, "r") as f:
        d = f["data"]
        assert d.shape == (20, 20, 24, 24) and d.dtype == np.uint16
        assert d.chunks == (1, 1, 24, 24)
        cal = Calibration.from_attrs(d.attrs)
        assert cal.q_rotation_deg == 12.5 and cal.ellipticity == (1.05, 30.0)
        assert cal.center == (12.0, 12.0) and cal.scan_step_nm == 2.0 and cal.accelerating_voltage_kV == 300.0
        t = f["truth"]
        assert t["quaternions"].shape == (20, 20, 4)
        assert t["phase_id"].dtype.kind == "i" and t["grain_id"].dtype == np.int32
        gid, pid = t["grain_id"][:], t["phase_id"][:]
        np.testing.assert_array_equal(gid[np.eye(20, dtype=bool)], 0)
        np.testing.assert_array_equal(pid[gid == 0], -1)
        assert set(np.unique(gid[gid > 0])) <= {1, 2, 3, 4}
        params = json.loads(t.attrs["parameters"])
        assert params["seed"] == 11 == int(t.attrs["seed"])
        assert params["dose"] == 3e3 and params["orientation_noise_deg"] == 0.3
        phases = read_phases(f)
        assert phases[0].name == "au" and phases[0].point_group.name == "m-3m"


def test_chunked_write_identical(tmp_path, au):
    a = _small_file(tmp_path / "a.h5", au, chunk_rows=3)
    b = _small_file(tmp_path / "b.h5", au, chunk_rows=20, n_threads=1)
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        np.testing.assert_array_equal(fa["data"][:], fb["data"][:])
        for k in ("quaternions", "phase_id", "grain_id"):
            np.testing.assert_array_equal(fa["truth"][k][:], fb["truth"][k][:])
        mem = simulate_patterns(au, scan_shape=(20, 20), detector_shape=(24, 24), k_max=0.8, n_grains=4, seed=11,
                                dose=3e3, orientation_noise_deg=0.3)
        np.testing.assert_array_equal(fa["data"][:], mem.data)


def test_failed_write_leaves_no_file(tmp_path, au):
    with pytest.raises(ParameterError):
        _small_file(tmp_path / "x.h5", au, chunk_rows=0)
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_is_a_stemgrains_error(tmp_path, au):
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    with pytest.raises(FileFormatError, match="cannot write"):
        _small_file(blocker / "x.h5", au, scan_shape=(2, 2))
