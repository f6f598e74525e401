"""The one IPF colour key of the project, and the drawing of that key.

Every figure that colours orientations (``orientation_ipf_z.png``, ``grains_ipf.png``, ``grains_random.png``'s
companion, ``grain_traces.png``, ``boundary_behaviour.png``) takes its colours from :func:`ipf_color_key`:
orix's ``IPFColorKeyTSL`` of the phase's **Laue group** for a sample direction (default z, the beam), and draws
its key with :func:`draw_ipf_keys` (orix's ``"ipf"`` axes: the fundamental sector with its pole labels, filled
by :func:`ipf_key_image` from the same key). The colour functions are pure (orientation → RGB) and testable
without drawing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..crystal.symmetry import laue_group

__all__ = [
    "NOT_INDEXED_RGB",
    "NO_ORIENTATION_RGB",
    "ipf_color_key",
    "orientation_colors",
    "map_ipf_colors",
    "grain_ipf_colors",
    "ipf_key_image",
    "draw_ipf_keys",
]

#: Colour of not-indexed map pixels.
NOT_INDEXED_RGB = (0.0, 0.0, 0.0)
#: Colour of grains without a finite mean orientation or with an unknown phase.
NO_ORIENTATION_RGB = (0.6, 0.6, 0.6)


def ipf_color_key(symmetry: Any, direction: tuple[float, float, float] = (0.0, 0.0, 1.0)) -> Any:
    """orix ``IPFColorKeyTSL`` for the Laue group of ``symmetry`` (a ``Phase`` or point group) and the sample
    ``direction`` (x, y, z; default z, the beam, into the specimen)."""
    from orix.plot import IPFColorKeyTSL
    from orix.vector import Vector3d

    return IPFColorKeyTSL(laue_group(symmetry), direction=Vector3d(np.asarray(direction, dtype=np.float64)))


def orientation_colors(quaternions: Any, symmetry: Any, direction: tuple[float, float, float] = (0.0, 0.0, 1.0),
                       ) -> np.ndarray:
    """RGB in [0, 1], ``(n, 3)``, of orientations ``(n, 4)`` (orix convention, scalar first) under
    :func:`ipf_color_key`; rows that are not finite unit quaternions get :data:`NO_ORIENTATION_RGB`."""
    from orix.quaternion import Orientation

    q = np.asarray(quaternions, dtype=np.float64).reshape(-1, 4)
    rgb = np.tile(np.asarray(NO_ORIENTATION_RGB), (len(q), 1))
    norm = np.linalg.norm(np.nan_to_num(q), axis=1)
    ok = np.all(np.isfinite(q), axis=1) & (norm > 1e-9)
    if ok.any():
        laue = laue_group(symmetry)
        ori = Orientation(q[ok] / norm[ok, None], symmetry=laue)
        rgb[ok] = np.clip(ipf_color_key(laue, direction).orientation2color(ori), 0.0, 1.0)
    return rgb


def map_ipf_colors(xmap: Any, direction: tuple[float, float, float] = (0.0, 0.0, 1.0)) -> np.ndarray:
    """``(ny, nx, 3)`` IPF colours of every pixel of an orix ``CrystalMap`` (any shape, 1 × 1 up);
    :data:`NOT_INDEXED_RGB` where not indexed or where the phase has no point group."""
    from .._grid import map_shape

    ny, nx = map_shape(xmap)
    rgb = np.tile(np.asarray(NOT_INDEXED_RGB, dtype=np.float64), (ny * nx, 1))
    in_data = np.asarray(xmap.is_in_data, dtype=bool).ravel()  # full grid; phase_id/rotations: points in data
    pid = np.asarray(xmap.phase_id).ravel()
    rot = np.asarray(xmap.rotations.data).reshape(len(pid), -1, 4)[:, 0]  # the best of several per point
    vals = np.tile(np.asarray(NOT_INDEXED_RGB, dtype=np.float64), (len(pid), 1))
    for i, phase in xmap.phases:
        if i < 0 or phase.point_group is None:
            continue
        sel = pid == i
        if sel.any():
            vals[sel] = orientation_colors(rot[sel], phase, direction)
    rgb[in_data] = vals
    return rgb.reshape(ny, nx, 3)


def grain_ipf_colors(grain_map: Any, direction: tuple[float, float, float] = (0.0, 0.0, 1.0)) -> np.ndarray:
    """``(n_grains, 3)`` IPF colour of each grain's mean orientation, row i ↔ ``grain_map.table`` row i;
    :data:`NO_ORIENTATION_RGB` for grains without a finite mean orientation or of an unknown phase."""
    table = grain_map.table
    n = len(table)
    rgb = np.tile(np.asarray(NO_ORIENTATION_RGB), (n, 1))
    if n == 0 or "mean_quaternion" not in table:
        return rgb
    q = np.asarray(table["mean_quaternion"], dtype=np.float64).reshape(n, 4)
    pid = np.asarray(table["phase_id"]).astype(np.int64)
    for i, phase in _phase_items(grain_map.phases):
        rows = np.flatnonzero(pid == i)
        if len(rows) and phase.point_group is not None:
            rgb[rows] = orientation_colors(q[rows], phase, direction)
    return rgb


def _phase_items(phases: Any) -> list[tuple[int, Any]]:
    from orix.crystal_map import Phase, PhaseList

    if phases is None:
        return []
    if isinstance(phases, Phase):
        phases = PhaseList(phases)
    return [(int(i), p) for i, p in phases if int(i) >= 0]


def ipf_key_image(laue: Any, n: int = 240, direction: tuple[float, float, float] = (0.0, 0.0, 1.0),
                  ) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """RGBA image of :func:`ipf_color_key` over the Laue group's fundamental sector (upper hemisphere).

    A regular ``n``-step grid in the stereographic plane is mapped back to crystal directions and coloured by
    the key's direction colours; directions outside the sector are transparent. Returns the image (rows top →
    bottom, i.e. for ``imshow(origin="upper")``) and its ``imshow`` extent in stereographic coordinates, ready
    for an orix ``"ipf"`` axes (:func:`draw_ipf_keys`).
    """
    from orix.projections import StereographicProjection
    from orix.vector import Vector3d

    laue = laue_group(laue)
    sector = laue.fundamental_sector
    x, y = StereographicProjection().vector2xy(sector.edges)
    x0, x1, y0, y1 = float(np.min(x)), float(np.max(x)), float(np.min(y)), float(np.max(y))
    step = max(x1 - x0, y1 - y0, 1e-6) / n
    gx, gy = np.meshgrid(np.arange(x0, x1 + step, step), np.arange(y0, y1 + step, step))
    den = 1.0 + gx**2 + gy**2
    v = Vector3d(np.stack([2.0 * gx / den, 2.0 * gy / den, (1.0 - gx**2 - gy**2) / den], -1).reshape(-1, 3))
    inside = np.asarray(v <= sector).reshape(gx.shape)
    rgba = np.zeros(gx.shape + (4,))
    rgba[..., :3] = 1.0
    key = ipf_color_key(laue, direction).direction_color_key
    rgba[inside, :3] = np.clip(key.direction2color(v[inside.ravel()]), 0.0, 1.0)
    rgba[inside, 3] = 1.0
    half = step / 2.0
    return rgba[::-1], (gx.min() - half, gx.max() + half, gy.min() - half, gy.max() + half)


def draw_ipf_keys(fig: Any, slots: list[Any], phases: Any, direction: tuple[float, float, float] = (0.0, 0.0, 1.0),
                  phase_ids: Any = None) -> list[Any]:
    """Draw the IPF colour key of each Laue group present (at most ``len(slots)``) into the subplot ``slots``.

    A single slot is split to hold one key per Laue group. Each key is an orix ``"ipf"`` axes (the fundamental sector, its pole labels) filled with
    :func:`ipf_key_image`, titled with the sample direction, the phase name(s) and the Laue group.
    ``phase_ids``: only these phases (default: every phase of ``phases``). Returns the key axes.
    """
    import orix.plot  # noqa: F401  (registers the "ipf" projection)
    from orix.vector import Vector3d

    wanted = None if phase_ids is None else {int(i) for i in np.asarray(phase_ids).ravel().tolist()}
    groups: list[tuple[Any, list[str]]] = []
    for i, phase in _phase_items(phases):
        if phase.point_group is None or (wanted is not None and i not in wanted):
            continue
        laue = laue_group(phase)
        for lg, names in groups:
            if lg.name == laue.name:
                names.append(phase.name)
                break
        else:
            groups.append((laue, [phase.name]))
    d = np.asarray(direction, dtype=float)
    axis_name = "xyz"[int(np.argmax(np.abs(d)))] if np.count_nonzero(d) == 1 else ",".join(f"{v:g}" for v in d)
    if len(slots) == 1 and len(groups) > 1 and hasattr(slots[0], "subgridspec"):  # one slot: stack the keys in it
        sub = slots[0].subgridspec(len(groups), 1)
        slots = [sub[k] for k in range(len(groups))]
    axes = []
    for slot, (laue, names) in zip(slots, groups):
        ax = fig.add_subplot(slot, projection="ipf", symmetry=laue, direction=Vector3d(d))
        ax.stereographic_grid(False)
        img, extent = ipf_key_image(laue, direction=direction)
        ax.imshow(img, extent=extent, zorder=0, interpolation="bilinear")
        ax.set_title(f"IPF-{axis_name} key: {', '.join(names)} ({laue.name})", fontsize=8, pad=14)
        for txt in ax.texts:
            txt.set_fontsize(7)
        axes.append(ax)
    return axes
