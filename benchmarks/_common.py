"""Shared helpers of the benchmarks: machine and version info, peak memory, timing, JSON output, accuracy.

Benchmarks are scripts, never unit tests: nothing here asserts a speed. Accuracy is always reported with
speed (shared/docs/benchmarks.md): per-pixel disorientation against the simulated truth with the Laue group.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA_DIR = HERE / "data"  # git-ignored cache of simulated datasets
RESULTS_DIR = HERE / "results"

#: distributions whose versions every benchmark JSON records
DEFAULT_PACKAGES = ("stemgrains", "numpy", "numba", "scipy", "orix", "h5py", "py4DSTEM")


# ----------------------------------------------------------------------------------------------------------------
# machine, versions
# ----------------------------------------------------------------------------------------------------------------
def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def machine_info() -> dict[str, Any]:
    """CPU model, logical cores (total and usable by this process), RAM (GiB), load average, OS, Python."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count()
    ram = None
    try:
        import psutil

        ram = psutil.virtual_memory().total / 2**30
    except ImportError:
        try:
            ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        except (ValueError, OSError, AttributeError):
            pass
    try:
        load = list(os.getloadavg())
    except OSError:
        load = None
    return {
        "cpu_model": _cpu_model(),
        "cores_logical": os.cpu_count(),
        "cores_usable": usable,
        "ram_gib": ram,
        "load_average_1_5_15min": load,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numba_threads": _numba_threads(),
    }


def _numba_threads() -> int | None:
    try:
        import numba

        return int(numba.config.NUMBA_NUM_THREADS)
    except ImportError:
        return None


def versions(packages: Sequence[str] = DEFAULT_PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution (None when absent)."""
    out: dict[str, str | None] = {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


# ----------------------------------------------------------------------------------------------------------------
# memory, time
# ----------------------------------------------------------------------------------------------------------------
def max_rss_mb() -> float:
    """Peak resident set size of this process so far (``ru_maxrss``), MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def rss_mb() -> float | None:
    """Current resident set size, MiB (None without psutil)."""
    try:
        import psutil
    except ImportError:
        return None
    return psutil.Process().memory_info().rss / 2**20


class RssSampler:
    """Context manager sampling this process's resident memory every ``interval`` s in a thread.

    ``peak_mb`` is the largest sample (None without psutil); ``start_mb`` the RSS when the block began.
    Unlike ``ru_maxrss`` it measures the block only, not what the process did before.
    """

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.start_mb: float | None = None
        self.peak_mb: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = rss_mb()
            if now is not None:
                self.peak_mb = max(self.peak_mb or 0.0, now)
            time.sleep(self.interval)

    def __enter__(self) -> RssSampler:
        self.start_mb = rss_mb()
        if self.start_mb is not None:
            self.peak_mb = self.start_mb
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self.start_mb is not None:
            self._thread.join()
            self.peak_mb = max(self.peak_mb or 0.0, rss_mb() or 0.0)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(wall seconds, result) of one call."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def rate_summary(seconds: Sequence[float], n_items: int) -> dict[str, Any]:
    """Median items/s over repeated timings of the same work, with every run's seconds."""
    s = [float(x) for x in seconds]
    med = statistics.median(s)
    return {
        "n": int(n_items),
        "seconds": s,
        "median_s": med,
        "patterns_per_s": n_items / med if med > 0 else None,
        "min_max_patterns_per_s": [n_items / max(s), n_items / min(s)] if min(s) > 0 else None,
    }


# ----------------------------------------------------------------------------------------------------------------
# output
# ----------------------------------------------------------------------------------------------------------------
def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (Path, tuple)):
        return str(obj) if isinstance(obj, Path) else list(obj)
    return repr(obj)


