"""Frame conventions of the independent simulation engines (py4DSTEM kinematic, abTEM multislice).

Each engine's spots must sit where our kinematic model (:func:`stemgrains.crystal.kinematic_spots`) puts them,
in the sample frame of docs/conventions.md (x along scan columns, y along scan rows, z = x × y along the beam;
orientation O maps sample → crystal, orix convention), on a low-index zone axis and a few degrees off it, for
Na-β″ (trigonal) and Au (cubic). Off the zone the Laue circle is lopsided, so a flipped beam direction shows;
a general in-plane angle makes a transpose or mirror show.
"""

from __future__ import annotations

import numpy as np
import pytest
from orix.quaternion import Rotation
from scipy import ndimage

from stemgrains.crystal import kinematic_spots, load_phase, reflections
from stemgrains.crystal.scattering import reciprocal_basis
from stemgrains.data import electron_wavelength
from stemgrains.simulate import simulate_patterns

SIGMA = 0.015
K_MAX = 1.5
LAM = electron_wavelength(300.0)


def zone_orientation(phase, uvw, inplane_deg: float, tilt_deg: float = 0.0, tilt_axis_deg: float = 30.0) -> np.ndarray:
    """Quaternion (sample → crystal) putting crystal direction [uvw] along the beam (+z), turned by
    ``inplane_deg`` about the beam, then tilted by ``tilt_deg`` about an in-plane axis at ``tilt_axis_deg``."""
    base = np.asarray(phase.structure.lattice.base, dtype=float)
    u = np.asarray(uvw, float) @ base
    u /= np.linalg.norm(u)
    # v_c = R0 v_s: the columns of R0 are the sample axes written in the crystal frame; column 3 (z_s) = u
    helper = np.array([1.0, 0, 0]) if abs(u[0]) < 0.9 else np.array([0, 1.0, 0])
    x = np.cross(helper, u)
    x /= np.linalg.norm(x)
    y = np.cross(u, x)
    R0 = np.column_stack([x, y, u])
    O = Rotation.from_matrix(R0) * Rotation.from_axes_angles([0, 0, 1], np.radians(inplane_deg))
    if tilt_deg:
        t = np.radians(tilt_axis_deg)
        O = O * Rotation.from_axes_angles([np.cos(t), np.sin(t), 0], np.radians(tilt_deg))
    return O.data.reshape(4)


def _check_matrix(q, phase, uvw, tilt_deg):
    """The beam (+z_s) seen in the crystal frame is [uvw] (tilted by tilt_deg)."""
    R = Rotation(q).to_matrix()[0]
    beam_c = R @ [0, 0, 1.0]
    u = np.asarray(uvw, float) @ np.asarray(phase.structure.lattice.base, float)
    ang = np.degrees(np.arccos(np.clip(beam_c @ u / np.linalg.norm(u), -1, 1)))
    assert ang == pytest.approx(tilt_deg, abs=1e-6)


CASES = [
    ("au", (0, 0, 1), 0.0),
    ("au", (0, 0, 1), 3.0),
    ("au", (0, 1, 1), 0.0),
    ("au", (0, 1, 1), 4.0),
    ("na_beta2_alumina", (0, 0, 1), 0.0),
    ("na_beta2_alumina", (0, 0, 1), 3.0),
    ("na_beta2_alumina", (2, 1, 0), 0.0),  # [2 1 0] = [10-10] direction ⟂ c: c-axis in the plane
    ("na_beta2_alumina", (2, 1, 0), 3.0),
]


@pytest.fixture(scope="module")
def phases(data_samples):
    return {n: load_phase(data_samples / f"{n}.cif", name=n) for n in ("au", "na_beta2_alumina")}


def _our_spots(phase, q):
    refl = reflections(phase, k_max=K_MAX)
    sp = kinematic_spots(refl, q[None], LAM, SIGMA)
    return sp.q_xy[0], sp.intensity[0], sp.excitation_error[0]


