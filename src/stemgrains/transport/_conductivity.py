"""Per-grain and per-pixel conductivities of the transport model.

Two grain models (docs/classification.md §1 for the tensor):

``"tensor"``
    The 2-D block of the 3-D uniaxial tensor, ``Σ = σ_ip I₂ − (σ_ip − σ_op) c_xy c_xyᵀ`` with the grain's
    c-axis ``c`` (sample frame, ``c_xy = (c_x, c_y)`` *not* normalised), ``σ_op = σ_ip / conductivity_ratio``.
``"resistor"``
    The published per-direction resistor formula (a diagonal tensor)::

        σ_x = σ_op |sin α| |sin θ| + σ_ip (|cos θ| + |cos α| |sin θ|)
        σ_y = σ_ip (|sin θ| + |cos α| |cos θ|) + σ_op |sin α| |cos θ|

    **Mapping to our quantities.** ``α`` is our ``alpha`` (angle between the conduction plane and the lamella
    surface, ``arccos|c_z|``) and ``θ`` is our in-plane *trace* angle (direction ``d = normalize(−c_y, c_x)`` of the
    plane's trace, from +x toward +y). This is the only reading under which the formula has the right limits:
    edge-on planes (α = 90°) whose trace runs along x (θ = 0) give ``σ_x = σ_ip``, ``σ_y = σ_op`` – exactly the tensor
    of a grain with ``c = ±ŷ`` – and planes lying in the surface (α = 0) give ``σ_ip`` along the trace. Reading θ as
    the angle of the c-axis projection would swap x and y in the α = 90° limit. Along the trace the formula equals
    the tensor (``σ_ip``); across it, it uses ``|cos α|`` and ``|sin α|`` where the tensor has ``cos²α`` and
    ``sin²α``, and it drops the off-diagonal term, so the two models agree exactly only for traces along x or y with
    α ∈ {0°, 90°}. Only ``|sin θ|``, ``|cos θ|`` enter, so the sign convention of θ does not matter.
    When the trace is undefined (``c_xy = 0``) θ = 0 is used (both formulas then give σ_ip along x).

Grains whose c-axis is NaN (non-uniaxial phases) are isotropic ``σ_ip`` unless their phase is listed in
``phase_conductivity`` (isotropic value) or ``blocking_phases`` (σ = 0).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..crystal.symmetry import c_axis_angles
from ..errors import InputError, ParameterError

__all__ = ["conductivity_tensor", "resistor_conductivity", "grain_conductivities", "DEFAULT_BLOCKING_PHASES"]

#: Phase names (case-insensitive substrings) that block Na⁺ by default.
DEFAULT_BLOCKING_PHASES = ("zro2", "zirconia", "ysz", "baddeleyite")


def conductivity_tensor(c_axis: Any, sigma_ip: float = 1.0, sigma_op: float = 1e-3) -> np.ndarray:
    """2-D conductivity tensors ``Σ = σ_ip I₂ − (σ_ip − σ_op) c_xy c_xyᵀ`` of unit c-axes.

    Parameters
    ----------
    c_axis
        ``(3,)`` or ``(n, 3)`` conduction-plane normals in the sample frame (normalised here).
    sigma_ip, sigma_op
        In-plane and out-of-plane conductivity (any unit; the model uses σ_ip = 1).

    Returns
    -------
    ``(2, 2)`` or ``(n, 2, 2)`` float64 tensors.
    """
    c = np.asarray(c_axis, dtype=np.float64)
    single = c.ndim == 1
    c = np.atleast_2d(c)
    if c.shape[-1] != 3:
        raise InputError(f"c_axis must have shape (3,) or (n, 3), got {np.shape(c_axis)}")
    norm = np.linalg.norm(c, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = c / norm
    cxy = c[:, :2]
    out = sigma_ip * np.eye(2)[None] - (sigma_ip - sigma_op) * cxy[:, :, None] * cxy[:, None, :]
    return out[0] if single else out


def resistor_conductivity(
    alpha_deg: Any, theta_deg: Any, sigma_ip: float = 1.0, sigma_op: float = 1e-3
) -> tuple[np.ndarray, np.ndarray]:
    """Published per-direction resistor conductivities ``(σ_x, σ_y)``.

    Parameters
    ----------
    alpha_deg
        Inclination α of the conduction plane to the lamella surface, degrees (our ``alpha_deg``).
    theta_deg
        In-plane angle θ of the plane's trace from +x toward +y, degrees (our ``trace_angle_deg``);
        NaN (undefined trace) is taken as 0.
    sigma_ip, sigma_op
        In-plane and out-of-plane conductivity.
    """
    a = np.radians(np.asarray(alpha_deg, dtype=np.float64))
    t = np.radians(np.nan_to_num(np.asarray(theta_deg, dtype=np.float64), nan=0.0))
    sa, ca, st, ct = np.abs(np.sin(a)), np.abs(np.cos(a)), np.abs(np.sin(t)), np.abs(np.cos(t))
    sx = sigma_op * sa * st + sigma_ip * (ct + ca * st)
    sy = sigma_ip * (st + ca * ct) + sigma_op * sa * ct
    return sx, sy


def _alpha_theta_from_c(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Our alpha (deg) and trace angle θ (deg, from +x toward +y; 0 where c_xy = 0) of unit c-axes."""
    c = c / np.linalg.norm(c, axis=1, keepdims=True)
    # trace d = (−c_y, c_x); θ only enters through |sin|, |cos| so the sign of d is irrelevant
    alpha, theta = c_axis_angles(c)
    theta[np.hypot(c[:, 0], c[:, 1]) < 1e-12] = 0.0
    return alpha, theta


