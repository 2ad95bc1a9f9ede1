"""Labelled photos bundled with scikit-image (files in ``skimage/data/``; nothing is downloaded).

Only the samples that ship inside the wheel are used; ``skimage.data`` functions such as
``eagle()``, ``cat()`` or ``lily()`` fetch from the network and are avoided. The package is
located with ``importlib.util.find_spec`` so listing the photos does not import scikit-image.
Licences are as the ``skimage.data`` docstrings state them.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from omnibind.data.sources import wordnet


@dataclass(frozen=True)
class Photo:
    """One bundled photo: item id, file, label, basic-level noun, licence and whether it is colour."""

    name: str
    path: Path
    label: str
    basic: str | None
    licence: str
    colour: bool


# file -> (item id, label, licence, colour). Both motorcycle views are one item (one scene), so a
# held-out split never puts one view in training and the other in the test set.
PHOTOS: dict[str, tuple[str, str, str, bool]] = {
    "astronaut.png": ("astronaut", "astronaut", "public-domain", True),
    "camera.png": ("camera", "photographer", "CC0-1.0", False),
    "chelsea.png": ("chelsea", "cat", "CC0-1.0", True),
    "coffee.png": ("coffee", "coffee", "CC0-1.0", True),
    "coins.png": ("coins", "coins", "public-domain", False),
    "horse.png": ("horse", "horse", "CC0-1.0", False),  # a black silhouette
    "moon.png": ("moon", "moon", "unknown", False),
    "rocket.jpg": ("rocket", "rocket", "public-domain", True),
    "clock_motion.png": ("clock", "clock", "public-domain", False),
    "hubble_deep_field.jpg": ("hubble_deep_field", "galaxies", "public-domain", True),
    "motorcycle_left.png": ("motorcycle", "motorcycle", "Middlebury stereo (research use)", True),
    "motorcycle_right.png": ("motorcycle", "motorcycle", "Middlebury stereo (research use)", True),
    "brick.png": ("brick", "brick wall", "CC0-1.0", False),
    "grass.png": ("grass", "grass", "CC0-1.0", False),
    "gravel.png": ("gravel", "gravel", "CC0-1.0", False),
    "page.png": ("page", "printed page", "unknown", False),
    "retina.jpg": ("retina", "retina", "CC0-1.0", True),
}
"""The bundled files that are photos of a nameable thing (cells, phantoms, logos and charts are left out)."""


def data_dir() -> Path | None:
    """scikit-image's bundled data folder, or None when scikit-image is not installed."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def photos(root: str | Path | None = None) -> list[Photo]:
    """The labelled bundled photos present in ``root`` (default: scikit-image's data folder)."""
    folder = Path(root) if root is not None else data_dir()
    if folder is None or not folder.is_dir():
        return []
    wn = wordnet.load() if wordnet.available() else None
    out = []
    for fname, (name, label, licence, colour) in PHOTOS.items():
        path = folder / fname
        if path.is_file():
            basic = wordnet.basic_level(label, wn) if wn is not None else None
            out.append(Photo(name, path, label, basic, licence, colour))
    return out


def available() -> bool:
    """True when scikit-image and its bundled photos are installed."""
    folder = data_dir()
    return folder is not None and (folder / "chelsea.png").is_file()
