"""Values that fit no detector or map are named by the option the user typed (not only the data file), with what
was expected: `--center` off the detector, `virtual --disk/--annulus` covering no detector pixel, a
`--conducting-phase` that is not in the map or not hexagonal/trigonal. One line, exit status 2, nothing written."""

from __future__ import annotations

import numpy as np
import pytest
from file_helpers import cube_file
from orix.crystal_map import CrystalMap, Phase, PhaseList
from orix.quaternion import Rotation

from stemgrains.cli import main
from stemgrains.simulate import sample_cif

AU = str(sample_cif("au"))


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("center", ["1e6,1e6", "3,8", "-1,2"])
@pytest.mark.parametrize("cmd", ["index", "virtual"])
def test_center_off_the_detector_names_the_option(tmp_path, capsys, cmd, center):
    src = cube_file(tmp_path / "cube.h5")  # 8 x 8 detector
    out = tmp_path / ("o.h5" if cmd == "index" else "v.npy")
    argv = ([cmd, str(src), "--phase", AU, "--no-progress"] if cmd == "index" else [cmd, str(src), "--bf", "2"])
    typed = [f"--center={center}"] if center.startswith("-") else ["--center", center]
    assert main([*argv, *typed, "-o", str(out)]) == 2
    line = _one_line(capsys)
    r, c = (float(v) for v in center.split(","))
    assert line.startswith(f"stemgrains {cmd}: error: --center (row, col) = ({r:g}, {c:g}) lies outside the 8 x 8 "
                           f"detector of {src}"), line
    assert "expected a (row, col) inside it, row 0–7 and col 0–7" in line
    assert not out.exists()


def test_center_of_a_config_or_calibration_file_is_named_by_that_file(tmp_path, capsys):
    src = cube_file(tmp_path / "cube.h5")
    cfg = tmp_path / "c.toml"
    cfg.write_text("[calibration]\ncenter = [100.0, 3.0]\n")
    assert main(["index", str(src), "--phase", AU, "--no-progress", "--config", str(cfg), "-o", str(tmp_path / "o")]) == 2
    assert _one_line(capsys).startswith(f"stemgrains index: error: {cfg}: [calibration] center (row, col) = (100, 3) "
                                        f"lies outside the 8 x 8 detector of {src}; expected")
    cal = tmp_path / "cal.json"
    cal.write_text('{"center_row": 2, "center_col": 9}')
    assert main(["virtual", str(src), "--bf", "2", "--calibration", str(cal), "-o", str(tmp_path / "v.npy")]) == 2
    assert _one_line(capsys).startswith(f"stemgrains virtual: error: {cal}: center (row, col) = (2, 9) lies outside")
    # --center given as well: it wins over the file, and is the one named
    assert main(["virtual", str(src), "--bf", "2", "--calibration", str(cal), "--center", "2,20",
                 "-o", str(tmp_path / "v.npy")]) == 2
    assert _one_line(capsys).startswith("stemgrains virtual: error: --center (row, col) = (2, 20) lies outside")
    assert not (tmp_path / "o").exists() and not (tmp_path / "v.npy").exists()


@pytest.mark.parametrize("mask, message", [
    (np.zeros((8, 8), bool), "the mask selects no detector pixel (all False or 0); expected a (det_row, det_col) mask "
                             "with at least one non-zero pixel"),
    (np.ones((5, 5), bool), "mask shape (5, 5) does not match the detector shape (8, 8)"),
    (np.ones(8), "mask must be 2-D (det_row, det_col), got shape (8,)"),
])
def test_virtual_mask_errors_name_the_option_and_file(tmp_path, capsys, mask, message):
    src = cube_file(tmp_path / "cube.h5")
    m = tmp_path / "m.npy"
    np.save(m, mask)
    out = tmp_path / "v.npy"
    assert main(["virtual", str(src), "--mask", str(m), "--center", "4,4", "-o", str(out)]) == 2
    assert _one_line(capsys) == f"stemgrains virtual: error: --mask {m}: {message}"
    assert not out.exists()


