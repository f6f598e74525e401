"""Maps of any shape through every stage (issue #14 item 4).

1 × 1, 1 × n and n × 1 maps, one grain, no boundaries, every pixel unindexed, NaN orientations, one-pixel grains
and hexagonal-grid .ang maps: segment → boundaries → classify → transport must not crash and must give
well-formed (possibly empty) tables; property-based over random shapes with hypothesis.
"""

from __future__ import annotations

import csv

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from orix.crystal_map import CrystalMap, Phase, PhaseList
from orix.quaternion import Rotation

from stemgrains._grid import map_shape
from stemgrains.boundaries import classify_boundaries, extract_boundaries
from stemgrains.boundaries._types import BOUNDARY_COLUMNS, SEGMENT_COLUMNS
from stemgrains.cli import main
from stemgrains.crystal import load_phase
from stemgrains.grains import segment_grains
from stemgrains.io import load_orientation_map, write_orientation_map
from stemgrains.io.results import atomic_h5, write_provenance
from stemgrains.transport import solve_transport

STEP = 2.0


@pytest.fixture(scope="module")
def nba(data_samples) -> Phase:
    return load_phase(data_samples / "na_beta2_alumina.cif")


def _xmap(q: np.ndarray, phase_id: np.ndarray, phase: Phase, step: float = STEP) -> CrystalMap:
    """A CrystalMap of ``(ny, nx, 4)`` quaternions, built as the readers build one (x along columns)."""
    ny, nx = phase_id.shape
    rr, cc = np.divmod(np.arange(ny * nx), nx)
    pl = PhaseList(phases=[phase], ids=[0])
    if np.any(phase_id < 0):
        pl.add_not_indexed()
    return CrystalMap(rotations=Rotation(q.reshape(-1, 4)), phase_id=phase_id.ravel(), x=cc * step, y=rr * step,
                      phase_list=pl, scan_unit="nm")


def _random_map(shape, n_grains, unindexed, nan_fraction, seed, phase):
    """Voronoi grains of random orientations; a fraction of pixels not indexed, another with NaN rotations."""
    rng = np.random.default_rng(seed)
    ny, nx = shape
    seeds = rng.uniform([0, 0], [ny, nx], size=(n_grains, 2))
    rr, cc = np.indices(shape)
    lab = np.argmin((rr[..., None] - seeds[:, 0]) ** 2 + (cc[..., None] - seeds[:, 1]) ** 2, axis=-1)
    gq = rng.normal(size=(n_grains, 4))
    gq /= np.linalg.norm(gq, axis=1, keepdims=True)
    q = gq[lab]
    pid = np.zeros(shape, int)
    pid[rng.random(shape) < unindexed] = -1
    q[rng.random(shape) < nan_fraction] = np.nan
    return _xmap(q, pid, phase)


def _adjacent_pairs(labels: np.ndarray) -> set[tuple[int, int]]:
    """Naive: the set of 4-connected pairs of different grains (> 0), smaller label first."""
    out = set()
    ny, nx = labels.shape
    for r in range(ny):
        for c in range(nx):
            for r2, c2 in ((r, c + 1), (r + 1, c)):
                if r2 < ny and c2 < nx:
                    a, b = int(labels[r, c]), int(labels[r2, c2])
                    if a > 0 and b > 0 and a != b:
                        out.add((min(a, b), max(a, b)))
    return out


