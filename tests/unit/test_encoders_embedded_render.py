"""Renderers of depth, thermal and point clouds (numpy only, no weights)."""

from __future__ import annotations

import numpy as np
import pytest

from omnibind.encoders import render
from omnibind.errors import ConfigError, InputError


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])


@pytest.mark.parametrize("name", sorted(render.COLORMAPS))
def test_colormap_tables_match_matplotlib(name: str):
    matplotlib = pytest.importorskip("matplotlib")
    ref = np.round(matplotlib.colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255)
    lut = render.colormap(name)
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    assert np.abs(lut.astype(float) - ref).max() <= 8


def test_unknown_colormap_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown colour map"):
        render.colormap("jet")


def test_depth_near_is_brighter_and_invalid_is_black():
    depth = np.tile(np.linspace(0.5, 10.0, 64, dtype=np.float32), (32, 1))  # near on the left
    depth[:4, :4] = np.nan
    depth[4, 4] = 0.0  # zero depth is invalid too
    rgb = render.render_depth(depth, "metric")
    assert rgb.shape == (32, 64, 3) and rgb.dtype == np.uint8
    assert (rgb[:4, :4] == 0).all() and (rgb[4, 4] == 0).all()
    luma = _luma(rgb[10])
    assert luma[5] > luma[30] > luma[60]  # monotone: nearer is brighter


def test_metric_depth_renders_like_its_disparity():
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.5, 8.0, (20, 30)).astype(np.float32)
    np.testing.assert_array_equal(render.render_depth(depth, "metric"), render.render_depth(1.0 / depth, "disparity"))


def test_depth_normalisation_ignores_outliers():
    depth = np.tile(np.linspace(1.0, 2.0, 50, dtype=np.float32), (50, 1))
    base = render.render_depth(depth)
    spiked = depth.copy()
    spiked[0, 0] = 1e-4  # one absurdly near pixel must not flatten the rest of the image
    assert np.abs(_luma(render.render_depth(spiked))[1:] - _luma(base)[1:]).max() < 12


def test_depth_edge_cases():
    assert (render.render_depth(np.full((5, 5), np.nan, np.float32)) == 0).all()
    flat = render.render_depth(np.ones((5, 5), np.float32))
    assert (flat == render.colormap("viridis")[128]).all()  # a constant map is mid-colour
    with pytest.raises(InputError, match="depth kind"):
        render.render_depth(np.ones((4, 4), np.float32), "radar")
    with pytest.raises(InputError, match=r"\(H, W\)"):
        render.render_depth(np.ones((4, 4, 3), np.float32))


def test_thermal_celsius_uses_a_fixed_range():
    lut = render.colormap("inferno")
    hot = render.render_thermal(np.array([[150.0, 120.0], [-40.0, -20.0]], np.float32), "celsius")
    assert (hot[0, 0] == lut[255]).all() and (hot[0, 1] == lut[255]).all()
    assert (hot[1, 0] == lut[0]).all() and (hot[1, 1] == lut[0]).all()
    # the same temperature gets the same colour whatever else is in the picture
    a = render.render_thermal(np.array([[37.0, 20.0]], np.float32), "celsius")
    b = render.render_thermal(np.array([[37.0, 90.0]], np.float32), "celsius")
    assert (a[0, 0] == b[0, 0]).all()
    assert _luma(a)[0, 0] > _luma(a)[0, 1]  # hotter = brighter


def test_thermal_percentiles_for_relative_and_on_request():
    ramp = np.tile(np.linspace(0, 1, 100, dtype=np.float32), (10, 1))
    rel = render.render_thermal(ramp, "relative")
    assert _luma(rel)[0, 99] > _luma(rel)[0, 50] > _luma(rel)[0, 0]
    narrow = 30 + ramp  # 30–31 °C: a fixed range would show one colour, percentiles stretch it
    assert len(np.unique(render.render_thermal(narrow, "celsius").reshape(-1, 3), axis=0)) <= 3
    assert len(np.unique(render.render_thermal(narrow, "celsius", None).reshape(-1, 3), axis=0)) > 50
    with_nan = ramp.copy()
    with_nan[0, 0] = np.nan
    assert (render.render_thermal(with_nan)[0, 0] == 0).all()
    with pytest.raises(InputError, match="thermal unit"):
        render.render_thermal(ramp, "kelvin")


def test_view_rotations_are_distinct_rotations():
    views = render.view_rotations(8)
    assert len(views) == 8
    for r in views:
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-5)
        assert np.linalg.det(r) == pytest.approx(1.0, abs=1e-5)
    flat = np.stack([r.ravel() for r in views])
    assert len(np.unique(flat.round(4), axis=0)) == 8


def test_max_filter_matches_brute_force():
    rng = np.random.default_rng(1)
    img = rng.random((9, 11)).astype(np.float32)
    out = render.max_filter(img, 2)
    padded = np.pad(img, 2)
    brute = np.array([[padded[i : i + 5, j : j + 5].max() for j in range(11)] for i in range(9)])
    np.testing.assert_array_equal(out, brute)


def test_point_view_z_buffer_and_framing():
    # two points on the same line of sight: the nearer one (+z faces the camera) must win
    xyz = np.array([[0.0, 0.0, 0.9], [0.0, 0.0, -0.9]], np.float32)
    img = render.render_points(xyz, np.eye(3, dtype=np.float32), size=64, splat=0)[..., 0]
    assert img.max() == round((0.25 + 0.75 * 0.95) * 255)
    assert (img > 0).sum() == 1
    # the unit sphere stays inside the image encoder's central 224/256 crop
    rng = np.random.default_rng(0)
    sphere = rng.normal(size=(5000, 3)).astype(np.float32)
    sphere /= np.linalg.norm(sphere, axis=1, keepdims=True)
    img = render.render_points(sphere, np.eye(3, dtype=np.float32), size=224)[..., 0]
    rows, cols = np.nonzero(img)
    lo, hi = (224 - 196) // 2, 224 - (224 - 196) // 2
    assert rows.min() >= lo and rows.max() < hi and cols.min() >= lo and cols.max() < hi


def test_point_views_see_different_sides_and_are_deterministic():
    rng = np.random.default_rng(2)
    # an L-shaped cloud: the front and top views differ
    xyz = np.concatenate([rng.uniform([-0.6, -0.6, -0.1], [0.6, -0.4, 0.1], (800, 3)),
                          rng.uniform([-0.6, -0.6, -0.1], [-0.4, 0.6, 0.1], (800, 3))]).astype(np.float32)  # fmt: skip
    views = render.render_point_views(xyz, views=6, size=96)
    assert len(views) == 6 and all(v.shape == (96, 96, 3) and v.dtype == np.uint8 for v in views)
    assert not np.array_equal(views[0], views[4])
    again = render.render_point_views(xyz, views=6, size=96)
    assert all(np.array_equal(a, b) for a, b in zip(views, again))
    # subsampling a huge cloud is seeded: same input, same picture
    big = rng.uniform(-0.5, 0.5, (3000, 3)).astype(np.float32)
    a = render.render_point_views(big, views=1, size=64, max_points=500)
    b = render.render_point_views(big, views=1, size=64, max_points=500)
    assert np.array_equal(a[0], b[0])


@pytest.mark.parametrize(
    "bad", [np.zeros((0, 3)), np.zeros((5, 2)), np.array([[0.0, np.nan, 0.0]]), np.array([["a", "b", "c"]])]
)
def test_bad_point_clouds_raise_input_errors(bad: np.ndarray):
    with pytest.raises(InputError):
        render.render_point_views(bad, views=1, size=32)
