"""Synthetic in-situ image series with known truth: a textured (or given) specimen image, features (filaments)
appearing at chosen map positions and frames and growing, drift between frames, Poisson noise.

Used by the tests and the in-situ notebook; the truth says where and when every feature appeared.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..errors import ParameterError

__all__ = ["PlantedEvent", "simulate_series"]


@dataclass(frozen=True)
class PlantedEvent:
    """A feature appearing at map position ``(x_nm, y_nm)`` in frame ``first_frame``: a Gaussian blob whose radius
    (σ) starts at ``radius_nm`` and grows by ``growth_nm`` per frame; ``amplitude`` relative to the mean level
    (negative: darker)."""

    x_nm: float
    y_nm: float
    first_frame: int
    amplitude: float = 0.5
    radius_nm: float = 1.5
    growth_nm: float = 0.3


def simulate_series(
    events: list[PlantedEvent],
    *,
    n_frames: int = 6,
    shape: tuple[int, int] = (256, 256),
    pixel_size_nm: float = 0.5,
    offset_nm: tuple[float, float] = (0.0, 0.0),
    drift_px: np.ndarray | None = None,
    base_image: np.ndarray | None = None,
    base_pixel_nm: float | None = None,
    dose: float = 200.0,
    texture: float = 0.15,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``(n_frames, rows, cols)`` of counts (Poisson), and the drift ``(n_frames, 2)`` ``(dy, dx)`` px.

    The specimen in the map frame: ``base_image`` (e.g. a virtual ADF image of the scan, pixel ``base_pixel_nm``,
    pixel (0, 0) at the map origin) or a smooth random texture of relative amplitude ``texture``; plus the events.
    Frame ``k`` shows the specimen with its pixel (0, 0) at map ``offset_nm − drift[k] · pixel_size_nm`` (so the
    content moves by ``+drift[k]`` pixels), mean ``dose`` counts per pixel.

    Raises
    ------
    ParameterError
        Fewer than 2 frames, a drift array of the wrong shape, non-positive sizes.
    """
    if n_frames < 2 or pixel_size_nm <= 0 or dose <= 0:
        raise ParameterError("simulate_series: need n_frames >= 2, pixel_size_nm > 0, dose > 0")
    rng = np.random.default_rng(seed)
    if drift_px is None:
        drift_px = np.cumsum(rng.normal(0, 2.0, size=(n_frames, 2)), axis=0)
        drift_px[0] = 0
    drift_px = np.asarray(drift_px, float)
    if drift_px.shape != (n_frames, 2):
        raise ParameterError(f"drift_px must have shape {(n_frames, 2)}, got {drift_px.shape}")
    H, W = shape
    margin = int(np.ceil(np.abs(drift_px).max())) + 4
    # the specimen on a fine canvas in the frame-0 pixel grid extended by the margin
    ch, cw = H + 2 * margin, W + 2 * margin
    rr, cc = np.mgrid[0:ch, 0:cw].astype(float) - margin
    x = offset_nm[0] + cc * pixel_size_nm
    y = offset_nm[1] + rr * pixel_size_nm
    if base_image is not None:
        step = float(base_pixel_nm or 1.0)
        b = np.asarray(base_image, float)
        spec = ndimage.map_coordinates(b, [y / step, x / step], order=1, mode="nearest")
        spec = spec / spec.mean()
    else:
        noise = ndimage.gaussian_filter(rng.normal(size=(ch, cw)), 3.0)
        spec = 1.0 + texture * noise / noise.std()
    frames = np.zeros((n_frames, H, W))
    for k in range(n_frames):
        img = spec.copy()
        for e in events:
            if k >= e.first_frame:
                s = e.radius_nm + e.growth_nm * (k - e.first_frame)
                img += e.amplitude * np.exp(-((x - e.x_nm) ** 2 + (y - e.y_nm) ** 2) / (2 * s * s))
        moved = ndimage.shift(img, drift_px[k], order=1, mode="nearest")
        frames[k] = rng.poisson(np.clip(moved[margin : margin + H, margin : margin + W], 0, None) * dose)
    return frames, drift_px