def _c_axis_of(table: Any) -> np.ndarray:
    """The table's c-axes, or ones rebuilt from ``alpha_deg`` and ``trace_angle_deg`` when absent."""
    if "c_axis" in table:
        c = np.asarray(table["c_axis"], dtype=np.float64)
        if c.ndim != 2 or c.shape[1] != 3:
            raise InputError(f"grain table column 'c_axis' must have shape (n, 3), got {c.shape}")
        return c
    if "alpha_deg" in table and "trace_angle_deg" in table:
        a = np.radians(np.asarray(table["alpha_deg"], dtype=np.float64))
        t = np.radians(np.nan_to_num(np.asarray(table["trace_angle_deg"], dtype=np.float64), nan=0.0))
        # trace d = (cos t, sin t) = normalize(−c_y, c_x)  ⇒  c_xy = sin(a) (sin t, −cos t)
        return np.stack([np.sin(a) * np.sin(t), -np.sin(a) * np.cos(t), np.cos(a)], axis=1)
    raise InputError("grain table needs a 'c_axis' column (or 'alpha_deg' and 'trace_angle_deg')")


def _phase_names(phases: Any) -> dict[int, str]:
    if phases is None:
        return {}
    try:
        return {int(i): str(n) for i, n in zip(phases.ids, phases.names)}
    except AttributeError:
        try:
            return {int(i): str(p.name) for i, p in phases}
        except (TypeError, ValueError, AttributeError):
            raise InputError(f"phases must be an orix PhaseList, got {type(phases).__name__}") from None


def _matches(pid: int, name: str, keys: Iterable[Any]) -> Any:
    """The first key naming this phase (int id, or case-insensitive substring of the name), else None."""
    for k in keys:
        if isinstance(k, (int, np.integer)) and not isinstance(k, bool):
            if int(k) == pid:
                return k
        elif isinstance(k, str):
            if k.strip() and k.strip().lower() in name.lower():
                return k
        else:
            raise ParameterError(f"phase keys must be phase ids (int) or names (str), got {k!r}")
    return None


def grain_conductivities(
    table: Any,
    phases: Any = None,
    *,
    model: str = "tensor",
    sigma_ip: float = 1.0,
    conductivity_ratio: float = 1000.0,
    blocking_phases: Iterable[Any] = DEFAULT_BLOCKING_PHASES,
    phase_conductivity: Mapping[Any, float] | None = None,
) -> np.ndarray:
    """Conductivity tensor of every grain of a grain table, as ``(n, 3)`` columns ``(σ_xx, σ_xy, σ_yy)``.

    Parameters
    ----------
    table
        Grain table (``c_axis`` or ``alpha_deg`` + ``trace_angle_deg``; ``phase_id`` optional).
    phases
        orix ``PhaseList`` naming the phase ids (needed for name matching only).
    model
        ``"tensor"`` or ``"resistor"`` (see the module docstring).
    sigma_ip
        In-plane conductivity (units of the whole model).
    conductivity_ratio
        ``σ_ip / σ_op``.
    blocking_phases
        Phase ids or case-insensitive name substrings whose grains get σ = 0.
    phase_conductivity
        Optional isotropic conductivity per phase id or name (overrides the c-axis model; 0 blocks).
    """
    sigma_op = sigma_ip / conductivity_ratio
    c = _c_axis_of(table)
    n = len(c)
    out = np.zeros((n, 3))
    finite = np.all(np.isfinite(c), axis=1) & (np.linalg.norm(np.nan_to_num(c), axis=1) > 0)
    if model == "tensor":
        t = conductivity_tensor(c[finite], sigma_ip, sigma_op)
        out[finite] = np.stack([t[:, 0, 0], t[:, 0, 1], t[:, 1, 1]], axis=1)
    elif model == "resistor":
        alpha, theta = _alpha_theta_from_c(c[finite])
        sx, sy = resistor_conductivity(alpha, theta, sigma_ip, sigma_op)
        out[finite] = np.stack([sx, np.zeros_like(sx), sy], axis=1)
    else:
        raise ParameterError(f"model must be 'tensor' or 'resistor', got {model!r}")
    out[~finite] = (sigma_ip, 0.0, sigma_ip)

    names = _phase_names(phases)
    pids = np.asarray(table["phase_id"]).astype(np.int64) if "phase_id" in table else np.zeros(n, np.int64)
    blocking = list(blocking_phases or ())
    overrides = dict(phase_conductivity or {})
    for k, v in overrides.items():
        if not np.isfinite(v) or v < 0:
            raise ParameterError(f"phase_conductivity[{k!r}] must be finite and >= 0, got {v!r}")
    for pid in np.unique(pids):
        name = names.get(int(pid), "")
        sel = pids == pid
        key = _matches(int(pid), name, overrides)
        if key is not None:
            out[sel] = (overrides[key], 0.0, overrides[key])
        elif _matches(int(pid), name, blocking) is not None:
            out[sel] = 0.0
    return out