def _match(a, b):
    """For each row of a, the distance to the nearest row of b."""
    if len(b) == 0:
        return np.full(len(a), np.inf)
    return np.min(np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1), axis=1)


@pytest.mark.parametrize("name,uvw,tilt", CASES)
def test_py4dstem_spots_in_sample_frame(phases, name, uvw, tilt):
    from stemgrains.simulate._py4dstem import Py4DSTEMSpots

    phase = phases[name]
    q = zone_orientation(phase, uvw, inplane_deg=23.0, tilt_deg=tilt)
    _check_matrix(q, phase, uvw, tilt)
    eng = Py4DSTEMSpots([phase], K_MAX, 300.0, SIGMA)
    p_xy, p_int, _ = eng.spots(0, q)
    o_xy, o_int, _ = _our_spots(phase, q)
    strong_p = p_xy[p_int > 0.05 * p_int.max()]
    strong_o = o_xy[o_int > 0.05 * o_int.max()]
    assert len(strong_o) >= 4 and len(strong_p) >= 4
    # every py4DSTEM spot is one of ours (same place in the sample frame) and every strong one of ours is there
    assert np.max(_match(p_xy, o_xy[o_int > 0])) < 1e-6
    assert np.max(_match(strong_o, p_xy)) < 1e-6
    assert np.max(_match(strong_p, o_xy[o_int > 0])) < 1e-6
    if tilt:
        # off the zone the excited spots lie on one side: the mean spot position is away from the centre and
        # lies the same way in both (a flipped beam direction would put it on the opposite side)
        mp = (p_xy * p_int[:, None]).sum(0) / p_int.sum()
        mo = (o_xy * o_int[:, None]).sum(0) / o_int.sum()
        assert np.linalg.norm(mo) > 0.05
        assert np.dot(mp, mo) / (np.linalg.norm(mp) * np.linalg.norm(mo)) > 0.95


def test_py4dstem_wrong_conventions_are_caught(phases):
    """The comparison above would fail with a naive orientation matrix (no frame change, or its transpose):
    the test can fail."""
    from stemgrains.crystal.spots import rotation_matrices
    from stemgrains.simulate._py4dstem import Py4DSTEMSpots

    phase = phases["na_beta2_alumina"]
    q = zone_orientation(phase, (2, 1, 0), inplane_deg=23.0, tilt_deg=3.0)
    eng = Py4DSTEMSpots([phase], K_MAX, 300.0, SIGMA)
    o_xy, o_int, _ = _our_spots(phase, q)
    strong_o = o_xy[o_int > 0.05 * o_int.max()]
    R = rotation_matrices(q)
    xtal = eng.crystals[0]
    for M in (R, R.T, R.T @ np.diag([1.0, 1.0, -1.0])):
        peaks = xtal.generate_diffraction_pattern(orientation_matrix=M, sigma_excitation_error=SIGMA, k_max=K_MAX)
        d = peaks.data
        for xy in (np.column_stack([d["qx"], d["qy"]]), np.column_stack([d["qy"], d["qx"]])):
            assert np.max(_match(strong_o, xy)) > 1e-3


def _peaks_at(img, pred, others, radius=3.0):
    """For each predicted spot (row, col) clear of other predicted spots, the distance (px) from the
    prediction to the centroid of the pattern within ``radius`` px of the rounded prediction, above the
    median of the 9-px ring around it (local background)."""
    out = []
    for p in pred:
        d = np.hypot(*(others - p).T)
        if np.sum(d < 5) > 1:  # another spot within 5 px: its tail would pull the centroid
            continue
        r0, c0 = np.rint(p).astype(int)
        rr, cc = np.mgrid[r0 - 9 : r0 + 10, c0 - 9 : c0 + 10]
        ok = (rr >= 0) & (rr < img.shape[0]) & (cc >= 0) & (cc < img.shape[1])
        rho = np.hypot(rr - r0, cc - c0)
        vals = np.where(ok, img[rr.clip(0, img.shape[0] - 1), cc.clip(0, img.shape[1] - 1)], np.nan)
        bg = np.nanmedian(vals[(rho > 6) & (rho <= 9)])
        w = np.where((rho <= radius) & ok, np.nan_to_num(vals - bg), 0.0).clip(0)
        if w.sum() <= 0:
            out.append(np.inf)
            continue
        out.append(np.hypot((w * rr).sum() / w.sum() - p[0], (w * cc).sum() / w.sum() - p[1]))
    return np.array(out)


