"""One filament that grows over frames is one event; two that grow into each other, or a separate spot beside one,
stay separate (``detect_events``'s saddle rule, ``SADDLE_FRACTION``)."""

from __future__ import annotations

import numpy as np
import pytest
from insitu_helpers import FRAME_OFFSET, FRAME_PIXEL, filament_x, specimen_image, write_lamella

from stemgrains._table import Table
from stemgrains.insitu import FrameTransform, analyse_series, detect_events, load_sites
from stemgrains.simulate.series import PlantedEvent, simulate_series

SHAPE = (96, 96)


def ridge(r0, c0, r1, c1, amplitude=1.0, width=1.5, end_amplitude=None):
    """Gaussian ridge (σ ``width`` px) along the segment (r0, c0)–(r1, c1) on a SHAPE image; its height goes
    linearly from ``amplitude`` to ``end_amplitude`` (default the same) along it."""
    rr, cc = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]].astype(float)
    d = np.array([r1 - r0, c1 - c0], float)
    t = np.clip(((rr - r0) * d[0] + (cc - c0) * d[1]) / max(d @ d, 1e-12), 0, 1)
    dist = np.hypot(rr - (r0 + t * d[0]), cc - (c0 + t * d[1]))
    end = amplitude if end_amplitude is None else end_amplitude
    return (amplitude + (end - amplitude) * t) * np.exp(-0.5 * (dist / width) ** 2)


def stack(images, seed=0, noise=0.02):
    rng = np.random.default_rng(seed)
    diff = np.stack([np.zeros(SHAPE)] + [im + noise * rng.normal(size=SHAPE) for im in images])
    diff[0] = 0.0
    return diff


def detect(diff):
    return detect_events(diff, np.ones(SHAPE, bool), smooth_px=1.0, n_sigma=5.0, min_frames=1)


def test_a_tip_that_advances_each_frame_is_one_event():
    frames = [ridge(10, 48, 10 + 15 * k, 48) for k in range(1, 6)]  # 15 px longer per frame
    events = detect(stack(frames))
    assert len(events) == 1
    e = events[0]
    assert e.first_frame == 1 and e.frames == [1, 2, 3, 4, 5]
    assert e.row < 30  # placed where it started, not where it ended
    assert e.footprint[80, 48] and e.footprint[12, 48]


def test_a_long_filament_that_appears_at_once_is_one_event():
    events = detect(stack([ridge(10, 20, 80, 70)] * 3))
    assert len(events) == 1


def test_two_filaments_growing_into_each_other_stay_two():
    frames = [ridge(10, 48, 10 + 10 * k, 48) + ridge(86, 48, 86 - 10 * k, 48) for k in range(1, 6)]
    events = detect(stack(frames))  # they meet in frame 4
    assert len(events) == 2
    assert sorted(round(e.row / 10) for e in events) == [1, 8]
    assert all(e.first_frame == 1 for e in events)


def test_a_separate_spot_beside_a_filament_is_a_new_event():
    line = ridge(10, 40, 86, 40)
    spot = ridge(50, 49, 50, 49, amplitude=1.0, width=2.0)  # 9 px beside the line: one feature, a dip between
    events = detect(stack([line, line, line + spot, line + spot]))
    assert len(events) == 2
    new = [e for e in events if e.first_frame == 3]
    assert len(new) == 1 and abs(new[0].row - 50) < 2 and abs(new[0].col - 49) < 2
    assert events[0].footprint[50, 44]  # connected: the two share one feature (no separate component)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_filament_brighter_at_its_tip_is_one_event(seed):
    """The fresh user's case: brightness rising 0.6 → 3 along a filament growing 5 nm a frame was two events in one
    of two noise draws under a dip-below-half-of-the-new-maximum rule."""
    frames = [ridge(10, 48, 10 + 15 * k, 48, amplitude=0.6, end_amplitude=0.6 + 0.48 * k) for k in range(1, 6)]
    events = detect(stack(frames, seed=seed, noise=0.05))
    assert len(events) == 1 and events[0].row < 30


