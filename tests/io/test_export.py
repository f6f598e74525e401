""".ang and .ctf export: µm, quality columns, phases, round trips through orix and our own reader; the .ctf
hexagonal frame convention (x ∥ a*) on a synthetic map and on a real Oxford map."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest
from orix.crystal_map import CrystalMap, Phase, PhaseList
from orix.quaternion import Rotation

from stemgrains.io import load_orientation_map
from stemgrains.io.export import write_ang, write_ctf


def _map(point_group: str = "m-3m", ny: int = 4, nx: int = 5, step_nm: float = 2.0) -> CrystalMap:
    from diffpy.structure import Lattice, Structure

    rng = np.random.default_rng(3)
    n = ny * nx
    lat = Lattice(3.2, 3.2, 5.2, 90, 90, 120) if point_group == "6/mmm" else Lattice(4.08, 4.08, 4.08, 90, 90, 90)
    phase = Phase(name="xtal", point_group=point_group, structure=Structure(lattice=lat))
    pid = np.zeros(n, dtype=int)
    pid[[3, 11]] = -1
    pl = PhaseList(phases=[phase], ids=[0])
    pl.add_not_indexed()
    rows, cols = np.divmod(np.arange(n), nx)
    return CrystalMap(
        rotations=Rotation.random(n),
        phase_id=pid,
        x=cols * step_nm,
        y=rows * step_nm,
        phase_list=pl,
        prop={"correlation_index": rng.uniform(0.2, 0.9, n), "reliability": rng.uniform(0, 60, n),
              "n_peaks": rng.integers(4, 30, n)},
        scan_unit="nm",
    )


def _orix_load(path):
    from orix.io import load

    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load(str(path))


def _angles(a: Rotation, b: Rotation) -> np.ndarray:
    return np.degrees(a.angle_with(b))


def test_ang_units_quality_columns_and_round_trip(tmp_path):
    xmap = _map()
    path = write_ang(tmp_path / "m.ang", xmap)
    header = path.read_text()
    assert "# XSTEP: 0.002000" in header and "# YSTEP: 0.002000" in header  # 2 nm = 0.002 µm
    ours, theirs = load_orientation_map(path), _orix_load(path)
    assert theirs.scan_unit == "um" and theirs.dx == pytest.approx(0.002)
    assert ours.scan_unit == "nm" and ours.dx == pytest.approx(2.0)
    ok = xmap.phase_id >= 0
    for back in (ours, theirs):
        np.testing.assert_array_equal(back.phase_id < 0, ~ok)
        assert _angles(back.rotations[ok], xmap.rotations[ok]).max() < 1e-3
        assert back.phases[back.phase_id[ok][0]].name == "xtal"
    ci, iq = theirs.prop["ci"], theirs.prop["iq"]
    np.testing.assert_allclose(ci[ok], xmap.prop["reliability"][ok] / 100, atol=1e-5)
    np.testing.assert_allclose(iq[ok], xmap.prop["correlation_index"][ok], atol=1e-5)
    assert np.all(ci[~ok] == -1)
    # the usual clean-up keeps what it should: CI > 0.1 <=> reliability > 10
    np.testing.assert_array_equal(ci > 0.1, ok & (xmap.prop["reliability"] > 10 + 1e-3))


@pytest.mark.parametrize("pg", ["m-3m", "6/mmm"])
def test_ctf_round_trip(tmp_path, pg):
    xmap = _map(pg, step_nm=0.25)
    path = write_ctf(tmp_path / "m.ctf", xmap, accelerating_voltage_kV=300)
    text = path.read_text().splitlines()
    assert "XStep\t0.00025" in text and "YCells\t4" in text and "XCells\t5" in text
    ours, theirs = load_orientation_map(path), _orix_load(path)
    assert theirs.scan_unit == "um" and theirs.dx == pytest.approx(0.00025)
    assert ours.dx == pytest.approx(0.25) and ours.shape == (4, 5)
    ok = xmap.phase_id >= 0
    np.testing.assert_array_equal(ours.phase_id < 0, ~ok)
    np.testing.assert_array_equal(theirs.phase_id < 0, ~ok)
    assert _angles(ours.rotations[ok], xmap.rotations[ok]).max() < 1e-3  # our reader undoes our writer
    np.testing.assert_array_equal(theirs.prop["BC"][ok], np.rint(255 * xmap.prop["correlation_index"][ok]))
    np.testing.assert_array_equal(theirs.prop["BS"][ok], np.rint(2.55 * xmap.prop["reliability"][ok]))
    np.testing.assert_array_equal(theirs.prop["bands"][ok], xmap.prop["n_peaks"][ok])
    raw = _angles(theirs.rotations[ok], xmap.rotations[ok])
    if pg == "6/mmm":
        # orix reads the Euler angles as stored: Oxford's x || a* frame, 30° about c from orix's x || a
        expected = Rotation.from_axes_angles([0, 0, 1], np.radians(-30.0)) * xmap.rotations[ok]
        assert _angles(theirs.rotations[ok], expected).max() < 1e-3
        assert raw.min() > 29.9
        assert "x || a*" in ours.hex_frame
    else:
        assert raw.max() < 1e-3


def test_ctf_hex_frame_override(tmp_path):
    xmap = _map("6/mmm")
    path = write_ctf(tmp_path / "m.ctf", xmap)
    ok = xmap.phase_id >= 0
    as_stored = load_orientation_map(path, hex_frame="x-a")
    assert _angles(as_stored.rotations[ok], xmap.rotations[ok]).min() > 29.9
    from stemgrains.errors import ParameterError

    with pytest.raises(ParameterError, match="hex_frame"):
        load_orientation_map(path, hex_frame="sideways")


def test_index_cli_exports(tmp_path, capsys):
    """`index --export-ang/--export-ctf` on a tiny simulated scan: both files readable, µm, quality columns."""
    from stemgrains.cli import main
    from stemgrains.simulate import sample_cif, simulate_polycrystal

    scan = tmp_path / "scan.h5"
    simulate_polycrystal(scan, phases=[sample_cif("au")], scan_shape=(4, 4), detector_shape=(64, 64), n_grains=2,
                         seed=1, dose=1e4, progress=False, scan_step_nm=2.0)
    rc = main(["index", str(scan), "--phase", str(sample_cif("au")), "--step", "3", "--no-progress", "-o",
               str(tmp_path / "m.h5"), "--export-ang", str(tmp_path / "m.ang"), "--export-ctf", str(tmp_path / "m.ctf")])
    assert rc == 0, capsys.readouterr().err
    ang = _orix_load(tmp_path / "m.ang")
    assert ang.dx == pytest.approx(0.002) and np.any(ang.prop["ci"] > 0) and np.any(ang.prop["iq"] > 0)
    ctf = load_orientation_map(tmp_path / "m.ctf")
    ref = load_orientation_map(tmp_path / "m.h5")
    ok = ref.phase_id >= 0
    assert ctf.dx == pytest.approx(2.0)
    assert _angles(ctf.rotations[ok], ref.rotations[ok]).max() < 1e-3


@pytest.mark.shared
def test_oxford_mg_twins_read_in_the_vendor_frame(shared_data):
    """Mg {10-12} tensile twins: ~86° about <11-20>. Read in the vendor's frame (default) the boundaries within
    2° of 86.3° have that axis (97 % of their length); read as stored (x || a) none do."""
    from stemgrains.boundaries.extract import extract_boundaries
    from stemgrains.boundaries.misorientation import parse_special
    from stemgrains.grains import segment_grains

    path = shared_data / "maps" / "mg_twins_ebsd.ctf"
    twin = parse_special("twin:86.3:1,1,-2,0:5")
    frac = {}
    for frame in ("auto", "x-a"):
        xmap = load_orientation_map(path, hex_frame=frame)
        grains = segment_grains(xmap, threshold_deg=5, min_grain_size=5)
        b = extract_boundaries(grains, xmap, special=[twin]).boundaries
        near86 = np.abs(np.asarray(b["misorientation_deg"]) - 86.3) < 2
        length = np.asarray(b["length_nm"])[near86]
        frac[frame] = float(length[b["special"][near86] == "twin"].sum() / length.sum())
    assert frac["auto"] > 0.9, frac
    assert frac["x-a"] < 0.1, frac


@pytest.mark.parametrize("writer", [write_ang, write_ctf])
def test_two_phases_keep_their_names_per_pixel(tmp_path, writer):
    from diffpy.structure import Lattice, Structure

    xmap = _map()
    second = Phase(name="other", point_group="m-3m", structure=Structure(lattice=Lattice(3.6, 3.6, 3.6, 90, 90, 90)))
    pid = np.asarray(xmap.phase_id).copy()
    pid[np.flatnonzero(pid >= 0)[::2]] = 1
    pl = PhaseList(phases=[xmap.phases[0], second], ids=[0, 1])
    pl.add_not_indexed()
    two = CrystalMap(rotations=xmap.rotations, phase_id=pid, x=xmap.x, y=xmap.y, phase_list=pl, prop=dict(xmap.prop),
                     scan_unit="nm")
    back = load_orientation_map(writer(tmp_path / ("m" + (".ang" if writer is write_ang else ".ctf")), two))
    names = lambda m: [m.phases[i].name if i >= 0 else "-" for i in np.asarray(m.phase_id)]  # noqa: E731
    assert names(back) == names(two)


def test_our_ang_export_reads_back_its_reliability_and_correlation(tmp_path):
    """Our .ang holds R/100 as CI and the correlation index as IQ; read back, segment_grains took CI for the
    correlation index (a min_correlation 0.1 cut was a cut at R 10) and found no reliability for min_reliability.
    An export that names its input (as the commands write them) reads back both props; another .ang keeps its
    ci/iq meaning."""
    from stemgrains.grains import segment_grains

    xmap = _map()
    ours = load_orientation_map(write_ang(tmp_path / "ours.ang", xmap, source=tmp_path / "scan.h5"))
    ok = xmap.phase_id >= 0
    np.testing.assert_allclose(ours.prop["reliability"][ok], xmap.prop["reliability"][ok], atol=1e-3)
    np.testing.assert_allclose(ours.prop["correlation_index"][ok], xmap.prop["correlation_index"][ok], atol=1e-5)
    for kw in ({"min_correlation": 0.5}, {"min_reliability": 30}):
        np.testing.assert_array_equal(segment_grains(ours, **kw).labels, segment_grains(xmap, **kw).labels)
    other = load_orientation_map(write_ang(tmp_path / "other.ang", xmap))
    assert "reliability" not in other.prop and "ci" in other.prop


def test_ang_export_keeps_point_group_and_space_group(tmp_path, capsys):
    """`info` on an .ang that `index --export-ang` wrote of the Na-beta''-alumina sample (R-3m) said point group
    321 (fresh-user report): the TSL `Symmetry` field holds a Laue-class code (32 for -3m, as orix writes it),
    which orix reads back as the proper point group 321. The export records the point group and space group in
    the phase's `# Info` line and our reader takes them back; a 321 phase stays 321, a two-phase map keeps each."""
    from stemgrains.cli import main
    from stemgrains.crystal import load_phase

    nba = load_phase("data_samples/na_beta2_alumina.cif")
    assert nba.point_group.name == "-3m" and nba.space_group.number == 166
    xmap = _map()
    quartz = Phase(name="quartz", point_group="321")
    pid = np.asarray(xmap.phase_id).copy()
    pid[np.flatnonzero(pid >= 0)[::3]] = 1
    pl = PhaseList(phases=[nba, quartz], ids=[0, 1])
    pl.add_not_indexed()
    two = CrystalMap(rotations=xmap.rotations, phase_id=pid, x=xmap.x, y=xmap.y, phase_list=pl,
                     prop=dict(xmap.prop), scan_unit="nm")
    path = write_ang(tmp_path / "map.ang", two, source=tmp_path / "scan.h5")
    assert "# Symmetry    32" in path.read_text()  # the TSL code stays what OIM Analysis and orix expect
    back = load_orientation_map(path)
    got = {p.name: p for i, p in back.phases if i >= 0}
    assert got[nba.name].point_group.name == "-3m" and got[nba.name].space_group.number == 166
    assert got["quartz"].point_group.name == "321" and got["quartz"].space_group is None
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "point group -3m" in out and "point group 321" in out, out


def test_ang_symmetry_code_read_as_before_without_our_record(tmp_path):
    """An .ang without our `# Info` record (EDAX TSL, an earlier export) or whose `Symmetry` was changed since
    (the record names another Laue class) is read as orix reads it."""
    xmap = _map(point_group="6/mmm")
    text = write_ang(tmp_path / "m.ang", xmap).read_text()
    assert "# Info    stemgrains: point group 6/mmm" in text
    plain = tmp_path / "plain.ang"
    plain.write_text(text.replace("# Info    stemgrains: point group 6/mmm", "# Info"))
    edited = tmp_path / "edited.ang"
    edited.write_text(text.replace("# Symmetry    62", "# Symmetry    43"))
    assert [p.point_group.name for i, p in load_orientation_map(plain).phases if i >= 0] == ["622"]
    assert [p.point_group.name for i, p in load_orientation_map(edited).phases if i >= 0] == ["432"]
    assert [p.point_group.name for i, p in load_orientation_map(tmp_path / "m.ang").phases if i >= 0] == ["6/mmm"]