def test_center_stored_in_the_file_off_the_detector(tmp_path, capsys):
    """Issue: `info` refused a file whose stored centre (/data center_row/center_col) is off the detector; it shows
    the file with a one-line warning. The other commands still refuse it, saying where the centre comes from and
    that --center overrides it."""
    import h5py

    src = cube_file(tmp_path / "cube.h5")
    with h5py.File(src, "a") as f:
        f["data"].attrs["center_row"], f["data"].attrs["center_col"] = 50.0, 3.0
    assert main(["info", str(src)]) == 0
    out, err = capsys.readouterr()
    assert err.strip().splitlines() == [
        f"warning: the beam centre stored in {src} (50, 3) lies off the 8 x 8 detector; index, run, virtual and the "
        "other commands refuse it: give them --center ROW,COL to override it"]
    assert "shape:       2 x 3 scan, 8 x 8 detector" in out
    assert "centre:      (50, 3) px (row, col)  [file]  OFF THE DETECTOR" in out
    assert main(["info", str(src), "--center", "4,5"]) == 0
    assert "centre:      (4, 5) px (row, col)  [command line]" in capsys.readouterr().out
    out_v = tmp_path / "v.npy"
    assert main(["virtual", str(src), "--bf", "2", "-o", str(out_v)]) == 2
    assert _one_line(capsys) == (
        f"stemgrains virtual: error: center (row, col) = (50, 3) lies outside the 8 x 8 detector of {src}; expected a "
        "(row, col) inside it, row 0–7 and col 0–7 (detector pixels); that centre is stored in the file's attributes "
        "(center_row/center_col of /data): give --center ROW,COL to override it")
    assert not out_v.exists()
    assert main(["virtual", str(src), "--bf", "2", "--center", "4,4", "-o", str(out_v)]) == 0


@pytest.mark.parametrize("argv, named", [
    (["--disk", "500,500,3"], "--disk 500,500,3"),
    (["--disk", "2,2,2", "--disk=-40,3,2"], "--disk -40,3,2"),  # one disk off, the other on: still refused
    (["--annulus", "20,30"], "--annulus 20,30"),
    (["--disk", "5,5,0.01", "--q-units", "--q-pixel-size", "0.02"], "--disk 5,5,0.01"),
])
def test_virtual_detector_off_the_detector_names_the_option(tmp_path, capsys, argv, named):
    src = cube_file(tmp_path / "cube.h5")
    out = tmp_path / "v.npy"
    assert main(["virtual", str(src), *argv, "-o", str(out)]) == 2
    line = _one_line(capsys)
    assert line.startswith(f"stemgrains virtual: error: {named}: covers no pixel of the 8 x 8 detector of {src}; "
                           "expected a detector overlapping rows 0–7 and columns 0–7"), line
    assert not out.exists()
    # on the detector it works (the check does not refuse what the old code accepted)
    assert main(["virtual", str(src), "--disk", "2,2,1", "-o", str(out)]) == 0 and out.is_file()


