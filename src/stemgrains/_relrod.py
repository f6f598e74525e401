"""Text of the relrod-width choices (σ_s and the final refinement's width) for progress lines and command output;
light (no numba), so the command line can format them without importing the indexing kernels."""

from __future__ import annotations

from typing import Any

from . import config


#: the relrod-width keys of a map's index parameters that a batch job passes on to its summary row
BATCH_KEYS = ("excitation_error_sigma", "excitation_error_sigma_source", "refine_excitation_error_sigma",
              "refine_excitation_error_sigma_source")


def refine_label(width: float, sigma: float) -> str:
    """``at 0.007 1/Å`` for a final refinement at ``width``, ``none`` where it equals the search's σ_s."""
    return f"at {float(width):g} 1/Å" if float(width) != float(sigma) else "none"


def row_refine_label(row: dict[str, Any]) -> str | None:
    """The final refinement of one batch summary row (keys of :data:`BATCH_KEYS`): ``off`` where it was turned
    off, ``none (the search's: the set width ... not applied)`` where a set width was not applied, else
    :func:`refine_label` of its width; ``None`` where the row does not say."""
    source = str(row.get("refine_excitation_error_sigma_source") or "")
    if source == "off":
        return "off"
    if "not applied" in source:  # a set width wider than the σ_s the data gave: said, as single runs say it
        return f"none ({source})"
    width = row.get("refine_excitation_error_sigma")
    if width is None:
        return None
    return refine_label(float(width), float(row.get("excitation_error_sigma") or width))


def refine_choice_text(width: float, sigma: float, votes: dict[Any, float] | None) -> str:
    """``at 0.01 1/Å (132 of 132 indexed subsample patterns score higher refined at a narrower width than at σ_s
    0.015; sign test z = 11.5 > 3; votes 0.015: 0, 0.01: 132, 0.007: 0)`` or ``none (σ_s 0.015 1/Å kept: 0 of 132
    ... ; sign test z = -11.5 ≤ 3; ...)`` — how the final refinement's width was chosen, from the votes
    :func:`stemgrains.index.api.choose_refine_sigma` returns (keys widths, as numbers or text; values the indexed
    subsample patterns whose refined image score is highest at that width)."""
    v = {float(k): int(round(float(n))) for k, n in (votes or {}).items()}
    n = sum(v.values())
    if not n or len(v) < 2:  # no votes recorded (a file of an earlier version, or nothing indexed)
        if float(width) != float(sigma):
            return f"{refine_label(width, sigma)} (chosen from the data)"
        return f"none (σ_s {float(sigma):g} 1/Å kept)"
    a = v.get(float(sigma), 0)
    b = n - a
    z = (b - a) / max(1.0, n ** 0.5)
    rule = f"sign test z = {z:.1f} {'>' if z > config.REFINE_VOTE_Z else '≤'} {config.REFINE_VOTE_Z:g}"
    listed = ", ".join(f"{w:g}: {c}" for w, c in v.items())
    what = (f"{b} of {n} indexed subsample patterns score higher refined at a narrower width than at σ_s "
            f"{float(sigma):g}; {rule}; votes {listed}")
    if float(width) != float(sigma):
        return f"{refine_label(width, sigma)} (the most voted width: {what})"
    return f"none (σ_s {float(sigma):g} 1/Å kept: {what})"