def _finite(obj: Any) -> Any:
    """NaN/inf → None, recursively (strict JSON)."""
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented strict JSON (NaN → null), atomically (temporary file + rename)."""
    from stemgrains.io.results import atomic_write_text

    text = json.dumps(_finite(json.loads(json.dumps(obj, default=_json_default))), indent=2, allow_nan=False)
    path = Path(path)
    atomic_write_text(path, text + "\n")
    return path


# ----------------------------------------------------------------------------------------------------------------
# accuracy against the simulated truth
# ----------------------------------------------------------------------------------------------------------------
def disorientation_deg(q_found: np.ndarray, q_true: np.ndarray, phase: Any) -> np.ndarray:
    """Per-pixel disorientation angle (degrees) between two (n, 4) quaternion sets of one phase, using the
    proper rotations of its Laue group (orix ``Orientation.angle_with``)."""
    from orix.quaternion import Orientation

    from stemgrains.library import laue_proper_group

    sym = laue_proper_group(phase)
    if len(q_found) == 0:
        return np.zeros(0)
    a = Orientation(np.asarray(q_found, dtype=np.float64), symmetry=sym)
    b = Orientation(np.asarray(q_true, dtype=np.float64), symmetry=sym)
    return np.asarray(a.angle_with(b, degrees=True), dtype=np.float64)


def rz180(q: np.ndarray) -> np.ndarray:
    """``O ∘ Rz(180°)`` of (n, 4) orientations (orix ``O * Rotation.from_axes_angles([0, 0, 1], π)``): the
    kinematic 180° ambiguity of a centrosymmetric spot pattern."""
    from orix.quaternion import Rotation

    return (Rotation(np.asarray(q, dtype=np.float64)) * Rotation.from_axes_angles([0, 0, 1], np.pi)).data


def orientation_accuracy(
    q_found: np.ndarray,
    phase_found: np.ndarray,
    q_true: np.ndarray,
    phase_true: np.ndarray,
    phases: Any,
    reliability: np.ndarray | None = None,
    *,
    right_deg: float = 2.0,
    ambiguity_deg: float = 2.0,
    reliability_cut: float = 5.0,
) -> dict[str, Any]:
    """Accuracy of an orientation map against the truth, per pixel.

    Parameters
    ----------
    q_found, q_true
        (n, 4) quaternions, orix convention (sample → crystal).
    phase_found, phase_true
        (n,) phase ids; −1 = not indexed (found) / vacuum (truth; such pixels are left out).
    phases
        orix ``PhaseList`` (or mapping id → Phase) giving each id's symmetry.
    reliability
        (n,) reliability (0–100) of the found solutions, optional.
    right_deg
        A pixel is "right" when its disorientation is below this (degrees).
    ambiguity_deg
        A wrong pixel "hits the 180° ambiguity" when it lies within this of truth ∘ Rz(180°).
    reliability_cut
        Pixels with reliability ≥ this are "kept" by the reliability filter.

    Returns
    -------
    dict
        ``n_pixels`` (with truth), ``indexed_fraction``, ``wrong_phase_fraction``, ``median_deg`` (indexed pixels of
        the right phase), ``within_1deg/2deg/5deg`` (fractions of all pixels with truth; not indexed or wrong
        phase count as outside), ``ambiguity_180`` (count, fraction of all pixels and of wrong pixels) and, with a
        reliability, ``reliability`` statistics of right vs wrong pixels and the accuracy after the cut.
    """
    q_found = np.asarray(q_found, dtype=np.float64).reshape(-1, 4)
    q_true = np.asarray(q_true, dtype=np.float64).reshape(-1, 4)
    pf = np.asarray(phase_found).reshape(-1)
    pt = np.asarray(phase_true).reshape(-1)
    has = pt >= 0
    q_found, q_true, pf, pt = q_found[has], q_true[has], pf[has], pt[has]
    rel = None if reliability is None else np.asarray(reliability, dtype=np.float64).reshape(-1)[has]
    n = len(pt)
    ang = np.full(n, np.inf)
    amb = np.full(n, np.inf)
    for pid in np.unique(pt):
        phase = phases[int(pid)]
        m = (pt == pid) & (pf == pid)
        if m.any():
            ang[m] = disorientation_deg(q_found[m], q_true[m], phase)
            amb[m] = disorientation_deg(q_found[m], rz180(q_true[m]), phase)
    indexed = pf >= 0
    ok_phase = indexed & (pf == pt)
    right = ang < right_deg
    wrong = ~right
    hit180 = wrong & (amb < ambiguity_deg)
    out: dict[str, Any] = {
        "n_pixels": int(n),
        "indexed_fraction": float(indexed.mean()) if n else None,
        "wrong_phase_fraction": float((indexed & (pf != pt)).mean()) if n else None,
        "median_deg": float(np.median(ang[ok_phase])) if ok_phase.any() else None,
        "within_1deg": float(np.mean(ang < 1.0)) if n else None,
        "within_2deg": float(np.mean(ang < 2.0)) if n else None,
        "within_5deg": float(np.mean(ang < 5.0)) if n else None,
        "ambiguity_180": {
            "definition": f"wrong (≥ {right_deg:g}°) pixels within {ambiguity_deg:g}° of truth ∘ Rz(180°)",
            "count": int(hit180.sum()),
            "fraction_of_pixels": float(hit180.mean()) if n else None,
            "fraction_of_wrong_pixels": float(hit180.sum() / wrong.sum()) if wrong.any() else 0.0,
        },
    }
    if rel is not None and n:
        keep = rel >= reliability_cut

        def med(mask: np.ndarray) -> float | None:
            return float(np.median(rel[mask])) if mask.any() else None

        out["reliability"] = {
            "right_means": f"< {right_deg:g}° from the truth",
            "median_right": med(right & indexed),
            "median_wrong": med(wrong & indexed),
            "median_ambiguity_180": med(hit180 & indexed),
            "cut": reliability_cut,
            "kept_fraction": float(keep.mean()),
            "kept_within_2deg": float(np.mean(ang[keep] < 2.0)) if keep.any() else None,
            "kept_median_deg": float(np.median(ang[keep & ok_phase])) if (keep & ok_phase).any() else None,
            "wrong_flagged_fraction": float(np.mean(~keep[wrong])) if wrong.any() else None,
            "right_lost_fraction": float(np.mean(~keep[right])) if right.any() else None,
        }
    return out
