"""classify_boundaries on a hand-built 3-grain map, files, CLI and figures."""

from __future__ import annotations

import json
import math

import h5py
import numpy as np
from matplotlib.collections import LineCollection
import pytest
from orix.crystal_map import PhaseList
from orix.quaternion import Orientation
from orix.vector import Vector3d

from stemgrains._table import Table
from stemgrains.boundaries import BoundaryTable
from stemgrains.boundaries.classify import (
    LABELS,
    BoundaryClassification,
    classify_boundaries,
    classify_pair,
    conducting_phase_ids,
    read_classification,
    write_classification,
    write_classification_csv,
)
from stemgrains.errors import FileFormatError, InputError, ParameterError
from stemgrains.grains import GrainMap

STEP = 2.0  # nm
NY, NX = 24, 36


def _labels() -> np.ndarray:
    """Grain 1 (β″, left) and 2 (β″, right) meet along a vertical line that turns into a staircase;
    grain 3 (ZrO2) fills the bottom rows."""
    lab = np.full((NY, NX), 2, dtype=np.int32)
    for r in range(16):
        edge = 18 if r < 12 else 18 + (r - 11)  # staircase: boundary runs down-right below row 12
        lab[r, :edge] = 1
    lab[16:, :] = 3
    return lab


def _grain_map(euler_deg=((30, 90, 0), (-30, 90, 0), (10, 20, 30))) -> GrainMap:
    lab = _labels()
    phases = PhaseList(names=["beta2", "zro2"], point_groups=["-3m", "2/m"], ids=[0, 1])
    ori = Orientation.from_euler(np.radians(np.array(euler_deg, dtype=float)))
    q = ori.data
    c = ((~ori) * Vector3d.zvector()).data
    c[2] = np.nan  # ZrO2 has no conduction planes
    ids = np.array([1, 2, 3])
    rows, cols = np.indices(lab.shape)
    area = np.array([np.sum(lab == i) for i in ids])
    alpha = np.degrees(np.arccos(np.abs(c[:, 2])))
    trace = np.degrees(np.arctan2(c[:, 0], -c[:, 1]))
    table = Table({
        "id": ids,
        "phase_id": np.array([0, 0, 1]),
        "area_px": area,
        "area_nm2": area * STEP**2,
        "equivalent_diameter_nm": 2 * np.sqrt(area * STEP**2 / np.pi),
        "centroid_row": np.array([rows[lab == i].mean() for i in ids]),
        "centroid_col": np.array([cols[lab == i].mean() for i in ids]),
        "mean_quaternion": q,
        "orientation_spread_deg": np.zeros(3),
        "c_axis": c,
        "alpha_deg": alpha,
        "trace_angle_deg": np.where(alpha < 10, np.nan, (trace + 90) % 180 - 90),
    })
    return GrainMap(lab, table, phases, scan_step_nm=STEP)


def _boundary_table(lab: np.ndarray, phase_of_grain: dict[int, int] | None = None,
                    misorientation_deg: np.ndarray | None = None) -> BoundaryTable:
    """A miniature extraction: 4-neighbour pixel pairs → boundaries by grain pair; boundary 1|2 is split at
    row 12 into two segments; normals are the mean A→B pixel vectors (gb-classification.md §2)."""
    pairs = []
    for (dr, dc) in ((0, 1), (1, 0)):
        a = lab[: lab.shape[0] - dr, : lab.shape[1] - dc]
        b = lab[dr:, dc:]
        r, c = np.nonzero(a != b)
        for ri, ci in zip(r, c):
            g1, g2 = int(a[ri, ci]), int(b[ri, ci])
            p1, p2 = (ri, ci), (ri + dr, ci + dc)
            if g1 > g2:
                g1, g2, p1, p2 = g2, g1, p2, p1
            pairs.append((g1, g2, *p1, *p2))
    pairs = np.array(pairs)
    if phase_of_grain is None:  # the 3-grain fixture
        phase_of_grain = {1: 0, 2: 0, 3: 1}
    if misorientation_deg is None:
        misorientation_deg = np.array([60.0, 35.0, 40.0])
    grain_pairs = sorted({(int(p[0]), int(p[1])) for p in pairs})
    seg_rows, pair_seg = [], np.zeros(len(pairs), dtype=int)
    sid = 0
    for bid, (ga, gb) in enumerate(grain_pairs, start=1):
        in_b = (pairs[:, 0] == ga) & (pairs[:, 1] == gb)
        parts = [in_b]
        if (ga, gb) == (1, 2):
            parts = [in_b & (pairs[:, 2] < 12), in_b & (pairs[:, 2] >= 12)]
        for part in parts:
            sid += 1
            pair_seg[part] = sid
            vec = np.stack([pairs[part, 5] - pairs[part, 3], pairs[part, 4] - pairs[part, 2]], 1).astype(float)
            n = vec.mean(axis=0)
            n /= np.linalg.norm(n)
            pts = np.stack([0.5 * (pairs[part, 3] + pairs[part, 5]), 0.5 * (pairs[part, 2] + pairs[part, 4])], 1)
            t_ang = math.degrees(math.atan2(n[0], -n[1]))
            t_ang = (t_ang + 90) % 180 - 90
            seg_rows.append(dict(segment_id=sid, boundary_id=bid, grain_a=ga, grain_b=gb,
                                 n_pixel_pairs=int(part.sum()), length_nm=float(part.sum() * STEP), normal=n,
                                 trace_angle_deg=t_ang, start=pts.min(0), end=pts.max(0)))
    segments = Table({k: np.array([s[k] for s in seg_rows]) for k in seg_rows[0]})
    boundaries = Table({
        "boundary_id": np.arange(1, len(grain_pairs) + 1),
        "grain_a": np.array([g[0] for g in grain_pairs]),
        "grain_b": np.array([g[1] for g in grain_pairs]),
        "phase_a": np.array([phase_of_grain.get(g[0], 0) for g in grain_pairs]),
        "phase_b": np.array([phase_of_grain.get(g[1], 0) for g in grain_pairs]),
        "n_segments": np.bincount(segments["boundary_id"])[1:],
        "length_nm": np.bincount(segments["boundary_id"], weights=segments["length_nm"])[1:],
        "misorientation_deg": misorientation_deg,
        "misorientation_axis": np.tile([0.0, 0.0, 1.0], (len(grain_pairs), 1)),
    })
    pair_table = Table({"row_a": pairs[:, 2], "col_a": pairs[:, 3], "row_b": pairs[:, 4], "col_b": pairs[:, 5],
                        "segment_id": pair_seg})
    return BoundaryTable(segments, boundaries, pair_table, Table({"row": np.zeros(0), "col": np.zeros(0)}))


