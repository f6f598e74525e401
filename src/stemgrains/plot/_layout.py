"""Layout helpers shared by the map figures (orientation, quality and transport maps).

* :func:`wrap_text`, :func:`set_wrapped_title`, :func:`set_wrapped_suptitle` – titles wrapped to the width they
  have (a narrow figure of a tall map cut a long title at both sides).
* :func:`map_colorbar` – the colour bar under a wide map, beside any other; slim beside a tall one.
* :func:`thin_colorbar_ticks` – fewer ticks on a horizontal colour bar until its labels stand apart.
* :func:`trim_blank` – shrink a figure by the blank space its constrained layout leaves beside a map's image.
* :func:`tidy_short_axes` – one tick along a map of one or two rows (columns): a line scan's three overlapped.
"""

from __future__ import annotations

import textwrap
from typing import Any

import numpy as np

__all__ = ["is_wide", "is_tall", "wrap_text", "text_width_in", "set_wrapped_title", "set_wrapped_suptitle",
           "map_colorbar", "thin_colorbar_ticks", "trim_blank", "tidy_short_axes", "settle_blank"]

#: a character's mean width as a share of the font size (DejaVu Sans measures about 0.5: a margin kept)
_CHAR_WIDTH = 0.55


def is_wide(shape: tuple[int, int]) -> bool:
    """A map of (rows, cols) ``shape`` whose colour bar goes under it (beside it, it stood several times the map's
    height)."""
    return shape[0] < 0.5 * shape[1]


def is_tall(shape: tuple[int, int]) -> bool:
    """A map over twice as tall as wide: its colour bar (:func:`map_colorbar`) shorter and slimmer than the map's
    full height would make it."""
    return shape[0] > 2 * shape[1]


def wrap_text(text: str, width_in: float, fontsize: float) -> str:
    """``text`` with each line wrapped to what ``width_in`` inches hold at ``fontsize`` (at least 16 characters),
    into lines of even length (not a last line of one word)."""
    chars = max(16, int(width_in * 72 / (_CHAR_WIDTH * fontsize)))
    out = []
    for line in text.split("\n"):
        lines = textwrap.wrap(line, chars) or [""]
        width = -(-len(line) // len(lines))
        while len(lines) > 1 and width < chars and len(textwrap.wrap(line, width)) > len(lines):
            width += 1
        out += textwrap.wrap(line, width) if len(lines) > 1 else lines
    return "\n".join(out)


def text_width_in(text: str, lines: int, fontsize: float = 10) -> float:
    """The width (inches) in which :func:`wrap_text` wraps ``text`` into at most ``lines`` lines at ``fontsize``
    (points), plus the words' slack: the estimate :func:`wrap_text` itself uses, ``_CHAR_WIDTH`` of the font size
    per character."""
    chars = -(-len(text) // max(1, lines)) + 6  # a line breaks at a word: up to a word's length to spare
    return chars * _CHAR_WIDTH * fontsize / 72


def set_wrapped_title(ax: Any, text: str, pad: float = 6, share: float = 0.62) -> None:
    """The axes title at its current font size, each line wrapped to ``share`` of the figure width (the axes'
    share of it beside a colour bar)."""
    size = ax.title.get_fontsize()
    ax.set_title(wrap_text(text, share * ax.figure.get_figwidth(), size), fontsize=size, pad=pad)


def set_wrapped_suptitle(fig: Any, text: str, fontsize: float = 10) -> None:
    """The figure title, wrapped to the figure width (over the figure, not the axes: a tall narrow map's axes
    would let a long title run off the figure's edge)."""
    fig.suptitle(wrap_text(text, fig.get_figwidth(), fontsize), fontsize=fontsize)


def map_colorbar(fig: Any, ax: Any, mappable: Any, label: str, shape: tuple[int, int] | None = None, *,
                 shrink: float = 0.9, **kwargs: Any) -> Any:
    """The colour bar of a map of (rows, cols) ``shape`` (default: of the axes' first image): under a wide map
    (:func:`is_wide`), beside any other with ``shrink``; beside a tall map (:func:`is_tall`) slimmer and with small
    extend triangles (at the bar's default width they stood a third of an inch tall). ``kwargs`` go to
    ``fig.colorbar``."""
    from matplotlib.colors import LogNorm

    if shape is None:
        shape = np.shape(ax.images[0].get_array())[:2] if ax.images else (1, 1)
    if is_wide(shape):
        cbar = fig.colorbar(mappable, ax=ax, label=label, location="bottom", shrink=0.6, aspect=40, **kwargs)
        if isinstance(mappable.norm, LogNorm):  # its labelled minor ticks overlapped side by side: 1 and 3 per decade
            from matplotlib.ticker import LogFormatterSciNotation, LogLocator, NullFormatter

            cbar.ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 3.0)))
            cbar.ax.xaxis.set_major_formatter(LogFormatterSciNotation(labelOnlyBase=False))
            cbar.ax.xaxis.set_minor_formatter(NullFormatter())
        return cbar
    if is_tall(shape):  # its full height and default width made a broad bar with large triangles
        shrink, kwargs = min(shrink, 0.7), {"aspect": 36, "extendfrac": 0.03, **kwargs}
    return fig.colorbar(mappable, ax=ax, label=label, shrink=shrink, **kwargs)


