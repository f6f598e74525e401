"""Bilinear finite elements on the pixel grid, with grain boundaries as resistive interfaces.

Discretisation (``model="tensor"``)
-----------------------------------
* Nodes sit at pixel corners; every conducting pixel is one square bilinear element with its grain's constant
  2-D tensor ``Σ = [[a, b], [b, c]]``. The element stiffness ``K_e = ∫ ∇Nᵀ Σ ∇N`` of a square element does not
  depend on its size (2-D) and is exactly ``a·KXX + b·KXY + c·KYY`` with the 4×4 matrices below (local nodes
  0 = top-left, 1 = top-right, 2 = bottom-right, 3 = bottom-left; x along columns, y along rows). Off-diagonal
  tensors are therefore handled exactly; a uniform field is reproduced exactly.
* Grain boundaries are *interfaces* of zero thickness carrying a series conductance per unit length
  ``g = σ_GB / t_GB`` (a layer of thickness ``t_GB`` and isotropic conductivity ``σ_GB`` on each pixel face between
  two grains; it adds a resistance ``t_GB/σ_GB`` per unit boundary area, so its weight relative to a pixel's own
  resistance ``h/σ`` grows as the pixel size ``h`` shrinks). The nodes on the boundaries are duplicated: around every
  node the ≤ 4 pixels are grouped into *copies* (pixels of the same region share a copy; a grain and a non-grain
  conducting region – frame, filler – share one unless that would join two different grains), and every pixel
  face whose two pixels use different copies at an end gets a 1-D linear interface element
  ``g·h/6·[[2, 1], [1, 2]]`` on the potential jump. The current through a face (from pixel a to pixel b) is
  ``g·h·(j₁ + j₂)/2`` with the jumps ``j = φ_a − φ_b`` at its two ends. This is exact for the series bicrystal.
* Pixel faces are axis-aligned, so an inclined boundary is a staircase: its interface conductance is too large
  by up to ``|n_x| + |n_y|`` (√2 at 45°) for current crossing it, a limitation shared by every pixel model.
* Pores and blocking phases have no element (σ = 0). Periodicity along x and/or y wraps the node grid.

Units: σ in units of σ_ip, lengths in nm, potentials in V. Current densities are σ_ip·V/nm; currents are per unit
lamella thickness, σ_ip·V·nm / nm (multiply by σ_ip [S/m] × thickness [m] for amperes).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numba import njit

__all__ = ["KXX", "KYY", "KXY", "element_matrices", "node_copies", "pixel_faces", "assemble"]

#: ∫∫ ∂N_i/∂x ∂N_j/∂x over a square element (dimensionless, size independent).
KXX = np.array([[2, -2, -1, 1], [-2, 2, 1, -1], [-1, 1, 2, -2], [1, -1, -2, 2]], dtype=np.float64) / 6.0
#: ∫∫ ∂N_i/∂y ∂N_j/∂y.
KYY = np.array([[2, 1, -1, -2], [1, 2, -2, -1], [-1, -2, 2, 1], [-2, -1, 1, 2]], dtype=np.float64) / 6.0
#: ∫∫ (∂N_i/∂x ∂N_j/∂y + ∂N_i/∂y ∂N_j/∂x), the coefficient of σ_xy.
KXY = np.array([[1, 0, -1, 0], [0, -1, 0, 1], [-1, 0, 1, 0], [0, 1, 0, -1]], dtype=np.float64) / 2.0

#: Interface element on the jumps (j1, j2) at the two ends of a face, per unit g·h.
KIF = np.array([[2.0, 1.0], [1.0, 2.0]]) / 6.0

# local corner of a pixel seen from a node, for the node's TL, TR, BR, BL pixel
_LOCAL_OF_POSITION = np.array([2, 3, 0, 1], dtype=np.int64)


def element_matrices(sigma: np.ndarray) -> np.ndarray:
    """``(n, 4, 4)`` element stiffness matrices of ``(n, 3)`` tensors ``(σ_xx, σ_xy, σ_yy)``."""
    s = np.asarray(sigma, dtype=np.float64)
    return s[:, 0, None, None] * KXX + s[:, 1, None, None] * KXY + s[:, 2, None, None] * KYY


@njit(cache=True, nogil=True)
def _find(parent, p):
    while parent[p] != p:
        p = parent[p]
    return p


@njit(cache=True, nogil=True)
def _node_copies_kernel(group, kind, periodic_y, periodic_x):
    ny, nx = group.shape
    nny = ny if periodic_y else ny + 1
    nnx = nx if periodic_x else nx + 1
    corner = np.full((ny, nx, 4), -1, np.int64)
    node_of = np.empty(4 * nny * nnx, np.int64)
    rows = np.zeros(4, np.int64)
    cols = np.zeros(4, np.int64)
    ok = np.zeros(4, np.bool_)
    parent = np.zeros(4, np.int64)
    grain = np.zeros(4, np.int64)  # grain label of a component (its root), 0 = none
    ids = np.zeros(4, np.int64)
    n = 0
    for i in range(nny):
        for j in range(nnx):
            for p in range(4):
                r = i - 1 if p < 2 else i
                c = j - 1 if (p == 0 or p == 3) else j
                if periodic_y:
                    r = r % ny
                if periodic_x:
                    c = c % nx
                rows[p] = r
                cols[p] = c
                ok[p] = r >= 0 and r < ny and c >= 0 and c < nx
                if ok[p]:
                    ok[p] = kind[r, c] != 0
                parent[p] = p
                grain[p] = group[r, c] if (ok[p] and kind[r, c] == 1) else 0
                ids[p] = -1
            # pass 1: pixels of the same region share a copy
            for e in range(4):
                p = e
                q = (e + 1) % 4
                if ok[p] and ok[q] and group[rows[p], cols[p]] == group[rows[q], cols[q]]:
                    rp = _find(parent, p)
                    rq = _find(parent, q)
                    if rp != rq:
                        parent[rq] = rp
            # pass 2: grain / non-grain contacts join unless two different grains would meet
            for e in range(4):
                p = e
                q = (e + 1) % 4
                if not (ok[p] and ok[q]):
                    continue
                if group[rows[p], cols[p]] == group[rows[q], cols[q]]:
                    continue
                if kind[rows[p], cols[p]] == 1 and kind[rows[q], cols[q]] == 1:
                    continue
                rp = _find(parent, p)
                rq = _find(parent, q)
                if rp == rq:
                    continue
                gp = grain[rp]
                gq = grain[rq]
                if gp == 0 or gq == 0 or gp == gq:
                    parent[rq] = rp
                    if gp == 0:
                        grain[rp] = gq
            for p in range(4):
                if ok[p]:
                    rp = _find(parent, p)
                    if ids[rp] < 0:
                        ids[rp] = n
                        node_of[n] = i * nnx + j
                        n += 1
                    corner[rows[p], cols[p], _LOCAL_OF_POSITION[p]] = ids[rp]
    return corner, node_of[:n].copy()


def node_copies(
    group: np.ndarray, kind: np.ndarray, periodic_y: bool = False, periodic_x: bool = False
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Degrees of freedom (node copies) of every pixel corner.

    Parameters
    ----------
    group
        ``(ny, nx)`` int region id of each pixel: grain label (≥ 1) for grains, distinct negative codes for other
        conducting regions (frame, filler). Pixels of the same group share node copies.
    kind
        ``(ny, nx)`` int8: 0 = no element (pore, blocking), 1 = grain, 2 = other conducting region.
    periodic_y, periodic_x
        Wrap the grid along rows / columns.

    Returns
    -------
    corner
        ``(ny, nx, 4)`` int64 dof of each pixel corner (local order TL, TR, BR, BL), −1 for non-conducting pixels.
    node_of_dof
        ``(n_dof,)`` flat node index ``i * n_node_cols + j`` of each dof.
    node_shape
        ``(n_node_rows, n_node_cols)``.
    """
    g = np.ascontiguousarray(group, dtype=np.int64)
    k = np.ascontiguousarray(kind, dtype=np.int8)
    corner, node_of = _node_copies_kernel(g, k, bool(periodic_y), bool(periodic_x))
    ny, nx = g.shape
    return corner, node_of, (ny if periodic_y else ny + 1, nx if periodic_x else nx + 1)


