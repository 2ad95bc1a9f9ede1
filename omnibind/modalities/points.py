"""3D point clouds → ``PointsData`` (N, 3) in the unit sphere, with colours when the file has them.

* Point sets: .ply (ascii/binary, via trimesh), .pcd (ascii/binary, own reader), .xyz/.txt
  (``x y z [r g b]`` per line), .npy (N×3 or N×6 with colour), arrays.
* Meshes: .obj/.off/.stl/.glb/.gltf and .ply with faces, sampled area-weighted to
  ``options["num_points"]`` (default 2048) with trimesh, seeded by ``options["seed"]`` (default 0)
  so repeated loads agree. Vertex, face and texture colours are sampled with the points.
* Clouds with more than ``num_points`` points are subsampled (fixed seed); smaller ones are kept
  as they are (never duplicated). Points are centred on their bounding-box centre and scaled so the
  farthest lies on the unit sphere. Non-finite points are dropped.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from omnibind.errors import InputError, InputTooLargeError
from omnibind.modalities._source import Source, check_source, is_file_source, load_numpy
from omnibind.modalities.base import MODALITIES, Limits, Modality, PointsData, source_name
from omnibind.modalities.options import Option

FORMATS = ("ply", "pcd", "xyz", "txt", "npy", "obj", "off", "stl", "glb", "gltf")
MAX_SAMPLED = 1_000_000

OPTIONS = (
    Option(
        "num_points",
        int,
        "points sampled from a mesh surface / kept from a larger cloud",
        default=2048,
        range=(1, MAX_SAMPLED),
        client=True,
        client_range=(16, 16_384),
    ),
    Option(
        "seed", int, "seed of the mesh sampling and subsampling", default=0, client=True, client_range=(0, 2**31 - 1)
    ),
)


@MODALITIES.register("points")
class PointsModality(Modality):
    """Point clouds and meshes → ``PointsData``."""

    name = "points"
    extensions = FORMATS
    description = "3D point cloud or mesh"
    options = OPTIONS

    def load(self, source: Any, *, format=None, options=None, limits=None, name=None) -> PointsData:
        limits = limits or Limits()
        label = source_name(source, name)
        options = self.checked_options(options, label)
        n, seed = _options(options, label)
        if isinstance(source, PointsData):
            return _finish(source.xyz, source.colors, n, seed, label, limits)
        if isinstance(source, np.ndarray):
            xyz, colors = _split(source, label)
            return _finish(xyz, colors, n, seed, label, limits)
        if not is_file_source(source):
            raise InputError(label, f"cannot read points from {type(source).__name__}", modality="points")
        src = check_source(source, modality="points", limits=limits, format=format, name=name, allowed=FORMATS)
        xyz, colors = _decode(src, n, seed, limits)
        return _finish(xyz, colors, n, seed, src.name, limits)


def _options(options: dict[str, Any], label: str) -> tuple[int, int]:
    try:
        n, seed = int(options.get("num_points", 2048)), int(options.get("seed", 0))
    except (TypeError, ValueError):
        raise InputError(label, "num_points and seed must be integers", modality="points") from None
    if not 1 <= n <= MAX_SAMPLED:
        raise InputError(label, f"num_points must be in 1..{MAX_SAMPLED}, got {n}", modality="points")
    return n, seed


def _decode(src: Source, n: int, seed: int, limits: Limits) -> tuple[np.ndarray, np.ndarray | None]:
    if src.ext == "npy":
        return _split(load_numpy(src)[0], src.name)
    if src.ext in ("xyz", "txt"):
        return _split(_read_text_points(src), src.name)
    if src.ext == "pcd":
        return _read_pcd(src)
    return _read_trimesh(src, n, seed, limits)


def _read_text_points(src: Source) -> np.ndarray:
    try:
        text = src.read().decode("utf-8")
        with np.errstate(all="ignore"):
            return np.loadtxt(io.StringIO(text.replace(",", " ")), ndmin=2, comments="#")
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(src.name, f"not a readable XYZ text file: {e}", modality="points") from None


def _read_trimesh(src: Source, n: int, seed: int, limits: Limits) -> tuple[np.ndarray, np.ndarray | None]:
    import trimesh

    try:
        # A path lets glTF find its side-car .bin buffers and textures.
        obj = trimesh.load(src.target(), file_type=src.ext, process=False)
    except Exception as e:  # trimesh's many loaders raise many unrelated types
        hint = " (a .gltf with side-car .bin buffers must be loaded from its path)" if src.ext == "gltf" else ""
        raise InputError(
            src.name, f"not a readable {src.ext} file: {type(e).__name__}: {e}{hint}", modality="points"
        ) from None
    geoms = obj.dump() if isinstance(obj, trimesh.Scene) else [obj]  # dump() applies scene transforms
    meshes = [g for g in geoms if isinstance(g, trimesh.Trimesh) and len(g.faces)]
    verts = sum(len(getattr(g, "vertices", ())) for g in geoms)
    if verts > limits.max_points:
        raise InputTooLargeError(
            src.name, f"{verts} vertices exceeds the limit of {limits.max_points}", modality="points"
        )
    for g in meshes:  # corrupt files can carry face indices past the vertex list
        if g.faces.min() < 0 or g.faces.max() >= len(g.vertices):
            raise InputError(src.name, "corrupt mesh: face indices point past the vertices", modality="points")
    meshes = [g for g in meshes if g.area > 0]
    if meshes:
        return _sample_meshes(meshes, n, seed)
    clouds = [g for g in geoms if len(getattr(g, "vertices", ())) > 0]
    if not clouds:
        raise InputError(src.name, "no points or faces in the file", modality="points")
    xyz = np.concatenate([np.asarray(g.vertices, np.float32) for g in clouds])
    cols = [getattr(g, "colors", None) for g in clouds]
    colors = None
    if all(c is not None and len(c) == len(g.vertices) for c, g in zip(cols, clouds)):
        colors = np.concatenate([np.asarray(c, np.float32)[:, :3] for c in cols]) / 255.0
    return xyz, colors


def _sample_meshes(meshes: list[Any], n: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Area-weighted surface samples over all meshes (each gets its share by area), with colours."""
    import trimesh

    areas = np.array([m.area for m in meshes])
    counts = np.random.default_rng(seed).multinomial(n, areas / areas.sum())
    pts, cols = [], []
    for i, (mesh, k) in enumerate(zip(meshes, counts)):
        if k == 0:
            continue
        kind = getattr(mesh.visual, "kind", None)
        if kind == "texture":
            try:
                p, _, c = trimesh.sample.sample_surface(mesh, int(k), sample_color=True, seed=seed + i)
            except Exception:  # a broken texture must not lose the geometry
                p, _ = trimesh.sample.sample_surface(mesh, int(k), seed=seed + i)
                c = None
        else:
            p, face = trimesh.sample.sample_surface(mesh, int(k), seed=seed + i)
            c = _face_colors(mesh, face, kind)
        pts.append(np.asarray(p, np.float32))
        cols.append(None if c is None else np.asarray(c, np.float32)[:, :3] / 255.0)
    xyz = np.concatenate(pts)
    colors = np.concatenate(cols) if all(c is not None for c in cols) else None
    return xyz, colors