@pytest.fixture()
def gmap() -> GrainMap:
    return _grain_map()


@pytest.fixture()
def btable(gmap) -> BoundaryTable:
    return _boundary_table(gmap.labels)


def test_fixture_geometry(gmap, btable):
    assert btable.boundaries["grain_a"].tolist() == [1, 1, 2] and btable.boundaries["grain_b"].tolist() == [2, 3, 3]
    np.testing.assert_allclose(btable.segments["normal"][0], [1.0, 0.0])  # straight part of 1|2
    np.testing.assert_allclose(btable.segments["normal"][1], [1 / math.sqrt(2), -1 / math.sqrt(2)], atol=0.1)
    np.testing.assert_allclose(gmap.table["c_axis"][0], [0.5, -math.sqrt(3) / 2, 0.0], atol=1e-12)


def test_single_field_labels_segments_and_boundaries(gmap, btable):
    res = classify_boundaries(gmap, btable, [0, 1])  # field down
    seg, bnd = res.segments, res.boundaries
    assert len(seg) == 4 and len(bnd) == 3
    # straight part of 1|2: the worked example "30 / −30, down" → III a2, blocking, r = 2
    assert seg["label"][0] == "III a2" and seg["behaviour"][0] == "blocking"
    assert seg["r"][0] == pytest.approx(2.0) and seg["j_a"][0] == pytest.approx(0.433, abs=5e-4)
    # every conducting segment equals classify_pair on its own inputs
    c = gmap.table["c_axis"]
    ref = classify_pair(np.repeat(c[:1], 2, 0), np.repeat(c[1:2], 2, 0), seg["normal"][:2], [0, 1])
    for k in ("label", "behaviour", "type", "letter", "field_index"):
        assert seg[k][:2].tolist() == getattr(ref, k).tolist()
    for k in ("theta_3d", "theta_2d", "phi_a", "phi_b", "psi", "j_a", "j_b", "r"):
        np.testing.assert_allclose(seg[k][:2], getattr(ref, k), atol=1e-12)
    # other-phase boundaries
    assert seg["label"][2:].tolist() == ["other-phase"] * 2 and seg["behaviour"][2:].tolist() == ["other-phase"] * 2
    assert np.all(np.isnan(seg["r"][2:])) and seg["type"][2:].tolist() == ["", ""]
    assert bnd["label"].tolist()[1:] == ["other-phase", "other-phase"]
    assert bnd["conducting"].tolist() == [True, False, False]
    # psi is geometry only: defined for every segment (field down, horizontal boundary to ZrO2: psi = 0)
    assert seg["psi"][2] == pytest.approx(0.0)
    # per-boundary: length-weighted
    w = seg["length_nm"][:2]
    for k in ("j_a", "j_b", "r"):
        assert bnd[k][0] == pytest.approx(np.sum(w * seg[k][:2]) / w.sum())
    longest = int(np.argmax(w))
    assert bnd["label"][0] == seg["label"][longest] and bnd["behaviour"][0] == seg["behaviour"][longest]
    n_mean = np.sum(w[:, None] * seg["normal"][:2], 0)
    n_mean /= np.linalg.norm(n_mean)
    np.testing.assert_allclose(bnd["normal"][0], n_mean)
    mean_ref = classify_pair(c[0], c[1], n_mean, [0, 1])
    for k in ("theta_3d", "theta_2d", "phi_a", "phi_b", "psi", "alpha_a", "alpha_b"):
        assert bnd[k][0] == pytest.approx(getattr(mean_ref, k), abs=1e-9), k
    assert bnd["theta_2d"][0] == pytest.approx(60.0) and bnd["theta_3d"][0] == pytest.approx(60.0)
    # copied from the boundary table
    assert bnd["misorientation_deg"].tolist() == [60.0, 35.0, 40.0]
    assert seg["misorientation_deg"].tolist() == [60.0, 60.0, 35.0, 40.0]
    np.testing.assert_array_equal(bnd["length_nm"], btable.boundaries["length_nm"])
    lab = bnd["label"][0]
    assert bnd["type"][0] + " " + bnd["letter"][0] + str(bnd["field_index"][0]) == lab
    assert 0.5 < bnd["label_fraction"][0] <= 1.0


