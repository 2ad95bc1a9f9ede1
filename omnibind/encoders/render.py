"""Rendering of non-RGB modalities into 3-channel images for an image encoder.

Colour maps are small anchor tables interpolated to 256 entries (no matplotlib at inference):
- depth: metric depth becomes inverse depth (near = bright, as disparity), robustly normalised to
  the 2nd–98th percentile of valid pixels, through a turbo-like map; invalid pixels are black.
- thermal: °C clipped to a fixed range [-20, 120] °C by default (or per-image percentiles with
  ``fixed_range=None``); relative counts use their 1st–99th percentiles; an ironbow-like map.
- point clouds: V orthographic depth views (PointCLIP): the nearest point wins each pixel, points
  are splatted to a few pixels, nearer = brighter, grey replicated to 3 channels.
"""

from __future__ import annotations

import numpy as np

_TURBO = [
    (0.00, (48, 18, 59)),
    (0.15, (70, 107, 227)),
    (0.30, (40, 187, 236)),
    (0.45, (49, 242, 153)),
    (0.60, (162, 252, 60)),
    (0.75, (237, 208, 58)),
    (0.88, (251, 128, 34)),
    (1.00, (122, 4, 3)),
]
_IRONBOW = [
    (0.00, (0, 0, 10)),
    (0.20, (60, 10, 120)),
    (0.40, (160, 20, 130)),
    (0.55, (220, 60, 60)),
    (0.70, (245, 130, 20)),
    (0.85, (252, 200, 40)),
    (1.00, (255, 255, 230)),
]


def _lut(anchors: list[tuple[float, tuple[int, int, int]]]) -> np.ndarray:
    xs = np.array([a[0] for a in anchors])
    cols = np.array([a[1] for a in anchors], np.float32)
    grid = np.linspace(0, 1, 256)
    return np.stack([np.interp(grid, xs, cols[:, c]) for c in range(3)], axis=1).astype(np.uint8)


TURBO = _lut(_TURBO)
IRONBOW = _lut(_IRONBOW)


def apply_colormap(unit: np.ndarray, lut: np.ndarray, invalid: np.ndarray | None = None) -> np.ndarray:
    """Values in [0, 1] → (H, W, 3) uint8; ``invalid`` pixels are black."""
    idx = np.clip(np.nan_to_num(unit) * 255, 0, 255).astype(np.uint8)
    rgb = lut[idx]
    if invalid is not None:
        rgb[invalid] = 0
    return rgb


def _robust_unit(values: np.ndarray, valid: np.ndarray, lo_q: float, hi_q: float) -> np.ndarray:
    v = values[valid]
    lo, hi = np.percentile(v, [lo_q, hi_q]) if v.size else (0.0, 1.0)
    if hi - lo < 1e-12:
        return np.where(valid, 0.5, 0.0)
    return np.clip((values - lo) / (hi - lo), 0, 1)


def render_depth(depth: np.ndarray, kind: str = "metric") -> np.ndarray:
    """(H, W) depth (NaN invalid) → turbo-coloured RGB, near = warm/bright."""
    d = np.asarray(depth, np.float32)
    valid = np.isfinite(d) & (d > 0)
    inv = np.where(valid, 1.0 / np.where(valid, d, 1.0), np.nan) if kind == "metric" else d
    unit = _robust_unit(inv, valid, 2, 98)
    return apply_colormap(unit, TURBO, ~valid)


def render_thermal(values: np.ndarray, unit: str = "relative", fixed_range: tuple[float, float] | None = (-20, 120)):
    """(H, W) thermal → ironbow RGB (hot = bright)."""
    v = np.asarray(values, np.float32)
    valid = np.isfinite(v)
    if unit == "celsius" and fixed_range is not None:
        lo, hi = fixed_range
        scaled = np.clip((v - lo) / (hi - lo), 0, 1)
    else:
        scaled = _robust_unit(v, valid, 1, 99)
    return apply_colormap(scaled, IRONBOW, ~valid)


def view_rotations(n: int = 6) -> list[np.ndarray]:
    """Fixed viewpoints: front, right, back, left, top, bottom (then extra yaw steps if n > 6)."""

    def rot_y(a: float) -> np.ndarray:
        c, s = np.cos(a), np.sin(a)
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], np.float32)

    def rot_x(a: float) -> np.ndarray:
        c, s = np.cos(a), np.sin(a)
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]], np.float32)

    views = [rot_y(0), rot_y(np.pi / 2), rot_y(np.pi), rot_y(-np.pi / 2), rot_x(np.pi / 2), rot_x(-np.pi / 2)]
    k = 0
    while len(views) < n:
        views.append(rot_y(np.pi / 4 + k * np.pi / 2) @ rot_x(np.pi / 6))
        k += 1
    return views[:n]


def render_points(xyz: np.ndarray, rotation: np.ndarray, size: int = 224, splat: int = 2) -> np.ndarray:
    """Orthographic depth view of unit-sphere points: (size, size, 3) uint8, nearer = brighter."""
    from scipy.ndimage import grey_dilation

    p = np.asarray(xyz, np.float32) @ rotation.T
    margin = 0.92  # keep splats inside the frame
    u = ((p[:, 0] * margin + 1) / 2 * (size - 1)).round().astype(int)
    v = ((1 - (p[:, 1] * margin + 1) / 2) * (size - 1)).round().astype(int)
    near = (p[:, 2] + 1) / 2  # z toward the viewer → 1
    inside = (u >= 0) & (u < size) & (v >= 0) & (v < size)
    u, v, near = u[inside], v[inside], near[inside]
    img = np.zeros((size, size), np.float32)
    order = np.argsort(near)  # far first, so nearer points overwrite
    img[v[order], u[order]] = 0.25 + 0.75 * near[order]
    if splat > 0:
        img = grey_dilation(img, size=(2 * splat + 1, 2 * splat + 1))
    grey = (img * 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)
