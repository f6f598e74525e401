"""The transport mismatch figure's colour bar at extreme map shapes: under a wide map its tick labels overlapped,
beside a tall one its extend triangles stood a third of an inch tall."""

from __future__ import annotations

import numpy as np
import pytest
from transport_helpers import make_grain_map, random_c_axes, voronoi_labels

from stemgrains.plot.transport import plot_boundary_mismatch, plot_potential
from stemgrains.transport import solve_transport


def _result(shape, electrodes):
    lab = voronoi_labels(shape, 6, seed=3)
    return solve_transport(make_grain_map(lab, random_c_axes(6, seed=4), 2.0), electrodes=electrodes)


def _tick_label_gaps(cax) -> list[float]:
    frame = cax.get_window_extent()
    boxes = sorted((b.x0, b.x1) for b in (t.get_window_extent() for t in cax.xaxis.get_ticklabels()
                                          if t.get_visible() and t.get_text())
                   if frame.x0 - 1 <= 0.5 * (b.x0 + b.x1) <= frame.x1 + 1)
    return [b[0] - a[1] for a, b in zip(boxes, boxes[1:])]


@pytest.mark.parametrize("volts", [0.3, 0.35, 0.7, 1.0])  # 0.35 V: nine ticks labelled −0.00100 ... 0.00100
def test_a_wide_maps_colour_bar_labels_stand_apart(volts):
    r = _result((8, 40), {"left": volts, "right": 0.0})
    for plot in (plot_boundary_mismatch, plot_potential):
        fig = plot(r)
        fig.draw_without_rendering()
        cax = fig.axes[1]
        assert cax.get_window_extent().y1 < fig.axes[0].get_window_extent().y0  # under the map
        gaps = _tick_label_gaps(cax)
        assert len(gaps) >= 1 and min(gaps) >= 6 * fig.dpi / 72, gaps


def test_a_tall_maps_colour_bar_is_slim_with_small_triangles():
    fig = plot_boundary_mismatch(_result((40, 6), {"top": 1.0, "bottom": 0.0}))
    fig.draw_without_rendering()
    ax, cax = fig.axes[:2]
    inner = cax.get_window_extent()
    outline = cax.spines["outline"].get_window_extent()  # the bar with its two extend triangles
    triangle = 0.5 * (outline.height - inner.height) / fig.dpi
    assert 0.02 < triangle < 0.2, triangle
    assert inner.width / fig.dpi < 0.25 and inner.height < ax.get_window_extent().height
    assert np.isclose(cax.get_ylim(), (-max(np.abs(cax.get_ylim())), max(np.abs(cax.get_ylim())))).all()


def test_a_line_scans_mismatch_is_said_to_be_round_off():
    """On a line scan the current crosses each boundary straight: its mismatch is the solver's round-off (±3e-17),
    which the figure drew on a colour scale of ±3e-17 as if it were a finding; and a blank band stood over it."""
    lab = np.repeat(np.arange(1, 4), 10)[None, :]
    r = solve_transport(make_grain_map(lab, random_c_axes(3, seed=4), 2.0), electrodes={"left": 1.0, "right": 0.0})
    fig = plot_boundary_mismatch(r)
    ax = fig.axes[0]
    assert "(zero within round-off)" in " ".join(ax.get_title().split())
    assert len(ax.get_yticks()) == 1
    assert fig.get_figheight() < 3.0  # trimmed to what the strip, its bar and title need


def test_a_current_that_varies_less_than_tenfold_is_drawn_on_a_linear_scale():
    """A line scan's uniform current (3.25-3.45e-3) was stretched over the whole log colour scale, black to yellow,
    with its labels overlapping; a map whose |J| spans decades keeps the log scale."""
    from matplotlib.colors import LogNorm

    from stemgrains.plot.transport import plot_current_density

    lab = np.repeat(np.arange(1, 4), 10)[None, :]
    line = solve_transport(make_grain_map(lab, random_c_axes(3, seed=4), 2.0), electrodes={"left": 1.0, "right": 0.0})
    fig = plot_current_density(line)
    norm = fig.axes[0].images[0].norm
    assert not isinstance(norm, LogNorm) and norm.vmin == 0.0
    assert min(_tick_label_gaps(fig.axes[1]), default=1.0) > 0
    wide = plot_current_density(_result((8, 40), {"left": 1.0, "right": 0.0}))
    im = wide.axes[0].images[0]
    assert isinstance(im.norm, LogNorm) == (im.norm.vmax >= 10 * im.norm.vmin)
