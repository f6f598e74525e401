"""The layout of the orientation and quality map figures at extreme map shapes, and the shared layout helpers
(stemgrains.plot._layout): a tall IPF map stood far from its colour key, a wide quality map under a blank band."""

from __future__ import annotations

import numpy as np
import pytest
from orix.crystal_map import CrystalMap, PhaseList
from orix.quaternion import Rotation

from stemgrains.plot._layout import wrap_text
from stemgrains.plot.orientation import plot_orientation_map, plot_quality_map


def _xmap(ny: int, nx: int) -> CrystalMap:
    y, x = np.divmod(np.arange(ny * nx), nx)
    return CrystalMap(Rotation.random(ny * nx), x=x * 2.0, y=y * 2.0,
                      phase_list=PhaseList(names="au", point_groups="m-3m"),
                      prop={"reliability": np.linspace(0, 20, ny * nx)})


def test_wrap_text_even_lines_within_the_width():
    text = "reliability (median 12.11; 0 px not indexed; 100 % at or above the cut 5, dashed on the colour bar)"
    lines = wrap_text(text, 7.5, 10).split("\n")
    assert " ".join(lines) == text and len(lines) == 2
    assert max(map(len, lines)) - min(map(len, lines)) <= 12  # no short last line of one word
    assert wrap_text("short\n\nsecond", 7.5, 10) == "short\n\nsecond"  # line breaks kept
    assert all(len(line) <= 16 for line in wrap_text(text, 0.1, 10).split("\n"))  # at least 16 characters


@pytest.mark.parametrize("shape", [(40, 6), (40, 40), (6, 6), (8, 40)])
def test_the_ipf_key_stands_beside_the_map(shape):
    """A tall map's key stood beyond a blank gap of several inches (the map's column kept 3.2/4.2 of 9 in)."""
    fig = plot_orientation_map(_xmap(*shape))
    fig.draw_without_rendering()
    ax, key = fig.axes[0], fig.axes[1]
    gap = (key.get_tightbbox().x0 - ax.get_window_extent().x1) / fig.dpi
    assert gap < 1.0, gap
    tight = fig.get_tightbbox()  # nothing cut at the figure's edges (the key's title)
    assert tight.x0 >= -0.01 and tight.x1 <= fig.get_figwidth() + 0.01


@pytest.mark.parametrize("shape", [(8, 40), (4, 12), (1, 12), (1, 40)])
def test_a_wide_quality_map_has_no_blank_band_under_its_title(shape):
    """A line scan's map stood 0.4 in under its title (the figure could not shrink more without shrinking the colour
    bar under it)."""
    fig = plot_quality_map(_xmap(*shape), "reliability", vmax=100.0, cmap="magma", cut=5.0, gamma=0.5)
    fig.draw_without_rendering()
    ax = fig.axes[0]
    band = (fig._suptitle.get_window_extent().y0 - ax.get_tightbbox().y1) / fig.dpi
    assert band < 0.2, band
    assert fig.get_tightbbox().y1 <= fig.get_figheight() + 0.01  # the title still on the figure
    title = " ".join(fig._suptitle.get_text().split())
    assert "dashed on the colour bar" in title


@pytest.mark.parametrize("shape", [(1, 40), (2, 30), (40, 1)])
def test_a_line_scan_has_one_tick_across_it(shape):
    """A line scan's strip of a map showed three overlapping tick labels (−1, 0, 1) across it."""
    for fig in (plot_orientation_map(_xmap(*shape)), plot_quality_map(_xmap(*shape), "reliability")):
        ax = fig.axes[0]
        across = ax.get_yticks() if shape[0] <= 2 else ax.get_xticks()
        assert len(across) == 1, across
        along = ax.get_xticks() if shape[0] <= 2 else ax.get_yticks()
        assert len(along) > 2


@pytest.mark.parametrize("prop", ["reliability", "c_axis_reliability"])
def test_a_tall_quality_map_keeps_its_title_in_two_lines(prop):
    """Over a tall narrow map the figure (3.2 in) wrapped the title into three lines."""
    xmap = _xmap(40, 6)
    xmap.prop[prop] = np.linspace(0, 20, xmap.size)
    fig = plot_quality_map(xmap, prop, vmax=100.0, cmap="magma", cut=5.0, gamma=0.5)
    fig.draw_without_rendering()
    title = fig._suptitle.get_text()
    assert len(title.split("\n")) == 2, title
    assert fig.get_figwidth() <= 6.4  # still narrower than a square map's figure
    bbox = fig._suptitle.get_window_extent()
    assert bbox.x0 >= 0 and bbox.x1 <= fig.get_figwidth() * fig.dpi + 1  # the title on the figure
    assert "cut\u00a05" in title  # the cut's value not wrapped away from it


@pytest.mark.parametrize("shape", [(40, 6), (30, 2), (40, 40)])
def test_a_quality_map_stands_in_the_middle_of_its_figure(shape):
    """A tall map stood against the figure's right edge with its colour bar, beside a blank as wide as itself (the
    figure is as wide as its title)."""
    fig = plot_quality_map(_xmap(*shape), "reliability", vmax=100.0, cmap="magma", cut=5.0, gamma=0.5)
    fig.draw_without_rendering()
    boxes = [a.get_tightbbox() for a in fig.axes]
    left = min(b.x0 for b in boxes) / fig.dpi
    right = fig.get_figwidth() - max(b.x1 for b in boxes) / fig.dpi
    assert abs(left - right) < 0.1, (left, right)
    assert left >= 0 and right >= 0  # nothing moved off the figure