@pytest.mark.parametrize(
    "name,uvw,rotation,flip",
    [("au", (0, 1, 1), 0.0, False), ("na_beta2_alumina", (0, 0, 1), 0.0, False), ("au", (0, 1, 1), 30.0, False),
     ("na_beta2_alumina", (0, 0, 1), 0.0, True)],
)
def test_py4dstem_engine_pattern_on_detector(phases, name, uvw, rotation, flip):
    """End to end: spots of an engine='py4dstem' pattern lie where our kinematic model puts them on the
    detector, through the calibration (rotation, transposed camera)."""
    phase = phases[name]
    q = zone_orientation(phase, uvw, inplane_deg=23.0, tilt_deg=2.0)
    sim = simulate_patterns(
        [phase], engine="py4dstem", scan_shape=(1, 1), n_grains=1, orientations=q[None], dose=None, dtype="float64",
        background=0.0, q_rotation_deg=rotation, q_flip=flip,
    )
    cal = sim.calibration
    o_xy, o_int, _ = _our_spots(phase, q)
    keep = o_int > 0.1 * o_int.max()
    centre = np.asarray(cal.center)
    others = cal.sample_q_to_detector(o_xy[o_int > 0.01 * o_int.max()]) + centre
    pred = cal.sample_q_to_detector(o_xy[keep]) + centre
    # on the detector and clear of the direct beam (disk radius ~2 px)
    pred = pred[np.all((pred > 5) & (pred < 122), axis=1) & (np.hypot(*(pred - centre).T) > 9)]
    dist = _peaks_at(sim.data[0, 0], pred, np.vstack([others, centre]))
    assert len(dist) >= 4
    assert np.max(dist) <= 0.5


# --------------------------------------------------------------------------------------------------------
# abTEM multislice engine


@pytest.fixture(scope="module")
def abtem_available():
    pytest.importorskip(
        "abtem", reason="abTEM not installed (pip install 'stemgrains[abtem]'); abtem engine not tested"
    )
    pytest.importorskip("ase", reason="ASE not installed (pip install 'stemgrains[abtem]'); abtem engine not tested")