def pixel_faces(conducting: np.ndarray, periodic_y: bool = False, periodic_x: bool = False) -> dict[str, np.ndarray]:
    """All faces between two 4-connected conducting pixels.

    Returns a dict of ``(m,)`` arrays: ``ra, ca`` (pixel a: left or upper), ``rb, cb`` (pixel b: right or lower),
    ``axis`` (1 = horizontal neighbours, face normal +x from a to b; 0 = vertical neighbours, normal +y).
    """
    ny, nx = conducting.shape
    rr, cc = np.mgrid[0:ny, 0:nx]
    parts = []
    # horizontal neighbours (a left of b, axis 1), then vertical ones (a above b, axis 0)
    cmax = nx if periodic_x else nx - 1
    ra, ca = rr[:, :cmax].ravel(), cc[:, :cmax].ravel()
    parts.append((ra, ca, ra, (ca + 1) % nx, 1))
    rmax = ny if periodic_y else ny - 1
    ra, ca = rr[:rmax, :].ravel(), cc[:rmax, :].ravel()
    parts.append((ra, ca, (ra + 1) % ny, ca, 0))
    out: dict[str, list] = {k: [] for k in ("ra", "ca", "rb", "cb", "axis")}
    for a_r, a_c, b_r, b_c, axis in parts:
        keep = conducting[a_r, a_c] & conducting[b_r, b_c] & ~((a_r == b_r) & (a_c == b_c))
        for k, v in zip(("ra", "ca", "rb", "cb"), (a_r, a_c, b_r, b_c)):
            out[k].append(v[keep])
        out["axis"].append(np.full(int(keep.sum()), axis, np.int8))
    return {k: np.concatenate(v) for k, v in out.items()}


