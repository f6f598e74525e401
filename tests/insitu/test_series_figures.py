"""The figures of an in-situ series read at every map shape: event_sites.png keys each colour and marker it draws
(the first frame's colours had no key, the contrast sign was not drawn), montage.png has a colour bar of the
differential images (frame − frame 0, in the frames' units and relative to frame 0's median), its panels sized
to the map's aspect for 2, 6 and 12 frames; no label collides, nothing is drawn off the figure."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from insitu_helpers import write_lamella

from stemgrains._table import Table
from stemgrains.insitu import FrameTransform, load_sites
from stemgrains.insitu.api import SeriesResult
from stemgrains.plot.insitu import SITE_NAMES, plot_event_sites, plot_montage

SHAPES = {"square": (50, 60), "wide": (16, 90), "tall": (90, 16), "tiny": (8, 8)}


@pytest.fixture(scope="module")
def lamellae(tmp_path_factory):
    """Sites of a four-grain lamella (electrodes left and right) at each shape of :data:`SHAPES`."""
    out = {}
    for name, (ny, nx) in SHAPES.items():
        lab = np.ones((ny, nx), np.int32)
        r, c = np.mgrid[0:ny, 0:nx]
        lab[(c >= nx // 2) & (r < ny // 2)] = 2
        lab[(c < nx // 2) & (r >= ny // 2)] = 3
        lab[(c >= nx // 2) & (r >= ny // 2)] = 4
        out[name] = load_sites(write_lamella(tmp_path_factory.mktemp(name) / "results.h5", labels=lab)[0])
    return out


def _result(sites, n_frames: int, times=None) -> SeriesResult:
    """A series of ``n_frames`` noisy frames over the map (0.5 nm pixels, level 100) with three events: brighter on
    the vertical boundary from frame 1, darker in a grain from the last frame, brighter at a triple junction."""
    x0, x1, y0, y1 = sites.extent_nm
    pix = 0.5
    H, W = int((y1 - y0) / pix) + 4, int((x1 - x0) / pix) + 4
    rng = np.random.default_rng(0)
    registered = 100.0 + rng.normal(0.0, 5.0, (n_frames, H, W))
    xm, ym = 0.5 * (x0 + x1), 0.5 * (y0 + y1)
    last = n_frames - 1
    events = Table({"event_id": np.arange(3), "first_frame": np.array([1, last, 1]),
                    "x_nm": np.array([xm, x0 + 0.25 * (x1 - x0), xm]), "y_nm": np.array([y0 + 0.25 * (y1 - y0),
                                                                                        y0 + 0.2 * (y1 - y0), ym]),
                    "contrast": np.array([0.2, -0.1, 0.3]), "site": np.array(["boundary", "interior", "triple_junction"])})
    t = np.arange(n_frames, dtype=float) if times is None else np.asarray(times, float)
    return SeriesResult(registered, registered - registered[0], np.zeros((n_frames, 2)),
                        FrameTransform(pix, 0.0, (x0 - 1.0, y0 - 1.0)), t, events, Table({}),
                        np.ones((H, W), bool), np.zeros((H, W), np.int32), {"reference_level": 100.0})


def _texts(fig) -> list[tuple[str, object]]:
    """(name, window extent) of every title, axis label and legend of the figure, colour bars and their secondary
    axes included (the ids and tick labels on the map are not)."""
    fig.draw_without_rendering()
    out = []
    if fig._suptitle is not None:
        out.append(("suptitle", fig._suptitle.get_window_extent()))
    stack = list(fig.axes)
    while stack:
        ax = stack.pop()
        stack += list(ax.child_axes)
        for it in (ax.title, ax.xaxis.label, ax.yaxis.label, ax.get_legend()):
            if it is not None and it.get_visible() and (not hasattr(it, "get_text") or it.get_text()):
                out.append((getattr(it, "get_text", lambda: "legend")()[:30], it.get_window_extent()))
    return out


def _check_layout(fig) -> None:
    """No two labels overlap; everything drawn lies on the figure."""
    boxes = _texts(fig)
    clash = [(a, b) for (a, ba), (b, bb) in itertools.combinations(boxes, 2) if ba.overlaps(bb)]
    assert clash == []
    tight = fig.get_tightbbox()
    w, h = fig.get_size_inches()
    assert tight.x0 >= -0.01 and tight.y0 >= -0.01 and tight.x1 <= w + 0.01 and tight.y1 <= h + 0.01, (tight, w, h)


def _all_axes(fig) -> list:
    stack, out = list(fig.axes), []
    while stack:
        ax = stack.pop()
        out.append(ax)
        stack += list(ax.child_axes)
    return out


@pytest.mark.parametrize("shape", list(SHAPES))
def test_event_sites_keys_every_colour_and_marker(lamellae, shape):
    """event_sites.png drew the events in colours of their first frame with no key to them (and a legend of
    every site kind, the electrode interface only named in the title)."""
    sites = lamellae[shape]
    res = _result(sites, 7, times=np.arange(7) * 10.0)
    fig = plot_event_sites(res, sites)
    ax = fig.axes[0]
    legend = next(a.get_legend() for a in fig.axes if a.get_legend() is not None)
    labels = [t.get_text() for t in legend.get_texts()]
    for want in ("electrode interface", SITE_NAMES["boundary"], SITE_NAMES["interior"], SITE_NAMES["triple_junction"],
                 "open: brighter than frame 0", "filled: darker than frame 0"):
        assert want in labels, labels
    assert SITE_NAMES["edge"] not in labels  # only the kinds drawn
    behaviours = set(np.asarray(sites.segments["behaviour"]).astype(str).tolist())
    assert behaviours <= set(labels) | {""}
    # the first frame's colour bar: frames 1-6 below, their times above
    cax = next(a for a in _all_axes(fig) if "first frame" in a.xaxis.label.get_text())
    assert [int(round(v)) for v in cax.get_xticks()] == [1, 2, 3, 4, 5, 6]
    assert any("time" in c.xaxis.label.get_text() for c in cax.child_axes)
    # the marker colours are the bar's: event 1 (last frame) drawn in the bar's colour of frame 6, filled (darker)
    marks = [ln for ln in ax.get_lines() if ln.get_marker() not in (None, "None", "")]
    assert len(marks) == 3
    bar = cax._colorbar
    np.testing.assert_allclose(marks[1].get_markeredgecolor(), bar.cmap(bar.norm(6)), atol=1e-6)
    np.testing.assert_allclose(marks[0].get_markeredgecolor(), bar.cmap(bar.norm(1)), atol=1e-6)
    assert marks[1].get_markerfacecolor() != "none" and marks[0].get_markerfacecolor() in ("none", (0, 0, 0, 0))
    # nothing over the map, the key and bar beside or under it
    fig.draw_without_rendering()
    mbox = ax.get_window_extent()
    for box in (legend.get_window_extent(), cax.get_tightbbox()):
        assert not box.overlaps(mbox), (shape, box, mbox)
    _check_layout(fig)
    assert "3 events" in fig._suptitle.get_text()


@pytest.mark.parametrize("times", [[0, 1, 2, 4, 8, 100, 120], [0, 10, 20, 30, 40, 50, 60]])
def test_event_sites_time_labels_sit_over_their_frames(lamellae, times):
    """A fresh user's uneven times (0, 1, 2, 4, 8, 100) piled up over the last frame ("2040608000") and even ones
    drifted off their frames (a secondary axis interpolating frame → time): each frame's time sits over its tick."""
    sites = lamellae["square"]
    fig = plot_event_sites(_result(sites, 7, times=np.asarray(times, float)), sites)
    cax = next(a for a in _all_axes(fig) if "first frame" in a.xaxis.label.get_text())
    top = next(c for c in cax.child_axes if "time" in c.xaxis.label.get_text())
    fig.draw_without_rendering()
    assert [int(round(v)) for v in top.get_xticks()] == [1, 2, 3, 4, 5, 6]
    assert [t.get_text() for t in top.get_xticklabels()] == [f"{v:g}" for v in times[1:]]