# ----------------------------------------------------------------------------------------------------------
def test_map_shape_of_degenerate_orix_maps(nba):
    q1 = np.tile([1.0, 0, 0, 0], (1, 7, 1))
    row = _xmap(q1, np.zeros((1, 7), int), nba)
    col = _xmap(q1.reshape(7, 1, 4), np.zeros((7, 1), int), nba)
    one = _xmap(q1[:, :1], np.zeros((1, 1), int), nba)
    assert (row.shape, col.shape, one.shape) == ((7,), (7,), ())  # what orix gives
    assert (map_shape(row), map_shape(col), map_shape(one)) == ((1, 7), (7, 1), (1, 1))
    assert map_shape(_xmap(np.tile([1.0, 0, 0, 0], (3, 4, 1)), np.zeros((3, 4), int), nba)) == (3, 4)
    # the physical step of a single column (orix: dx = 0) and of a single row
    assert segment_grains(col).scan_step_nm == STEP and segment_grains(row).scan_step_nm == STEP


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ny=st.integers(1, 7),
    nx=st.integers(1, 7),
    n_grains=st.integers(1, 6),
    unindexed=st.sampled_from([0.0, 0.2, 1.0]),
    nan_fraction=st.sampled_from([0.0, 0.15, 1.0]),
    min_size=st.sampled_from([1, 3]),
    small=st.sampled_from(["unassign", "merge"]),
    seed=st.integers(0, 2**16),
)
def test_any_shape_through_every_stage(nba, ny, nx, n_grains, unindexed, nan_fraction, min_size, small, seed):
    xmap = _random_map((ny, nx), n_grains, unindexed, nan_fraction, seed, nba)
    gm = segment_grains(xmap, min_grain_size=min_size, small_grains=small)
    # the step comes from the coordinates; a lone pixel built directly with orix has none (1, as pixels)
    assert gm.labels.shape == (ny, nx) and gm.scan_step_nm == (STEP if ny * nx > 1 else 1.0)
    assert gm.n_grains == len(gm.table) == len(np.unique(gm.labels[gm.labels > 0]))
    bt = extract_boundaries(gm, xmap)
    b, s = bt.boundaries, bt.segments
    pairs = _adjacent_pairs(gm.labels)
    assert set(zip(b["grain_a"].tolist(), b["grain_b"].tolist())) == pairs
    assert len(b) == len(pairs) and set(BOUNDARY_COLUMNS) <= set(b.keys()) and set(SEGMENT_COLUMNS) <= set(s.keys())
    assert b["length_nm"].dtype.kind == "f" and s["length_nm"].dtype.kind == "f" and b["normal"].shape == (len(b), 2)
    # each pixel edge counts between 1/√2 (at a staircase corner) and 1 scan step of boundary length
    n_edges = len(bt.pairs)
    total = b["length_nm"].sum() / gm.scan_step_nm
    assert n_edges / np.sqrt(2) - 1e-9 <= total <= n_edges + 1e-9
    cls = classify_boundaries(gm, bt, (1.0, 0.0))
    assert len(cls.boundaries) == len(b) and len(cls.segments) == len(s)
    assert set(cls.boundaries["behaviour"].tolist()) <= {"parallel", "transmitting", "blocking", "depleting"}
    tr = solve_transport(gm, gm.phases, {"left": 1.0, "right": 0.0}, boundaries=bt)
    assert np.isfinite(tr.total_current) and tr.total_current >= 0
    bf = np.asarray(tr.boundary_field, dtype=float).reshape(-1, 2)
    assert bf.shape == (len(b), 2)
    from stemgrains.boundaries.classify import local_boundary_fields

    local, _ = local_boundary_fields(tr.boundary_field, len(b))
    assert len(classify_boundaries(gm, bt, local).boundaries) == len(b)


def test_single_grain_and_no_boundary_maps(nba):
    q = np.tile(Rotation.from_axes_angles([1, 2, 3], 0.4).data, (6, 9, 1))
    for pid in (np.zeros((6, 9), int), np.full((6, 9), -1)):
        xmap = _xmap(q, pid, nba)
        gm = segment_grains(xmap)
        bt = extract_boundaries(gm, xmap)
        assert gm.n_grains == int((pid >= 0).any()) and len(bt.boundaries) == len(bt.segments) == 0
        assert len(bt.triple_junctions) == 0 and bt.boundaries["normal"].shape == (0, 2)
        cls = classify_boundaries(gm, bt, (0.0, 1.0))
        assert len(cls.boundaries) == 0 and cls.summary()["total_length_nm"] == 0.0
        tr = solve_transport(gm, gm.phases, {"top": 1.0, "bottom": 0.0}, boundaries=bt)
        assert np.asarray(tr.boundary_field).shape == (0, 2)


def _results_file(path, xmap):
    with atomic_h5(path) as f:
        write_provenance(f, phases=xmap.phases)
        write_orientation_map(f, xmap)