def thin_colorbar_ticks(cbar: Any, symmetric: bool = False, gap_pt: float = 6.0) -> None:
    """On a horizontal colour bar, fewer major ticks (``MaxNLocator``, ``symmetric`` about 0 for a diverging scale)
    until its tick labels stand at least ``gap_pt`` points apart (long labels such as ``−0.0010`` overlapped under
    a wide map). Draws the figure: call it once the figure's layout is final."""
    from matplotlib.ticker import MaxNLocator

    fig = cbar.ax.figure
    for nbins in (None, 6, 4, 3, 2):
        if nbins is not None:
            cbar.locator = MaxNLocator(nbins=nbins, symmetric=symmetric)
        fig.draw_without_rendering()
        frame = cbar.ax.get_window_extent()
        boxes = sorted((b.x0, b.x1) for b in (t.get_window_extent() for t in cbar.ax.xaxis.get_ticklabels()
                                              if t.get_visible() and t.get_text())
                       if frame.x0 - 1 <= 0.5 * (b.x0 + b.x1) <= frame.x1 + 1)
        gap = gap_pt * fig.dpi / 72
        if all(b[0] - a[1] >= gap for a, b in zip(boxes, boxes[1:])):
            return


def _covered(fig: Any, along: int) -> float:
    """Inches along x (``along`` 0) or y (1) covered by the figure's axes and texts (suptitle), labels included:
    the figure's length less the blank between and beside them."""
    spans = sorted((b.x0, b.x1) if along == 0 else (b.y0, b.y1)
                   for b in (a.get_tightbbox() for a in [*fig.axes, *fig.texts] if a.get_visible()) if b is not None)
    total, end = 0.0, -np.inf
    for lo, hi in spans:
        total += max(0.0, hi - max(lo, end))
        end = max(end, hi)
    return total / fig.dpi


def _sizes(fig: Any, ax: Any) -> np.ndarray:
    """(width, height) in inches of every axes of the figure but ``ax``, as drawn."""
    return np.array([[b.width, b.height] for b in (a.get_position() for a in fig.axes if a is not ax)]).reshape(-1, 2) \
        * fig.get_size_inches()


