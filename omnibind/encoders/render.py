"""Rendering of non-RGB modalities into 3-channel uint8 images for an image encoder (numpy only).

Colour maps are 17-anchor tables sampled from matplotlib's viridis, inferno and turbo, linearly
interpolated to 256 entries (within 7/255 of the originals; a unit test checks that), so inference
needs no matplotlib.

- Depth (``render_depth``): metric depth becomes inverse depth, so near is large, like disparity;
  values are normalised to the 2nd–98th percentile of the valid pixels (robust to a few outliers),
  then coloured with viridis, whose luminance rises monotonically: near = bright yellow, far = dark
  blue-violet. Invalid pixels (NaN, inf, ≤ 0) are black.
- Thermal (``render_thermal``): °C are clipped to a fixed range, [-20, 120] °C by default, so a
  colour always means the same temperature; ``celsius_range=None`` uses per-image percentiles
  instead. Relative units use their 1st–99th percentiles. Coloured with inferno (hot = bright, an
  ironbow-like look); non-finite pixels are black.
- Point clouds (``render_points``): orthographic depth views from fixed viewpoints, as in
  PointCLIP (Zhang et al., CVPR 2022): the nearest point wins each pixel (scatter-max of nearness,
  i.e. a z-buffer), each point is splatted to a small square (densifying sparse clouds), nearer =
  brighter grey on black. The unit sphere maps into the central ``margin`` of the frame so that
  the image encoder's 224/256 centre crop keeps the whole object.
"""

from __future__ import annotations

import numpy as np

from omnibind.errors import InputError

_VIRIDIS = [(68, 1, 84), (72, 24, 106), (71, 45, 123), (66, 64, 134), (59, 82, 139), (51, 99, 141), (44, 114, 142),
            (38, 130, 142), (33, 145, 140), (31, 160, 136), (40, 174, 128), (63, 188, 115), (94, 201, 98),
            (132, 212, 75), (173, 220, 48), (216, 226, 25), (253, 231, 37)]  # fmt: skip
_INFERNO = [(0, 0, 4), (11, 7, 36), (33, 12, 74), (61, 9, 101), (87, 16, 110), (113, 25, 110), (138, 34, 106),
            (163, 44, 97), (188, 55, 84), (210, 70, 68), (228, 90, 49), (241, 115, 29), (249, 142, 9),
            (252, 172, 17), (249, 203, 53), (242, 234, 105), (252, 255, 164)]  # fmt: skip
_TURBO = [(48, 18, 59), (64, 64, 162), (70, 107, 227), (66, 148, 255), (40, 188, 235), (24, 221, 194),
          (50, 242, 152), (109, 254, 98), (164, 252, 60), (205, 236, 52), (238, 207, 58), (253, 172, 52),
          (251, 126, 33), (235, 80, 14), (208, 47, 5), (169, 22, 1), (122, 4, 3)]  # fmt: skip


def _lut(anchors: list[tuple[int, int, int]]) -> np.ndarray:
    xs = np.linspace(0, 1, len(anchors))
    cols = np.array(anchors, np.float64)
    grid = np.linspace(0, 1, 256)
    return np.stack([np.interp(grid, xs, cols[:, c]) for c in range(3)], axis=1).round().astype(np.uint8)


COLORMAPS: dict[str, np.ndarray] = {"viridis": _lut(_VIRIDIS), "inferno": _lut(_INFERNO), "turbo": _lut(_TURBO)}
"""Name → (256, 3) uint8 lookup table."""

DEFAULT_CELSIUS_RANGE = (-20.0, 120.0)


def colormap(name: str) -> np.ndarray:
    """The (256, 3) uint8 lookup table of a colour map in ``COLORMAPS``."""
    try:
        return COLORMAPS[name]
    except KeyError:
        from omnibind.errors import ConfigError

        raise ConfigError(f"unknown colour map {name!r}; known: {sorted(COLORMAPS)}") from None


def apply_colormap(unit: np.ndarray, lut: np.ndarray, invalid: np.ndarray | None = None) -> np.ndarray:
    """Values in [0, 1] (H, W) → (H, W, 3) uint8 through ``lut``; ``invalid`` pixels are black."""
    idx = np.clip(np.nan_to_num(unit, nan=0.0) * 255 + 0.5, 0, 255).astype(np.uint8)
    rgb = lut[idx]
    if invalid is not None:
        rgb[invalid] = 0
    return rgb


def robust_unit(values: np.ndarray, valid: np.ndarray, lo_q: float, hi_q: float) -> np.ndarray:
    """Map ``values`` to [0, 1] between the ``lo_q`` and ``hi_q`` percentiles of the valid pixels.

    A constant image maps to 0.5 (mid-colour) rather than dividing by zero.
    """
    v = values[valid]
    if v.size == 0:
        return np.zeros(values.shape, np.float32)
    lo, hi = np.percentile(v, [lo_q, hi_q])
    if hi - lo < 1e-12 * max(1.0, abs(hi)):
        return np.where(valid, 0.5, 0.0).astype(np.float32)
    with np.errstate(invalid="ignore"):
        return np.clip((values - lo) / (hi - lo), 0, 1).astype(np.float32)