@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (6, 1), (5, 5)])
def test_cli_on_degenerate_maps(tmp_path, capsys, nba, shape):
    """segment → transport → classify (applied and local field) on one grain / one row / one column / one pixel."""
    ny, nx = shape
    q = np.tile(Rotation.from_axes_angles([0, 1, 0], 1.2).data, (ny, nx, 1))
    if nx >= 6:  # one row: two grains, one boundary
        q[:, 3:] = Rotation.from_axes_angles([1, 0, 0], 1.0).data
    xmap = _xmap(q, np.zeros(shape, int), nba)
    res = tmp_path / "map.h5"
    _results_file(res, xmap)
    out = tmp_path / "seg.h5"
    csv_path = tmp_path / "b.csv"
    assert main(["segment", str(res), "-o", str(out), "--min-size", "1", "--csv", str(csv_path),
                 "--figures", str(tmp_path / "f")]) == 0
    n_b = 1 if nx >= 6 else 0
    n_g = 2 if nx >= 6 else 1
    assert capsys.readouterr().out.startswith(f"{n_g} grains, {n_b} boundaries")
    with open(csv_path, newline="") as fh:
        rows = list(csv.reader(fh))
    assert "misorientation_deg" in rows[0] and len(rows) == 1 + n_b
    assert main(["transport", str(out), "--electrode", "left=1", "--electrode", "right=0"]) == 0
    assert main(["classify", str(out), "--field", "1,0", "--csv", str(tmp_path / "c.csv"),
                 "--figures", str(tmp_path / "f")]) == 0
    assert main(["classify", str(out), "--field-from-transport"]) == 0
    assert f"classified {n_b} boundaries" in capsys.readouterr().out
    with h5py.File(out) as f:
        assert f["grains/labels"].shape == shape
        assert f["classification/boundaries/label"].shape == (n_b,)
        if n_b:
            assert f["boundaries/boundaries/length_nm"][0] == pytest.approx(ny * STEP)  # physical step kept
    for name in ("grains_ipf.png", "grain_traces.png", "boundary_behaviour.png", "boundary_table.png"):
        assert (tmp_path / "f" / name).stat().st_size > 2000


def _hex_ang(path, ny=7, ncols_odd=6, step=2.0):
    """A small EDAX-style .ang on a hexagonal grid (odd rows shifted by step/2): two grains, left and right."""
    dy = step * np.sqrt(3) / 2
    header = [
        "# TEM_PIXperUM          1.000000",
        "# x-star                0.000000",
        "# y-star                0.000000",
        "# z-star                0.000000",
        "# WorkingDistance       0.000000",
        "#",
        "# Phase 1",
        "# MaterialName          Gold",
        "# Formula               Au",
        "# Info",
        "# Symmetry              43",
        "# LatticeConstants      4.078 4.078 4.078  90.000  90.000  90.000",
        "# NumberFamilies        0",
        "#",
        "# GRID: HexGrid",
        f"# XSTEP: {step / 1000:.6f}",
        f"# YSTEP: {dy / 1000:.6f}",
        f"# NCOLS_ODD: {ncols_odd}",
        f"# NCOLS_EVEN: {ncols_odd - 1}",
        f"# NROWS: {ny}",
        "#",
    ]
    lines = []
    for r in range(ny):
        n = ncols_odd if r % 2 == 0 else ncols_odd - 1
        for c in range(n):
            x = (c + (0.5 if r % 2 else 0.0)) * step
            phi1 = 0.0 if x < ncols_odd * step / 2 else 0.7
            lines.append(f"{phi1:.5f} 0.30000 0.20000 {x / 1000:.5f} {r * dy / 1000:.5f} 100.0 0.900 1 1 1.0")
    path.write_text("\n".join(header + lines) + "\n")


