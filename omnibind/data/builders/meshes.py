"""3-D meshes → point clouds, depth maps and shaded renders; and the one real stereo depth pair.

Source ``meshes``: named objects from Debian ``assimp-testmodels`` (BSD-3: spider, cube, sphere,
duck, teapot, engine; COLLADA files read by a small reader here, the rest by trimesh) plus
synthetic primitives from ``trimesh.creation`` (cylinder, cone, torus, capsule, ring, pyramid;
marked ``"synthetic": true``). Each object is seen in ``views`` random orientations; one item =
one view: a 2048-point cloud (PLY), a metric depth map (npz, pinhole camera 2.5 m away, NaN
background) and a Lambert-shaded grey render (PNG) of the same view. Splits are per view, so
held-out items are new orientations and new point samplings of objects also seen in training
(there are too few named meshes to hold whole objects out); the evaluation should say so.

Source ``stereo``: skimage's ``stereo_motorcycle`` (left image + real disparity map), one item,
held out for evaluation by its split rule.
"""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from omnibind.data import phrasings as T
from omnibind.data.builders.common import DatasetWriter, caption_samples, conversation, item_rng
from omnibind.errors import InputError

ASSIMP = Path("/usr/share/assimp/models")


@dataclass(frozen=True)
class MeshObject:
    """A named object: caption, label and either mesh files (under ``ASSIMP``) or a primitive name."""

    label: str
    caption: str
    files: tuple[str, ...] = ()
    primitive: str | None = None


OBJECTS: tuple[MeshObject, ...] = (
    MeshObject("spider", "A spider.", ("OBJ/spider.obj", "STL/Spider_binary.stl", "STL/Spider_ascii.stl")),
    MeshObject("cube", "A cube.", ("PLY/cube.ply", "OFF/Cube.off", "OBJ/box.obj")),
    MeshObject("sphere", "A sphere with a hole in it.", ("STL/sphereWithHole.stl",)),
    MeshObject("duck", "A rubber duck.", ("Collada/duck.dae",)),
    MeshObject("teapot", "A teapot.", ("Collada/teapots.DAE",)),
    MeshObject("engine", "A two-cylinder engine.", ("glTF2/2CylinderEngine-glTF-Binary/2CylinderEngine.glb",)),
    MeshObject("cylinder", "A cylinder.", primitive="cylinder"),
    MeshObject("cone", "A cone.", primitive="cone"),
    MeshObject("torus", "A ring-shaped torus, like a doughnut.", primitive="torus"),
    MeshObject("capsule", "A capsule shape.", primitive="capsule"),
    MeshObject("pyramid", "A pyramid.", primitive="pyramid"),
    MeshObject("ball", "A ball.", primitive="ball"),
)


# --------------------------------------------------------------------------- mesh reading


