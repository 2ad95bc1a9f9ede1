"""ModelNet40 (Wu et al., 2015, "3D ShapeNets") from its release folder ``ModelNet40/``::

    ModelNet40/airplane/train/airplane_0001.off ...
    ModelNet40/airplane/test/airplane_0627.off ...     40 class folders, .off meshes

The official split is the ``train``/``test`` folder (9,843 / 2,468 meshes). Meshes are sampled
to points by the points modality (area-weighted, fixed seed; the ``OFF`` header fused with the
counts, as in some ModelNet files, is read too). Class names are the folder names with
underscores as spaces ("night stand").
"""

from __future__ import annotations

from pathlib import Path

from omnibind.errors import InputError
from omnibind.eval.datasets.base import DATASETS, Sample
from omnibind.eval.datasets.official_common import find_root, need_data_dir
from omnibind.messages import MediaPart


def _is_root(p: Path) -> bool:
    return any(c.is_dir() and (c / "test").is_dir() for c in p.iterdir()) if p.is_dir() else False


@DATASETS.register("modelnet40_official")
def modelnet40_official(data_dir: str | None = None, split: str = "test", num_points: int = 2048) -> list[Sample]:
    """Every mesh of one split, labelled by its class folder; options are all classes, sorted."""
    if split not in ("train", "test"):
        raise InputError("modelnet40_official", f"split must be train or test, got {split!r}")
    names = ("ModelNet40", "modelnet40", "ModelNet10")
    root = find_root(need_data_dir(data_dir, "modelnet40_official"), names, _is_root, "ModelNet class folders")
    classes = sorted(c.name for c in root.iterdir() if c.is_dir() and (c / split).is_dir())
    options = [c.replace("_", " ") for c in classes]
    out = []
    for cls, label in zip(classes, options):
        for mesh in sorted((root / cls / split).glob("*.off")):
            out.append(
                Sample(
                    f"{cls}/{mesh.stem}",
                    mesh.stem,
                    "modelnet40",
                    [MediaPart("points", str(mesh), options={"num_points": num_points}, name=mesh.name)],
                    label,
                    options,
                )
            )
    if not out:
        raise InputError(str(root), f"no .off meshes in <class>/{split}/")
    return out
