"""Sparse symmetric positive-definite solves with Dirichlet nodes and floating regions removed.

Solver choice (``solver="auto"``): scipy's direct ``spsolve`` below :data:`DIRECT_MAX_UNKNOWNS` unknowns; above
it conjugate gradients preconditioned by pyamg smoothed aggregation (optional extra ``transport``), or by Jacobi
when pyamg is not installed. A CG run that does not converge falls back to the direct solver when the system is
small enough for it, else raises :class:`~stemgrains.errors.StemgrainsError`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph
import scipy.sparse.linalg as spla

from ..errors import ParameterError, StemgrainsError

__all__ = ["solve_dirichlet", "DIRECT_MAX_UNKNOWNS", "SOLVERS"]

#: Largest system solved directly by ``solver="auto"``.
DIRECT_MAX_UNKNOWNS = 200_000
#: Largest system the direct solver is used for as a fallback after a CG failure.
DIRECT_FALLBACK_MAX = 2_000_000
SOLVERS = ("auto", "direct", "amg", "cg")


def _have_pyamg() -> bool:
    try:
        import pyamg  # noqa: F401
    except ImportError:
        return False
    return True


def _direct(a: sp.csr_matrix, b: np.ndarray) -> np.ndarray:
    return np.asarray(spla.spsolve(a.tocsc(), b), dtype=np.float64)


def _cg(a: sp.csr_matrix, b: np.ndarray, m: Any, rtol: float, maxiter: int) -> tuple[np.ndarray, int, bool]:
    count = [0]

    def cb(_xk: np.ndarray) -> None:
        count[0] += 1

    x, info = spla.cg(a, b, rtol=rtol, atol=0.0, maxiter=maxiter, M=m, callback=cb)
    return x, count[0], info == 0


def solve_spd(a: sp.csr_matrix, b: np.ndarray, solver: str = "auto", rtol: float = 1e-10) -> tuple[np.ndarray, dict]:
    """Solve ``a x = b`` for a symmetric positive-definite sparse ``a``; returns ``x`` and a solver-info dict."""
    if solver not in SOLVERS:
        raise ParameterError(f"solver must be one of {', '.join(SOLVERS)}, got {solver!r}")
    n = a.shape[0]
    t0 = time.perf_counter()
    info: dict[str, Any] = {"n_unknowns": int(n), "iterations": 0}
    if n == 0:
        info.update(method="none", residual=0.0, seconds=0.0)
        return np.zeros(0), info
    method = solver
    if solver == "auto":
        method = "direct" if n < DIRECT_MAX_UNKNOWNS else ("amg" if _have_pyamg() else "cg")
    if method == "amg" and not _have_pyamg():
        raise ParameterError("solver='amg' needs pyamg (pip install 'stemgrains[transport]')")
    bnorm = float(np.linalg.norm(b))
    if bnorm == 0.0:
        info.update(method=method, residual=0.0, seconds=time.perf_counter() - t0)
        return np.zeros(n), info
    if method == "direct":
        x = _direct(a, b)
    else:
        maxiter = max(1000, 20 * int(np.sqrt(n)))
        if method == "amg":
            import pyamg

            ml = pyamg.smoothed_aggregation_solver(a, symmetry="symmetric", max_coarse=500)
            m = ml.aspreconditioner(cycle="V")
        else:
            d = a.diagonal()
            m = sp.diags(1.0 / d)
        x, it, ok = _cg(a, b, m, rtol, maxiter)
        info["iterations"] = it
        if not ok:
            if n <= DIRECT_FALLBACK_MAX:
                info["fallback"] = f"{method} did not converge in {it} iterations; solved directly"
                method = "direct"
                x = _direct(a, b)
            else:
                raise StemgrainsError(
                    f"transport solver {method!r} did not converge in {it} iterations ({n} unknowns); "
                    "try solver='direct' or a coarser map"
                )
    res = float(np.linalg.norm(a @ x - b)) / bnorm
    if not np.all(np.isfinite(x)):
        raise StemgrainsError(f"transport solver {method!r} returned non-finite potentials ({n} unknowns)")
    info.update(method=method, residual=res, seconds=time.perf_counter() - t0)
    return x, info


def solve_dirichlet(
    k: sp.csr_matrix,
    adjacency: sp.spmatrix,
    fixed_values: np.ndarray,
    solver: str = "auto",
    rtol: float = 1e-10,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Potentials of all dofs given fixed values (NaN = free), with floating components set to NaN.

    Parameters
    ----------
    k
        ``(n, n)`` symmetric positive-semidefinite stiffness (graph Laplacian-like) matrix.
    adjacency
        ``(n, n)`` sparse pattern linking dofs that exchange current (for connected components).
    fixed_values
        ``(n,)`` prescribed potentials, NaN where free.

    Returns
    -------
    phi
        ``(n,)`` potentials (NaN on floating dofs).
    floating
        ``(n,)`` bool, dofs of components that touch no fixed dof.
    info
        Solver information.
    """
    n = k.shape[0]
    fixed = np.isfinite(fixed_values)
    ncomp, comp = csgraph.connected_components(adjacency, directed=False)
    anchored = np.zeros(ncomp, dtype=bool)
    anchored[comp[fixed]] = True
    floating = ~anchored[comp]
    free = ~fixed & ~floating
    phi = np.full(n, np.nan)
    phi[fixed] = fixed_values[fixed]
    idx_free = np.flatnonzero(free)
    idx_fixed = np.flatnonzero(fixed)
    kff = k[idx_free][:, idx_free].tocsr()
    rhs = -(k[idx_free][:, idx_fixed] @ phi[idx_fixed])
    x, info = solve_spd(kff, rhs, solver=solver, rtol=rtol)
    phi[idx_free] = x
    info["n_floating_dofs"] = int(floating.sum())
    info["n_components"] = int(ncomp)
    return phi, floating, info
