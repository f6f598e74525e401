"""Orientation maps: .ang/.ctf via orix with x/y in nm, and our /orientation results layout."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from orix.crystal_map import CrystalMap, Phase, PhaseList
from orix.quaternion import Rotation

from stemgrains.errors import FileFormatError, InputError, ParameterError
from stemgrains.io import load_orientation_map, map_scan_step_nm, write_orientation_map
from stemgrains.io.results import atomic_h5, write_provenance


def _axes_follow_conventions(xmap):
    ny, nx = xmap.shape
    x = np.asarray(xmap.x).reshape(ny, nx)
    y = np.asarray(xmap.y).reshape(ny, nx)
    assert np.all(np.diff(x, axis=1) > 0) and np.allclose(np.diff(x, axis=0), 0)  # x along columns
    assert np.all(np.diff(y, axis=0) > 0) and np.allclose(np.diff(y, axis=1), 0)  # y along rows


def _synthetic_map(ny=4, nx=5, step=2.5, unit="nm", with_unindexed=True, seed=3):
    rng = np.random.default_rng(seed)
    n = ny * nx
    rot = Rotation.random(n)
    pid = rng.integers(0, 2, n)
    if with_unindexed:
        pid[3] = -1
    rows, cols = np.divmod(np.arange(n), nx)
    phases = PhaseList(
        phases=[Phase("ferrite", point_group="m-3m"), Phase("magnesium", point_group="6/mmm")], ids=[0, 1]
    )
    prop = {
        "correlation_index": rng.random(n),
        "reliability": rng.random(n),
        "phase_reliability": rng.random(n),
        "n_spots": rng.integers(0, 20, n),
    }
    return CrystalMap(rotations=rot, phase_id=pid, x=cols * step, y=rows * step, phase_list=phases, prop=prop,
                      scan_unit=unit)


def test_results_layout_roundtrip(tmp_path):
    xmap = _synthetic_map()
    path = tmp_path / "res.h5"
    with atomic_h5(path) as f:
        write_orientation_map(f, xmap)
    with h5py.File(path, "r") as f:
        assert f["orientation/quaternions"].shape == (4, 5, 4)
        assert f["orientation/phase_id"].shape == (4, 5) and f["orientation/phase_id"].dtype == np.int32
        assert f["orientation/phase_id"][0, 3] == -1
        assert f["calibration"].attrs["scan_step_nm"] == pytest.approx(2.5)
    back = load_orientation_map(path)
    assert back.shape == (4, 5) and back.scan_unit == "nm"
    _axes_follow_conventions(back)
    assert map_scan_step_nm(back) == pytest.approx(2.5)
    np.testing.assert_array_equal(back.phase_id, xmap.phase_id)
    np.testing.assert_allclose(back.rotations.data, xmap.rotations.data)
    for name in ("correlation_index", "reliability", "phase_reliability", "n_spots"):
        np.testing.assert_array_equal(back.prop[name], xmap.prop[name])
    assert back.phases[0].name == "ferrite" and back.phases[1].point_group.name == "6/mmm"
    assert back.phases.ids[0] == -1  # orix adds "not_indexed" for phase_id -1


def test_roundtrip_with_provenance_and_path_target(tmp_path):
    from stemgrains.data import Calibration

    xmap = _synthetic_map(with_unindexed=False)
    path = tmp_path / "res.h5"
    with atomic_h5(path) as f:
        write_provenance(f, calibration=Calibration(q_pixel_size=0.01, scan_step_nm=2.5))
        write_orientation_map(f, xmap)
    assert load_orientation_map(path).shape == (4, 5)
    with pytest.raises(ParameterError, match="scan_step_nm"):
        with atomic_h5(tmp_path / "bad.h5") as f:
            write_provenance(f, calibration=Calibration(q_pixel_size=0.01, scan_step_nm=7.0))
            write_orientation_map(f, xmap)
    write_orientation_map(tmp_path / "direct.h5", xmap)  # a path: new results file
    np.testing.assert_allclose(load_orientation_map(tmp_path / "direct.h5").rotations.data, xmap.rotations.data)


def test_micrometre_map_written_in_nm(tmp_path):
    xmap = _synthetic_map(step=0.3, unit="um")
    write_orientation_map(tmp_path / "r.h5", xmap)
    back = load_orientation_map(tmp_path / "r.h5")
    assert map_scan_step_nm(back) == pytest.approx(300.0)


def test_candidates_roundtrip(tmp_path):
    n = 6
    rot = Rotation.random((n, 3))
    xmap = CrystalMap(rotations=rot, x=np.arange(n) % 3 * 1.0, y=np.arange(n) // 3 * 1.0, scan_unit="nm")
    write_orientation_map(tmp_path / "c.h5", xmap)
    back = load_orientation_map(tmp_path / "c.h5")
    assert back.rotations_per_point == 3
    np.testing.assert_allclose(back.rotations.data, rot.data)


def test_points_outside_data_written_unindexed(tmp_path):
    xmap = _synthetic_map(with_unindexed=False)
    sub = xmap[xmap.phase_id == 0]
    write_orientation_map(tmp_path / "s.h5", sub)
    with h5py.File(tmp_path / "s.h5", "r") as f:
        pid = f["orientation/phase_id"][()]
        q = f["orientation/quaternions"][()]
    full = xmap.phase_id.reshape(4, 5)
    assert pid.shape == (4, 5)
    np.testing.assert_array_equal(pid[full == 0], 0)
    assert np.all(pid[full != 0] == -1) and np.all(q[full != 0] == [1, 0, 0, 0])


def test_writer_rejects_non_crystalmap(tmp_path):
    with pytest.raises(InputError, match="CrystalMap"):
        write_orientation_map(tmp_path / "x.h5", np.zeros((2, 2, 4)))


def test_results_file_errors(tmp_path):
    p = tmp_path / "bad.h5"
    with h5py.File(p, "w") as f:
        g = f.create_group("orientation")
        g["quaternions"] = np.zeros((2, 2, 3))
        g["phase_id"] = np.zeros((2, 2), int)
    with pytest.raises(FileFormatError, match="quaternions"):
        load_orientation_map(p)
    with h5py.File(p, "w") as f:
        g = f.create_group("orientation")
        g["quaternions"] = np.tile([1.0, 0, 0, 0], (2, 2, 1))
        g["phase_id"] = np.full((2, 2), 3)
    with pytest.raises(FileFormatError, match="not in /phases"):
        load_orientation_map(p)
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(FileFormatError, match="unsupported"):
        load_orientation_map(tmp_path / "x.txt")
    (tmp_path / "bad.ang").write_text("# header only\n1 2 three\n")
    with pytest.raises(FileFormatError, match="bad.ang"):
        load_orientation_map(tmp_path / "bad.ang")


def test_orix_h5_and_ang_written_by_orix(tmp_path):
    from orix import io as oio

    xmap = _synthetic_map(with_unindexed=False, unit="um", step=1.5)
    oio.save(str(tmp_path / "m.h5"), xmap)
    back = load_orientation_map(tmp_path / "m.h5")
    assert back.shape == (4, 5) and map_scan_step_nm(back) == pytest.approx(1500.0)
    _axes_follow_conventions(back)
    np.testing.assert_allclose(back.rotations.data, xmap.rotations.data)


# --- real maps in ../shared/data/maps ------------------------------------------------------------------

@pytest.mark.shared
def test_mg_twins_ctf(shared_data):
    xmap = load_orientation_map(shared_data / "maps" / "mg_twins_ebsd.ctf")
    # header: XCells 167, YCells 137, step 0.3 µm; x runs fastest in the file -> 137 rows of 167 columns
    assert xmap.shape == (137, 167)
    assert xmap.scan_unit == "nm" and map_scan_step_nm(xmap) == pytest.approx(300.0)
    _axes_follow_conventions(xmap)
    assert xmap.phases[1].point_group.name == "6/mmm"
    assert (xmap.phase_id == -1).any() and (xmap.phase_id == 1).mean() > 0.9


@pytest.mark.shared
def test_pd_astar_ang_in_nm(shared_data):
    xmap = load_orientation_map(shared_data / "maps" / "pd_astar_acom.ang")
    assert xmap.shape == (15, 15)
    # ASTAR (header "ACOM") writes coordinates in nm: a 2 nm step stays 2 nm
    assert xmap.scan_unit == "nm" and map_scan_step_nm(xmap) == pytest.approx(2.0)
    _axes_follow_conventions(xmap)
    assert "rel" in xmap.prop and "ind" in xmap.prop


@pytest.mark.shared
def test_duplex_steel_two_phases(shared_data, tmp_path):
    xmap = load_orientation_map(shared_data / "maps" / "duplex_steel_ebsd.ang")
    assert xmap.shape == (100, 117)
    assert map_scan_step_nm(xmap) == pytest.approx(1500.0)  # EDAX TSL: 1.5 µm
    _axes_follow_conventions(xmap)
    ids = sorted(i for i in xmap.phases.ids if i >= 0)
    assert ids == [1, 2]
    counts = [int((xmap.phase_id == i).sum()) for i in ids]
    assert min(counts) > 1000
    # and it survives our results layout
    write_orientation_map(tmp_path / "steel.h5", xmap)
    back = load_orientation_map(tmp_path / "steel.h5")
    assert back.shape == (100, 117) and map_scan_step_nm(back) == pytest.approx(1500.0)
    np.testing.assert_array_equal(back.phase_id, xmap.phase_id)
    np.testing.assert_allclose(back.rotations.data, xmap.rotations.data)
    np.testing.assert_allclose(back.prop["iq"], xmap.prop["iq"])