def test_per_boundary_and_per_segment_fields(gmap, btable):
    per_b = classify_boundaries(gmap, btable, np.array([[0, 1], [1, 0], [1, 0]]))
    assert per_b.parameters["field"] == "per-boundary"
    single = classify_boundaries(gmap, btable, [0, 1])
    assert per_b.segments["label"].tolist() == single.segments["label"].tolist()
    # per segment: the long straight part sees a field to the right, the staircase a field down
    fields = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    per_s = classify_boundaries(gmap, btable, fields)
    assert per_s.parameters["field"] == "per-segment"
    seg = per_s.segments
    assert seg["label"][0] == "III a1" and seg["behaviour"][0] == "transmitting"  # worked example "30/−30 right"
    np.testing.assert_allclose(seg["field"], fields)
    ref1 = classify_pair(gmap.table["c_axis"][0], gmap.table["c_axis"][1], seg["normal"][1], [0, 1])
    assert seg["label"][1] == ref1.label and seg["r"][1] == pytest.approx(ref1.r)
    w = seg["length_nm"][:2]
    assert w[0] > w[1]
    assert per_s.boundaries["label"][0] == "III a1"
    assert per_s.boundaries["r"][0] == pytest.approx((w[0] * seg["r"][0] + w[1] * seg["r"][1]) / w.sum())
    # boundary-level psi uses the length-weighted mean field
    e_mean = w[0] * fields[0] + w[1] * fields[1]
    e_mean /= np.linalg.norm(e_mean)
    np.testing.assert_allclose(per_s.boundaries["field"][0], e_mean)


def test_summary_fractions(gmap, btable):
    res = classify_boundaries(gmap, btable, [0, 1])
    s = res.summary()
    seg = res.segments
    total = seg["length_nm"].sum()
    assert s["total_length_nm"] == pytest.approx(total)
    assert set(LABELS) <= set(s["label_fraction"])
    assert sum(s["label_fraction"].values()) == pytest.approx(1.0)
    assert sum(s["behaviour_fraction"].values()) == pytest.approx(1.0)
    other = seg["length_nm"][2:].sum() / total
    assert s["label_fraction"]["other-phase"] == pytest.approx(other)
    assert s["behaviour_fraction"]["other-phase"] == pytest.approx(other)
    assert s["label_fraction"]["III a2"] == pytest.approx(seg["length_nm"][0] / total)
    json.dumps(s)  # JSON-ready


def test_conducting_phases_by_name_and_id(gmap, btable):
    assert conducting_phase_ids(gmap.phases) == [0]
    assert conducting_phase_ids(gmap.phases, "beta2") == [0]
    assert conducting_phase_ids(gmap.phases, [0, "beta2"]) == [0]
    with pytest.raises(ParameterError, match="no phase 'nasicon'"):
        conducting_phase_ids(gmap.phases, ["nasicon"])
    # declaring ZrO2 conducting is refused: it is not hexagonal/trigonal (its grains have no c-axis)
    with pytest.raises(ParameterError, match=r"^conducting_phases: phase 'zro2' is monoclinic; .* hexagonal or "
                                             r"trigonal .*\(phases 0:beta2 \(trigonal\), 1:zro2 \(monoclinic\)\)"):
        classify_boundaries(gmap, btable, [1, 0], conducting_phases=["beta2", "zro2"])
    res = classify_boundaries(gmap, btable, [1, 0], conducting_phases=[0])
    assert res.parameters["conducting_phases"] == [{"id": 0, "name": "beta2"}]


