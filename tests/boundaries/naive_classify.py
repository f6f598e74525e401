"""Slow, obvious, scalar reference of gb-classification.md §1–§5 for one boundary segment.

Written straight from the specification in plain Python (``math`` only, tuples, no numpy) so that the
vectorised :func:`stemgrains.boundaries.classify.classify_pair` can be checked against it on random inputs.
"""

from __future__ import annotations

import math


def _normalize(v):
    length = math.sqrt(sum(x * x for x in v))
    return tuple(x / length for x in v)


def _acos_deg(x):
    return math.degrees(math.acos(min(1.0, max(0.0, x))))


def _sigma_dot(c, v, sigma_ip, sigma_op):
    """Σ v for the 2-D tensor Σ = σ_ip I₂ − (σ_ip − σ_op) c_xy c_xyᵀ (c_xy not normalised)."""
    cx, cy = c[0], c[1]
    s11 = sigma_ip - (sigma_ip - sigma_op) * cx * cx
    s12 = -(sigma_ip - sigma_op) * cx * cy
    s22 = sigma_ip - (sigma_ip - sigma_op) * cy * cy
    return (s11 * v[0] + s12 * v[1], s12 * v[0] + s22 * v[1])


def naive_classify(c_a, c_b, normal, field, *, ratio=1000.0, delta=15.0, flat_tol=10.0, basis="trace",
                   tau_flow=0.2, r_block=0.8):
    """Every quantity of the specification for one segment, as a dict (angles in degrees)."""
    sigma_ip = 1.0
    sigma_op = 1.0 / ratio
    c_a = _normalize(c_a)
    c_b = _normalize(c_b)
    n = _normalize(normal)
    e = _normalize(field)
    t = (-n[1], n[0])

    # §1 per grain
    alpha_a = _acos_deg(abs(c_a[2]))
    alpha_b = _acos_deg(abs(c_b[2]))
    flat_a = alpha_a < flat_tol
    flat_b = alpha_b < flat_tol
    d_a = None if flat_a else _normalize((-c_a[1], c_a[0]))
    d_b = None if flat_b else _normalize((-c_b[1], c_b[0]))

    # §3 angles
    theta_3d = _acos_deg(abs(c_a[0] * c_b[0] + c_a[1] * c_b[1] + c_a[2] * c_b[2]))
    if d_a is None or d_b is None:
        theta_2d = math.nan
    else:
        theta_2d = _acos_deg(abs(d_a[0] * d_b[0] + d_a[1] * d_b[1]))
    phi_a = 90.0 if d_a is None else _acos_deg(abs(d_a[0] * t[0] + d_a[1] * t[1]))
    phi_b = 90.0 if d_b is None else _acos_deg(abs(d_b[0] * t[0] + d_b[1] * t[1]))
    psi = _acos_deg(abs(e[0] * n[0] + e[1] * n[1]))

    # §4 labels
    if basis == "3d" or flat_a or flat_b:
        theta = theta_3d
    else:
        theta = theta_2d
    if theta <= delta:
        type_ = "I"
    elif theta >= 90.0 - delta:
        type_ = "II"
    else:
        type_ = "III"
    index = 1 if psi <= 45.0 + 1e-6 else 2  # the spec's tie: within 1e-6° counts as on the threshold

    e_dot_t = e[0] * t[0] + e[1] * t[1]
    if abs(e_dot_t) < 1e-6:
        if t[1] != 0.0:
            t_plus = t if t[1] > 0 else (-t[0], -t[1])
        else:
            t_plus = t if t[0] > 0 else (-t[0], -t[1])
    else:
        t_plus = t if e_dot_t > 0 else (-t[0], -t[1])
    sa = _sigma_dot(c_a, t_plus, sigma_ip, sigma_op)
    sb = _sigma_dot(c_b, t_plus, sigma_ip, sigma_op)
    acc = (sa[0] - sb[0]) * n[0] + (sa[1] - sb[1]) * n[1]

    if type_ == "I":
        letter = "a" if (phi_a + phi_b) / 2.0 < 45.0 - 1e-6 else "b"
    elif type_ == "II":
        letter = "b" if abs(phi_a - phi_b) >= 45.0 - 1e-6 else "a"
    else:
        letter = "a" if acc > 0 else "b"

    # §5 behaviour
    fa = _sigma_dot(c_a, e, sigma_ip, sigma_op)
    fb = _sigma_dot(c_b, e, sigma_ip, sigma_op)
    j_a = fa[0] * n[0] + fa[1] * n[1]
    j_b = fb[0] * n[0] + fb[1] * n[1]
    m = max(abs(j_a), abs(j_b))
    r = (j_a - j_b) / max(m, tau_flow)
    if m < tau_flow:
        behaviour = "parallel"
    elif r >= r_block:
        behaviour = "blocking"
    elif r <= -r_block:
        behaviour = "depleting"
    else:
        behaviour = "transmitting"

    return {
        "theta_3d": theta_3d,
        "theta_2d": theta_2d,
        "theta": theta,
        "alpha_a": alpha_a,
        "alpha_b": alpha_b,
        "flat_a": flat_a,
        "flat_b": flat_b,
        "phi_a": phi_a,
        "phi_b": phi_b,
        "psi": psi,
        "type": type_,
        "letter": letter,
        "field_index": index,
        "label": f"{type_} {letter}{index}",
        "e_dot_t": e_dot_t,
        "acc": acc,
        "j_a": j_a,
        "j_b": j_b,
        "m": m,
        "r": r,
        "behaviour": behaviour,
    }


def decision_margin(q, *, delta=15.0, flat_tol=10.0, tau_flow=0.2, r_block=0.8):
    """Smallest distance of any quantity that a label/behaviour decision thresholds from its threshold.

    Tests comparing two implementations skip inputs closer than rounding error to a decision boundary.
    """
    margins = [
        abs(q["alpha_a"] - flat_tol),
        abs(q["alpha_b"] - flat_tol),
        abs(q["theta"] - delta),
        abs(q["theta"] - (90.0 - delta)),
        abs(q["psi"] - 45.0),
        abs(abs(q["e_dot_t"]) - 1e-6),
        abs(q["m"] - tau_flow),
        abs(q["r"] - r_block),
        abs(q["r"] + r_block),
    ]
    if q["type"] == "I":
        margins.append(abs((q["phi_a"] + q["phi_b"]) / 2.0 - 45.0))
    elif q["type"] == "II":
        margins.append(abs(abs(q["phi_a"] - q["phi_b"]) - 45.0))
    else:
        margins.append(abs(q["acc"]))
    return min(margins)