def face_dofs(corner: np.ndarray, faces: dict[str, np.ndarray]) -> np.ndarray:
    """``(m, 4)`` dofs ``(a1, a2, b1, b2)`` at the two ends of every face, for pixel a and pixel b.

    End 1 is the top (vertical face) or left (horizontal face) end.
    """
    ca_ = corner[faces["ra"], faces["ca"]]
    cb_ = corner[faces["rb"], faces["cb"]]
    horiz = faces["axis"] == 1
    # vertical face between a (left) and b (right): a's TR, BR ↔ b's TL, BL
    # horizontal face between a (up) and b (down): a's BL, BR ↔ b's TL, TR
    a1 = np.where(horiz, ca_[:, 1], ca_[:, 3])
    a2 = np.where(horiz, ca_[:, 2], ca_[:, 2])
    b1 = np.where(horiz, cb_[:, 0], cb_[:, 0])
    b2 = np.where(horiz, cb_[:, 3], cb_[:, 1])
    return np.stack([a1, a2, b1, b2], axis=1)


def assemble(
    corner: np.ndarray,
    sigma: np.ndarray,
    conducting: np.ndarray,
    fdofs: np.ndarray,
    face_g_h: np.ndarray,
    n_dof: int,
) -> sp.csr_matrix:
    """Global stiffness matrix (COO → CSR) of the elements and interface elements.

    Parameters
    ----------
    corner
        ``(ny, nx, 4)`` dofs of the pixel corners.
    sigma
        ``(ny, nx, 3)`` pixel tensors.
    conducting
        ``(ny, nx)`` bool, pixels that are elements.
    fdofs
        ``(m, 4)`` interface dofs ``(a1, a2, b1, b2)``.
    face_g_h
        ``(m,)`` interface conductance of each face, ``g·h`` (σ_ip units); 0 = no interface element.
    n_dof
        Number of dofs.
    """
    e_dofs = corner[conducting].astype(np.int32)  # (ne, 4)
    ke = element_matrices(sigma[conducting])  # (ne, 4, 4)
    rows = [np.repeat(e_dofs, 4, axis=1).ravel()]
    cols = [np.tile(e_dofs, (1, 4)).ravel()]
    vals = [ke.ravel()]
    use = face_g_h > 0
    if np.any(use):
        fd = fdofs[use].astype(np.int32)
        gh = face_g_h[use]
        sign = np.array([1.0, 1.0, -1.0, -1.0])
        # jump j_k = φ(a_k) − φ(b_k); energy ½ jᵀ (gh KIF) j expanded onto (a1, a2, b1, b2)
        m4 = np.array([[KIF[i % 2, j % 2] * sign[i] * sign[j] for j in range(4)] for i in range(4)])
        rows.append(np.repeat(fd, 4, axis=1).ravel())
        cols.append(np.tile(fd, (1, 4)).ravel())
        vals.append((gh[:, None, None] * m4[None]).ravel())
    k = sp.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_dof, n_dof)
    ).tocsr()
    k.sum_duplicates()
    return k


