"""3D point clouds: .ply/.pcd/.xyz/.npy point sets, and meshes .obj/.off/.stl/.glb/.gltf/.ply
sampled area-weighted to ``num_points`` (default 2048) with trimesh. Points are centred on their
bounding-box centre and scaled into the unit sphere; colours are kept when present.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from omnibind.errors import InputError, InputTooLargeError
from omnibind.modalities._source import Source, check_source, is_file_source
from omnibind.modalities.base import MODALITIES, Limits, Modality, PointsData, source_name

FORMATS = ("ply", "pcd", "xyz", "txt", "npy", "obj", "off", "stl", "glb", "gltf")
MESHES = ("obj", "off", "stl", "glb", "gltf", "ply")


@MODALITIES.register("points")
class PointsModality(Modality):
    name = "points"
    extensions = FORMATS
    description = "3D point cloud or mesh"

    def load(self, source: Any, *, format=None, options=None, limits=None, name=None) -> PointsData:
        limits = limits or Limits()
        options = options or {}
        n = int(options.get("num_points", 2048))
        seed = int(options.get("seed", 0))
        label = source_name(source, name)
        if isinstance(source, PointsData):
            return _finish(source.xyz, source.colors, n, seed, label, limits)
        if isinstance(source, np.ndarray):
            return _from_array(source, n, seed, label, limits)
        if not is_file_source(source):
            raise InputError(label, f"cannot read points from {type(source).__name__}", modality="points")
        src = check_source(source, modality="points", limits=limits, format=format, name=name, allowed=FORMATS)
        xyz, colors = _decode(src, n, seed, limits)
        return _finish(xyz, colors, n, seed, src.name, limits)


def _decode(src: Source, n: int, seed: int, limits: Limits) -> tuple[np.ndarray, np.ndarray | None]:
    if src.ext == "npy":
        try:
            arr = np.load(io.BytesIO(src.read()), allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise InputError(src.name, f"not a readable numpy file: {e}", modality="points") from None
        return _split(arr, src.name)
    if src.ext in ("xyz", "txt"):
        try:
            arr = np.loadtxt(io.StringIO(src.read().decode("utf-8")), ndmin=2)
        except (ValueError, UnicodeDecodeError) as e:
            raise InputError(src.name, f"not a readable XYZ text file: {e}", modality="points") from None
        return _split(arr, src.name)
    if src.ext == "pcd":
        return _read_pcd(src)
    return _read_trimesh(src, n, seed, limits)


def _read_trimesh(src: Source, n: int, seed: int, limits: Limits) -> tuple[np.ndarray, np.ndarray | None]:
    import trimesh

    try:
        obj = trimesh.load(src.target() if src.path else io.BytesIO(src.read()), file_type=src.ext, process=False)
    except Exception as e:
        raise InputError(src.name, f"not a readable {src.ext} file: {e}", modality="points") from None
    if isinstance(obj, trimesh.Scene):
        geoms = [g for g in obj.dump() if hasattr(g, "vertices")] if obj.geometry else []
        if not geoms:
            raise InputError(src.name, "the scene holds no geometry", modality="points")
        obj = trimesh.util.concatenate(geoms) if len(geoms) > 1 else geoms[0]
    faces = getattr(obj, "faces", None)
    if faces is not None and len(faces) > 0 and obj.area > 0:
        pts, face_idx = trimesh.sample.sample_surface(obj, n, seed=seed)
        colors = None
        vc = getattr(getattr(obj, "visual", None), "vertex_colors", None)
        if vc is not None and len(vc) == len(obj.vertices) and getattr(obj.visual, "kind", None) == "vertex":
            colors = vc[obj.faces[face_idx, 0], :3].astype(np.float32) / 255.0
        return np.asarray(pts, np.float32), colors
    verts = np.asarray(getattr(obj, "vertices", []), np.float32)
    if verts.size == 0:
        raise InputError(src.name, "no points or faces in the file", modality="points")
    colors = getattr(obj, "colors", None)
    colors = np.asarray(colors, np.float32)[:, :3] / 255.0 if colors is not None and len(colors) == len(verts) else None
    return verts, colors


def _read_pcd(src: Source) -> tuple[np.ndarray, np.ndarray | None]:
    """PCD v0.7: ASCII and binary (uncompressed) data with x y z [rgb] fields."""
    raw = src.read()
    header: dict[str, list[str]] = {}
    pos = 0
    while True:
        end = raw.find(b"\n", pos)
        if end == -1:
            raise InputError(src.name, "truncated PCD header", modality="points")
        line = raw[pos:end].decode("ascii", "replace").strip()
        pos = end + 1
        if not line or line.startswith("#"):
            continue
        key, *vals = line.split()
        header[key.upper()] = vals
        if key.upper() == "DATA":
            break
    try:
        fields = header["FIELDS"]
        sizes = [int(s) for s in header["SIZE"]]
        types = header["TYPE"]
        counts = [int(c) for c in header.get("COUNT", ["1"] * len(fields))]
        npts = int(header["POINTS"][0])
        mode = header["DATA"][0]
    except (KeyError, ValueError, IndexError) as e:
        raise InputError(src.name, f"bad PCD header ({e})", modality="points") from None
    if not {"x", "y", "z"} <= set(fields):
        raise InputError(src.name, f"PCD needs x y z fields; has {fields}", modality="points")
    if mode == "ascii":
        try:
            arr = np.loadtxt(io.StringIO(raw[pos:].decode("ascii")), ndmin=2)
        except ValueError as e:
            raise InputError(src.name, f"bad PCD data: {e}", modality="points") from None
        cols = {f: i for i, f in enumerate(fields)}
        xyz = arr[:, [cols["x"], cols["y"], cols["z"]]]
        rgb_col = arr[:, cols["rgb"]].astype(np.float32) if "rgb" in cols else None
    elif mode == "binary":
        kinds = {"F": "f", "U": "u", "I": "i"}
        dtype = np.dtype(
            [(f, f"<{kinds[t]}{s}", (c,) if c > 1 else ()) for f, s, t, c in zip(fields, sizes, types, counts)]
        )
        need = dtype.itemsize * npts
        if len(raw) - pos < need:
            raise InputError(src.name, f"truncated PCD data: {len(raw) - pos} of {need} bytes", modality="points")
        rec = np.frombuffer(raw[pos : pos + need], dtype=dtype)
        xyz = np.stack([rec["x"], rec["y"], rec["z"]], axis=1)
        rgb_col = rec["rgb"].astype(np.float32) if "rgb" in fields else None
    else:
        raise InputError(src.name, f"unsupported PCD data mode {mode!r} (ascii and binary are read)", modality="points")
    colors = None
    if rgb_col is not None:
        packed = rgb_col.astype(np.float32).view(np.uint32)
        colors = np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=1).astype(np.float32) / 255
    return xyz.astype(np.float32), colors


def _split(arr: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    a = np.asarray(arr, dtype=np.float32)
    if a.ndim != 2 or a.shape[1] not in (3, 6):
        raise InputError(name, f"expected (N, 3) or (N, 6) points, got shape {a.shape}", modality="points")
    colors = a[:, 3:6] if a.shape[1] == 6 else None
    if colors is not None and colors.max() > 1.0:
        colors = colors / 255.0
    return a[:, :3], colors


def _from_array(arr: np.ndarray, n: int, seed: int, name: str, limits: Limits) -> PointsData:
    xyz, colors = _split(arr, name)
    return _finish(xyz, colors, n, seed, name, limits)


def _finish(xyz: np.ndarray, colors: np.ndarray | None, n: int, seed: int, name: str, limits: Limits) -> PointsData:
    p = np.asarray(xyz, dtype=np.float32)
    if p.ndim != 2 or p.shape[1] != 3 or p.shape[0] == 0:
        raise InputError(name, f"expected (N, 3) points, got shape {p.shape}", modality="points")
    if p.shape[0] > limits.max_points:
        raise InputTooLargeError(
            name, f"{p.shape[0]} points exceeds the limit of {limits.max_points}", modality="points"
        )
    keep = np.isfinite(p).all(axis=1)
    p = p[keep]
    colors = colors[keep] if colors is not None else None
    if p.shape[0] == 0:
        raise InputError(name, "no finite points", modality="points")
    if p.shape[0] > n:  # a fixed-seed subset keeps repeated loads identical
        idx = np.sort(np.random.default_rng(seed).choice(p.shape[0], n, replace=False))
        p, colors = p[idx], (colors[idx] if colors is not None else None)
    centre = (p.max(axis=0) + p.min(axis=0)) / 2
    p = p - centre
    radius = float(np.linalg.norm(p, axis=1).max())
    if radius > 0:
        p = p / radius
    return PointsData(xyz=p.astype(np.float32), colors=colors.astype(np.float32) if colors is not None else None)
