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


def refine_choice_text(width: float, sigma: float, scores: dict[Any, float] | None) -> str:
    """``at 0.007 1/Å (mean square refined image score +9 % over σ_s 0.01 on a subsample; 0.01: 107, ...)`` or
    ``none (σ_s 0.01 kept: the narrower widths' mean square refined image score +2 % < 5 %; ...)`` — how the final
    refinement's width was chosen, from the scores :func:`stemgrains.index.api.choose_refine_sigma` returns (keys widths, as numbers or
    text)."""
    sc = {float(k): float(v) for k, v in (scores or {}).items()}
    listed = ", ".join(f"{w:g}: {v:.3g}" for w, v in sc.items())
    base = sc.get(float(sigma))
    if float(width) != float(sigma):
        gain = f" +{100 * (sc[float(width)] / base - 1):.0f} % over σ_s {float(sigma):g}" if base else ""
        return f"{refine_label(width, sigma)} (mean square refined image score{gain} on a subsample; {listed})"
    others = [v for w, v in sc.items() if w != float(sigma)]
    if not others or not base:
        return f"none (σ_s {float(sigma):g} 1/Å kept)"
    return (f"none (σ_s {float(sigma):g} 1/Å kept: the narrower widths' mean square refined image score "
            f"{100 * (max(others) / base - 1):+.0f} % < {100 * config.REFINE_SIGMA_MIN_GAIN:.0f} %; {listed})")
