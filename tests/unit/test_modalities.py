"""Modality loaders: every listed format loads, every bad input is a typed error naming the file.
Fast: all files are generated in tmp_path."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from omnibind import modalities as M
from omnibind.errors import InputError, InputTooLargeError, UnsupportedFormatError
from omnibind.modalities.base import Limits


def _rgb(h: int = 30, w: int = 40) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)


# --- image -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fmt,mode",
    [
        ("png", "RGB"),
        ("png", "RGBA"),
        ("png", "L"),
        ("png", "P"),
        ("jpeg", "RGB"),
        ("jpeg", "CMYK"),
        ("webp", "RGB"),
        ("bmp", "RGB"),
        ("gif", "P"),
        ("png", "I;16"),
    ],
)
def test_image_formats_and_modes(tmp_path: Path, fmt: str, mode: str):
    im = PILImage.fromarray(_rgb()).convert(mode if mode != "I;16" else "L")
    if mode == "I;16":
        im = PILImage.fromarray((np.arange(1200).reshape(30, 40) * 50).astype(np.uint16))
    p = tmp_path / f"x.{'jpg' if fmt == 'jpeg' else fmt}"
    im.save(p, format=fmt.upper())
    data = M.load("image", str(p))
    assert data.pixels.dtype == np.uint8 and data.pixels.shape == (30, 40, 3)


def test_image_gif_first_frame_and_alpha_on_white(tmp_path: Path):
    frames = [PILImage.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:])
    r, _, b = M.load("image", str(p)).pixels[0, 0]
    assert r > 200 and b < 50  # the first (red) frame, not the second (blue)
    clear = tmp_path / "clear.png"
    PILImage.new("RGBA", (4, 4), (0, 0, 0, 0)).save(clear)
    assert (M.load("image", str(clear)).pixels == 255).all()


def test_image_bytes_and_arrays():
    buf = io.BytesIO()
    PILImage.fromarray(_rgb()).save(buf, format="PNG")
    assert M.load("image", buf.getvalue()).pixels.shape == (30, 40, 3)  # sniffed from magic bytes
    assert M.load("image", np.zeros((5, 6), np.float32)).pixels.shape == (5, 6, 3)
    with pytest.raises(InputError, match="shape"):
        M.load("image", np.zeros((5, 6, 7)))


@pytest.mark.parametrize(
    "content,problem", [(b"", "empty"), (b"\x89PNG\r\n\x1a\nnot really", "image"), (b"hello world", "image")]
)
def test_image_bad_files(tmp_path: Path, content: bytes, problem: str):
    p = tmp_path / "bad.png"
    p.write_bytes(content)
    with pytest.raises(InputError, match=problem) as e:
        M.load("image", str(p))
    assert "bad.png" in str(e.value)


def test_image_truncated(tmp_path: Path):
    buf = io.BytesIO()
    PILImage.fromarray(_rgb(200, 200)).save(buf, format="JPEG")
    p = tmp_path / "cut.jpg"
    p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
    with pytest.raises(InputError, match="cut.jpg"):
        M.load("image", str(p))


def test_image_limits_and_wrong_type(tmp_path: Path):
    p = tmp_path / "big.png"
    PILImage.fromarray(_rgb(100, 100)).save(p)
    with pytest.raises(InputTooLargeError, match="pixels"):
        M.load("image", str(p), limits=Limits(max_image_pixels=50))
    with pytest.raises(InputTooLargeError, match="bytes"):
        M.load("image", str(p), limits=Limits(max_file_bytes=10))
    txt = tmp_path / "notes.docx"
    txt.write_bytes(b"PK\x03\x04 zip")
    with pytest.raises(UnsupportedFormatError, match="docx"):
        M.load("image", str(txt))
    with pytest.raises(InputError, match="no such file"):
        M.load("image", str(tmp_path / "missing.png"))
    with pytest.raises(InputError, match="directory"):
        M.load("image", str(tmp_path))


# --- audio -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "ext,rate,channels", [("wav", 44100, 2), ("flac", 16000, 1), ("ogg", 22050, 1), ("mp3", 44100, 1)]
)
def test_audio_formats_resampled_mono(tmp_path: Path, ext: str, rate: int, channels: int):
    import soundfile as sf

    t = np.arange(rate) / rate
    wave = 0.3 * np.sin(2 * np.pi * 440 * t)
    data = np.stack([wave] * channels, axis=1) if channels > 1 else wave
    p = tmp_path / f"a.{ext}"
    sf.write(p, data.astype(np.float32), rate)
    a = M.load("audio", str(p))
    assert a.sample_rate == 16000 and a.waveform.ndim == 1
    assert abs(a.seconds - 1.0) < 0.1
    spectrum = np.abs(np.fft.rfft(a.waveform))
    assert abs(np.argmax(spectrum) * 16000 / len(a.waveform) - 440) < 15  # the tone survives resampling


def test_audio_errors(tmp_path: Path):
    import soundfile as sf

    p = tmp_path / "long.wav"
    sf.write(p, np.zeros(16000 * 3, np.float32), 16000)
    with pytest.raises(InputTooLargeError, match="s exceeds"):
        M.load("audio", str(p), limits=Limits(max_audio_seconds=2))
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunk")
    with pytest.raises(InputError, match="bad.wav"):
        M.load("audio", str(bad))
    with pytest.raises(InputError, match="sample_rate"):
        M.load("audio", np.zeros(100, np.float32))
    with pytest.raises(InputError, match="NaN"):
        M.load("audio", np.full(100, np.nan, np.float32), options={"sample_rate": 16000})


# --- video -------------------------------------------------------------------------------
def _video(path: Path, seconds: int = 2, fps: int = 10, audio: bool = True) -> Path:
    import av

    with av.open(str(path), "w") as out:
        vs = out.add_stream("mpeg4", rate=fps)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        aus = out.add_stream("aac", rate=16000) if audio else None
        if aus is not None:
            aus.layout = "mono"
        for i in range(seconds * fps):
            img = np.full((48, 64, 3), i * 10 % 255, np.uint8)
            for pkt in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(pkt)
        for pkt in vs.encode(None):
            out.mux(pkt)
        if aus is not None:
            samples = (0.2 * np.sin(np.arange(16000 * seconds) / 5) * 32767).astype(np.int16)
            for i in range(0, len(samples), 1024):
                fr = av.AudioFrame.from_ndarray(samples[i : i + 1024][None], format="s16", layout="mono")
                fr.sample_rate, fr.pts = 16000, i
                for pkt in aus.encode(fr):
                    out.mux(pkt)
            for pkt in aus.encode(None):
                out.mux(pkt)
    return path


@pytest.mark.parametrize("ext", ["mp4", "mkv", "avi"])
def test_video_frames_and_track(tmp_path: Path, ext: str):
    v = M.load("video", str(_video(tmp_path / f"v.{ext}")), options={"num_frames": 4})
    assert v.frames.shape == (4, 48, 64, 3)
    assert np.all(np.diff(v.timestamps) > 0)
    assert v.audio is not None and abs(v.audio.seconds - 2) < 0.3


def test_video_without_sound_and_errors(tmp_path: Path):
    v = M.load("video", str(_video(tmp_path / "mute.mp4", audio=False)))
    assert v.audio is None and len(v.frames) == 8
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 50)
    with pytest.raises(InputError, match="bad.mp4"):
        M.load("video", str(bad))
    with pytest.raises(InputTooLargeError):
        M.load("video", str(tmp_path / "mute.mp4"), limits=Limits(max_video_seconds=1))


# --- depth -------------------------------------------------------------------------------
def test_depth_png16_npy_npz(tmp_path: Path):
    mm = np.full((20, 30), 1500, np.uint16)
    mm[0, 0] = 0
    p = tmp_path / "d.png"
    PILImage.fromarray(mm).save(p)
    d = M.load("depth", str(p))
    assert d.kind == "metric" and np.isnan(d.depth[0, 0]) and np.isclose(d.depth[5, 5], 1.5)
    arr = np.ones((10, 10), np.float32)
    arr[1, 1] = np.inf
    np.save(tmp_path / "d.npy", arr)
    assert np.isnan(M.load("depth", str(tmp_path / "d.npy")).depth[1, 1])
    np.savez(tmp_path / "disp.npz", disparity=arr)
    assert M.load("depth", str(tmp_path / "disp.npz")).kind == "disparity"


def test_depth_errors(tmp_path: Path):
    np.save(tmp_path / "zeros.npy", np.zeros((5, 5), np.float32))
    with pytest.raises(InputError, match="no valid pixels"):
        M.load("depth", str(tmp_path / "zeros.npy"))
    np.save(tmp_path / "cube.npy", np.ones((2, 3, 4), np.float32))
    with pytest.raises(InputError, match="shape"):
        M.load("depth", str(tmp_path / "cube.npy"))
    PILImage.fromarray(_rgb()).save(tmp_path / "rgb.png")
    with pytest.raises(InputError, match="single-channel"):
        M.load("depth", str(tmp_path / "rgb.png"))
    (tmp_path / "pickle.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(InputError, match="pickle.npy"):
        M.load("depth", str(tmp_path / "pickle.npy"))


# --- thermal -----------------------------------------------------------------------------
def test_thermal_formats(tmp_path: Path):
    import tifffile

    PILImage.fromarray(np.arange(600, dtype=np.uint16).reshape(20, 30) * 100).save(tmp_path / "t16.png")
    t = M.load("thermal", str(tmp_path / "t16.png"))
    assert t.unit == "relative" and 0 <= np.nanmin(t.values) and np.nanmax(t.values) <= 1
    PILImage.fromarray(np.arange(600, dtype=np.uint8).reshape(20, 30)).save(tmp_path / "t8.png")
    assert M.load("thermal", str(tmp_path / "t8.png")).values.max() <= 1
    tifffile.imwrite(tmp_path / "t.tif", np.full((8, 8), 36.6, np.float32))
    assert M.load("thermal", str(tmp_path / "t.tif")).unit == "celsius"
    np.save(tmp_path / "c.npy", np.full((8, 8), 21.0, np.float32))
    assert np.allclose(M.load("thermal", str(tmp_path / "c.npy")).values, 21.0)


def test_thermal_errors(tmp_path: Path):
    PILImage.fromarray(_rgb()).save(tmp_path / "colour.png")
    with pytest.raises(InputError, match="single-channel"):
        M.load("thermal", str(tmp_path / "colour.png"))
    assert M.load("thermal", str(tmp_path / "colour.png"), options={"allow_rgb": True}).values.shape == (30, 40)
    np.save(tmp_path / "hot.npy", np.full((4, 4), 5000.0, np.float32))
    with pytest.raises(InputError, match="°C"):
        M.load("thermal", str(tmp_path / "hot.npy"))


# --- IMU ---------------------------------------------------------------------------------
def test_imu_csv_with_time_column_resampled(tmp_path: Path):
    t = np.arange(100) / 10.0
    rows = ["t,ax,ay,az,gx,gy,gz"] + [",".join(map(str, [ti, np.sin(ti), 0, 9.8, 0, 0, 1])) for ti in t]
    (tmp_path / "w.csv").write_text("\n".join(rows))
    imu = M.load("imu", str(tmp_path / "w.csv"))
    assert imu.sample_rate == 50 and imu.samples.shape == (496, 6)
    assert np.isclose(imu.samples[:, 2], 9.8).all()


def test_imu_npy_needs_rate_and_transposes(tmp_path: Path):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(6, 100)))
    with pytest.raises(InputError, match="sample rate"):
        M.load("imu", str(tmp_path / "x.npy"))
    imu = M.load("imu", str(tmp_path / "x.npy"), options={"sample_rate": 10})
    assert imu.samples.shape[1] == 6
    np.savez(tmp_path / "x.npz", samples=np.zeros((20, 6)), sample_rate=25.0)
    assert M.load("imu", str(tmp_path / "x.npz")).samples.shape == (39, 6)


def test_imu_errors(tmp_path: Path):
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3,x\n")
    with pytest.raises(InputError, match="line 3"):
        M.load("imu", str(tmp_path / "bad.csv"))
    (tmp_path / "five.csv").write_text("1,2,3,4,5\n6,7,8,9,10\n")
    with pytest.raises(InputError, match="6 channels"):
        M.load("imu", str(tmp_path / "five.csv"), options={"sample_rate": 10})
    with pytest.raises(InputTooLargeError):
        M.load("imu", np.zeros((100, 6)), options={"sample_rate": 10}, limits=Limits(max_imu_samples=50))


# --- points ------------------------------------------------------------------------------
def test_points_formats(tmp_path: Path):
    import trimesh
    from plyfile import PlyData, PlyElement

    box = trimesh.creation.box()
    for ext in ("obj", "off", "stl", "glb"):
        box.export(tmp_path / f"b.{ext}")
        pts = M.load("points", str(tmp_path / f"b.{ext}"), options={"num_points": 500})
        assert pts.xyz.shape == (500, 3)
        assert np.linalg.norm(pts.xyz, axis=1).max() <= 1.0 + 1e-5
    xyz = np.random.default_rng(0).normal(size=(300, 3)).astype(np.float32)
    v = np.array(
        [(*tuple(p), 255, 0, 0) for p in xyz],
        dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")],
    )
    PlyData([PlyElement.describe(v, "vertex")]).write(str(tmp_path / "c.ply"))
    ply = M.load("points", str(tmp_path / "c.ply"))
    assert ply.xyz.shape == (300, 3) and ply.colors is not None and np.allclose(ply.colors[:, 0], 1.0)
    np.savetxt(tmp_path / "p.xyz", xyz)
    assert M.load("points", str(tmp_path / "p.xyz")).xyz.shape == (300, 3)
    np.save(tmp_path / "p.npy", xyz)
    assert M.load("points", str(tmp_path / "p.npy")).xyz.shape == (300, 3)


def test_points_pcd_ascii_and_binary(tmp_path: Path):
    xyz = np.random.default_rng(1).normal(size=(50, 3)).astype(np.float32)
    head = "VERSION .7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH 50\nHEIGHT 1\nPOINTS 50\n"
    (tmp_path / "a.pcd").write_text(head + "DATA ascii\n" + "\n".join(" ".join(map(str, p)) for p in xyz))
    (tmp_path / "b.pcd").write_bytes((head + "DATA binary\n").encode() + xyz.tobytes())
    a, b = M.load("points", str(tmp_path / "a.pcd")), M.load("points", str(tmp_path / "b.pcd"))
    np.testing.assert_allclose(a.xyz, b.xyz, atol=1e-5)
    (tmp_path / "cut.pcd").write_bytes((head + "DATA binary\n").encode() + xyz.tobytes()[:100])
    with pytest.raises(InputError, match="truncated"):
        M.load("points", str(tmp_path / "cut.pcd"))


def test_points_errors(tmp_path: Path):
    (tmp_path / "bad.obj").write_text("this is not a mesh\n")
    with pytest.raises(InputError, match="bad.obj"):
        M.load("points", str(tmp_path / "bad.obj"))
    with pytest.raises(InputTooLargeError):
        M.load("points", np.zeros((100, 3)), limits=Limits(max_points=10))
    with pytest.raises(InputError, match="finite"):
        M.load("points", np.full((10, 3), np.nan))


# --- text and helpers --------------------------------------------------------------------
def test_text_and_dispatch(tmp_path: Path):
    assert M.load("text", "a cat") == "a cat"
    (tmp_path / "t.txt").write_text("hello")
    assert M.load("text", str(tmp_path / "t.txt")) == "hello"
    with pytest.raises(InputError, match="empty"):
        M.load("text", "   ")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InputError, match="UTF-8"):
        M.load("text", str(tmp_path / "bin.txt"))
    assert M.modality_for_path("a.mp4") == "video" and M.modality_for_path("b.PLY") == "points"
    with pytest.raises(ValueError):
        M.modality_for_path("c.xyzzy")