def read_collada(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and triangles of every mesh in a COLLADA file (node transforms ignored: each object
    is centred and scaled afterwards). Handles ``triangles``, ``polylist`` and ``polygons``."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as e:
        raise InputError(path, f"not a readable COLLADA file: {e}", modality="points") from None
    ns = re.match(r"\{.*\}", root.tag)
    q = (lambda t: f"{ns.group(0)}{t}") if ns else (lambda t: t)
    verts: list[np.ndarray] = []
    faces: list[np.ndarray] = []
    offset = 0
    for mesh in root.iter(q("mesh")):
        arrays = {fa.get("id"): fa.text or "" for fa in mesh.iter(q("float_array"))}
        pos_input = next(i for i in mesh.find(q("vertices")).iter(q("input")) if i.get("semantic") == "POSITION")
        src = pos_input.get("source").lstrip("#")
        # some exporters (duck.dae) write decimal commas; values are whitespace-separated anyway
        try:
            pos = np.array(arrays[f"{src}-array"].replace(",", ".").split(), np.float64).reshape(-1, 3)
        except (KeyError, ValueError) as e:
            raise InputError(path, f"unreadable COLLADA positions: {e}", modality="points") from None
        for prim in list(mesh):
            tag = prim.tag.split("}")[-1]
            if tag not in ("triangles", "polylist", "polygons"):
                continue
            inputs = prim.findall(q("input"))
            stride = max(int(i.get("offset", 0)) for i in inputs) + 1
            voff = int(next(i for i in inputs if i.get("semantic") == "VERTEX").get("offset", 0))
            polys = _collada_polys(prim, q, tag, stride, voff)
            for poly in polys:  # fan triangulation
                faces.extend(np.array([[poly[0], poly[k], poly[k + 1]] for k in range(1, len(poly) - 1)]) + offset)
        verts.append(pos)
        offset += len(pos)
    if not verts or not faces:
        raise InputError(path, "no triangles found in the COLLADA file", modality="points")
    return np.concatenate(verts), np.array(faces).reshape(-1, 3)


def _collada_polys(prim: Any, q: Any, tag: str, stride: int, voff: int) -> list[list[int]]:
    ps = [np.array(p.text.split(), np.int64)[voff::stride] for p in prim.findall(q("p")) if p.text]
    if tag == "polygons":
        return [list(p) for p in ps]
    idx = np.concatenate(ps) if ps else np.zeros(0, np.int64)
    if tag == "triangles":
        return [list(t) for t in idx.reshape(-1, 3)]
    counts = np.array(prim.find(q("vcount")).text.split(), np.int64)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    return [list(idx[a:b]) for a, b in itertools.pairwise(bounds)]


def primitive_mesh(name: str) -> Any:
    import trimesh

    c = trimesh.creation
    makers = {
        "cylinder": lambda: c.cylinder(radius=0.5, height=1.5, sections=48),
        "cone": lambda: c.cone(radius=0.6, height=1.4, sections=48),
        "torus": lambda: c.torus(major_radius=0.8, minor_radius=0.25),
        "capsule": lambda: c.capsule(height=1.2, radius=0.35),
        "pyramid": lambda: c.cone(radius=0.8, height=1.0, sections=4),
        "ball": lambda: c.icosphere(subdivisions=3, radius=0.7),
    }
    return makers[name]()


def load_mesh(obj: MeshObject, variant: int) -> Any:
    """A trimesh.Trimesh for one object (mesh files alternate across views)."""
    import trimesh

    if obj.primitive:
        return primitive_mesh(obj.primitive)
    path = ASSIMP / obj.files[variant % len(obj.files)]
    if path.suffix.lower() == ".dae":
        v, f = read_collada(path)
        return trimesh.Trimesh(v, f, process=False)
    try:
        return trimesh.load(path, force="mesh", process=False)
    except Exception as e:  # trimesh raises many types for bad files
        raise InputError(path, f"cannot read mesh: {e}", modality="points") from None


# --------------------------------------------------------------------------- rendering


def sample_view(mesh: Any, rotation: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` surface points and their face normals, rotated, centred and scaled into the unit sphere."""
    import trimesh

    pts, face = trimesh.sample.sample_surface(mesh, n, seed=seed)
    normals = np.asarray(mesh.face_normals)[face]
    pts = (np.asarray(pts) - np.asarray(mesh.bounds).mean(axis=0)) @ rotation.T
    pts /= max(float(np.linalg.norm(pts, axis=1).max()), 1e-9)
    return pts.astype(np.float32), (normals @ rotation.T).astype(np.float32)


def render_depth_and_shading(
    pts: np.ndarray, normals: np.ndarray, size: int = 128, distance: float = 2.5, fov_deg: float = 45.0
) -> tuple[np.ndarray, np.ndarray]:
    """Pinhole z-buffer of dense surface points: metric depth (NaN background) and a grey Lambert image."""
    z = pts[:, 2] + distance
    f = size / 2 / np.tan(np.deg2rad(fov_deg) / 2)
    u = np.round(f * pts[:, 0] / z + size / 2).astype(int)
    v = np.round(-f * pts[:, 1] / z + size / 2).astype(int)
    depth = np.full(size * size, np.inf)
    shade = np.ones(size * size)
    light = np.array([0.3, 0.5, -0.8]) / np.linalg.norm([0.3, 0.5, -0.8])
    lam = 0.25 + 0.75 * np.abs(normals @ light)  # abs: meshes have inconsistent winding
    for du, dv in ((du, dv) for du in (-1, 0, 1) for dv in (-1, 0, 1)):  # 3×3 splats close the gaps
        uu, vv = u + du, v + dv
        ok = (uu >= 0) & (uu < size) & (vv >= 0) & (vv < size)
        pix = vv[ok] * size + uu[ok]
        np.minimum.at(depth, pix, z[ok])
        win = z[ok] <= depth[pix] + 1e-9
        shade[pix[win]] = lam[ok][win]
    depth = depth.reshape(size, size)
    img = np.where(np.isfinite(depth), shade.reshape(size, size), 1.0)
    depth[~np.isfinite(depth)] = np.nan
    rgb = (np.stack([img * 0.9, img * 0.9, img], axis=-1) * 255).astype(np.uint8)
    return depth.astype(np.float32), rgb


def write_ply(path: Path, xyz: np.ndarray) -> None:
    from plyfile import PlyData, PlyElement

    vertex = np.empty(len(xyz), dtype=[("x", "f4"), ("y", "f4"), ("z", "f4")])
    vertex["x"], vertex["y"], vertex["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    PlyData([PlyElement.describe(vertex, "vertex")]).write(str(path))


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random rotation (QR of a Gaussian matrix with the sign fixed)."""
    qm, r = np.linalg.qr(rng.normal(size=(3, 3)))
    qm = qm * np.sign(np.diag(r))
    if np.linalg.det(qm) < 0:
        qm[:, 0] = -qm[:, 0]
    return qm


# --------------------------------------------------------------------------- builders


def build_meshes(out: Path, *, limit=None, seed: int = 0, splits=("train", "val", "test"), views: int = 12):
    """Point-cloud, depth and render samples for every object × ``views`` orientations."""
    from PIL import Image

    w = DatasetWriter(out, "meshes", splits=splits, limit=limit)
    labels = [o.label for o in OBJECTS]
    for obj in OBJECTS:
        for view in range(views):
            item = f"{obj.label}/v{view:02d}"
            if not w.wants(item):
                continue
            rng = item_rng(seed, "meshes", item)
            nrng = np.random.default_rng(rng.getrandbits(32))
            try:
                mesh = load_mesh(obj, view)
            except InputError as e:
                w.skip(item, e.problem)
                continue
            rot = random_rotation(nrng)
            cloud, _ = sample_view(mesh, rot, 2048, seed=int(nrng.integers(1 << 31)))
            dense, normals = sample_view(mesh, rot, 60000, seed=int(nrng.integers(1 << 31)))
            depth, rgb = render_depth_and_shading(dense, normals)
            write_ply(w.media_path(f"{item}.ply"), cloud)
            np.savez_compressed(w.media_path(f"{item}-depth.npz"), depth=depth)
            Image.fromarray(rgb).save(w.media_path(f"{item}-render.png"))
            pts = {"type": "points", "path": f"media/meshes/{item}.ply"}
            dep = {"type": "depth", "path": f"media/meshes/{item}-depth.npz"}
            img = {"type": "image", "path": f"media/meshes/{item}-render.png"}
            extra = {"synthetic": obj.primitive is not None}
            samples = caption_samples(f"{item}:points", [pts], obj.caption, obj.label, labels, rng, n_qa=1, extra=extra)
            samples += caption_samples(f"{item}:depth", [dep], obj.caption, obj.label, labels, rng, n_qa=1, extra=extra)
            samples.append(_pair(item, [img, dep, pts], obj, rng, extra))
            w.add_item(item, samples)
    return w.write()


def _pair(item: str, media: list[dict], obj: MeshObject, rng: Any, extra: dict) -> dict[str, Any]:
    prompt = "<image>\n<depth>\n<points>\n" + rng.choice(
        ("These are a render, a depth map and a point cloud of one object. What is it?", "What object is shown?")
    )
    return {
        "id": f"{item}#pair",
        "media": media,
        "conversation": conversation(prompt, T.sentence(T.article(obj.label))),
        "task": "pair",
        "caption": obj.caption,
        "label": obj.label,
        **extra,
    }


def build_stereo(out: Path, *, limit=None, seed: int = 0, splits=("train", "val", "test")):
    """skimage's stereo motorcycle: the left image and the real disparity map (one item)."""
    from PIL import Image
    from skimage import data

    w = DatasetWriter(out, "stereo", splits=splits, limit=limit)
    item = "motorcycle"
    if w.wants(item):
        left, _, disparity = data.stereo_motorcycle()
        rng = item_rng(seed, "stereo", item)
        Image.fromarray(left).save(w.media_path("motorcycle-left.png"))
        np.savez_compressed(w.media_path("motorcycle-disparity.npz"), disparity=disparity.astype(np.float32))
        img = {"type": "image", "path": "media/stereo/motorcycle-left.png"}
        dep = {"type": "depth", "path": "media/stereo/motorcycle-disparity.npz", "options": {"kind": "disparity"}}
        caption = "A motorcycle parked indoors."
        samples = caption_samples(item + ":depth", [dep], caption, "motorcycle", ["car", "bicycle", "chair"], rng)
        samples += caption_samples(item + ":pair", [img, dep], caption, "motorcycle", ["car", "bicycle"], rng, n_qa=0)
        w.add_item(item, samples)
    return w.write()
