"""Figure of a batch (``OUTDIR/batch_summary.png``): one row per input, readable from 1 to ~100 inputs."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ..io.results import atomic_savefig

__all__ = ["plot_batch_summary", "STATUS_COLORS"]

#: bar colour per status of an input
STATUS_COLORS = {"done": "#4c72b0", "skipped": "#8fa8cf", "failed": "#e41a1c", "pending": "#bdbdbd"}


def _num(row: Mapping[str, Any], key: str) -> float:
    v = row.get(key)
    try:
        return float(v) if v not in (None, "") else np.nan
    except (TypeError, ValueError):
        return np.nan


def plot_batch_summary(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike | None = None) -> Figure | Path:
    """Bars per input: % indexed, patterns/s and median reliability, and, for ``run`` batches, the boundary
    length fraction per behaviour (stacked). Failed and pending inputs are marked in their row.

    Parameters
    ----------
    rows
        Summary rows (keys of :data:`stemgrains.batch.SUMMARY_COLUMNS`; numbers or their text).
    path
        Write the figure there (atomically) and return the path; ``None`` returns the figure.
    """
    from .classification import BEHAVIOUR_COLORS

    n = max(len(rows), 1)
    # an input with warnings (no pattern indexed, phase fit, nothing reliable) is marked "!" before its name
    names = [("! " if "warning:" in str(r.get("warnings") or "") else "") + Path(str(r.get("output", r.get("input", "")))).name
             for r in rows]
    status = [str(r.get("status", "")) for r in rows]
    from ..boundaries import BEHAVIOURS, OTHER_PHASE

    # the behaviour columns of stemgrains.batch.SUMMARY_COLUMNS, in the same order
    beh_cols = [f"behaviour_fraction_{b.replace('-', '_')}" for b in (*BEHAVIOURS, OTHER_PHASE)]
    has_beh = any(np.isfinite(_num(r, c)) for r in rows for c in beh_cols)
    panels = [("indexed_percent", "indexed (%)"), ("patterns_per_s", "patterns / s (indexing)"),
              ("median_reliability", "median reliability (of 100)")]
    ncols = len(panels) + (1 if has_beh else 0)
    label_w = min(3.5, 0.8 + 0.075 * max((len(s) for s in names), default=4))
    row_h = 0.3 if n > 12 else 0.42
    fig = Figure(figsize=(label_w + 2.7 * ncols, 1.5 + row_h * n), dpi=110, layout="constrained")
    axes = fig.subplots(1, ncols, sharey=True, squeeze=False)[0]
    y = np.arange(n)
    fs = 8 if n > 20 else 9
    for ax, (key, title) in zip(axes, panels):
        vals = np.array([_num(r, key) for r in rows]) if rows else np.full(1, np.nan)
        colors = [STATUS_COLORS.get(s, "0.5") for s in status] or ["0.5"]
        ax.barh(y, np.nan_to_num(vals), color=colors, height=0.7)
        top = np.nanmax(vals) if np.any(np.isfinite(vals)) else 1.0
        if key in ("indexed_percent", "median_reliability"):
            top = 100.0
        ax.set_xlim(0, top * (1.12 if n <= 30 else 1.0) if top > 0 else 1.0)
        for yi, v, s in zip(y, vals, status):
            if s in ("failed", "pending"):
                ax.text(top * 0.02 if top > 0 else 0.02, yi, s, va="center", fontsize=fs, color=STATUS_COLORS[s])
            elif np.isfinite(v) and n <= 30:
                ax.text(v, yi, f" {v:.3g}", va="center", fontsize=fs - 1)
        ax.set_title(title, fontsize=10)
        ax.tick_params(labelsize=fs)
        ax.grid(axis="x", alpha=0.3)
    if has_beh:
        ax = axes[-1]
        left = np.zeros(n)
        for c in beh_cols:
            vals = np.nan_to_num(np.array([_num(r, c) for r in rows]))
            name = c[len("behaviour_fraction_"):].replace("_", "-")
            ax.barh(y, vals, left=left, color=BEHAVIOUR_COLORS.get(name, "0.5"), height=0.7, label=name)
            left += vals
        for yi, s, total in zip(y, status, left):
            if s in ("failed", "pending"):
                ax.text(0.02, yi, s, va="center", fontsize=fs, color=STATUS_COLORS[s])
            elif total <= 0 and n <= 30:  # a blank row read as missing
                ax.text(0.02, yi, "no boundaries", va="center", fontsize=fs - 1, color="0.3")
        ax.set_xlim(0, 1)
        ax.set_title("boundary length fraction", fontsize=10)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.06 if n > 3 else -0.18), ncols=3, frameon=False)
        ax.tick_params(labelsize=fs)
    axes[0].set_yticks(y, names or [""], fontsize=fs)
    axes[0].set_ylim(n - 0.5, -0.5)  # first input on top
    from matplotlib.patches import Patch

    shown = [s for s in ("done", "skipped") if s in status]
    if shown:
        axes[0].legend([Patch(color=STATUS_COLORS[s]) for s in shown], [f"{s}" for s in shown], fontsize=7, ncols=2,
                       loc="upper center", bbox_to_anchor=(0.5, -0.06 if n > 3 else -0.18), frameon=False)
    counts = {s: status.count(s) for s in STATUS_COLORS if status.count(s)}
    n_warned = sum(name.startswith("! ") for name in names)
    fig.suptitle("batch: " + ", ".join(f"{v} {k}" for k, v in counts.items())
                 + (f"; ! {n_warned} with warnings (column warnings of batch_summary.csv)" if n_warned else ""), fontsize=11)
    if path is None:
        return fig
    return atomic_savefig(fig, Path(path), dpi=110)
