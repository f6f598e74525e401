"""The published 5-point finite-volume resistor network (``model="resistor"``).

One unknown per conducting pixel (its centre). Two 4-connected pixels ``a``, ``b`` exchange current through a
conductance (per unit lamella thickness; the face length ``h`` cancels the centre distance ``h``)::

    G = 1 / (1/(2 σ_a) + 1/(2 σ_b) + t_GB / (h σ_GB))

with ``σ = σ_x`` across a vertical face and ``σ_y`` across a horizontal one, and the last term only on faces
between two different grains. Electrode pixels (masks) are metal at the electrode potential; a free pixel next to
one, or on an electrode edge, is linked to it through its half pixel, ``G = 2 σ``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from ._fem import pixel_faces
from ._solve import solve_dirichlet

__all__ = ["solve_resistor"]


def solve_resistor(
    sigma: np.ndarray,
    kind: np.ndarray,
    gb_face: Callable[..., np.ndarray],
    r_gb: float,
    electrodes: list[dict],
    h: float,
    periodic_y: bool,
    periodic_x: bool,
    solver: str,
    rtol: float,
) -> dict:
    """Solve the network. ``gb_face(ra, ca, rb, cb) -> bool array`` marks grain-boundary faces; ``r_gb`` is the
    added series resistance ``t_GB/(h σ_GB)`` (``inf`` for insulating boundaries)."""
    ny, nx = kind.shape
    conducting = kind != 0
    emask = np.zeros((ny, nx), dtype=bool)
    e_index = np.full((ny, nx), -1, dtype=np.int64)
    for k, e in enumerate(electrodes):
        if e["mask"] is not None:
            new = e["mask"] & (e_index < 0)
            e_index[new] = k
            emask |= e["mask"]
    active = conducting | emask
    faces = pixel_faces(active, periodic_y, periodic_x)
    ra, ca, rb, cb, axis = faces["ra"], faces["ca"], faces["rb"], faces["cb"], faces["axis"]
    comp = np.where(axis == 1, 0, 2)  # σ_x across vertical faces (horizontal neighbours), σ_y otherwise
    sa = sigma[ra, ca, comp]
    sb = sigma[rb, cb, comp]
    fa, fb = emask[ra, ca], emask[rb, cb]
    gb = gb_face(ra, ca, rb, cb) & ~fa & ~fb
    with np.errstate(divide="ignore"):
        rfree = 0.5 / sa + 0.5 / sb + np.where(gb, r_gb, 0.0)
        g = np.where(fa & fb, 0.0, np.where(fa, 2.0 * sb, np.where(fb, 2.0 * sa, 1.0 / rfree)))
    g = np.where(conducting[ra, ca] | fa, g, 0.0) * np.where(conducting[rb, cb] | fb, 1.0, 0.0)

    # unknowns: active pixels (electrode pixels are fixed unknowns) + one node per edge electrode
    pix_id = np.full((ny, nx), -1, dtype=np.int64)
    pix_id[active] = np.arange(int(active.sum()))
    n_pix = int(active.sum())
    rows, cols, vals = [pix_id[ra, ca]], [pix_id[rb, cb]], [g]
    fixed = np.full(n_pix, np.nan)
    for k, e in enumerate(electrodes):
        if e["mask"] is not None:
            fixed[pix_id[e_index == k]] = e["potential"]
    edge_nodes = []
    edge_links = []
    n = n_pix
    for k, e in enumerate(electrodes):
        if e["edge"] is None:
            continue
        rr, cc = _edge_pixels(e["edge"], ny, nx)
        ok = conducting[rr, cc] & ~emask[rr, cc]
        rr, cc = rr[ok], cc[ok]
        ge = 2.0 * sigma[rr, cc, 0 if e["edge"] in ("left", "right") else 2]
        rows.append(pix_id[rr, cc])
        cols.append(np.full(len(rr), n))
        vals.append(ge)
        edge_nodes.append((k, n))
        edge_links.append((k, (rr, cc), ge))
        n += 1
    fixed = np.concatenate([fixed, np.full(n - n_pix, np.nan)])
    for k, node in edge_nodes:
        fixed[node] = electrodes[k]["potential"]
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    v = np.concatenate(vals)
    keep = v > 0
    r, c, v = r[keep], c[keep], v[keep]
    w = sp.coo_matrix((v, (r, c)), shape=(n, n)).tocsr()
    w = (w + w.T).tocsr()
    lap = (sp.diags(np.asarray(w.sum(axis=1)).ravel()) - w).tocsr()
    phi, floating, info = solve_dirichlet(lap, w, fixed, solver=solver, rtol=rtol)

    # electrode currents: Σ over the electrode's fixed unknowns of (L φ)
    phi0 = np.nan_to_num(phi, nan=0.0)
    inj = lap @ phi0
    currents = np.zeros(len(electrodes))
    for k, e in enumerate(electrodes):
        if e["mask"] is not None:
            currents[k] += inj[pix_id[e_index == k]].sum()
    for k, node in edge_nodes:
        currents[k] += inj[node]
    n_contacts = np.zeros(len(electrodes), dtype=np.int64)
    for k, e in enumerate(electrodes):
        if e["mask"] is not None:
            n_contacts[k] += int(np.count_nonzero(g[(e_index[ra, ca] == k) | (e_index[rb, cb] == k)]))
    for k, _, ge in edge_links:
        n_contacts[k] += int(np.count_nonzero(ge))

    # pixel fields from face currents (per unit length, flowing +x / +y)
    pot, current_density, field, floating_px, i_face = _pixel_fields(
        phi, floating, g, faces, pix_id, active, conducting, emask, sigma, edge_nodes, edge_links, electrodes, h
    )

    gb_all = gb_face(ra, ca, rb, cb)
    return {
        "potential": pot,
        "node_potential": None,
        "field": field,
        "current_density": current_density,
        "floating": floating_px & conducting,
        "electrode_currents": currents,
        "electrode_contacts": n_contacts,
        "gb_faces": {
            "ra": ra[gb_all],
            "ca": ca[gb_all],
            "rb": rb[gb_all],
            "cb": cb[gb_all],
            "axis": axis[gb_all],
            "current": np.where(floating_px[ra, ca] | floating_px[rb, cb], np.nan, i_face)[gb_all],
        },
        "solver": info,
    }


def _pixel_fields(phi: np.ndarray, floating: np.ndarray, g: np.ndarray, faces: dict, pix_id: np.ndarray,
                  active: np.ndarray, conducting: np.ndarray, emask: np.ndarray, sigma: np.ndarray, edge_nodes: list,
                  edge_links: list, electrodes: list[dict], h: float) -> tuple[np.ndarray, ...]:
    """Pixel potential, current density and field ``(ny, nx, 2)`` from the face currents of the solved network
    (per unit length, flowing +x / +y; NaN on floating pixels, 0 on electrodes and insulators), the floating
    pixels and the face currents."""
    ny, nx = active.shape
    ra, ca, rb, cb, axis = faces["ra"], faces["ca"], faces["rb"], faces["cb"], faces["axis"]
    phi0 = np.nan_to_num(phi, nan=0.0)
    pot = np.full((ny, nx), np.nan)
    pot[active] = phi[pix_id[active]]
    i_face = g * (phi0[pix_id[ra, ca]] - phi0[pix_id[rb, cb]])
    flux_x = np.zeros((ny, nx, 2))  # current through left (0) and right (1) face
    flux_y = np.zeros((ny, nx, 2))  # through top (0) and bottom (1) face
    hx = axis == 1
    np.add.at(flux_x, (ra[hx], ca[hx], 1), i_face[hx])
    np.add.at(flux_x, (rb[hx], cb[hx], 0), i_face[hx])
    np.add.at(flux_y, (ra[~hx], ca[~hx], 1), i_face[~hx])
    np.add.at(flux_y, (rb[~hx], cb[~hx], 0), i_face[~hx])
    node_of_edge = dict(edge_nodes)
    tgt = {"left": (flux_x, 0, 1.0), "right": (flux_x, 1, -1.0), "top": (flux_y, 0, 1.0), "bottom": (flux_y, 1, -1.0)}
    for k, (rr, cc), ge in edge_links:
        i_in = ge * (phi0[node_of_edge[k]] - phi0[pix_id[rr, cc]])  # into the pixel from the electrode
        arr, s, sign = tgt[electrodes[k]["edge"]]
        arr[rr, cc, s] += sign * i_in
    jx = 0.5 * (flux_x[..., 0] + flux_x[..., 1]) / h
    jy = 0.5 * (flux_y[..., 0] + flux_y[..., 1]) / h
    current_density = np.stack([jx, jy], axis=-1)
    field = np.zeros_like(current_density)
    with np.errstate(divide="ignore", invalid="ignore"):
        field[..., 0] = np.where(conducting, jx / sigma[..., 0], 0.0)
        field[..., 1] = np.where(conducting, jy / sigma[..., 2], 0.0)
    floating_px = np.zeros((ny, nx), dtype=bool)
    floating_px[active] = floating[pix_id[active]]
    current_density[emask] = 0.0
    field[emask] = 0.0
    current_density[~conducting & ~emask] = 0.0
    field[~conducting & ~emask] = 0.0
    for arr in (current_density, field):
        arr[floating_px] = np.nan
    pot[~conducting & ~emask] = np.nan
    return pot, current_density, field, floating_px, i_face


def _edge_pixels(edge: str, ny: int, nx: int) -> tuple[np.ndarray, np.ndarray]:
    if edge == "left":
        return np.arange(ny), np.zeros(ny, dtype=np.int64)
    if edge == "right":
        return np.arange(ny), np.full(ny, nx - 1, dtype=np.int64)
    if edge == "top":
        return np.zeros(nx, dtype=np.int64), np.arange(nx)
    return np.full(nx, ny - 1, dtype=np.int64), np.arange(nx)