def test_a_spot_on_the_flank_of_a_brighter_filament_is_its_own_event():
    """The fresh user's case: a spot 6–7 nm beside a filament 2.4 × as bright, joined to it at 63 % of the spot's
    height, was swallowed by the filament (and with it a blocking-boundary event)."""
    line = ridge(10, 40, 86, 40, amplitude=2.4, width=2.0)
    spot = ridge(50, 48, 50, 48, amplitude=1.0, width=2.0)  # 8 px beside the line
    d = stack([line, line + spot, line + spot], noise=0.01)
    from stemgrains.insitu.detect import _smooth_nan

    s = _smooth_nan(d[2], 1.0)
    assert 0.5 < s[50, 41:48].min() / s[50, 48] < 0.7  # the dip between them: above half the spot, below 80 %
    events = detect(d)
    assert len(events) == 2
    spot_event = [e for e in events if e.first_frame == 2]
    assert len(spot_event) == 1 and abs(spot_event[0].row - 50) < 2 and abs(spot_event[0].col - 48) < 2


def test_dark_filament_growth_is_one_event_too():
    events = detect(stack([-ridge(48, 10, 48, 10 + 15 * k) for k in range(1, 6)]))
    assert len(events) == 1 and events[0].sign == -1


def test_growing_filament_counts_once_in_the_enrichment(tmp_path):
    """The second review's case: a filament whose tip advances 12 nm per frame along the vertical boundary was 4
    events (4 boundary events against 1 filament in the enrichment)."""
    path, gm, bt, cls = write_lamella(tmp_path / "results.h5")
    planted = [PlantedEvent(float(filament_x(y)), float(y), 1 + int((y - 4) // 12), amplitude=2.0, radius_nm=1.5,
                            growth_nm=0.2) for y in np.arange(4.0, 70.0, 3.0)]
    frames, _ = simulate_series(planted, n_frames=6, shape=(256, 256), pixel_size_nm=FRAME_PIXEL,
                                offset_nm=FRAME_OFFSET, base_image=specimen_image(1), base_pixel_nm=0.5, seed=3)
    res = analyse_series(frames, FRAME_PIXEL, load_sites(path),
                         transform=FrameTransform(FRAME_PIXEL, 0.0, FRAME_OFFSET))
    ev = res.events
    assert len(ev["x_nm"]) == 1
    assert ev["site"][0] == "boundary" and ev["first_frame"][0] == 1 and ev["y_nm"][0] < 16
    enr = res.enrichment
    site = (enr["level"] == "site") & (enr["name"] == "boundary")
    assert enr["observed"][site][0] == 1
    # it grew past the triple junction at y = 49 nm: both parts of the vertical boundary are among those it reached
    lab = gm.labels
    ba = bt.boundaries
    ids = {frozenset((int(a), int(b))): int(i) for i, a, b in zip(ba["boundary_id"], ba["grain_a"], ba["grain_b"])}
    above = ids[frozenset((int(lab[10, 29]), int(lab[10, 30])))]
    below = ids[frozenset((int(lab[30, 29]), int(lab[30, 30])))]
    reached = {int(v) for v in str(ev["boundaries_reached"][0]).split()}
    assert {above, below} <= reached and int(ev["boundary_id"][0]) == above


def test_enrichment_counts_only_the_boundary_the_frames_show(tmp_path, capsys):
    """A fresh user's frames covered a corner of the map and enrichment.csv gave every boundary of the map its
    expected share (boundaries never imaged among them). Frames here cover x, y 0–50 nm of the 120 × 100 nm map:
    of the boundaries only the left horizontal one (y = 49 nm, x 0–58 nm, 30 pixel edges) is in view, 27 of its
    pixel edges within the 3 nm tolerance of the frames (x ≤ 52 nm)."""
    import csv

    from stemgrains.cli import main

    path, gm, bt, cls = write_lamella(tmp_path / "results.h5")
    frames, _ = simulate_series([PlantedEvent(20.0, 20.0, 2, amplitude=1.0)], n_frames=4, shape=(100, 100),
                                pixel_size_nm=0.5, offset_nm=(0.0, 0.0), drift_px=np.zeros((4, 2)),
                                base_image=specimen_image(1), base_pixel_nm=0.5, seed=4)
    np.save(tmp_path / "frames.npy", frames)
    out = tmp_path / "out"
    assert main(["series", str(path), str(tmp_path / "frames.npy"), "--frame-pixel-size", "0.5", "--offset=0,0",
                 "-o", str(out), "--no-figures"]) == 0
    err = capsys.readouterr().err
    seg = bt.segments
    total = float(np.sum(seg["length_nm"]))
    sites = load_sites(path)
    left = [i for i, sid in enumerate(np.asarray(seg["segment_id"]))
            if np.all(sites.edge_xy[sites.edge_segment == sid][:, 1] == 49.0)
            and np.all(sites.edge_xy[sites.edge_segment == sid][:, 0] < 59.0)]
    assert len(left) == 1 and np.sum(sites.edge_segment == seg["segment_id"][left[0]]) == 30
    want = float(seg["length_nm"][left[0]]) * 27 / 30
    with open(out / "enrichment.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["level"] == "label"]
    got = {r["name"]: float(r["length_nm"]) for r in rows}
    label = str(cls.segments["label"][np.nonzero(cls.segments["segment_id"] == seg["segment_id"][left[0]])[0][0]])
    per_edge = float(seg["length_nm"][left[0]]) / 30
    assert want - per_edge - 1e-9 <= got[label] <= want + 1e-9  # the frames' outermost pixel may fall outside
    assert sum(got.values()) == pytest.approx(got[label])  # nothing else is in view
    assert f"note: the frames show {got[label]:.0f} of the map's {total:.0f} nm of boundary" in err


def test_an_electrode_just_outside_drifting_frames_still_counts(tmp_path):
    """A fresh user's frames drifted 1.5 nm off the right electrode in their last frames: the whole electrode left
    the enrichment (interface 98 of 200 nm) and an event 1.5 nm from it was 'interior'. The electrode counts within
    the attribution tolerance (3 nm) of the frames: here the frames end 1.5 nm short of the border pixels' centres
    (x = 118 nm) of the right electrode (50 pixels, 100 nm); the left one (x = 0) is 58 nm away."""
    from stemgrains.insitu.api import _imaged_enrichment
    from stemgrains.insitu.register import FrameTransform

    path, gm, bt, cls = write_lamella(tmp_path / "results.h5")
    sites = load_sites(path)
    region = np.ones((200, 114), bool)  # 0.5 nm pixels from x = 60 nm: up to x = 116.5 nm
    empty = Table({k: np.zeros(0) for k in ("site", "label", "behaviour")})
    enr, cov = _imaged_enrichment(empty, Table({"interface_class": np.zeros(0, str)}), sites, region,
                                  FrameTransform(0.5, 0.0, (60.0, 0.0)), 3.0)
    assert cov["interface_length_map_nm"] == 200.0 and cov["interface_length_imaged_nm"] == 100.0
    assert "100 of the map's 200 nm of electrode interface" in cov["coverage_note"]
    # 1 nm further off (2.5 nm short of x = 118 nm, within 3) it still counts; 4 nm short it does not
    _, cov2 = _imaged_enrichment(empty, Table({"interface_class": np.zeros(0, str)}), sites, region[:, :112],
                                 FrameTransform(0.5, 0.0, (60.0, 0.0)), 3.0)
    assert cov2["interface_length_imaged_nm"] == 100.0
    _, cov3 = _imaged_enrichment(empty, Table({"interface_class": np.zeros(0, str)}), sites, region[:, :108],
                                 FrameTransform(0.5, 0.0, (60.0, 0.0)), 3.0)
    assert cov3["interface_length_imaged_nm"] == 0.0


def test_interface_of_grains_without_conduction_planes_is_named_so(tmp_path):
    """A map whose phase has no Na⁺ conduction planes (here the bare test cell, which the classification is not told
    is conducting) had its electrode interface sorted into 'planes toward / along electrode' all the same."""
    from stemgrains.insitu import SiteMap

    path, gm, bt, cls = write_lamella(tmp_path / "results.h5")
    plain = SiteMap.from_results(gm, bt, None, interface=("left", "right"))
    assert set(plain.interface_pieces()["class"]) == {"no conduction planes"}
    named = SiteMap.from_results(gm, bt, cls, interface=("left", "right"))  # its classification names it conducting
    assert "no conduction planes" not in set(named.interface_pieces()["class"])
    assert set(load_sites(path).interface_pieces()["class"]) <= {"planes toward electrode", "planes along electrode",
                                                                 "planes flat"}
