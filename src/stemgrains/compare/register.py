"""Registration of one orientation map onto another: a turn of the scan by a multiple of 90° (optionally with the
specimen turned over) and an integer translation in scan pixels.

Conventions (README "Conventions"): maps ``(ny, nx)``, x along scan columns, y along scan rows, z = x × y along
the beam. A *pixel operation* ``op`` (:class:`PixelOp`: ``k`` quarter turns of :func:`numpy.rot90`, after
reversing the rows when ``flip``) re-grids the moving map; it is the image of a proper rotation ``R`` of the
specimen (a turn about z, or for a flip a 180° turn about an in-plane axis, which reverses z), so the moving
map's orientations become ``O' = O · R⁻¹`` (orix convention ``v_crystal = O · v_sample``) and its sample-frame
vectors ``v' = R · v``. After the op, reference pixel ``p = (row, col)`` and moving pixel ``p + shift`` see the
same spot of the specimen.

Candidate translations are the highest peaks of the masked normalised cross-correlation (Padfield, IEEE TIP 21
(2012) 2706; :func:`stemgrains.insitu.register.masked_ncc`) of the IPF colours of the two maps for the sample
directions x, y and z (orix ``IPFColorKeyTSL`` of each phase's Laue group), averaged over the nine colour
channels, over the pixels indexed in both; the one under which most pixels agree in orientation is kept. The IPF colour of ``O' = O · R⁻¹`` for direction ``d`` is that of ``O`` for ``R⁻¹ · d``;
with ``R`` a signed permutation of the axes and Laue groups centrosymmetric, the moving map's channels are only
re-ordered per op, so the colours are computed once per map.

The correlation peaks need not cover every placement that fits: a scan inside one grain fits wherever in that
grain it is put. :func:`tied_shifts` follows such a plateau of equally good shifts from the kept one; a placement
with ties farther than 2 px is not unique (:attr:`Registration.unique`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import InputError, ParameterError

__all__ = ["PixelOp", "Registration", "PIXEL_OPS", "ipf_channels", "register_maps", "apply_op", "parse_op",
           "min_overlap_px", "tied_shifts", "best_tied_shift", "TIE_FRACTION"]

#: Least common indexed pixels of a placement on maps large enough to have them (fewer say little).
MIN_OVERLAP_PX = 16
#: At most this many shifts (all ops together) are re-scored one by one when the correlation has no peak.
_MAX_EXHAUSTIVE = 4096
#: Another placement *ties* with the kept one when at least this fraction of the kept one's agreeing pixels agree
#: under it (a small scan inside one grain agrees equally well wherever in that grain it is put).
TIE_FRACTION = 0.99
#: At most this many shifts are scored when looking for shifts that tie with the kept one (:func:`tied_shifts`).
_MAX_TIED = 1024
#: Shifts within this many pixels (either axis) of the kept one are not counted as rivals or ties.
_NEAR_PX = 2


def min_overlap_px(n_ref: int, n_mov: int, fraction: float) -> int:
    """Least indexed pixels a placement must share: ``fraction`` of the smaller map's ``n`` indexed pixels, at
    least :data:`MIN_OVERLAP_PX`, but never more than ``n`` (two identical 1 × 12 maps share 12), at least 1."""
    n = int(min(n_ref, n_mov))
    return max(1, min(n, max(MIN_OVERLAP_PX, int(np.ceil(fraction * n)))))


@dataclass(frozen=True)
class PixelOp:
    """``k`` quarter turns (``numpy.rot90(a, k)``, counter-clockwise as displayed) after reversing the rows when
    ``flip`` (the specimen turned over about x)."""

    k: int = 0
    flip: bool = False

    def __call__(self, a: np.ndarray) -> np.ndarray:
        """The op on the first two axes of ``a`` (``(ny, nx, ...)``)."""
        a = a[::-1] if self.flip else a
        return np.ascontiguousarray(np.rot90(a, self.k % 4, axes=(0, 1)))

    @property
    def name(self) -> str:
        turn = f"rot{90 * (self.k % 4)}" if self.k % 4 else "none"
        return ("flip+" + turn) if self.flip else turn

    def matrix(self) -> np.ndarray:
        """``(3, 3)`` proper rotation ``R`` of the sample frame (x, y, z) that the op applies: in-plane part the
        op's action on pixel offsets ``(dx, dy) = (dcol, drow)``, z reversed for a flip."""
        # where the unit offsets go: apply the op to coordinate images and read their gradients
        ny, nx = 3, 5
        rr, cc = np.indices((ny, nx), dtype=float)
        r2, c2 = self(rr), self(cc)  # old (row, col) at each new position
        # old = M new + t ; M from finite differences (new x = column, new y = row)
        m = np.array([[c2[0, 1] - c2[0, 0], c2[1, 0] - c2[0, 0]],
                      [r2[0, 1] - r2[0, 0], r2[1, 0] - r2[0, 0]]])  # [[dx_old/dx_new, dx_old/dy_new], [dy_old/..]]
        lin = m.T  # new = M⁻¹ (old − t), M orthogonal
        out = np.zeros((3, 3))
        out[:2, :2] = lin
        out[2, 2] = float(np.sign(np.linalg.det(lin)))
        return out

    def quaternion(self) -> np.ndarray:
        """``R`` as a unit quaternion ``(4,)`` (scalar first)."""
        from orix.quaternion import Rotation

        return Rotation.from_matrix(self.matrix()).data.reshape(4)

    def points(self, rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (fractional allowed) of a map of ``shape`` → their coordinates after the op."""
        ny, nx = shape
        r = np.asarray(rows, float)
        c = np.asarray(cols, float)
        if self.flip:
            r = (ny - 1) - r
        for _ in range(self.k % 4):  # np.rot90 (k=1): new[i, j] = old[j, n_cols - 1 - i]
            r, c = (nx - 1) - c, r
            ny, nx = nx, ny
        return r, c


#: The eight pixel operations (the dihedral group of the square grid), identity first.
PIXEL_OPS = tuple(PixelOp(k, f) for f in (False, True) for k in range(4))


def apply_op(op: PixelOp, quaternions: np.ndarray) -> np.ndarray:
    """Orientations ``(..., 4)`` of the moving map expressed in the re-gridded sample frame: ``O · R⁻¹``."""
    from orix.quaternion import Rotation

    q = np.asarray(quaternions, float)
    if op.k % 4 == 0 and not op.flip:
        return q.copy()
    r_inv = ~Rotation(op.quaternion())
    out = (Rotation(q.reshape(-1, 4)) * r_inv).data
    return out.reshape(q.shape)


def ipf_channels(quaternions: np.ndarray, phase_id: np.ndarray, phases) -> np.ndarray:
    """``(3, ny, nx, 3)`` IPF colours (orix ``IPFColorKeyTSL``, Laue group of each phase) of every pixel for the
    sample directions x, y, z; NaN where not indexed."""
    from ..plot.colors import orientation_colors

    ny, nx = phase_id.shape
    out = np.full((3, ny, nx, 3), np.nan)
    q = quaternions.reshape(-1, 4)
    pid = phase_id.reshape(-1)
    for i, phase in phases:
        if i < 0 or phase.point_group is None:
            continue
        sel = pid == i
        if not sel.any():
            continue
        for d in range(3):
            direction = tuple(float(d == j) for j in range(3))
            vals = out[d].reshape(-1, 3)
            vals[sel] = orientation_colors(q[sel], phase, direction)
    return out


def _op_channels(op: PixelOp, channels: np.ndarray) -> np.ndarray:
    """Channels of the moving map after ``op``: direction d of ``O · R⁻¹`` is direction ``R⁻¹ d`` of ``O``."""
    r_inv = op.matrix().T
    moved = op(np.moveaxis(channels, 0, 2))  # (ny', nx', 3 directions, 3 colours)
    out = np.empty_like(moved)
    for d in range(3):
        src = int(np.argmax(np.abs(r_inv[:, d])))  # R⁻¹ e_d = ±e_src; ± is the same IPF colour (Laue)
        out[:, :, d] = moved[:, :, src]
    return np.moveaxis(out, 2, 0)


@dataclass(frozen=True)
class Registration:
    """Placement of a moving map on the reference map.

    Attributes
    ----------
    op
        Pixel operation applied to the moving map first (:class:`PixelOp`).
    shift
        ``(drow, dcol)`` scan pixels: reference pixel ``p`` ↔ re-gridded moving pixel ``p + shift``.
    score
        Mean normalised cross-correlation of the IPF channels at the placement (−1…1); NaN when given.
    runner_up
        Pixels agreeing in orientation under the best other candidate placement (another op, or a shift more
        than 2 px away), as a fraction of those agreeing under this one: 0 unrivalled, near 1 ambiguous; NaN
        when given.
    overlap_px
        Reference pixels covered by the moving map, both indexed.
    agreement
        Fraction of those pixels whose orientations agree within the grain threshold (disorientation, Laue group).
    given
        The placement came from the user (``--shift``).
    angle_deg
        Small rotation of the re-gridded moving map's content relative to the reference, degrees from +x toward
        +y, about ``centre``: reference pixel p is at moving position ``centre + R(angle) · (p + shift − centre)``
        (nearest pixel). 0 unless a rotation search was asked for.
    centre
        ``(row, col)`` of the rotation centre, reference pixels.
    n_tied
        Shifts farther than 2 px from ``shift`` (same op and angle) under which about as many pixels agree
        (at least :data:`TIE_FRACTION` of this placement's; :func:`tied_shifts`): the placement is not unique
        (e.g. a scan smaller than the grain it lies in). 0 when unique or given.
    tied_range
        ``(row_min, row_max, col_min, col_max)`` of all the shifts that agree that well, ``shift`` included;
        ``None`` when not searched.
    """

    op: PixelOp
    shift: tuple[int, int]
    score: float
    runner_up: float
    overlap_px: int
    agreement: float
    given: bool = False
    angle_deg: float = 0.0
    centre: tuple[float, float] = (0.0, 0.0)
    n_tied: int = 0
    tied_range: tuple[int, int, int, int] | None = None

    @property
    def unique(self) -> bool:
        """No other placement (a shift farther than 2 px, another op, or a rival candidate) agrees about as well
        (:data:`TIE_FRACTION`); a given placement, and one under which no pixel agrees (nothing to tie with),
        count as unique."""
        return self.given or (self.n_tied == 0 and not (self.runner_up >= TIE_FRACTION and self.agreement > 0))

    def _rotate(self, rows: np.ndarray, cols: np.ndarray, angle_deg: float) -> tuple[np.ndarray, np.ndarray]:
        t = np.radians(angle_deg)
        dy, dx = np.asarray(rows, float) - self.centre[0], np.asarray(cols, float) - self.centre[1]
        return (np.sin(t) * dx + np.cos(t) * dy + self.centre[0], np.cos(t) * dx - np.sin(t) * dy + self.centre[1])

    def sample_rotation(self) -> np.ndarray:
        """``(3, 3)`` rotation taking reference sample-frame vectors to the moving scan's: ``R_op⁻¹ · Rz(angle)``
        (the moving scan's orientations in the reference frame are ``O · R_op⁻¹ · Rz(angle)``)."""
        t = np.radians(self.angle_deg)
        rz = np.array([[np.cos(t), -np.sin(t), 0.0], [np.sin(t), np.cos(t), 0.0], [0.0, 0.0, 1.0]])
        return self.op.matrix().T @ rz

    def orientations(self, quaternions: np.ndarray) -> np.ndarray:
        """Orientations ``(..., 4)`` of the moving scan expressed in the reference sample frame."""
        q = apply_op(self.op, quaternions)
        if self.angle_deg == 0.0:
            return q
        from orix.quaternion import Rotation

        rz = Rotation.from_axes_angles([0.0, 0.0, 1.0], np.radians(self.angle_deg))
        return (Rotation(q.reshape(-1, 4)) * rz).data.reshape(q.shape)

    def vectors(self, v: np.ndarray) -> np.ndarray:
        """Sample-frame vectors ``(n, 3)`` of the moving scan expressed in the reference frame."""
        return np.asarray(v, float) @ self.sample_rotation()

    def to_reference(self, rows: np.ndarray, cols: np.ndarray, moving_shape: tuple[int, int]
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates of the moving map → reference-map pixel coordinates."""
        r, c = self.op.points(rows, cols, moving_shape)
        if self.angle_deg != 0.0:
            r, c = self._rotate(r, c, -self.angle_deg)
        return r - self.shift[0], c - self.shift[1]

    def resample(self, moving: np.ndarray, reference_shape: tuple[int, int], fill=0) -> tuple[np.ndarray, np.ndarray]:
        """A moving-map array ``(ny_m, nx_m, ...)`` on the reference grid (``fill`` outside) and the covered mask."""
        m = self.op(np.asarray(moving))
        ny, nx = reference_shape
        out = np.full((ny, nx) + m.shape[2:], fill, dtype=m.dtype)
        covered = np.zeros((ny, nx), bool)
        dr, dc = self.shift
        if self.angle_deg != 0.0:
            rr, cc = np.indices((ny, nx))
            qr, qc = self._rotate(rr + dr, cc + dc, self.angle_deg)
            qr, qc = np.rint(qr).astype(np.int64), np.rint(qc).astype(np.int64)
            covered = (qr >= 0) & (qr < m.shape[0]) & (qc >= 0) & (qc < m.shape[1])
            out[covered] = m[qr[covered], qc[covered]]
            return out, covered
        r0, r1 = max(0, -dr), min(ny, m.shape[0] - dr)
        c0, c1 = max(0, -dc), min(nx, m.shape[1] - dc)
        if r1 > r0 and c1 > c0:
            out[r0:r1, c0:c1] = m[r0 + dr:r1 + dr, c0 + dc:c1 + dc]
            covered[r0:r1, c0:c1] = True
        return out, covered


def _ncc(ref: np.ndarray, ref_ok: np.ndarray, mov: np.ndarray, mov_ok: np.ndarray, min_overlap: int
         ) -> tuple[np.ndarray, tuple[int, int]]:
    """Mean over the nine channels of the masked NCC (Padfield 2012): ``ncc[t]`` compares reference pixel p with
    moving pixel p + t over the pixels valid in both; shifts with fewer than ``min_overlap`` common pixels get −1.

    The same sums as :func:`stemgrains.insitu.register.masked_ncc` (the tests compare them), with the mask
    transforms shared by the channels and FFT sizes padded to fast lengths. Returns the map and its shape (index
    ``i`` is the shift ``i``, or ``i − shape`` for negative shifts)."""
    from scipy import fft

    shape = (fft.next_fast_len(mov.shape[1] + ref.shape[1] - 1, real=True),
             fft.next_fast_len(mov.shape[2] + ref.shape[2] - 1, real=True))

    def spec(a: np.ndarray) -> np.ndarray:
        return fft.rfft2(a, shape)

    def corr(fa: np.ndarray, fb: np.ndarray) -> np.ndarray:  # c[t] = Σ_p a[p] b[p + t]
        return fft.irfft2(np.conj(fa) * fb, shape)

    rm, mm = ref_ok.astype(float), mov_ok.astype(float)
    f_rm, f_mm = spec(rm), spec(mm)
    n = np.rint(corr(f_rm, f_mm))
    ok = n >= max(1, min_overlap)
    n = np.maximum(n, 1.0)
    total = np.zeros(shape)
    for d in range(3):
        for ch in range(3):
            a = np.where(ref_ok, np.nan_to_num(ref[d, :, :, ch]), 0.0)
            b = np.where(mov_ok, np.nan_to_num(mov[d, :, :, ch]), 0.0)
            fa, fb = spec(a), spec(b)
            sa, sb = corr(fa, f_mm), corr(f_rm, fb)
            saa, sbb = corr(spec(a * a), f_mm), corr(f_rm, spec(b * b))
            sab = corr(fa, fb)
            num = sab - sa * sb / n
            den = np.sqrt(np.maximum(saa - sa**2 / n, 0) * np.maximum(sbb - sb**2 / n, 0))
            good = ok & (den > 1e-9 * max(float(np.max(den)), 1e-300))
            c = np.full(shape, -1.0)
            c[good] = num[good] / den[good]
            total += c
    return total / 9.0, shape


def _overlap_counts(ref_ok: np.ndarray, mov_ok: np.ndarray) -> np.ndarray:
    """``(ny_r + ny_m − 1, nx_r + nx_m − 1)`` common valid pixels per shift: index ``(i, j)`` is the shift
    ``(i − (ny_r − 1), j − (nx_r − 1))`` (reference pixel p ↔ moving pixel p + shift)."""
    from scipy import signal

    return np.rint(signal.correlate(mov_ok.astype(float), ref_ok.astype(float), mode="full",
                                    method="auto")).astype(np.int64)


def _unwrap(i: int, n_fixed: int, n_total: int) -> int:
    return i if i < n_fixed else i - n_total


def _peaks(ncc: np.ndarray, n: int) -> list[tuple[int, int]]:
    """Indices of the ``n`` highest local maxima (3 × 3, wrapped) of a correlation map with a valid value."""
    from scipy import ndimage

    local = (ncc == ndimage.maximum_filter(ncc, size=3, mode="wrap")) & (ncc > -1.0 + 1e-12)
    idx = np.flatnonzero(local)
    idx = idx[np.argsort(-ncc.ravel()[idx], kind="stable")[:n]]
    return [tuple(int(v) for v in np.unravel_index(i, ncc.shape)) for i in idx]


def register_maps(ref_channels: np.ndarray, ref_ok: np.ndarray, mov_channels: np.ndarray, mov_ok: np.ndarray, *,
                  agreeing: Callable[[PixelOp, tuple[int, int]], int],
                  ops: tuple[PixelOp, ...] = (PixelOp(),), min_overlap_fraction: float = 0.25, n_candidates: int = 8,
                  ) -> tuple[PixelOp, tuple[int, int], float, float]:
    """Best op and integer shift of the moving map onto the reference (see the module docstring).

    The masked NCC of the IPF channels proposes, per op, its ``n_candidates`` highest local maxima; the
    placement kept is the candidate under which the most pixels agree in orientation (``agreeing``). NCC alone
    can peak at a small overlap of two large uniform grains; counting agreeing pixels prefers the placement that
    explains the most of both maps.

    Parameters
    ----------
    ref_channels, mov_channels
        ``(3, ny, nx, 3)`` from :func:`ipf_channels`.
    ref_ok, mov_ok
        ``(ny, nx)`` bool, indexed pixels.
    agreeing
        ``agreeing(op, shift)``: number of common pixels whose orientations agree under that placement.
    ops
        Pixel operations to try.
    min_overlap_fraction
        Placements sharing fewer indexed pixels than this fraction of the smaller map's indexed pixels are not
        considered (:func:`min_overlap_px`: at least 16, at most the smaller map). When no op gives a
        correlation peak (maps too small or too uniform for the NCC), every shift with that overlap is scored by
        ``agreeing`` alone (at most 4096 shifts).
    n_candidates
        Correlation peaks per op that are re-scored.

    Returns
    -------
    op, shift, score, runner_up
        ``score``: the mean NCC at the placement; ``runner_up``: agreeing pixels of the best other candidate
        (not within 2 px of the kept shift under the same op) as a fraction of the kept one's (0 = unrivalled).

    Raises
    ------
    InputError
        No placement with enough overlap (the maps do not show the same area).
    """
    if not (0 < min_overlap_fraction <= 1):
        raise ParameterError(f"min_overlap_fraction must be in (0, 1], got {min_overlap_fraction!r}")
    if not ref_ok.any() or not mov_ok.any():
        raise InputError("a map without indexed pixels cannot be registered")
    n_min = min_overlap_px(int(ref_ok.sum()), int(mov_ok.sum()), min_overlap_fraction)
    cands: list[tuple[int, float, PixelOp, tuple[int, int]]] = []
    for op in ops:
        mov = _op_channels(op, mov_channels)
        ncc, _ = _ncc(ref_channels, ref_ok, mov, op(mov_ok), n_min)
        for i, j in _peaks(ncc, n_candidates):
            t = (_unwrap(i, mov.shape[1], ncc.shape[0]), _unwrap(j, mov.shape[2], ncc.shape[1]))
            cands.append((agreeing(op, t), float(ncc[i, j]), op, t))
    if not cands:
        overlaps = [(op, _overlap_counts(ref_ok, op(mov_ok))) for op in ops]
    if not cands and sum(int(np.sum(n >= n_min)) for _, n in overlaps) <= _MAX_EXHAUSTIVE:
        # no correlation peak: maps too small or too uniform for a defined NCC (a single grain, one pixel);
        # every shift with enough overlap is scored by its agreeing pixels alone
        for op, n in overlaps:
            for i, j in zip(*np.nonzero(n >= n_min)):
                t = (int(i) - (ref_ok.shape[0] - 1), int(j) - (ref_ok.shape[1] - 1))
                cands.append((agreeing(op, t), float("nan"), op, t))
    if not cands:
        raise InputError(f"no placement shares at least {n_min} indexed pixels ({100 * min_overlap_fraction:g} % of "
                         "the smaller map): the scans do not show the same area")
    cands.sort(key=lambda c: (-c[0], -np.nan_to_num(c[1], nan=-1.0), max(abs(c[3][0]), abs(c[3][1]))))
    n_best, score, op, t = cands[0]
    others = [c[0] for c in cands[1:] if c[2] != op or max(abs(c[3][0] - t[0]), abs(c[3][1] - t[1])) > _NEAR_PX]
    runner = (max(others) / n_best if n_best else 1.0) if others else 0.0
    return op, t, score, float(runner)


def tied_shifts(agreeing: Callable[[tuple[int, int]], int], ref_ok: np.ndarray, mov_ok: np.ndarray,
                shift: tuple[int, int], n_min: int) -> tuple[dict[tuple[int, int], int], bool]:
    """Shifts under which about as many pixels agree as under ``shift`` (or more): the placement is unique when
    none lies farther than 2 px from it.

    The correlation candidates of :func:`register_maps` are its peaks only; a scan lying inside one grain (or
    along one straight boundary) agrees equally well over a plateau of shifts that holds no further peak. The
    plateau is followed here from ``shift`` (flood fill over the 8 neighbours): a shift sharing at least
    ``n_min`` indexed pixels (``mov_ok`` already re-gridded by the op; a small rotation is ignored for this
    count) ties when at least :data:`TIE_FRACTION` of the pixels agreeing under ``shift`` agree under it (and
    at least one). At most :data:`_MAX_TIED` shifts are scored.

    Parameters
    ----------
    agreeing
        ``agreeing(shift)``: pixels agreeing in orientation under that shift (same op and angle as ``shift``).
    ref_ok, mov_ok
        ``(ny, nx)`` bool, indexed pixels of the reference and of the re-gridded moving map.
    shift
        The kept shift.
    n_min
        Least common indexed pixels of a placement (:func:`min_overlap_px`).

    Returns
    -------
    tied, capped
        Every tying shift, ``shift`` included → its agreeing pixels; whether the search stopped at
        :data:`_MAX_TIED`.
    """
    from collections import deque

    over = _overlap_counts(ref_ok, mov_ok)
    r0, c0 = ref_ok.shape[0] - 1, ref_ok.shape[1] - 1

    def overlap(t: tuple[int, int]) -> int:
        i, j = t[0] + r0, t[1] + c0
        return int(over[i, j]) if 0 <= i < over.shape[0] and 0 <= j < over.shape[1] else 0

    n_best = agreeing(shift)
    level = max(1.0, TIE_FRACTION * n_best)
    tied, seen, queue, n_scored = {shift: n_best}, {shift}, deque([shift]), 0
    while queue:
        t = queue.popleft()
        for u in ((t[0] + dr, t[1] + dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)):
            if u in seen or overlap(u) < n_min:
                continue
            if n_scored >= _MAX_TIED:
                return tied, True
            seen.add(u)
            n_scored += 1
            n = agreeing(u)
            if n >= level:
                tied[u] = n
                queue.append(u)
    return tied, False


def best_tied_shift(agreeing: Callable[[tuple[int, int]], int], ref_ok: np.ndarray, mov_ok: np.ndarray,
                    shift: tuple[int, int], n_min: int, max_moves: int = 8
                    ) -> tuple[tuple[int, int], dict[tuple[int, int], int], bool]:
    """The shift of the plateau around ``shift`` (:func:`tied_shifts`) under which the most pixels agree.

    :func:`register_maps` re-scores correlation peaks only, so on a plateau of tying shifts the one it keeps need
    not be the one the registration's own criterion (most agreeing pixels) prefers. This moves to the plateau's
    best shift (ties: the nearest to the current one) and follows the plateau again from there, at most
    ``max_moves`` times.

    Returns
    -------
    shift, tied, capped
        The shift kept, and :func:`tied_shifts` of it.
    """
    tied, capped = tied_shifts(agreeing, ref_ok, mov_ok, shift, n_min)
    for _ in range(max_moves):
        top = max(tied, key=lambda t: (tied[t], -max(abs(t[0] - shift[0]), abs(t[1] - shift[1]))))
        if tied[top] <= tied[shift]:
            break
        shift = top
        tied, capped = tied_shifts(agreeing, ref_ok, mov_ok, shift, n_min)
    return shift, tied, capped


def parse_op(name: str) -> PixelOp:
    """``"none"``, ``"rot90"``, ``"rot180"``, ``"rot270"``, optionally prefixed ``"flip+"`` → :class:`PixelOp`."""
    s = name.strip().lower()
    flip = s.startswith("flip")
    rest = s[4:].lstrip("+") if flip else s
    table = {"": 0, "none": 0, "rot0": 0, "rot90": 1, "rot180": 2, "rot270": 3}
    if rest not in table:
        raise ParameterError(f"rotation {name!r}: expected none, rot90, rot180 or rot270, optionally as flip+rot90 "
                             "(flip = the specimen turned over about x)")
    return PixelOp(table[rest], flip)