def _map_file(tmp_path, phases):
    from stemgrains.io import write_orientation_map
    from stemgrains.io.results import atomic_h5, write_provenance

    ny, nx = 6, 8
    q = np.tile(Rotation.from_axes_angles([1, 0, 0], np.pi / 2).data, (ny, nx, 1))
    q[:, nx // 2:] = (Rotation.from_axes_angles([0, 0, 1], np.pi / 3) * Rotation(q[0, 0])).data
    pid = np.zeros((ny, nx), int)
    pid[:, nx // 2:] = len(phases) - 1
    rr, cc = np.divmod(np.arange(ny * nx), nx)
    xmap = CrystalMap(rotations=Rotation(q.reshape(-1, 4)), phase_id=pid.ravel(), x=cc * 2.0, y=rr * 2.0,
                      phase_list=PhaseList(phases=phases, ids=list(range(len(phases)))), scan_unit="nm")
    path = tmp_path / "map.h5"
    with atomic_h5(path) as f:
        write_provenance(f, phases=xmap.phases)
        write_orientation_map(f, xmap)
    assert main(["segment", str(path), "-o", str(path), "--min-size", "1"]) == 0
    return path


@pytest.mark.parametrize("wanted, expect", [
    ("au", "--conducting-phase: no phase 'au' in the grain map (phases 0:Ni (cubic), 1:Magnesium (hexagonal))"),
    ("Ni", "--conducting-phase: phase 'Ni' is cubic; a conducting phase must be hexagonal or trigonal"),
    ("0", "--conducting-phase: phase 0 is cubic; a conducting phase must be hexagonal or trigonal"),
])
def test_conducting_phase_names_the_option_and_the_map_phases(tmp_path, capsys, wanted, expect):
    path = _map_file(tmp_path, [Phase(name="Ni", point_group="m-3m"), Phase(name="Magnesium", point_group="6/mmm")])
    capsys.readouterr()
    out = tmp_path / "c.h5"
    assert main(["classify", str(path), "--field", "1,0", "--conducting-phase", wanted, "-o", str(out)]) == 2
    line = _one_line(capsys)
    assert line.startswith(f"stemgrains classify: error: {expect}"), line
    assert "(phases 0:Ni (cubic), 1:Magnesium (hexagonal))" in line and not out.exists()
    assert main(["classify", str(path), "--field", "1,0", "--conducting-phase", "Magnesium", "-o", str(out)]) == 0


def test_an_empty_conducting_phase_list_is_refused_naming_the_map_phases(tmp_path, capsys):
    """conducting_phases = [] used to label every boundary other-phase, exit 0, saying no phase of the map has
    conduction planes (Magnesium would be taken when named)."""
    path = _map_file(tmp_path, [Phase(name="Ni", point_group="m-3m"), Phase(name="Magnesium", point_group="6/mmm")])
    cfg = tmp_path / "c.toml"
    cfg.write_text("[classify]\nconducting_phases = []\n")
    capsys.readouterr()
    out = tmp_path / "c.h5"
    assert main(["classify", str(path), "--field", "1,0", "--config", str(cfg), "-o", str(out)]) == 2
    assert _one_line(capsys) == (f"stemgrains classify: error: {cfg}: [classify] conducting_phases: expected at least one "
                                 "phase name or id of the grain map (phases 0:Ni (cubic), 1:Magnesium (hexagonal)), got an "
                                 "empty list; leave it unset for the phases with Na+ conduction planes")
    assert not out.exists()
    assert main(["config", "--check", str(cfg)]) == 2
    assert "[classify] conducting_phases: expected at least one phase name or id of the map, got []" in _one_line(capsys)


# ---------------------------------------------------------------------------------------- Miller–Bravais specials
MB_TWIN = "twin:86.3:1,1,-2,0:5"
MB_REFUSED = ("special misorientation 'twin': axis 1,1,-2,0 has 4 (Miller–Bravais [UVTW]) indices, which only "
              "hexagonal/trigonal phases take; the phases are ")


def test_four_index_special_axis_for_a_cubic_map_is_refused(tmp_path, capsys):
    path = _map_file(tmp_path, [Phase(name="Ni", point_group="m-3m")])
    capsys.readouterr()
    out = tmp_path / "s.h5"
    assert main(["segment", str(path), "-o", str(out), "--special", MB_TWIN]) == 2
    assert _one_line(capsys) == f"stemgrains segment: error: --special: {MB_REFUSED}0:Ni (cubic) (give the axis as [uvw], U,V,W)"
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[grains]\nspecial = ["{MB_TWIN}"]\n')
    assert main(["segment", str(path), "-o", str(out), "--config", str(cfg)]) == 2
    assert _one_line(capsys).startswith(f"stemgrains segment: error: {cfg}: [grains] special: {MB_REFUSED}0:Ni (cubic)")
    assert not out.exists()
    # three indices are fine for the same map
    assert main(["segment", str(path), "-o", str(out), "--special", "s3:60:1,1,1:8.66"]) == 0


def test_four_index_special_axis_is_kept_where_a_phase_is_hexagonal(tmp_path, capsys):
    path = _map_file(tmp_path, [Phase(name="Ni", point_group="m-3m"), Phase(name="Magnesium", point_group="6/mmm")])
    assert main(["segment", str(path), "-o", str(tmp_path / "s.h5"), "--special", MB_TWIN]) == 0


def test_run_refuses_a_four_index_special_for_cubic_phases_before_any_work(tmp_path, capsys):
    src = cube_file(tmp_path / "cube.h5")
    out = tmp_path / "r"
    assert main(["run", str(src), "--phase", AU, "--field", "1,0", "--no-progress", "--special", MB_TWIN,
                 "-o", str(out)]) == 2
    assert _one_line(capsys) == f"stemgrains run: error: --special: {MB_REFUSED}0:au (cubic) (give the axis as [uvw], U,V,W)"
    assert not out.exists()


def test_check_special_axes_api():
    from stemgrains.boundaries.misorientation import check_special_axes
    from stemgrains.errors import ParameterError

    cubic, hexa = Phase(name="Ni", point_group="m-3m"), Phase(name="Mg", point_group="6/mmm")
    check_special_axes([MB_TWIN], [hexa])
    check_special_axes([MB_TWIN], [cubic, hexa])
    check_special_axes(["s3:60:1,1,1"], [cubic])
    with pytest.raises(ParameterError, match=r"^special: special misorientation 'twin': .* the phases are 0:Ni \(cubic\)"):
        check_special_axes([MB_TWIN], PhaseList(phases=[cubic], ids=[0]))


# ------------------------------------------------------------------------------------------------- --no-progress
@pytest.mark.parametrize("cmd, argv", [("virtual", ["--disk", "20,20,3"]), ("vdf-grains", [])])
def test_streaming_commands_take_no_progress(tmp_path, capsys, request, cmd, argv):
    src = request.getfixturevalue("au_scan_4x3")  # vdf-grains needs reflections and at least 10 positions
    out = [tmp_path / "a.npy", tmp_path / "b.npy"] if cmd == "virtual" else [tmp_path / "a", tmp_path / "b"]
    assert main([cmd, str(src), *argv, "-o", str(out[0])]) == 0
    assert "%|" in capsys.readouterr().err  # a progress bar by default
    assert main([cmd, str(src), *argv, "--no-progress", "-o", str(out[1])]) == 0
    assert "%|" not in capsys.readouterr().err  # none with --no-progress, the same result
    if cmd == "virtual":
        assert np.array_equal(np.load(out[0]), np.load(out[1]))
    else:
        assert np.array_equal(np.load(out[0] / "vdf_labels.npy"), np.load(out[1] / "vdf_labels.npy"))


@pytest.mark.parametrize("value, expect", [
    ("au", "[classify] conducting_phases: phase 'au' is cubic; a conducting phase must be hexagonal or trigonal"),
    ("nba", "[classify] conducting_phases: no phase 'nba' in the grain map (phases 0:au (cubic))"),
])
def test_run_checks_conducting_phases_of_a_config_before_any_work(tmp_path, capsys, value, expect):
    src = cube_file(tmp_path / "cube.h5")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[classify]\nconducting_phases = ["{value}"]\n')
    out = tmp_path / "r"
    assert main(["run", str(src), "--phase", AU, "--field", "1,0", "--no-progress", "--config", str(cfg),
                 "-o", str(out)]) == 2
    assert _one_line(capsys).startswith(f"stemgrains run: error: {cfg}: {expect}")
    assert not out.exists()


def test_negative_values_are_taken_with_a_space(tmp_path, data_samples):
    """`--field -1,0` (a leftward field), `--times -30,0`, `--disk -0.5,0,0.1` used to be refused by argparse as a
    missing value (a token starting with '-' that is no plain number reads as an option): they are joined to their
    option, as `--field=-1,0` is taken."""
    import numpy as np

    from stemgrains.cli import _join_negative_values, build_parser, main

    p = build_parser()
    assert _join_negative_values(p, ["classify", "m.h5", "--field", "-1,0", "-o", "o.h5"]) == [
        "classify", "m.h5", "--field=-1,0", "-o", "o.h5"]
    assert _join_negative_values(p, ["series", "m.h5", "f.tif", "--times", "-30,0,30"])[-1] == "--times=-30,0,30"
    assert _join_negative_values(p, ["run", "in.h5", "--no-progress", "-1,0"])[-2:] == ["--no-progress", "-1,0"]
    assert _join_negative_values(p, ["virtual", "in.h5", "--disk", "-1e-1,0,0.1"])[-1] == "--disk=-1e-1,0,0.1"
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    src = str(data_samples / "nba_sample.h5")
    assert main(["virtual", src, "--disk", "-0.5,0,0.1", "--q-units", "--no-progress", "-o", str(a)]) == 0
    assert main(["virtual", src, "--disk=-0.5,0,0.1", "--q-units", "--no-progress", "-o", str(b)]) == 0
    np.testing.assert_array_equal(np.load(a), np.load(b))