def test_parameters_recorded(gmap, btable):
    res = classify_boundaries(gmap, btable, [2, 0], type_tolerance_deg=10, flat_tolerance_deg=5, basis="3d",
                              tau_flow=0.1, r_block=0.5, conductivity_ratio=100)
    p = res.parameters
    assert p["type_tolerance_deg"] == 10 and p["flat_tolerance_deg"] == 5 and p["basis"] == "3d"
    assert p["tau_flow"] == 0.1 and p["r_block"] == 0.5 and p["conductivity_ratio"] == 100
    assert p["sigma_op"] == pytest.approx(0.01) and p["field"] == [2.0, 0.0]
    ref = classify_pair(gmap.table["c_axis"][0], gmap.table["c_axis"][1], res.segments["normal"][0], [1, 0],
                        type_tolerance_deg=10, flat_tolerance_deg=5, basis="3d", tau_flow=0.1, r_block=0.5,
                        conductivity_ratio=100)
    assert res.segments["label"][0] == ref.label and res.segments["j_b"][0] == pytest.approx(ref.j_b)


def test_bad_map_inputs(gmap, btable):
    with pytest.raises(InputError, match="field has 5 rows"):
        classify_boundaries(gmap, btable, np.ones((5, 2)))
    with pytest.raises(InputError, match="field has a zero vector"):
        classify_boundaries(gmap, btable, [0, 0])
    with pytest.raises(InputError, match=r"zero vector \(segment 2\)"):
        classify_boundaries(gmap, btable, np.array([[1, 0], [0, 0], [1, 0], [1, 0]]))
    with pytest.raises(ParameterError, match="basis"):
        classify_boundaries(gmap, btable, [1, 0], basis="xy")
    bad = BoundaryTable(btable.segments.select(np.arange(4)), btable.boundaries.select([0, 1]), btable.pairs,
                        btable.triple_junctions)
    with pytest.raises(InputError, match="absent from the boundary table"):
        classify_boundaries(gmap, bad, [1, 0])
    no_normal = Table({k: v for k, v in btable.segments.items() if k != "normal"})
    with pytest.raises(InputError, match="lacks column.*normal"):
        classify_boundaries(gmap, BoundaryTable(no_normal, btable.boundaries, btable.pairs,
                                                btable.triple_junctions), [1, 0])


def test_ambiguous_field_keying_needs_field_on(gmap, btable):
    # three boundaries, one segment each, segments listed in another order than the boundaries
    seg = btable.segments.select([3, 2, 0])
    one_seg = BoundaryTable(seg, btable.boundaries, btable.pairs, btable.triple_junctions)
    fields = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    with pytest.raises(ParameterError, match="field_on"):
        classify_boundaries(gmap, one_seg, fields)
    by_b = classify_boundaries(gmap, one_seg, fields, field_on="boundary")
    by_s = classify_boundaries(gmap, one_seg, fields, field_on="segment")
    # boundary 1 (grains 1|2) is the last segment: its field is row 0 by boundary, row 2 by segment
    np.testing.assert_allclose(by_b.segments["field"][2], [1.0, 0.0])
    np.testing.assert_allclose(by_s.segments["field"][2], [0.0, 1.0])
    assert by_b.segments["label"][2] == "III a1" and by_s.segments["label"][2] == "III a2"


def test_unassigned_neighbour_is_other_phase(gmap, btable):
    seg = Table(dict(btable.segments.items()))
    seg["grain_b"] = seg["grain_b"].copy()
    bnd = Table(dict(btable.boundaries.items()))
    bnd["grain_b"] = np.array([2, 0, 3])  # a boundary to unassigned pixels (id 0, not in the grain table)
    bnd["grain_a"] = np.array([1, 0, 2])
    seg["grain_a"] = np.array([1, 1, 0, 2])
    seg["grain_b"] = np.array([2, 2, 1, 3])
    res = classify_boundaries(gmap, BoundaryTable(seg, bnd, btable.pairs, btable.triple_junctions), [1, 0])
    assert res.segments["label"].tolist()[2] == "other-phase"
    assert res.boundaries["label"].tolist() == ["III a1", "other-phase", "other-phase"]


def test_hdf5_roundtrip_and_csv(tmp_path, gmap, btable):
    res = classify_boundaries(gmap, btable, [0, 1])
    path = tmp_path / "results.h5"
    write_classification(path, res)  # creates the file
    write_classification(path, res)  # updates it in place
    back = read_classification(path)
    assert isinstance(back, BoundaryClassification)
    assert back.parameters == json.loads(json.dumps(res.parameters))
    for name in ("segments", "boundaries"):
        a, b = getattr(res, name), getattr(back, name)
        assert a.keys() == b.keys()
        for k in a.keys():
            if a[k].dtype.kind in "fc":
                np.testing.assert_array_equal(a[k], b[k])
            else:
                assert a[k].tolist() == b[k].tolist(), k
    assert back.summary() == res.summary()
    with h5py.File(path, "r") as f:
        assert json.loads(f["classification"].attrs["summary"]) == res.summary()
        assert json.loads(f["parameters"].attrs["classify"])["r_block"] == 0.8
    csv_path = tmp_path / "gb.csv"
    write_classification_csv(csv_path, res)
    lines = csv_path.read_text().splitlines()
    assert len(lines) == 4 and "label" in lines[0] and "III a2" in lines[1]
    write_classification_csv(tmp_path / "seg.csv", res, level="segments")
    assert len((tmp_path / "seg.csv").read_text().splitlines()) == 5
    with pytest.raises(ParameterError):
        write_classification_csv(tmp_path / "x.csv", res, level="grains")