def test_event_sites_outlines_the_area_the_frames_show(lamellae):
    """Frames showing part of the map: event_sites.png drew the whole map alike, so the part never imaged looked
    event-free. The analysed region is outlined (dashed, in the key) where it lies inside the map, not otherwise."""
    from dataclasses import replace

    sites = lamellae["square"]
    res = _result(sites, 4)
    fig = plot_event_sites(res, sites)
    labels = [t.get_text() for a in fig.axes if a.get_legend() for t in a.get_legend().get_texts()]
    assert "area the frames show" not in labels  # the frames cover the whole map
    part = res.region.copy()
    part[:, part.shape[1] // 2 :] = False
    fig = plot_event_sites(replace(res, region=part), sites)
    labels = [t.get_text() for a in fig.axes if a.get_legend() for t in a.get_legend().get_texts()]
    assert "area the frames show" in labels
    assert fig.axes[0].collections  # the dashed contour on the map
    _check_layout(fig)


def test_event_sites_without_events_or_times(lamellae):
    """No event: no colour bar and no event part of the key; frame indices as times: no time axis."""
    sites = lamellae["square"]
    res = _result(sites, 3)
    fig = plot_event_sites(res, sites)
    cax = next(a for a in _all_axes(fig) if "first frame" in a.xaxis.label.get_text())
    assert not any(c.xaxis.label.get_text() for c in cax.child_axes)
    _check_layout(fig)
    res.events = Table({k: res.events[k][:0] for k in res.events})
    fig = plot_event_sites(res, sites)
    assert not any("first frame" in a.xaxis.label.get_text() for a in _all_axes(fig))
    labels = [t.get_text() for a in fig.axes if a.get_legend() for t in a.get_legend().get_texts()]
    assert "electrode interface" in labels and not any("brighter" in s for s in labels)
    assert fig._suptitle.get_text().startswith("0 events")
    _check_layout(fig)


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("n_diff, n_max", [(1, 8), (2, 8), (6, 8), (12, 8), (12, 12)])
def test_montage_has_a_colour_bar_and_panels_at_the_maps_aspect(lamellae, shape, n_diff, n_max):
    """montage.png showed the differential images without a colour bar; a tall map's panels stood apart across
    blank columns, a wide map's under a blank band."""
    sites = lamellae[shape]
    res = _result(sites, n_diff + 1, times=np.arange(n_diff + 1) * 10.0)
    fig = plot_montage(res, sites, n_max=n_max)
    panels = [a for a in fig.axes if a.images or a.collections and a.get_label() != "<colorbar>"]
    panels = [a for a in panels if a.get_label() != "<colorbar>"]
    assert len(panels) == min(n_max, n_diff)
    # a montage of fewer frames than the series says so (12 frames showed 8 without a word)
    title = fig._suptitle.get_text().replace("\n", " ")
    assert (f"{n_max} of the {n_diff} frames shown" in title) == (n_max < n_diff), title
    cbars = [a for a in fig.axes if a.get_label() == "<colorbar>"]
    assert len(cbars) == 1
    cax = cbars[0]
    assert " ".join(cax.xaxis.label.get_text().split()) == "frame − frame 0 (intensity, in the frames' units)"
    rel = [" ".join(c.xaxis.label.get_text().split()) for c in cax.child_axes]
    assert any("frame 0's median" in r and "/ 100 " in r for r in rel), rel
    fig.draw_without_rendering()
    boxes = [p.get_window_extent() for p in panels]
    assert cax.get_window_extent().y1 < min(b.y0 for b in boxes)  # under every panel
    x0, x1, y0, y1 = sites.extent_nm
    for b in boxes:  # each panel the map's aspect
        assert b.height / b.width == pytest.approx((y1 - y0) / (x1 - x0), rel=0.05)
    w, h = fig.get_size_inches()
    for p in panels:  # no blank row above a wide panel, no blank column beside a tall one (~2 in before)
        slot, image = p.get_position(original=True), p.get_position()
        assert (slot.height - image.height) * h < 0.25, (shape, slot, image)
        if w > 3.0 + 1e-6:  # (at its least width, a narrow figure's colour bar and its labels set the width)
            assert (slot.width - image.width) * w < 0.8, (shape, slot, image)
    assert w <= 15.0 and h <= 16.0
    assert min(b.width for b in boxes) / fig.dpi > 0.6  # readable panels
    _check_layout(fig)