def _face_colors(mesh: Any, face: np.ndarray, kind: str | None) -> np.ndarray | None:
    if kind == "vertex":
        return mesh.visual.vertex_colors[mesh.faces[face]].astype(np.float32).mean(axis=1)
    if kind == "face":
        return mesh.visual.face_colors[face]
    return None


def _read_pcd(src: Source) -> tuple[np.ndarray, np.ndarray | None]:
    """PCD v0.7: ascii and binary (uncompressed) data with x y z [rgb|rgba] fields."""
    raw = src.read()
    header, pos = _pcd_header(raw, src.name)
    try:
        fields = header["FIELDS"]
        sizes = [int(s) for s in header["SIZE"]]
        types = header["TYPE"]
        counts = [int(c) for c in header.get("COUNT", ["1"] * len(fields))]
        npts = int(header["POINTS"][0])
        mode = header["DATA"][0].lower()
    except (KeyError, ValueError, IndexError) as e:
        raise InputError(src.name, f"bad PCD header (missing or wrong {e})", modality="points") from None
    if not {"x", "y", "z"} <= set(fields):
        raise InputError(src.name, f"PCD needs x y z fields; has {fields}", modality="points")
    if mode == "ascii":
        rec = _pcd_ascii(raw[pos:], fields, counts, src.name)
    elif mode == "binary":
        rec = _pcd_binary(raw[pos:], fields, sizes, types, counts, npts, src.name)
    else:
        raise InputError(src.name, f"unsupported PCD data mode {mode!r} (ascii and binary are read)", modality="points")
    xyz = np.stack([rec["x"], rec["y"], rec["z"]], axis=1).astype(np.float32)
    colour_field = next((f for f in ("rgb", "rgba") if f in fields), None)
    colors = None
    if colour_field is not None:  # PCL packs 0x00RRGGBB into the bits of a float32
        packed = np.ascontiguousarray(rec[colour_field], dtype=np.float32).view(np.uint32)
        colors = np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=1).astype(np.float32) / 255
    return xyz, colors