def test_read_classification_errors(tmp_path):
    with pytest.raises(FileFormatError, match="not found"):
        read_classification(tmp_path / "missing.h5")
    p = tmp_path / "empty.h5"
    with h5py.File(p, "w"):
        pass
    with pytest.raises(FileFormatError, match="no classification/"):
        read_classification(p)


# ------------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------------
@pytest.fixture()
def results_file(tmp_path, gmap, btable, monkeypatch):
    """A results file with /grains (and /boundaries once stemgrains.boundaries exports write_boundaries)."""
    import stemgrains.boundaries as boundaries_pkg
    from stemgrains.grains import write_grains

    path = tmp_path / "results.h5"
    write_grains(path, gmap)
    writer = getattr(boundaries_pkg, "write_boundaries", None)
    if writer is not None and hasattr(boundaries_pkg, "read_boundaries"):
        writer(path, btable)
    else:  # boundary I/O not exported yet: hand the table to the CLI directly
        monkeypatch.setattr(boundaries_pkg, "read_boundaries", lambda _path: btable, raising=False)
    return path


def test_cli_classify_writes_results_csv_and_figures(results_file, tmp_path, capsys):
    from stemgrains.cli import main

    out = tmp_path / "out.h5"
    figs = tmp_path / "figs"
    csv_path = tmp_path / "gb.csv"
    rc = main(["classify", str(results_file), "--field", "0,1", "-o", str(out), "--csv", str(csv_path),
               "--figures", str(figs), "--delta", "15", "--r-block", "0.8"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "classified 3 boundaries" in text and "blocking" in text
    res = read_classification(out)
    assert res.boundaries["label"].tolist()[1:] == ["other-phase", "other-phase"]
    assert res.segments["label"][0] == "III a2"
    assert res.parameters["field"] == [0.0, 1.0] and res.parameters["type_tolerance_deg"] == 15.0
    with h5py.File(results_file, "r") as f:
        assert "classification" not in f  # -o leaves the input alone
    assert csv_path.read_text().count("\n") == 4
    assert (tmp_path / "gb.segments.csv").is_file()
    for name in ("grain_traces.png", "boundary_behaviour.png", "boundary_table.png"):
        assert (figs / name).stat().st_size > 10_000


def test_cli_classify_options_in_place(results_file):
    from stemgrains.cli import main

    rc = main(["classify", str(results_file), "--field", "1,0", "--basis", "3d", "--ratio", "100", "--flat-tol", "5",
               "--tau-flow", "0.1", "--conducting-phase", "beta2"])
    assert rc == 0
    res = read_classification(results_file)
    p = res.parameters
    assert (p["basis"], p["conductivity_ratio"], p["flat_tolerance_deg"], p["tau_flow"]) == ("3d", 100.0, 5.0, 0.1)
    assert p["conducting_phases"] == [{"id": 0, "name": "beta2"}]
    assert res.segments["label"][0] == "III a1"


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--field", "1"], "--field expects two numbers"),
        (["--field", "0,0"], "--field must be a non-zero"),
        (["--field", "1,0", "--basis", "trace", "--delta", "60"], "--delta expects a value from 0 to 45"),
        (["--field", "1,0", "--conducting-phase", "nasicon"], "no phase 'nasicon'"),
    ],
)
def test_cli_classify_bad_input_exits_2(results_file, capsys, extra, message):
    from stemgrains.cli import main

    assert main(["classify", str(results_file), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_cli_classify_missing_file(tmp_path, capsys):
    from stemgrains.cli import main

    assert main(["classify", str(tmp_path / "nope.h5"), "--field", "1,0"]) == 2
    assert "not found" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# figures
# ------------------------------------------------------------------------------------------------
def test_figures(tmp_path, gmap, btable):
    from matplotlib.collections import LineCollection

    from stemgrains.plot.classification import (
        BEHAVIOUR_COLORS,
        grain_ipf_colors,
        plot_boundary_behaviour,
        plot_boundary_table,
        plot_grain_traces,
    )

    from orix.quaternion.symmetry import D3d

    from stemgrains.plot.classification import ipf_key_image

    img, extent = ipf_key_image(D3d, n=60)
    assert img.shape[2] == 4 and 0.2 < img[..., 3].mean() < 0.9  # sector opaque, the rest transparent
    # [0001] is the sector's apex at the projection centre (0, 0): pure red in the TSL key
    col = int(round((0.0 - extent[0]) / (extent[1] - extent[0]) * img.shape[1]))
    row = img.shape[0] - 1 - int(round((0.0 - extent[2]) / (extent[3] - extent[2]) * img.shape[0]))
    near = img[max(row - 2, 0): row + 3, col: col + 3]
    red = near[near[..., 3] == 1][:, :3]
    assert len(red) and np.all(red[:, 0] > 0.85) and np.all(red[:, 1:] < 0.25)

    rgb = grain_ipf_colors(gmap)
    assert rgb.shape == (3, 3) and np.all((rgb >= 0) & (rgb <= 1))
    # both β″ grains have c ⟂ z: symmetry-equivalent ⟨10-10⟩ family along z → the same IPF colour
    np.testing.assert_allclose(rgb[0], rgb[1], atol=1e-6)

    fig = plot_grain_traces(gmap, path=tmp_path / "t.png")
    ax = fig.axes[0]
    bars = [c for c in ax.collections if isinstance(c, LineCollection) and c.get_linewidths()[0] == 3.0]
    assert len(bars) == 1 and len(bars[0].get_segments()) == 2  # two conducting grains with a trace
    seg = bars[0].get_segments()[0]
    direction = seg[1] - seg[0]
    assert math.degrees(math.atan2(direction[1], direction[0])) % 180 == pytest.approx(30.0)  # grain 1 trace
    assert (tmp_path / "t.png").stat().st_size > 10_000

    # alpha = 90: cos α = 0 → the shortest bar; sin α = 1 → the longest
    short = np.linalg.norm(direction)
    fig2 = plot_grain_traces(gmap, length_scale="sin_alpha")
    seg2 = [c for c in fig2.axes[0].collections if isinstance(c, LineCollection)
            and c.get_linewidths()[0] == 3.0][0].get_segments()[0]
    assert np.linalg.norm(seg2[1] - seg2[0]) == pytest.approx(short / 0.2)
    with pytest.raises(ParameterError):
        plot_grain_traces(gmap, length_scale="tan")

    res = classify_boundaries(gmap, btable, [0, 1])
    fig = plot_boundary_behaviour(gmap, btable, res, [0, 1], path=tmp_path / "b.png")
    colours = {tuple(np.round(c.get_colors()[0][:3], 3)) for c in fig.axes[0].collections
               if isinstance(c, LineCollection)}
    from matplotlib.colors import to_rgb

    assert tuple(np.round(to_rgb(BEHAVIOUR_COLORS["blocking"]), 3)) in colours
    assert tuple(np.round(to_rgb(BEHAVIOUR_COLORS["other-phase"]), 3)) in colours
    legend = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]  # the key panel right of the map
    assert any(t.startswith("blocking") for t in legend) and any(t.startswith("other phase") for t in legend)
    assert fig.axes[0].get_title() == "Grain-boundary behaviour under the applied field"
    fields = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    res_local = classify_boundaries(gmap, btable, fields)
    fig = plot_boundary_behaviour(gmap, btable, res_local)
    assert any(t.get_text() == "local field E" for t in fig.axes[1].get_legend().get_texts())
    assert fig.axes[0].get_title() == "Grain-boundary behaviour under the local transport field"
    from matplotlib.quiver import Quiver

    arrows = [c for c in fig.axes[0].collections if isinstance(c, Quiver)]
    ids = [t for t in fig.axes[0].texts if t.get_bbox_patch() is not None]  # the boxed boundary ids
    assert arrows and ids and max(a.get_zorder() for a in arrows) < min(t.get_zorder() for t in ids)  # (covered them)

    fig = plot_boundary_table(res, path=tmp_path / "tab.png")
    texts = [t.get_text() for t in fig.axes[0].tables[0].get_celld()[(1, 6)].get_text().findobj()
             if hasattr(t, "get_text")]
    assert "III a2" in texts
    assert (tmp_path / "tab.png").stat().st_size > 10_000
    fig = plot_boundary_table(res, max_rows=1)
    assert len(fig.axes[0].tables[0].get_celld()) == 2 * 8
    # with grains from a stemgrains map: a c-axis reliability column, its low values and their labels greyed
    gmap.table["median_c_axis_reliability"] = np.array([40.0, 3.0, np.nan])
    res_c = classify_boundaries(gmap, btable, [1, 0])
    cells = plot_boundary_table(res_c).axes[0].tables[0].get_celld()
    assert len(cells) == 4 * 9 and cells[(0, 6)].get_text().get_text() == "c-axis\nreliability"
    row = 1 + int(np.flatnonzero((res_c.boundaries["grain_a"] == 1) & (res_c.boundaries["grain_b"] == 2))[0])
    assert cells[(row, 6)].get_text().get_text() == "3.0" and cells[(row, 7)].get_text().get_fontstyle() == "italic"
    assert res_c.summary()["c_axis_uncertain_fraction"] == 1.0  # 1|2 is the only boundary judged


def test_figures_of_a_map_without_conduction_planes(tmp_path, gmap, btable):
    """A map whose boundaries are all other-phase (no phase with Na⁺ conduction planes, e.g. Au) gets a
    misorientation table (angle, axis, CSL Σ) instead of empty classification columns, and a behaviour map that
    says why it shows no behaviour."""
    import dataclasses

    from stemgrains.plot.classification import plot_boundary_behaviour, plot_boundary_table

    res = classify_boundaries(gmap, btable, [0, 1])
    other = np.asarray(res.boundaries["label"]).astype(str) == "other-phase"
    assert 0 < other.sum() < len(other)
    seg_other = np.isin(res.segments["boundary_id"], res.boundaries["boundary_id"][other])
    only = dataclasses.replace(res, boundaries=res.boundaries.select(other), segments=res.segments.select(seg_other))
    fig = plot_boundary_table(only, path=tmp_path / "tab.png")
    cells = fig.axes[0].tables[0].get_celld()
    header = [cells[(0, c)].get_text().get_text() for c in range(6)]
    assert header == ["GB", "Grains", "Length\n(nm)", "Misorientation\n(°)", "Axis\n(crystal frame)", "CSL Σ"]
    assert len(cells) == 6 * (1 + int(other.sum()))
    first = int(np.flatnonzero(other)[0])
    assert cells[(1, 0)].get_text().get_text() == str(int(res.boundaries["boundary_id"][first]))
    if "misorientation_deg" in res.boundaries and np.isfinite(res.boundaries["misorientation_deg"][first]):
        assert cells[(1, 3)].get_text().get_text() == f"{res.boundaries['misorientation_deg'][first]:.0f}"
    assert fig.texts[-1].get_text().startswith("No phase with Na⁺ conduction planes")
    assert (tmp_path / "tab.png").stat().st_size > 5_000
    # the full table keeps the classification columns
    assert plot_boundary_table(res).axes[0].tables[0].get_celld()[(0, 4)].get_text().get_text() != "Axis\n(crystal frame)"
    fig = plot_boundary_behaviour(gmap, btable, only, [0, 1])  # a field given, yet nothing depends on it
    legend = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert legend == ["not classified: no phase\nwith Na⁺ conduction planes (100 %)",
                      "italic numbers: grain ids; boxed:\nboundary ids (boundary_table.png)"]
    # every grain's id is written inside it (the grains boundary_table.png lists)
    ids = {int(t.get_text()) for t in fig.axes[0].texts if t.get_fontstyle() == "italic"}
    assert ids == set(np.unique(gmap.labels[gmap.labels > 0]).tolist())
    assert fig.axes[0].get_title() == "Grain boundaries: not classified"
    assert not fig.axes[1].child_axes and not fig.axes[1].texts  # no field arrow, no model parameters
    full = plot_boundary_behaviour(gmap, btable, res, [0, 1])
    assert full.axes[1].child_axes and full.axes[0].get_title() == "Grain-boundary behaviour under the applied field"


def test_behaviour_map_pales_ambiguous_c_axes_and_shows_a_note(gmap):
    """Segments of grains whose c axis is ambiguous (c-axis reliability < the cut) are drawn pale, with a legend entry,
    as the boundary table greys their labels; a note (e.g. a failed phase fit) is written in the key panel."""
    from stemgrains.plot.classification import plot_boundary_behaviour

    gmap.table["median_c_axis_reliability"] = np.array([40.0, 3.0, np.nan])
    bt = _boundary_table(gmap.labels)
    res = classify_boundaries(gmap, bt, [1, 0])
    fig = plot_boundary_behaviour(gmap, bt, res, note="the phase fit failed")
    alphas = [c.get_alpha() for c in fig.axes[0].collections if isinstance(c, LineCollection)]
    assert 0.35 in alphas and 1.0 in alphas  # 1|2 (grain 2 ambiguous) pale, the others not
    legend = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert any(t.startswith("pale: c axis ambiguous") for t in legend)
    assert [t.get_text() for t in fig.axes[1].texts if t.get_color() == "#b00000"] == ["the phase fit failed"]
    gmap.table["median_c_axis_reliability"] = np.array([40.0, 30.0, np.nan])
    res = classify_boundaries(gmap, bt, [1, 0])
    fig = plot_boundary_behaviour(gmap, bt, res)
    assert {c.get_alpha() for c in fig.axes[0].collections if isinstance(c, LineCollection)} == {1.0}
    legend = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert not any(t.startswith("pale") for t in legend) and "no grain (unassigned pixels)" not in legend
    gmap.labels[0, 0] = 0  # an unassigned pixel (white on the map) gets its legend entry
    legend = [t.get_text() for t in plot_boundary_behaviour(gmap, bt, res).axes[1].get_legend().get_texts()]
    assert legend[-2] == "no grain (unassigned pixels)" and legend[-1].startswith("italic numbers: grain ids")


def test_no_boundaries(tmp_path, gmap, btable):
    none = BoundaryTable(btable.segments.select(np.zeros(4, bool)), btable.boundaries.select(np.zeros(3, bool)),
                         btable.pairs.select(np.zeros(len(btable.pairs), bool)), btable.triple_junctions)
    res = classify_boundaries(gmap, none, [1, 0])
    assert len(res.segments) == 0 and len(res.boundaries) == 0
    assert res.summary()["total_length_nm"] == 0.0 and res.summary()["label_fraction"]["I a1"] == 0.0
    write_classification(tmp_path / "r.h5", res)
    back = read_classification(tmp_path / "r.h5")
    assert len(back.boundaries) == 0 and back.boundaries.keys() == res.boundaries.keys()


def test_with_extracted_boundaries(tmp_path, gmap):
    """The real extraction (stemgrains.boundaries.extract) feeds classify_boundaries and the figures."""
    from stemgrains.boundaries.extract import extract_boundaries
    from stemgrains.plot.classification import plot_boundary_behaviour

    extracted = extract_boundaries(gmap)
    res = classify_boundaries(gmap, extracted, [0, 1])
    bnd = res.boundaries
    pair = (bnd["grain_a"] == 1) & (bnd["grain_b"] == 2)
    assert bnd["label"][pair].tolist() == ["III a2"]  # dominated by the straight, vertical part
    assert bnd["label"][~pair].tolist() == ["other-phase", "other-phase"]
    straight = (res.segments["grain_b"] == 2) & (np.abs(res.segments["normal"][:, 0]) > 0.99)
    assert res.segments["label"][straight].tolist() == ["III a2"]
    plot_boundary_behaviour(gmap, extracted, res, path=tmp_path / "b.png")
    assert (tmp_path / "b.png").stat().st_size > 10_000


def test_c_axis_reliability_is_the_less_certain_grain():
    """Each segment and boundary carries the smaller median c-axis reliability of its two grains (NaN where a
    grain has none: the ZrO₂ grain here, or a grain table without the column)."""
    gm = _grain_map()
    bt = _boundary_table(gm.labels)
    res = classify_boundaries(gm, bt, (1.0, 0.0))
    assert np.isnan(res.boundaries["c_axis_reliability"]).all()  # no median_c_axis_reliability in the table
    gm.table["median_c_axis_reliability"] = np.array([40.0, 3.0, np.nan])
    res = classify_boundaries(gm, bt, (1.0, 0.0))
    for tab in (res.boundaries, res.segments):
        pair = (np.asarray(tab["grain_a"]), np.asarray(tab["grain_b"]))
        one_two = (pair[0] == 1) & (pair[1] == 2)
        assert one_two.any() and np.all(tab["c_axis_reliability"][one_two] == 3.0)
        assert np.isnan(tab["c_axis_reliability"][~one_two]).all()


def test_no_field_only_where_no_phase_conducts(gmap, btable):
    """field=None (a map of Au, say: nothing depends on a field) is refused where a phase conducts."""
    with pytest.raises(ParameterError, match="field: a direction"):
        classify_boundaries(gmap, btable, None)


def test_boundaries_of_another_grain_map_are_refused(gmap, btable):
    """A BoundaryTable kept in a notebook while the grains were segmented again was classified (and driven by the
    transport model) on a grain map it does not describe: labels of boundaries that map does not have."""
    from dataclasses import replace

    from stemgrains.transport import solve_transport

    other = replace(gmap, labels=np.ascontiguousarray(gmap.labels[::-1, ::-1]))
    with pytest.raises(InputError, match="the boundaries were extracted from another grain map"):
        classify_boundaries(other, btable, (1.0, 0.0))
    with pytest.raises(InputError, match="the boundaries were extracted from another grain map"):
        solve_transport(other, electrodes={"left": 1.0, "right": 0.0}, boundaries=btable)
    classify_boundaries(gmap, btable, (1.0, 0.0))  # its own map: fine


def test_the_behaviour_map_draws_the_field_it_was_classified_under(gmap, btable):
    """plot_boundary_behaviour drew the arrow of the field it was given over the colours of another field's
    classification."""
    from stemgrains.plot.classification import plot_boundary_behaviour

    cls = classify_boundaries(gmap, btable, (1.0, 0.0))
    with pytest.raises(ParameterError, match="the classification was made under the field"):
        plot_boundary_behaviour(gmap, btable, cls, (0.0, 1.0))
    plot_boundary_behaviour(gmap, btable, cls, (2.0, 0.0))  # the same direction
    plot_boundary_behaviour(gmap, btable, cls)  # its own
