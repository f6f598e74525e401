"""`stemgrains compare` (issue #17 part 3): registration, grain matching, orientation and boundary changes.

Fast tests build the results files from synthetic orientation maps with the project's writers (the comparison is
tested apart from indexing); test_pipeline_scans.py runs the real pipeline on simulated 4D scans (slow)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from orix.quaternion import Rotation

from compare_helpers import STEP, crystal_map, field, rotate_about, specimen_grid, two_scans, write_results
from stemgrains.cli import main
from stemgrains.compare import PIXEL_OPS, PixelOp, compare_results, load_scan, output_names
from stemgrains.compare.register import _op_channels, apply_op, ipf_channels
from stemgrains.crystal import load_phase
from stemgrains.data_dictionary import GROUPS, describe
from stemgrains.errors import InputError


@pytest.fixture(scope="module")
def nba(data_samples):
    return load_phase(data_samples / "na_beta2_alumina.cif")


def _matched(comp, scan_to=2):
    g = comp.grains
    sel = np.asarray(g["scan_to"]) == scan_to
    return {k: np.asarray(g[k])[sel] for k in g.keys()}


# ------------------------------------------------------------------------------------------ pixel operations
@pytest.mark.parametrize("op", PIXEL_OPS, ids=lambda o: o.name)
def test_pixel_op_points_match_the_array_op_and_r_is_proper(op):
    a = np.arange(5 * 7).reshape(5, 7)
    b = op(a)
    r, c = np.indices(a.shape)
    r2, c2 = op.points(r, c, a.shape)
    assert np.array_equal(b[r2.astype(int), c2.astype(int)], a)
    m = op.matrix()
    assert np.allclose(m @ m.T, np.eye(3)) and np.isclose(np.linalg.det(m), 1.0)
    # the in-plane part moves pixel offsets (dx, dy) = (dcol, drow) as the op does
    r0, c0 = op.points(np.array([2.0]), np.array([3.0]), a.shape)
    r1, c1 = op.points(np.array([2.0]), np.array([4.0]), a.shape)
    assert np.allclose(m[:2, :2] @ [1.0, 0.0], [c1[0] - c0[0], r1[0] - r0[0]])


def test_quarter_turn_is_the_specimen_turned_about_z():
    # np.rot90(k=-1) = the specimen turned by +90° about z (from +x toward +y): x -> y
    op = PixelOp(3)
    assert np.allclose(op.matrix() @ [1, 0, 0], [0, 1, 0])
    assert np.allclose(Rotation(op.quaternion()).to_matrix()[0], op.matrix())


@pytest.mark.parametrize("op", PIXEL_OPS, ids=lambda o: o.name)
def test_channel_permutation_equals_colours_of_turned_orientations(op, nba):
    rng = np.random.default_rng(1)
    q = rng.normal(size=(4, 5, 4))
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    pid = np.zeros((4, 5), int)
    phases = crystal_map(q, nba).phases
    fast = _op_channels(op, ipf_channels(q, pid, phases))
    direct = ipf_channels(op(apply_op(op, q)), op(pid), phases)
    assert np.allclose(fast, direct, atol=1e-9)


def test_multichannel_ncc_equals_padfield_reference_per_channel():
    from stemgrains.compare.register import _ncc, _unwrap
    from stemgrains.insitu.register import masked_ncc

    rng = np.random.default_rng(4)
    ref, mov = rng.random((3, 9, 11, 3)), rng.random((3, 7, 8, 3))
    ref_ok, mov_ok = rng.random((9, 11)) > 0.2, rng.random((7, 8)) > 0.2
    fast, shape = _ncc(ref, ref_ok, mov, mov_ok, 10)
    slow = sum(masked_ncc(mov[d, :, :, c], mov_ok, ref[d, :, :, c], ref_ok, 10)[0] for d in range(3) for c in range(3))
    slow_shape = slow.shape
    slow = slow / 9.0
    checked = 0
    for i in range(shape[0]):
        for j in range(shape[1]):
            t = (_unwrap(i, 7, shape[0]), _unwrap(j, 8, shape[1]))
            if -9 < t[0] < 7 and -11 < t[1] < 8:
                a = slow[t[0] % slow_shape[0], t[1] % slow_shape[1]]
                assert fast[i, j] == pytest.approx(a, abs=1e-9), t
                checked += 1
            else:
                assert fast[i, j] == -1.0
    assert checked == 15 * 18


# ------------------------------------------------------------------------------------------ acceptance
def test_shifted_scan_with_one_grain_turned_3_degrees(tmp_path, nba):
    p1, p2, lab, turned, expected = two_scans(tmp_path, nba, offset=(3, -2), turn_deg=3.0)
    comp = compare_results([p1, p2])
    reg = comp.registrations[1]
    assert reg.shift == expected == (-3, 2)
    assert reg.op == PixelOp() and reg.agreement > 0.99 and reg.score > 0.9 and reg.runner_up < 0.8
    g = _matched(comp)
    inside = ~np.isin(g["status"], ["outside", "edge"])
    assert np.all(g["status"][inside] == "matched"), g["status"]
    # every grain of scan 1 is matched (as many as the field has in the window) ...
    assert np.sum(g["status"] == "matched") == len(np.unique(lab)) == np.sum(g["grain_from"] > 0)
    # ... to the same physical grain: both scans' series-id maps agree pixel by pixel where both see the area
    both = comp.covered[0] & comp.covered[1]
    assert both.sum() == 30 * 29 and np.array_equal(comp.series_labels[0][both], comp.series_labels[1][both])
    m = g["status"] == "matched"
    # the turned grain: the field label at the centre; find its scan-1 label (scan 1 is segmented from the field)
    gm1 = load_scan(p1).grains
    t_label = int(gm1.labels[lab == turned][0])
    is_t = g["grain_from"][m] == t_label
    dis = g["disorientation_deg"][m]
    assert dis[is_t][0] == pytest.approx(3.0, abs=0.3)
    assert np.all(dis[~is_t] < 0.5)
    assert np.all(g["centroid_shift_nm"][m] < 1e-9)
    # the series id of a matched grain is scan 1's label
    assert np.array_equal(g["series_id"][m], g["grain_from"][m])


@pytest.mark.parametrize("turn, flip", [(1, False), (2, False), (3, False), (0, True), (1, True)])
def test_specimen_turned_between_scans(tmp_path, nba, turn, flip):
    p1, p2, lab, turned, expected = two_scans(tmp_path, nba, offset=(2, 1), specimen_turn=turn, specimen_flip=flip,
                                              turn_deg=3.0)
    comp = compare_results([p1, p2])
    reg = comp.registrations[1]
    # the op found undoes the grid change of the second scan
    probe = np.arange(6 * 7).reshape(6, 7)
    assert np.array_equal(reg.op(specimen_grid(probe, turn, flip)), probe)
    assert reg.shift == expected
    g = _matched(comp)
    m = g["status"] == "matched"
    assert np.all(g["status"][~np.isin(g["status"], ["outside", "edge"])] == "matched")
    dis = np.sort(g["disorientation_deg"][m])
    assert dis[-1] == pytest.approx(3.0, abs=0.3) and np.all(dis[:-1] < 0.5)
    tilt = g["c_axis_tilt_deg"][m]
    assert np.sum(tilt > 1e-3) <= 1  # only the turned grain's c axis moved (expressed in scan 1's frame)


def test_forced_translation_only_gives_the_same_answer(tmp_path, nba):
    p1, p2, *_ = two_scans(tmp_path, nba, offset=(-4, 3))
    a = compare_results([p1, p2], rotation="none")
    b = compare_results([p1, p2], shifts=[a.registrations[1].shift], rotation="none")
    assert a.registrations[1].shift == (4, -3) and b.registrations[1].given
    assert np.array_equal(a.grains["disorientation_deg"], b.grains["disorientation_deg"], equal_nan=True)


def test_scans_of_different_areas_are_refused(tmp_path, nba):
    lab, gq = field((30, 30), 8, seed=2)
    p1 = write_results(tmp_path / "a.h5", crystal_map(gq[lab - 1], nba))
    with pytest.raises(InputError, match="shares"):
        compare_results([p1, p1], shifts=[(25, 25)], rotation="none")


# ------------------------------------------------------------------------------------------ changes
def _pair_with_changes(tmp_path, nba):
    """Scan 2 = scan 1 with grain B grown by one pixel column into A, grain C absorbed into its neighbour D
    (D's orientation), and a new grain E (small disk inside a big grain F)."""
    lab, gq = field((36, 36), 10, seed=11, min_sep=7.0)
    lab2 = lab.copy()
    # a vertical stretch of boundary between two grains: move it by one pixel
    rr, cc = np.indices(lab.shape)
    left, right = lab[:, :-1], lab[:, 1:]
    diff = (left != right)
    pairs, counts = np.unique(np.stack([left[diff], right[diff]], 1), axis=0, return_counts=True)
    a, b = pairs[np.argmax(counts)]
    grow = np.zeros_like(diff)
    grow[:, :] = diff & (left == a) & (right == b)
    lab2[:, :-1][grow] = b  # b takes the column of pixels of a along their boundary
    areas = np.bincount(lab.ravel())
    c = int(np.argsort(areas[1:])[0] + 1)  # smallest grain vanishes into a neighbour
    ring = np.zeros_like(lab, bool)
    m = lab == c
    ring[1:] |= m[:-1]
    ring[:-1] |= m[1:]
    ring[:, 1:] |= m[:, :-1]
    ring[:, :-1] |= m[:, 1:]
    d = int(np.bincount(lab[ring & ~m]).argmax())
    lab2[m] = d
    f = int(np.argmax(areas[1:]) + 1)
    fr, fc = np.argwhere(lab == f).mean(axis=0)
    new = (rr - fr) ** 2 + (cc - fc) ** 2 <= 6
    new &= lab == f
    gq2 = np.vstack([gq, rotate_about(gq[f - 1:f], (0, 0, 1), 40.0)])
    lab2[new] = len(gq) + 1
    p1 = write_results(tmp_path / "s1.h5", crystal_map(gq[lab - 1], nba))
    p2 = write_results(tmp_path / "s2.h5", crystal_map(gq2[lab2 - 1], nba))
    return p1, p2, lab, (a, b), c, d, f


def test_moved_vanished_and_appeared(tmp_path, nba):
    p1, p2, lab, (a, b), c, d, f = _pair_with_changes(tmp_path, nba)
    comp = compare_results([p1, p2])
    assert comp.registrations[1].shift == (0, 0) and comp.registrations[1].op == PixelOp()
    s1 = load_scan(p1).grains.labels
    ga, gb, gc, gd = (int(s1[lab == x][0]) for x in (a, b, c, d))
    g = _matched(comp)
    status = dict(zip(g["grain_from"].tolist(), g["status"].tolist()))
    assert status[gc] in ("merged", "vanished")
    assert all(status[x] == "matched" for x in (ga, gb, gd))
    assert np.sum(g["status"] == "appeared") == 1
    new = g["status"] == "appeared"
    assert g["area_to_nm2"][new][0] == pytest.approx(np.sum((comp.series_labels[1] == g["series_id"][new][0])) * STEP**2)
    bt = comp.boundaries
    key = dict(zip(zip(bt["series_grain_a"].tolist(), bt["series_grain_b"].tolist()), range(len(bt))))
    i = key[(min(ga, gb), max(ga, gb))]
    assert bt["moved"][i] and "moved" in bt["status"][i]
    assert bt["trace_distance_nm"][i] == pytest.approx(STEP, rel=0.35)
    # boundaries of the vanished grain vanished; those of the new grain appeared
    st = np.asarray(bt["status"])
    with_c = (np.asarray(bt["series_grain_a"]) == gc) | (np.asarray(bt["series_grain_b"]) == gc)
    assert np.all(st[with_c] == "vanished")
    assert np.sum(st == "appeared") >= 1
    # boundaries far from the three changes are unchanged
    assert np.sum(st == "unchanged") >= 5


def test_index_only_results_are_segmented_here(tmp_path, nba):
    p1, p2, *_ = two_scans(tmp_path, nba, grains=False)
    comp = compare_results([p1, p2])
    assert comp.parameters["segmented_here"] == [True, True]
    g = _matched(comp)
    m = g["status"] == "matched"
    assert np.all(g["status"][~np.isin(g["status"], ["outside", "edge"])] == "matched")
    assert np.sort(g["disorientation_deg"][m])[-1] == pytest.approx(3.0, abs=0.3)
    assert np.all(np.asarray(comp.boundaries["label_from"]) == "")  # no classification in index-only files


# ------------------------------------------------------------------------------------------ command line
def test_cli_writes_tables_h5_json_and_figures(tmp_path, nba, capsys):
    p1, p2, *_ = two_scans(tmp_path, nba, offset=(3, -2))
    out = tmp_path / "cmp"
    assert main(["compare", str(p1), str(p2), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "shift (-3, 2) px" in text and "largest orientation change 3.00°" in text
    for name in output_names(2):
        assert (out / name).is_file(), name
    header = (out / "grains_matched.csv").read_text().splitlines()[0].split(",")
    assert header[:6] == ["series_id", "scan_from", "scan_to", "grain_from", "grain_to", "status"]
    with h5py.File(out / "compare.h5") as f:
        reg = f["compare/registration"]
        assert list(reg["shift_row"][()]) == [0, -3] and list(reg["shift_col"][()]) == [0, 2]
        assert f["compare/series_labels"].shape == (2, 32, 32)
        assert f["compare/grains/disorientation_deg"].attrs["unit"] == "deg"
        undocumented = []
        f.visititems(lambda name, obj: undocumented.append(name) if isinstance(obj, h5py.Dataset)
                     and describe(*name.rsplit("/", 1)) is None else None)
        assert not undocumented
    for csv_name, group in (("grains_matched.csv", "compare/grains"), ("boundaries_changed.csv", "compare/boundaries")):
        cols = (out / csv_name).read_text().splitlines()[0].split(",")
        assert cols == list(GROUPS[group]), csv_name
    summary = json.loads((out / "compare.json").read_text())
    assert summary["registrations"][1]["shift_row_col_px"] == [-3, 2]
    # a run folder is accepted for its results.h5
    (tmp_path / "run2").mkdir()
    (tmp_path / "run2" / "results.h5").write_bytes(p2.read_bytes())
    assert main(["compare", str(p1), str(tmp_path / "run2"), "-o", str(tmp_path / "cmp2"), "--no-figures",
                 "--shift=-3,2", "--rotation", "none"]) == 0
    assert "(given)" in capsys.readouterr().out


def test_cli_errors_are_one_line(tmp_path, nba, capsys):
    p1, p2, *_ = two_scans(tmp_path, nba)
    blank = tmp_path / "unindexed.h5"
    blank.write_bytes(p2.read_bytes())
    with h5py.File(blank, "r+") as f:
        f["orientation/phase_id"][...] = -1
        for g in ("grains", "boundaries"):
            if g in f:
                del f[g]
    cases = [
        ([str(p1), str(blank)], "unindexed.h5: no indexed pixel; a map without indexed pixels cannot be registered"),
        ([str(p1)], "at least two scans"),
        ([str(p1), str(tmp_path / "missing.h5")], "file not found"),
        ([str(p1), str(p2), "--shift", "1,2", "--shift", "3,4"], "once per later scan"),
        ([str(p1), str(p2), "--shift", "1.5,2"], "whole scan pixels"),
        ([str(p1), str(p2), "--rotation", "rot45"], "rotation 'rot45'"),
        ([str(p1), str(p2), "--shift", "30,30"], "shares"),
        ([str(p1), str(p2), "--min-iou", "0"], "--min-iou expects a value above 0 and at most 1, got 0"),
        ([str(p1), str(p2), "--angle", "3"], "--angle goes with --shift"),
        ([str(p1), str(p2), "--max-angle", "60"], "--max-angle expects a value from 0 to 45 (degrees), got 60"),
        ([str(p1), str(p2), "--min-overlap", "-1"], "--min-overlap expects a value above 0 and at most 1, got -1"),
        ([str(p1), str(p2), "--move-tolerance", "-1"], "--move-tolerance expects a value of at least 0 (pixels)"),
        ([str(p1), str(tmp_path)], "results.h5"),
    ]
    for args, needle in cases:
        assert main(["compare", *args, "-o", str(tmp_path / "o")]) == 2, args
        err = capsys.readouterr().err.strip()
        assert needle in err and "\n" not in err, (args, err)
    # an output that is an input is refused before any work
    inside = tmp_path / "o2"
    inside.mkdir()
    (inside / "compare.h5").write_bytes(p1.read_bytes())
    assert main(["compare", str(inside / "compare.h5"), str(p2), "-o", str(inside)]) == 2
    assert "would be overwritten" in capsys.readouterr().err


def test_three_scans_keep_series_ids(tmp_path, nba, capsys):
    lab, gq = field((40, 40), 9, seed=21, min_sep=8.0)
    rr, cc = np.indices(lab.shape)
    lab2 = lab.copy()
    new = (rr - 20) ** 2 + (cc - 20) ** 2 <= 9
    lab2[new] = 10
    gq2 = np.vstack([gq, rotate_about(gq[lab[20, 20] - 1:lab[20, 20]], (1, 0, 0), 35.0)])
    w = (slice(4, 36), slice(4, 36))
    w3 = (slice(5, 37), slice(3, 35))
    paths = [write_results(tmp_path / "s1.h5", crystal_map(gq[lab[w] - 1], nba)),
             write_results(tmp_path / "s2.h5", crystal_map(gq2[lab2[w] - 1], nba)),
             write_results(tmp_path / "s3.h5", crystal_map(gq2[lab2[w3] - 1], nba))]
    comp = compare_results(paths)
    assert [r.shift for r in comp.registrations] == [(0, 0), (0, 0), (-1, 1)]
    g12, g23 = _matched(comp, 2), _matched(comp, 3)
    appeared = g12["series_id"][g12["status"] == "appeared"]
    assert len(appeared) == 1
    # the grain that appeared in scan 2 keeps its new series id in scan 3
    row = np.flatnonzero(g23["series_id"] == appeared[0])
    assert len(row) == 1 and g23["status"][row[0]] == "matched"
    assert np.all(g23["status"][~np.isin(g23["status"], ["outside", "edge"])] == "matched")
    both = comp.covered[1] & comp.covered[2]
    assert np.array_equal(comp.series_labels[1][both], comp.series_labels[2][both])
    out = tmp_path / "o"
    assert main(["compare", *map(str, paths), "-o", str(out)]) == 0
    for name in output_names(3):
        assert (out / name).is_file(), name
    assert (out / "grain_rotation_2-3.png").is_file()


def test_unindexed_pixels_do_not_disturb_registration_or_matching(tmp_path, nba):
    lab, gq = field((44, 44), 12, seed=13, min_sep=6.0)
    rng = np.random.default_rng(0)
    w1, w2 = (slice(4, 40), slice(6, 42)), (slice(6, 42), slice(3, 39))
    paths = []
    for name, w in (("u1.h5", w1), ("u2.h5", w2)):
        valid = rng.random(lab[w].shape) > 0.15  # 15 % not indexed, different pixels in each scan
        # (merged into the grains around them, `segment --small-grains merge`; left unassigned, they cut grains into
        # fragments that the comparison reports as split/merged)
        paths.append(write_results(tmp_path / name, crystal_map(gq[lab[w] - 1], nba, valid), small_grains="merge"))
    comp = compare_results(paths)
    reg = comp.registrations[1]
    assert reg.shift == (-2, 3) and reg.op == PixelOp() and reg.agreement == 1.0  # field (4, 6) vs (6, 3)
    g = _matched(comp)
    st = g["status"]
    assert np.all(st[~np.isin(st, ["outside", "edge"])] == "matched")
    assert np.all(g["disorientation_deg"][st == "matched"] < 1e-6)


def _rotated_scans(tmp_path, nba, angle_deg, shape=(40, 40), offset=(2, -3), turn_deg=3.0):
    """Scan 2 = the field seen with the specimen turned by ``angle_deg`` about z (content rotated from +x toward
    +y about the window centre, nearest pixel; orientations O · Rz(angle)⁻¹) and moved by ``offset``; the
    grain at the centre turned by ``turn_deg`` about a tilted axis."""
    ny, nx = shape
    lab, gq = field((ny + 30, nx + 30), 12, seed=17, min_sep=8.0)
    r0, c0 = 15, 15
    turned = int(lab[r0 + ny // 2, c0 + nx // 2])
    gq2 = gq.copy()
    gq2[turned - 1] = rotate_about(gq[turned - 1:turned], (1.0, 2.0, 0.5), turn_deg)[0]
    gq2 = rotate_about(gq2, (0, 0, 1), angle_deg)
    w1 = lab[r0:r0 + ny, c0:c0 + nx]
    cy, cx = (ny - 1) / 2, (nx - 1) / 2
    rr, cc = np.indices(shape)
    t = np.radians(-angle_deg)  # moving pixel q shows the field at R(−angle)(q − c) + c + offset
    fy = np.sin(t) * (cc - cx) + np.cos(t) * (rr - cy) + cy + offset[0]
    fx = np.cos(t) * (cc - cx) - np.sin(t) * (rr - cy) + cx + offset[1]
    w2 = lab[np.rint(fy).astype(int) + r0, np.rint(fx).astype(int) + c0]
    p1 = write_results(tmp_path / "r1.h5", crystal_map(gq[w1 - 1], nba))
    p2 = write_results(tmp_path / "r2.h5", crystal_map(gq2[w2 - 1], nba))
    return p1, p2, w1, turned


@pytest.mark.parametrize("angle", [-4.0, 7.0])
def test_small_rotation_of_the_specimen(tmp_path, nba, angle, capsys):
    p1, p2, w1, turned = _rotated_scans(tmp_path, nba, angle)
    plain = compare_results([p1, p2], rotation="none")
    comp = compare_results([p1, p2], rotation="none", max_angle_deg=8.0)
    reg = comp.registrations[1]
    assert reg.angle_deg == pytest.approx(angle, abs=0.1)
    g = _matched(comp)
    st = g["status"]
    m = st == "matched"
    assert np.all(st[~np.isin(st, ["outside", "edge"])] == "matched")
    both = comp.covered[0] & comp.covered[1]
    sid = np.bincount(comp.series_labels[0][both & (w1 == turned)]).argmax()
    is_t = g["series_id"][m] == sid
    dis = g["disorientation_deg"][m]
    assert dis[is_t][0] == pytest.approx(3.0, abs=0.3)
    assert np.all(dis[~is_t] < 0.5)
    # without the rotation search every grain seems turned by about the angle
    gp = _matched(plain)
    assert np.median(gp["disorientation_deg"][gp["status"] == "matched"]) > abs(angle) - 0.5
    if angle < 0:
        return
    # the command line: searched, or given with the shift
    out = tmp_path / "o"
    assert main(["compare", str(p1), str(p2), "-o", str(out), "--max-angle", "8", "--rotation", "none",
                 "--no-figures"]) == 0
    assert f"rotated {angle:+.2f}°, shift ({reg.shift[0]}, {reg.shift[1]}) px" in capsys.readouterr().out
    assert main(["compare", str(p1), str(p2), "-o", str(out), f"--shift={reg.shift[0]},{reg.shift[1]}",
                 f"--angle={angle}", "--no-figures"]) == 0
    assert "largest orientation change 3.00°" in capsys.readouterr().out