def _pcd_header(raw: bytes, name: str) -> tuple[dict[str, list[str]], int]:
    header: dict[str, list[str]] = {}
    pos = 0
    while "DATA" not in header:
        end = raw.find(b"\n", pos)
        if end == -1 or pos > 4096:
            raise InputError(name, "truncated or missing PCD header (no DATA line)", modality="points")
        line = raw[pos:end].decode("ascii", "replace").strip()
        pos = end + 1
        if line and not line.startswith("#"):
            key, *vals = line.split()
            header[key.upper()] = vals
    return header, pos


def _pcd_ascii(body: bytes, fields: list[str], counts: list[int], name: str) -> dict[str, np.ndarray]:
    try:
        arr = np.loadtxt(io.StringIO(body.decode("ascii")), ndmin=2)
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(name, f"bad PCD data: {e}", modality="points") from None
    starts = np.cumsum([0, *counts])
    if arr.shape[1] != starts[-1]:
        raise InputError(name, f"PCD rows have {arr.shape[1]} values, the header says {starts[-1]}", modality="points")
    return {f: arr[:, starts[i]] for i, f in enumerate(fields)}


def _pcd_binary(
    body: bytes, fields: list[str], sizes: list[int], types: list[str], counts: list[int], npts: int, name: str
) -> Any:
    kinds = {"F": "f", "U": "u", "I": "i"}
    try:
        dtype = np.dtype(
            [(f, f"<{kinds[t]}{s}", (c,) if c > 1 else ()) for f, s, t, c in zip(fields, sizes, types, counts)]
        )
    except (KeyError, TypeError) as e:
        raise InputError(name, f"bad PCD field types ({e})", modality="points") from None
    need = dtype.itemsize * npts
    if len(body) < need:
        raise InputError(name, f"truncated PCD data: {len(body)} of {need} bytes", modality="points")
    return np.frombuffer(body[:need], dtype=dtype)


def _split(arr: Any, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(N, 3) xyz or (N, 6) xyz + colour (0..1 or 0..255) → xyz, colours in [0, 1]."""
    try:
        a = np.asarray(arr, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise InputError(name, f"not numeric point data: {e}", modality="points") from None
    if a.ndim != 2 or a.shape[1] not in (3, 6):
        raise InputError(name, f"expected (N, 3) or (N, 6) points, got shape {a.shape}", modality="points")
    colors = a[:, 3:6] if a.shape[1] == 6 else None
    if colors is not None and np.nanmax(colors, initial=0) > 1.0:
        colors = colors / 255.0
    return a[:, :3], colors


def _finish(xyz: Any, colors: Any, n: int, seed: int, name: str, limits: Limits) -> PointsData:
    p = np.asarray(xyz, dtype=np.float32)
    if p.ndim != 2 or p.shape[1] != 3 or p.shape[0] == 0:
        raise InputError(name, f"expected (N, 3) points, got shape {p.shape}", modality="points")
    if p.shape[0] > limits.max_points:
        raise InputTooLargeError(
            name, f"{p.shape[0]} points exceeds the limit of {limits.max_points}", modality="points"
        )
    c = None if colors is None else np.clip(np.asarray(colors, np.float32), 0.0, 1.0)
    if c is not None and c.shape != p.shape:
        raise InputError(name, f"colours {c.shape} do not match points {p.shape}", modality="points")
    keep = np.isfinite(p).all(axis=1)
    p, c = p[keep], (c[keep] if c is not None else None)
    if p.shape[0] == 0:
        raise InputError(name, "no finite points", modality="points")
    if p.shape[0] > n:  # a fixed-seed subset keeps repeated loads identical
        idx = np.sort(np.random.default_rng(seed).choice(p.shape[0], n, replace=False))
        p, c = p[idx], (c[idx] if c is not None else None)
    p = p - (p.max(axis=0) + p.min(axis=0)) / 2
    radius = float(np.linalg.norm(p, axis=1).max())
    if radius > 0:
        p = p / radius
    return PointsData(xyz=p.astype(np.float32), colors=c)