def test_hexagonal_grid_ang_is_resampled_to_a_square_grid(tmp_path, capsys):
    path = tmp_path / "hex.ang"
    _hex_ang(path)
    xmap = load_orientation_map(path)
    ny, nx = map_shape(xmap)
    # square grid of the hexagonal x step covering the scanned area (y range 6·√3 = 10.4 nm → 6 rows)
    assert (ny, nx) == (6, 6) and xmap.size == 36 and xmap.dx == pytest.approx(2.0) and xmap.dy == pytest.approx(2.0)
    assert xmap.scan_unit == "nm" and getattr(xmap, "resampled_from", None) == "HexGrid"
    # every square-grid point took its nearest hexagonal point: left half phi1 = 0, right half phi1 = 0.7 rad
    phi1 = xmap.rotations.to_euler()[:, 0].reshape(ny, nx)
    np.testing.assert_allclose(phi1[:, :2] % (2 * np.pi), 0.0, atol=1e-4)
    np.testing.assert_allclose(phi1[:, 4:], 0.7, atol=1e-4)
    assert main(["info", str(path)]) == 0
    assert "6 x 6 (rows x cols) (a hexagonal grid, resampled" in capsys.readouterr().out
    out = tmp_path / "seg.h5"
    assert main(["segment", str(path), "-o", str(out), "--min-size", "1"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("2 grains, 1 boundaries") and "hexagonal grid resampled to a square grid of step 2 nm" in printed
    with h5py.File(out) as f:
        assert f["grains/labels"].shape == (6, 6)
        assert '"resampled_from": "HexGrid"' in f["parameters"].attrs["segment"]


def test_truncated_hexagonal_grid_ang_is_refused(tmp_path, capsys):
    """A HexGrid .ang with fewer points than its header's rows state (a copy cut short) was resampled silently."""
    path = tmp_path / "hex.ang"
    _hex_ang(path)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-4]) + "\n")
    assert main(["segment", str(path), "-o", str(tmp_path / "seg.h5")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "truncated" in err and "hexagonal grid" in err and "hex.ang" in err, err
    path.write_text("\n".join(lines + lines[-3:]) + "\n")  # three points more than the header's rows hold
    assert main(["segment", str(path), "-o", str(tmp_path / "seg.h5")]) == 2
    err = capsys.readouterr().err.strip()
    assert "longer than its header says" in err and "data points" in err, err


def test_mixed_shapes_of_index_results(tmp_path, nba):
    """write_index_results → read back: a 1 × n map stays (1, n) in the file (the issue's traceback)."""
    from stemgrains.io.results import atomic_h5

    q = np.tile([1.0, 0, 0, 0], (1, 5, 1))
    xmap = _xmap(q, np.zeros((1, 5), int), nba)
    with atomic_h5(tmp_path / "r.h5") as f:
        write_orientation_map(f, xmap)
    back = load_orientation_map(tmp_path / "r.h5")
    assert map_shape(back) == (1, 5) and back.scan_step_nm == STEP


@pytest.mark.slow
def test_index_and_run_on_single_row_column_and_pixel_scans(tmp_path, capsys):
    """4D scans of 1 × 6, 6 × 1 and 1 × 1 positions: `index` and `run` finish, keep the (ny, nx) shape and the
    physical step, and leave no .partial / .checkpoint behind (the issue: a traceback after indexing)."""
    import json

    from stemgrains.simulate import sample_cif, simulate_polycrystal

    au = sample_cif("au")
    scans = {}
    for shape in ((1, 6), (6, 1)):
        scans[shape] = simulate_polycrystal(tmp_path / f"s{shape[0]}x{shape[1]}.h5", phases=[au], scan_shape=shape,
                                            detector_shape=(48, 48), n_grains=2, seed=5, dose=None, progress=False)
    one = tmp_path / "one.npy"  # a crafted 1 × 1 scan: the direct beam on noise, nothing to index
    pattern = np.random.default_rng(0).poisson(2.0, (1, 1, 32, 32)).astype(np.float32)
    pattern[..., 16, 16] += 1000
    np.save(one, pattern)
    for shape, path in scans.items():
        out = tmp_path / f"idx{shape[0]}x{shape[1]}.h5"
        assert main(["index", str(path), "--phase", str(au), "-o", str(out), "--step", "4", "--no-progress"]) == 0
        assert not out.with_name(out.name + ".partial").exists()
        with h5py.File(out) as f:
            assert f["orientation/quaternions"].shape == (*shape, 4) and f["orientation/phase_id"].shape == shape
        assert main(["info", str(out)]) == 0
        assert f"shape:       {shape[0]} x {shape[1]}" in capsys.readouterr().out
    outdir = tmp_path / "run1x6"
    assert main(["run", str(scans[(1, 6)]), "--phase", str(au), "--field", "1,0", "--electrode", "left=1",
                 "--electrode", "right=0", "-o", str(outdir), "--step", "4", "--min-size", "1", "--no-progress"]) == 0
    summary = json.loads((outdir / "summary.json").read_text())
    assert summary["scan_shape"] == [1, 6] and summary["indexed_fraction"] == 1.0
    assert summary["transport"]["skipped"] and not (outdir / ".checkpoint").exists()  # Au: no conducting phase
    assert (outdir / "grain_traces.png").is_file() and not (outdir / "transport_current.png").exists()
    outdir = tmp_path / "run1x1"
    assert main(["run", str(one), "--phase", str(au), "--field", "1,0", "-o", str(outdir), "--step", "6",
                 "--q-pixel-size", "0.05", "--voltage", "300", "--scan-step", "2", "--no-progress"]) == 0
    assert "0 grains, 0 boundaries" in capsys.readouterr().out
    with h5py.File(outdir / "results.h5") as f:
        assert f["grains/labels"].shape == (1, 1) and f["calibration"].attrs["scan_step_nm"] == 2.0
