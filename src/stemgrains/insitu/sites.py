"""Where on the grain map an event sits: boundary segment, triple junction, grain interior, electrode interface
or map edge — and the enrichment of events on boundaries of each label/behaviour.

Geometry (map frame, nm; scan pixel ``(row, col)`` centred at ``(x, y) = (col, row) · scan_step_nm``): boundaries
are the pixel edges between 4-connected pixels of two grains (``BoundaryTable.pairs``: unit lines of the pixel
grid, each belonging to one segment; distances are to the nearest such line); triple junctions are the pixel corners of ``BoundaryTable.triple_junctions``; the
map border runs half a pixel outside the outermost pixel centres; the electrode interface is the part of the
border named by the electrodes (``left``, ``right``, ``top``, ``bottom``). An event within ``tolerance_nm`` of a
triple junction is ``triple_junction``; else within it of the interface ``interface``; else of a boundary
``boundary`` (the nearest edge's segment); else of the border ``edge``; else ``interior``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from .._table import Table
from ..errors import ParameterError

__all__ = ["SiteMap", "SITES", "EDGES", "enrichment"]

SITES = ("boundary", "triple_junction", "interior", "interface", "edge")
EDGES = ("left", "right", "top", "bottom")


@dataclass
class SiteMap:
    """Sites of a grain map for event attribution.

    Attributes
    ----------
    labels
        ``(ny, nx)`` grain labels.
    scan_step_nm
        Map pixel size, nm.
    edge_xy, edge_segment
        ``(m, 2)`` pixel-edge midpoints ``(x, y)`` nm and their segment ids.
    tj_xy
        ``(t, 2)`` triple-junction positions ``(x, y)`` nm.
    segments
        Table of the segments: ``segment_id``, ``boundary_id``, ``grain_a``, ``grain_b``, ``length_nm``, ``label``,
        ``behaviour`` (empty strings when there is no classification).
    interface
        Names of the map edges that are electrode interfaces.
    grain_trace_deg
        In-plane trace angle of each grain's conduction planes (grain id → degrees from +x toward +y; NaN when the
        planes are flat, i.e. nearly parallel to the lamella).
    grain_conducting
        Whether each grain (id →) is of a conducting phase, one with Na⁺ conduction planes (the classification's
        ``conducting_phases``, else :func:`stemgrains.boundaries.classify.conducting_phase_ids`); grains not listed count as
        conducting.
    """

    labels: np.ndarray
    scan_step_nm: float
    edge_xy: np.ndarray
    edge_segment: np.ndarray
    tj_xy: np.ndarray
    segments: Table
    interface: tuple[str, ...] = ()
    grain_trace_deg: dict[int, float] = field(default_factory=dict)
    grain_conducting: dict[int, bool] = field(default_factory=dict)
    _tree: Any = field(default=None, repr=False)
    _tj_tree: Any = field(default=None, repr=False)

    @classmethod
    def from_results(cls, grain_map: Any, boundaries: Any, classification: Any = None,
                     interface: tuple[str, ...] = ()) -> "SiteMap":
        """Build from a GrainMap, its BoundaryTable and (optionally) a BoundaryClassification."""
        bad = [e for e in interface if e not in EDGES]
        if bad:
            raise ParameterError(f"electrode interface edges must be among {', '.join(EDGES)}, got {', '.join(bad)}")
        s = float(grain_map.scan_step_nm)
        pairs = boundaries.pairs
        ex = (np.asarray(pairs["col_a"], float) + np.asarray(pairs["col_b"], float)) / 2 * s
        ey = (np.asarray(pairs["row_a"], float) + np.asarray(pairs["row_b"], float)) / 2 * s
        tj = boundaries.triple_junctions
        tj_xy = (np.stack([np.asarray(tj["col"], float), np.asarray(tj["row"], float)], -1) * s
                 if len(tj) else np.zeros((0, 2)))
        seg = boundaries.segments
        n = len(seg)
        label = np.full(n, "", dtype=object)
        behaviour = np.full(n, "", dtype=object)
        if classification is not None and len(classification.segments):
            cs = classification.segments
            pos = {int(k): i for i, k in enumerate(np.asarray(cs["segment_id"]))}
            for i, sid in enumerate(np.asarray(seg["segment_id"])):
                j = pos.get(int(sid))
                if j is not None:
                    label[i] = str(cs["label"][j])
                    behaviour[i] = str(cs["behaviour"][j])
        table = Table({"segment_id": np.asarray(seg["segment_id"], np.int64),
                       "boundary_id": np.asarray(seg["boundary_id"], np.int64),
                       "grain_a": np.asarray(seg["grain_a"], np.int64), "grain_b": np.asarray(seg["grain_b"], np.int64),
                       "length_nm": np.asarray(seg["length_nm"], float),
                       "label": label.astype(str), "behaviour": behaviour.astype(str)})
        gt = grain_map.table
        traces = {int(i): float(t) for i, t in zip(np.asarray(gt["id"]), np.asarray(gt["trace_angle_deg"], float))}
        return cls(np.asarray(grain_map.labels), s, np.stack([ex, ey], -1).reshape(-1, 2),
                   np.asarray(pairs["segment_id"], np.int64), tj_xy, table, tuple(interface), traces,
                   _conducting_grains(grain_map, classification))

    # -- electrode interface -------------------------------------------------------------------------
    def plane_class(self, grain: int, edge: str) -> str:
        """How grain ``grain``'s conduction planes meet the map edge ``edge``: ``"planes toward electrode"`` when
        their in-plane trace is within 45° of the edge normal (Na⁺ channels run into the electrode), ``"planes
        along electrode"`` otherwise, ``"planes flat"`` when they have no trace (nearly parallel to the lamella),
        ``"no conduction planes"`` for a grain of a phase without them (e.g. Au; a map whose classification does not
        apply), ``"unassigned"`` for pixels of no grain."""
        if grain <= 0:
            return "unassigned"
        if not self.grain_conducting.get(int(grain), True):
            return "no conduction planes"
        t = self.grain_trace_deg.get(int(grain), float("nan"))
        if not np.isfinite(t):
            return "planes flat"
        normal = 0.0 if edge in ("left", "right") else 90.0
        d = abs(((t - normal + 90.0) % 180.0) - 90.0)
        return "planes toward electrode" if d < 45.0 else "planes along electrode"

    def interface_pieces(self) -> Table:
        """The electrode interface pixel by pixel: ``edge``, ``grain``, ``length_nm`` (one scan step), ``class``
        (:meth:`plane_class`), ``x_nm``, ``y_nm`` (the centre of the border pixel)."""
        rows: dict[str, list] = {"edge": [], "grain": [], "length_nm": [], "class": [], "x_nm": [], "y_nm": []}
        ny, nx = self.labels.shape
        s = self.scan_step_nm
        border = {"left": [(r, 0) for r in range(ny)], "right": [(r, nx - 1) for r in range(ny)],
                  "top": [(0, c) for c in range(nx)], "bottom": [(ny - 1, c) for c in range(nx)]}
        for e in self.interface:
            for r, c in border[e]:
                g = int(self.labels[r, c])
                rows["edge"].append(e)
                rows["grain"].append(g)
                rows["length_nm"].append(s)
                rows["class"].append(self.plane_class(g, e))
                rows["x_nm"].append(c * s)
                rows["y_nm"].append(r * s)
        return Table({"edge": np.asarray(rows["edge"], dtype=str), "grain": np.asarray(rows["grain"], np.int64),
                      "length_nm": np.asarray(rows["length_nm"], float), "class": np.asarray(rows["class"], dtype=str),
                      "x_nm": np.asarray(rows["x_nm"], float), "y_nm": np.asarray(rows["y_nm"], float)})

    def imaged(self, inside: Any) -> tuple[Table, Table | None]:
        """The segments and interface pieces as far as a series imaged them: ``length_nm`` of each segment scaled
        by the fraction of its pixel edges whose midpoints ``inside(x_nm, y_nm)`` (bool array) accepts, and only
        the interface pieces whose border pixel it accepts (None without an interface). The enrichment's expected
        counts must come from the boundary length the frames showed: events can only be found there."""
        seg = self.segments
        length = np.asarray(seg["length_nm"], float).copy() if len(seg) else np.zeros(0)
        if len(self.edge_xy) and len(seg):
            ok = np.asarray(inside(self.edge_xy[:, 0], self.edge_xy[:, 1]), bool)
            ids = np.asarray(seg["segment_id"])
            for i, sid in enumerate(ids):
                on = self.edge_segment == sid
                length[i] *= float(ok[on].mean()) if on.any() else 0.0
        segments = Table({**{k: seg[k] for k in seg}, "length_nm": length})
        if not self.interface:
            return segments, None
        pieces = self.interface_pieces()
        keep = np.asarray(inside(pieces["x_nm"], pieces["y_nm"]), bool) if len(pieces) else np.zeros(0, bool)
        return segments, Table({k: np.asarray(pieces[k])[keep] for k in pieces})

    # -- geometry ------------------------------------------------------------------------------------
    @property
    def extent_nm(self) -> tuple[float, float, float, float]:
        """Map border ``(x_min, x_max, y_min, y_max)`` nm (half a pixel outside the outer pixel centres)."""
        ny, nx = self.labels.shape
        s = self.scan_step_nm
        return (-0.5 * s, (nx - 0.5) * s, -0.5 * s, (ny - 0.5) * s)

    def _edge_distances(self, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
        x0, x1, y0, y1 = self.extent_nm
        inside_y = np.clip(y, y0, y1)
        inside_x = np.clip(x, x0, x1)
        return {"left": np.hypot(x - x0, y - inside_y), "right": np.hypot(x - x1, y - inside_y),
                "top": np.hypot(y - y0, x - inside_x), "bottom": np.hypot(y - y1, x - inside_x)}

    def grain_at(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Grain label of the map pixel containing each point (−1 outside the map)."""
        ny, nx = self.labels.shape
        c = np.rint(np.asarray(x) / self.scan_step_nm).astype(int)
        r = np.rint(np.asarray(y) / self.scan_step_nm).astype(int)
        ok = (r >= 0) & (r < ny) & (c >= 0) & (c < nx)
        out = np.full(np.shape(x), -1, dtype=np.int64)
        out[ok] = self.labels[r[ok], c[ok]]
        return out

    def attribute(self, x_nm: Any, y_nm: Any, tolerance_nm: float) -> Table:
        """Site of each point ``(x_nm, y_nm)``.

        Returns a Table with ``site``, ``segment_id``, ``boundary_id``, ``grain_a``, ``grain_b``, ``label``,
        ``behaviour``, ``distance_nm`` (to the attributed site; for ``interior`` to the nearest boundary) and
        ``interface_class`` (:meth:`plane_class` of interface events, else empty).
        """
        if not (np.isfinite(tolerance_nm) and tolerance_nm > 0):
            raise ParameterError(f"tolerance must be a positive distance in nm, got {tolerance_nm!r}")
        x = np.atleast_1d(np.asarray(x_nm, float))
        y = np.atleast_1d(np.asarray(y_nm, float))
        n = len(x)
        pts = np.stack([x, y], -1)
        if self._tree is None and len(self.edge_xy):
            self._tree = cKDTree(self.edge_xy)
        if self._tj_tree is None and len(self.tj_xy):
            self._tj_tree = cKDTree(self.tj_xy)
        d_b, i_b = self._edge_distance(pts)
        d_tj = (np.asarray(self._tj_tree.query(pts)[0], float) if self._tj_tree is not None and n
                else np.full(n, np.inf))
        ed = self._edge_distances(x, y)
        if self.interface and n:
            d_all = np.stack([ed[e] for e in self.interface])
            d_if, if_edge = d_all.min(0), d_all.argmin(0)
        else:
            d_if, if_edge = np.full(n, np.inf), np.zeros(n, dtype=np.int64)
        d_edge = np.min([ed[e] for e in EDGES], axis=0) if n else np.zeros(0)
        site = np.full(n, "interior", dtype=object)
        dist = d_b.copy()
        seg_row = np.full(n, -1, dtype=np.int64)
        for k in range(n):
            if d_tj[k] <= tolerance_nm:
                site[k], dist[k] = "triple_junction", d_tj[k]
            elif d_if[k] <= tolerance_nm:
                site[k], dist[k] = "interface", d_if[k]
            elif d_b[k] <= tolerance_nm:
                site[k], dist[k] = "boundary", d_b[k]
                seg_row[k] = self._segment_row(int(self.edge_segment[i_b[k]]))
            elif d_edge[k] <= tolerance_nm:
                site[k], dist[k] = "edge", d_edge[k]
        g = self.grain_at(x, y)
        if_class = np.array([self.plane_class(int(g[k]), self.interface[if_edge[k]]) if site[k] == "interface" else ""
                             for k in range(n)], dtype=object)
        seg = self.segments
        has = seg_row >= 0
        out = {
            "site": site.astype(str),
            "segment_id": np.where(has, seg["segment_id"][seg_row] if len(seg) else -1, -1),
            "boundary_id": np.where(has, seg["boundary_id"][seg_row] if len(seg) else -1, -1),
            "grain_a": np.where(has, seg["grain_a"][seg_row] if len(seg) else -1,
                                np.where(np.isin(site, ("interior", "interface", "edge")), g, -1)),
            "grain_b": np.where(has, seg["grain_b"][seg_row] if len(seg) else -1, -1),
            "label": np.where(has, seg["label"][seg_row] if len(seg) else "", ""),
            "behaviour": np.where(has, seg["behaviour"][seg_row] if len(seg) else "", ""),
            "distance_nm": dist,
            "interface_class": if_class.astype(str),
        }
        return Table(out)

    def boundaries_reached(self, x_nm: Any, y_nm: Any, tolerance_nm: float) -> list[int]:
        """Ids of the boundaries one of whose pixel edges (midpoint) lies within ``tolerance_nm`` of any of the
        points ``(x_nm, y_nm)`` (e.g. an event's footprint), ascending."""
        x = np.atleast_1d(np.asarray(x_nm, float))
        if not len(self.edge_xy) or not len(x):
            return []
        if self._tree is None:
            self._tree = cKDTree(self.edge_xy)
        pts = np.stack([x, np.atleast_1d(np.asarray(y_nm, float))], -1)
        near = cKDTree(pts).query_ball_tree(self._tree, r=tolerance_nm + 0.5 * self.scan_step_nm)
        edges = np.unique(np.concatenate([np.asarray(i, np.int64) for i in near])) if near else np.zeros(0, np.int64)
        if not len(edges):
            return []
        seg_ids = np.unique(self.edge_segment[edges])
        ids = np.asarray(self.segments["segment_id"])
        bids = np.asarray(self.segments["boundary_id"])[np.isin(ids, seg_ids)]
        return sorted({int(b) for b in bids})

    def _edge_distance(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distance (nm) from each point to the nearest boundary pixel edge (a unit line of the pixel grid), and
        that edge's index; the 8 nearest edge midpoints are candidates."""
        n = len(pts)
        if self._tree is None or n == 0:
            return np.full(n, np.inf), np.zeros(n, dtype=np.int64)
        k = min(8, len(self.edge_xy))
        _, idx = self._tree.query(pts, k=k)
        idx = np.asarray(idx).reshape(n, k)
        s = self.scan_step_nm
        mid = self.edge_xy[idx]  # (n, k, 2)
        vertical = np.abs(mid[..., 0] / s - np.rint(mid[..., 0] / s)) > 0.25  # between two columns
        along = np.where(vertical, pts[:, None, 1] - mid[..., 1], pts[:, None, 0] - mid[..., 0])
        across = np.where(vertical, pts[:, None, 0] - mid[..., 0], pts[:, None, 1] - mid[..., 1])
        d = np.hypot(np.maximum(np.abs(along) - 0.5 * s, 0.0), across)
        best = np.argmin(d, axis=1)
        return d[np.arange(n), best], idx[np.arange(n), best]

    def _segment_row(self, segment_id: int) -> int:
        ids = np.asarray(self.segments["segment_id"])
        hit = np.nonzero(ids == segment_id)[0]
        return int(hit[0]) if len(hit) else -1


def _conducting_grains(grain_map: Any, classification: Any) -> dict[int, bool]:
    """Grain id → of a conducting phase (the classification's ``conducting_phases`` where it records them, else
    the phases with Na⁺ conduction planes)."""
    from ..boundaries.classify import conducting_phase_ids
    from ..errors import InputError

    recorded = (classification.parameters.get("conducting_phases") if classification is not None
                and isinstance(getattr(classification, "parameters", None), dict) else None)
    if isinstance(recorded, list):
        ids = {int(d["id"]) for d in recorded if isinstance(d, dict) and "id" in d}
    else:
        try:
            ids = set(conducting_phase_ids(grain_map.phases))
        except (InputError, AttributeError, TypeError):  # no orix PhaseList: nothing to tell, every grain counts
            return {}
    gt = grain_map.table
    return {int(i): int(p) in ids for i, p in zip(np.asarray(gt["id"]), np.asarray(gt["phase_id"]))}


def enrichment(event_sites: Table, segments: Table, interface: Table | None = None) -> Table:
    """Events per boundary label and behaviour against a uniform distribution along the boundary length.

    With ``N`` boundary events (site ``boundary``) and a class holding the fraction ``f = L_class / L_total`` of the
    boundary length: expected ``N f``, ratio observed / expected, and the exact two-sided binomial p-value of the
    observed count (``scipy.stats.binomtest(observed, N, f)``). Rows ``level = "site"`` give the count at every
    site kind (other columns NaN). With ``interface`` (:meth:`SiteMap.interface_pieces`), rows ``level =
    "interface"`` do the same for the interface events over the interface length per plane class (do filaments
    start where the conduction planes point at the electrode?).

    Parameters
    ----------
    event_sites
        Table with ``site``, ``label``, ``behaviour`` (from :meth:`SiteMap.attribute`).
    segments
        Table with ``length_nm``, ``label``, ``behaviour`` (all boundary segments of the map).
    interface
        Table with ``length_nm`` and ``class`` (pieces of the electrode interface); ``event_sites`` then needs
        ``interface_class``.

    Returns
    -------
    Table
        ``level`` (``label``/``behaviour``/``site``), ``name``, ``length_nm``, ``length_fraction``, ``observed``,
        ``expected``, ``ratio``, ``p_value``.
    """
    from scipy.stats import binomtest

    length = np.asarray(segments["length_nm"], float) if len(segments) else np.zeros(0)
    total = float(length.sum())
    site = np.asarray(event_sites["site"]).astype(str) if len(event_sites) else np.zeros(0, str)
    on_b = site == "boundary"
    n_b = int(on_b.sum())
    rows: dict[str, list] = {k: [] for k in ("level", "name", "length_nm", "length_fraction", "observed", "expected",
                                              "ratio", "p_value")}

    def add(level: str, name: str, L: float, obs: int, total: float = total, n_b: int = n_b) -> None:
        f = L / total if total > 0 else float("nan")
        exp = n_b * f if total > 0 else float("nan")
        rows["level"].append(level)
        rows["name"].append(name)
        rows["length_nm"].append(L)
        rows["length_fraction"].append(f)
        rows["observed"].append(obs)
        rows["expected"].append(exp)
        rows["ratio"].append(obs / exp if exp and exp > 0 else float("nan"))
        rows["p_value"].append(float(binomtest(obs, n_b, f).pvalue) if n_b > 0 and 0 <= f <= 1 else float("nan"))

    for level in ("label", "behaviour"):
        seg_names = np.asarray(segments[level]).astype(str) if len(segments) else np.zeros(0, str)
        ev_names = np.asarray(event_sites[level]).astype(str) if len(event_sites) else np.zeros(0, str)
        for name in sorted(set(seg_names.tolist()) - {""}):
            add(level, name, float(length[seg_names == name].sum()), int(np.sum(on_b & (ev_names == name))))
    if interface is not None and len(interface):
        il = np.asarray(interface["length_nm"], float)
        icls = np.asarray(interface["class"]).astype(str)
        ev_cls = (np.asarray(event_sites["interface_class"]).astype(str) if len(event_sites)
                  else np.zeros(0, str))
        on_i = site == "interface"
        for name in sorted(set(icls.tolist())):
            add("interface", name, float(il[icls == name].sum()), int(np.sum(on_i & (ev_cls == name))),
                total=float(il.sum()), n_b=int(on_i.sum()))
    for name in SITES:
        rows["level"].append("site")
        rows["name"].append(name)
        for k in ("length_nm", "length_fraction", "expected", "ratio", "p_value"):
            rows[k].append(float("nan"))
        rows["observed"].append(int(np.sum(site == name)))
    return Table({k: (np.asarray(v, dtype=float) if k in ("length_nm", "length_fraction", "expected", "ratio",
                                                           "p_value")
                      else np.asarray(v, dtype=np.int64) if k == "observed" else np.asarray(v, dtype=str))
                  for k, v in rows.items()})