def _check_map(arr: np.ndarray, what: str, modality: str) -> np.ndarray:
    a = np.asarray(arr)
    if a.ndim != 2 or min(a.shape) < 1 or not np.issubdtype(a.dtype, np.number):
        raise InputError(
            f"<{modality}>", f"expected a numeric (H, W) {what} map, got shape {a.shape}", modality=modality
        )
    return a.astype(np.float32, copy=False)


def render_depth(depth: np.ndarray, kind: str = "metric", cmap: str = "viridis") -> np.ndarray:
    """(H, W) depth (NaN = invalid) → (H, W, 3) uint8, near = bright; ``kind`` is metric or disparity."""
    d = _check_map(depth, "depth", "depth")
    if kind not in ("metric", "disparity"):
        raise InputError("<depth>", f"unknown depth kind {kind!r} (metric or disparity)", modality="depth")
    valid = np.isfinite(d) & (d > 0)
    near = np.where(valid, 1.0 / np.where(valid, d, 1.0), np.nan) if kind == "metric" else d
    return apply_colormap(robust_unit(near, valid, 2, 98), colormap(cmap), ~valid)


def render_thermal(
    values: np.ndarray,
    unit: str = "relative",
    celsius_range: tuple[float, float] | None = DEFAULT_CELSIUS_RANGE,
    cmap: str = "inferno",
) -> np.ndarray:
    """(H, W) thermal → (H, W, 3) uint8, hot = bright; see the module docstring for the ranges."""
    v = _check_map(values, "thermal", "thermal")
    if unit not in ("celsius", "relative"):
        raise InputError("<thermal>", f"unknown thermal unit {unit!r} (celsius or relative)", modality="thermal")
    valid = np.isfinite(v)
    if unit == "celsius" and celsius_range is not None:
        lo, hi = (float(x) for x in celsius_range)
        with np.errstate(invalid="ignore"):
            scaled = np.clip((v - lo) / (hi - lo), 0, 1)
    else:
        scaled = robust_unit(v, valid, 1, 99)
    return apply_colormap(scaled, colormap(cmap), ~valid)


def view_rotations(n: int = 6) -> list[np.ndarray]:
    """Fixed camera rotations: front, right, back, left, top, bottom; more views add tilted yaw steps."""

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


def max_filter(img: np.ndarray, radius: int) -> np.ndarray:
    """Square (2r+1)² maximum filter (separable: rows then columns), zero outside the image."""
    out = img
    for axis in (0, 1):
        padded = np.pad(out, [(radius, radius) if a == axis else (0, 0) for a in (0, 1)])
        n = out.shape[axis]
        out = np.max([np.take(padded, range(k, k + n), axis=axis) for k in range(2 * radius + 1)], axis=0)
    return out


def check_points(xyz: np.ndarray) -> np.ndarray:
    """(N, 3) finite float32 points, else ``InputError``."""
    p = np.asarray(xyz)
    if p.ndim != 2 or p.shape[1] != 3 or len(p) == 0:
        raise InputError("<points>", f"expected (N, 3) points with N ≥ 1, got shape {p.shape}", modality="points")
    if not np.issubdtype(p.dtype, np.number) or not np.isfinite(p).all():
        raise InputError("<points>", "point coordinates must be finite numbers", modality="points")
    return p.astype(np.float32, copy=False)


def render_points(
    xyz: np.ndarray, rotation: np.ndarray, size: int = 224, splat: int = 2, margin: float = 0.8
) -> np.ndarray:
    """One orthographic depth view of unit-sphere points: (size, size, 3) uint8 grey, nearer = brighter."""
    # einsum, not ``@``: BLAS's threaded (N, 3) × (3, 3) product was 5× slower on a busy CPU
    p = np.einsum("nj,ij->ni", check_points(xyz), np.asarray(rotation, np.float32))
    half = (size - 1) / 2
    u = np.round(half + p[:, 0] * margin * half).astype(np.int64)
    v = np.round(half - p[:, 1] * margin * half).astype(np.int64)  # image rows grow downward
    near = np.clip((p[:, 2] + 1) / 2, 0, 1)  # +z faces the camera → 1
    inside = (u >= 0) & (u < size) & (v >= 0) & (v < size)
    img = np.zeros(size * size, np.float32)
    # z-buffer: the nearest point per pixel wins; 0.25 floor keeps far points visible against black
    np.maximum.at(img, v[inside] * size + u[inside], 0.25 + 0.75 * near[inside])
    img = img.reshape(size, size)
    if splat > 0:
        img = max_filter(img, splat)
    grey = np.round(img * 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def render_point_views(
    xyz: np.ndarray, views: int = 6, size: int = 224, splat: int = 2, max_points: int = 200_000
) -> list[np.ndarray]:
    """All ``views`` depth images of a cloud. Clouds over ``max_points`` are subsampled with a fixed
    seed first (more points than pixels add nothing at this resolution), so the result is deterministic."""
    p = check_points(xyz)
    if len(p) > max_points:
        p = p[np.sort(np.random.default_rng(0).choice(len(p), max_points, replace=False))]
    return [render_points(p, r, size, splat) for r in view_rotations(views)]