def connectivity(corner: np.ndarray, conducting: np.ndarray, fdofs: np.ndarray, face_g_h: np.ndarray, n_dof: int):
    """Sparse adjacency of the dofs (element chains + interface links with g > 0), for connected components."""
    e = corner[conducting]
    r = [e[:, 0], e[:, 1], e[:, 2]]
    c = [e[:, 1], e[:, 2], e[:, 3]]
    use = face_g_h > 0
    r += [fdofs[use, 0], fdofs[use, 1]]
    c += [fdofs[use, 2], fdofs[use, 3]]
    r = np.concatenate(r)
    c = np.concatenate(c)
    return sp.coo_matrix((np.ones(len(r), np.int8), (r, c)), shape=(n_dof, n_dof)).tocsr()


def pixel_gradients(phi_corner: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Potential gradient ``(∂φ/∂x, ∂φ/∂y)`` at pixel centres from ``(..., 4)`` corner potentials (TL, TR, BR, BL)."""
    p0, p1, p2, p3 = (phi_corner[..., k] for k in range(4))
    gx = ((p1 - p0) + (p2 - p3)) / (2.0 * h)
    gy = ((p3 - p0) + (p2 - p1)) / (2.0 * h)
    return gx, gy


def face_currents(phi: np.ndarray, fdofs: np.ndarray, face_g_h: np.ndarray) -> np.ndarray:
    """Current through each interface face from pixel a to pixel b (per unit thickness)."""
    j1 = phi[fdofs[:, 0]] - phi[fdofs[:, 2]]
    j2 = phi[fdofs[:, 1]] - phi[fdofs[:, 3]]
    return face_g_h * 0.5 * (j1 + j2)


def element_face_flux(phi_corner: np.ndarray, sigma: np.ndarray, side: np.ndarray, h: float) -> np.ndarray:
    """Outward normal current density ``J·n`` at the midpoint of one face of each element.

    ``side``: 0 = top, 1 = right, 2 = bottom, 3 = left. ``phi_corner`` ``(m, 4)``, ``sigma`` ``(m, 3)``.
    """
    p0, p1, p2, p3 = (phi_corner[:, k] for k in range(4))
    gx_mid = ((p1 - p0) + (p2 - p3)) / (2.0 * h)
    gy_mid = ((p3 - p0) + (p2 - p1)) / (2.0 * h)
    gx = np.select([side == 0, side == 2], [(p1 - p0) / h, (p2 - p3) / h], gx_mid)
    gy = np.select([side == 1, side == 3], [(p2 - p1) / h, (p3 - p0) / h], gy_mid)
    jx = -(sigma[:, 0] * gx + sigma[:, 1] * gy)
    jy = -(sigma[:, 1] * gx + sigma[:, 2] * gy)
    nx = np.select([side == 1, side == 3], [1.0, -1.0], 0.0)
    ny = np.select([side == 2, side == 0], [1.0, -1.0], 0.0)
    return jx * nx + jy * ny