def trim_blank(fig: Any, ax: Any, axis: str = "y", min_in: float = 0.0, gridspec: Any = None, tries: int = 3) -> None:
    """Shrink the figure by the blank space its constrained layout leaves beside ``ax``'s fixed-aspect image (the
    slot is taller, ``axis="y"``, or wider, ``axis="x"``, than the image), down to ``min_in`` inches. With
    ``gridspec`` (``axis="x"``), only ``ax``'s column narrows: its width ratio shrinks to the image's width, the
    other columns about keep their width. Draws the figure.

    The cut is the blank between and beside everything drawn (not the blank of the slot: the layout's margins grow
    as the slot closes in on the labels beside the image, so that cut overshoots); should the image still end up
    filling its slot the other way, that blank, scaled by the image's aspect, is given back. Should the cut shrink
    another axes by over a tenth (a colour bar's box is a share of the map's slot: under a map of one row, the bar
    shrank to a stub), the largest cut that does not is found by bisection."""
    along = 0 if axis == "x" else 1
    fig.draw_without_rendering()
    size0, others0 = fig.get_size_inches().copy(), _sizes(fig, ax)
    ratios0 = None if gridspec is None or along else list(gridspec.get_width_ratios() or [1.0] * gridspec.ncols)
    col, slot0 = ax.get_subplotspec().colspan.start, ax.get_position(original=True).width * size0[0]

    def apply(total: float) -> bool:
        """Cut ``total`` inches off the original figure; True where no other axes shrank."""
        if ratios0 is not None:
            gridspec.set_width_ratios([r * (1.0 - total / slot0) if k == col else r for k, r in enumerate(ratios0)])
        size = size0.copy()
        size[along] -= total
        fig.set_size_inches(*size)
        fig.draw_without_rendering()
        return bool(np.all(_sizes(fig, ax) >= 0.9 * others0 - 0.02))

    total = 0.0
    for _ in range(tries):
        size = fig.get_size_inches()
        slot, box = ax.get_position(original=True), ax.get_position()
        image = (box.width * size[0], box.height * size[1])
        blank = (slot.width * size[0] - image[0], slot.height * size[1] - image[1])
        if blank[along] >= 0.03:
            cut = max(0.0, min(blank[along], size[along] - _covered(fig, along) - 0.1, size[along] - min_in))
        elif blank[1 - along] >= 0.03 and total > 0:  # cut too much: give back
            cut = -min(total, blank[1 - along] * image[along] / max(image[1 - along], 1e-9))
        else:
            break
        if abs(cut) < 0.02:
            break
        total += cut
        if ratios0 is not None:  # (the column's width ratio in proportion to its slot, as measured now)
            ratios = list(gridspec.get_width_ratios())
            ratios[col] *= 1.0 - cut / (slot.width * size[0])
            gridspec.set_width_ratios(ratios)
        size[along] -= cut
        fig.set_size_inches(*size)
        fig.draw_without_rendering()
    if total <= 0 or np.all(_sizes(fig, ax) >= 0.9 * others0 - 0.02):
        return
    lo, hi = 0.0, total  # no other axes shrank at lo; one did at hi
    for _ in range(6):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if apply(mid) else (lo, mid)
    apply(lo)


def tidy_short_axes(fig: Any) -> None:
    """On each axes of ``fig`` showing a map image of one or two rows (columns), a single tick at the map's middle
    along that axis: on the strip a line scan makes (a fifth of an inch), the three ticks matplotlib chose
    overlapped."""
    for ax in fig.axes:
        for im in ax.images[:1]:
            shape = np.shape(im.get_array())
            if len(shape) < 2:
                continue
            x0, x1, y0, y1 = im.get_extent()
            if shape[0] <= 2:
                ax.set_yticks([0.5 * (y0 + y1)])
            if shape[1] <= 2:
                ax.set_xticks([0.5 * (x0 + x1)])


def _content_in(fig: Any) -> tuple[float, float, float]:
    """(left, right, top) in inches from the figure's left and bottom edges of everything its axes draw, labels
    included."""
    boxes = [b for b in (a.get_tightbbox() for a in fig.axes if a.get_visible()) if b is not None]
    return (min(b.x0 for b in boxes) / fig.dpi, max(b.x1 for b in boxes) / fig.dpi, max(b.y1 for b in boxes) / fig.dpi)


def settle_blank(fig: Any, pad_in: float = 0.1) -> None:
    """Freeze the figure's layout where it stands and close two blanks the constrained layout leaves around a map
    whose figure size was set for its title: the axes (map and colour bar, with their labels) moved sideways to
    the middle of the figure (a tall map stood at the right edge, against its colour bar, beside a blank as wide as
    itself), and the band between the figure title (``fig.suptitle``) and the axes cut to ``pad_in`` inches (over
    a line scan it was ~0.4 in). Draws the figure; the layout engine is off afterwards (moving an axes by hand is
    otherwise undone at the next draw). Does nothing to a figure without axes."""
    if not fig.axes:
        return
    fig.draw_without_rendering()
    fig.set_layout_engine("none")
    width, height = fig.get_size_inches()
    left, right, top = _content_in(fig)
    shift = 0.5 * ((width - right) - left)  # inches to the right
    title = getattr(fig, "_suptitle", None)
    gap = 0.0
    if title is not None and title.get_text():
        gap = max(0.0, title.get_window_extent().y0 / fig.dpi - top - pad_in)
    if abs(shift) < 0.02 and gap < 0.02:
        return
    boxes = [(a, a.get_position()) for a in fig.axes]
    new_height = height - gap
    fig.set_size_inches(width, new_height)
    for a, b in boxes:  # the same inches from the bottom edge; sideways by shift
        a.set_position([b.x0 + shift / width, b.y0 * height / new_height, b.width, b.height * height / new_height])
    fig.draw_without_rendering()