@pytest.mark.parametrize(
    "name,uvw,tilt,rotation,flip",
    [
        ("au", (0, 1, 1), 2.0, 0.0, False),
        ("na_beta2_alumina", (0, 0, 1), 0.0, 0.0, False),
        ("na_beta2_alumina", (0, 0, 1), 2.0, 0.0, False),
        ("au", (0, 1, 1), 2.0, 30.0, False),
        ("na_beta2_alumina", (0, 0, 1), 2.0, 0.0, True),
    ],
)
def test_abtem_engine_spots_where_ours_are(abtem_available, phases, name, uvw, tilt, rotation, flip):
    """A thin-crystal multislice pattern (10 nm, one phonon configuration) has its Bragg disks where our
    kinematic model puts the strong reflections, through the calibration (rotation, transposed camera), on the
    zone axis and 2° off it (where the Laue circle is lopsided: a wrong beam sign would light other spots)."""
    phase = phases[name]
    q = zone_orientation(phase, uvw, inplane_deg=23.0, tilt_deg=tilt)
    sim = simulate_patterns(
        [phase], engine="abtem", thickness_nm=10.0, frozen_phonons=1, scan_shape=(1, 1), n_grains=1,
        orientations=q[None], dose=None, dtype="float64", background=0.0, q_rotation_deg=rotation, q_flip=flip,
        q_pixel_size=0.025, k_max=1.55,
    )
    cal = sim.calibration
    img = sim.data[0, 0]
    o_xy, o_int, _ = _our_spots(phase, q)
    centre = np.asarray(cal.center)
    strong = o_int > 0.1 * o_int.max()
    others = cal.sample_q_to_detector(o_xy[o_int > 0.01 * o_int.max()]) + centre
    pred = cal.sample_q_to_detector(o_xy[strong]) + centre
    pred = pred[np.all((pred > 5) & (pred < 122), axis=1) & (np.hypot(*(pred - centre).T) > 9)]
    dist = _peaks_at(img, pred, np.vstack([others, centre]))
    assert len(dist) >= 4
    # dynamical intensities move a few weak disks' centroids (neighbouring HOLZ/TDS speckle): most, not all
    assert np.median(dist) <= 0.4 and np.mean(dist <= 1.0) >= 0.75
    # the predicted spots are bright: far above the pattern's median off the direct beam
    sm = ndimage.gaussian_filter(img, 1.0)
    rr, cc = np.rint(pred).astype(int).T
    assert np.median(sm[rr, cc]) > 5 * np.median(sm)
    # off the zone the Laue circle is lopsided: of a Friedel pair (g, −g) ours excites g (> 5 % of the
    # strongest) and −g at most a fifth of that; the
    # multislice pattern must be brighter at the g (a reversed beam direction would light the −g instead)
    if tilt:
        sel = o_int > 0.05 * o_int.max()
        brighter = []
        for g_xy in o_xy[sel]:
            j = np.argmin(np.linalg.norm(o_xy + g_xy, axis=1))
            if np.linalg.norm(o_xy[j] + g_xy) > 1e-6 or 5 * o_int[j] > o_int.max() * 0.05:
                continue
            a, b = (np.rint(cal.sample_q_to_detector(v) + centre).astype(int) for v in (g_xy, -g_xy))
            if np.all((a >= 2) & (a < 126) & (b >= 2) & (b < 126)):
                brighter.append((sm[a[0], a[1]], sm[b[0], b[1]]))
        at_g, at_minus_g = np.array(brighter).T
        assert len(at_g) >= 3
        # summed over the pairs (one disk may be dynamically weak); measured 14x (Au) and 50x (Na-β″)
        assert at_g.sum() > 3 * at_minus_g.sum()


@pytest.mark.parametrize(
    "argv",
    [
        ["--phase", "au", "--engine", "abtem", "--thickness", "-5"],
        ["--phase", "au", "--engine", "abtem", "--phonons", "0"],
        ["--phase", "au", "--engine", "nope"],
    ],
)
def test_engine_cli_errors(tmp_path, argv, capsys):
    """Bad engine parameters: one line naming the parameter, exit status 2, no file."""
    from stemgrains.cli import main

    with pytest.raises(SystemExit) if "nope" in argv else _no_raise():
        rc = main(["simulate", "-o", str(tmp_path / "e.h5"), "--no-progress", "--scan", "2,2", "--grains", "1", *argv])
        assert rc == 2
        err = capsys.readouterr().err
        assert err.startswith("stemgrains simulate: error:") and len(err.strip().splitlines()) == 1
        assert ("--thickness" in err) or ("--phonons" in err)  # the option, named as the user typed it
    assert not (tmp_path / "e.h5").exists()


def test_abtem_engine_rejects_orientation_scatter(phases):
    from stemgrains.errors import ParameterError

    with pytest.raises(ParameterError, match="orientation_noise_deg"):
        simulate_patterns([phases["au"]], engine="abtem", scan_shape=(2, 2), n_grains=1, orientation_noise_deg=1.0)


def _no_raise():
    import contextlib

    return contextlib.nullcontext()
