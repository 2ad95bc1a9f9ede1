"""Video: mp4/avi/mkv/webm/mov through PyAV (FFmpeg bundled in its wheel).

``num_frames`` frames (default 8) are sampled uniformly over the duration (the frame nearest each
segment's centre) and downscaled so the short side is at most 256 px; the audio track, when
present, is decoded to mono 16 kHz and returned alongside.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from omnibind.errors import InputError, InputTooLargeError
from omnibind.modalities._source import check_source, is_file_source
from omnibind.modalities.audio import decode_audio_av, finish_audio
from omnibind.modalities.base import MODALITIES, Limits, Modality, VideoData, source_name

FORMATS = ("mp4", "m4v", "mov", "avi", "mkv", "webm")
MAX_SIDE = 256


@MODALITIES.register("video")
class VideoModality(Modality):
    name = "video"
    extensions = FORMATS
    description = "video frames with their sound"

    def load(self, source: Any, *, format=None, options=None, limits=None, name=None) -> VideoData:
        limits = limits or Limits()
        options = options or {}
        n = int(options.get("num_frames", 8))
        if n < 1:
            raise InputError(source_name(source, name), "num_frames must be >= 1", modality="video")
        if isinstance(source, VideoData):
            return source
        if isinstance(source, np.ndarray):
            return _from_array(source, source_name(source, name), n, float(options.get("fps", 8.0)))
        if not is_file_source(source):
            raise InputError(
                source_name(source, name), f"cannot read video from {type(source).__name__}", modality="video"
            )
        src = check_source(source, modality="video", limits=limits, format=format, name=name, allowed=FORMATS)
        frames, times, duration, has_audio = _decode_frames(src.target(), src.name, n, limits)
        audio = None
        if has_audio and options.get("audio", True):
            try:
                wave, rate = decode_audio_av(src.target())
                if wave.size:
                    audio = finish_audio(wave, rate, src.name, limits)
            except InputError:
                audio = None  # a broken sound track does not make the pictures unusable
        return VideoData(frames=frames, timestamps=times, audio=audio, duration=duration)


def _decode_frames(target: Any, name: str, n: int, limits: Limits) -> tuple[np.ndarray, np.ndarray, float, bool]:
    import av

    try:
        with av.open(target) as container:
            if not container.streams.video:
                raise InputError(name, "no video stream in the file", modality="video")
            stream = container.streams.video[0]
            has_audio = bool(container.streams.audio)
            duration = _duration(container, stream)
            if duration > limits.max_video_seconds:
                raise InputTooLargeError(
                    name, f"{duration:.1f} s exceeds the limit of {limits.max_video_seconds:.0f} s", modality="video"
                )
            targets = (np.arange(n) + 0.5) * (duration / n) if duration > 0 else None
            picked: list[np.ndarray] = []
            times: list[float] = []
            all_frames: list[tuple[float, np.ndarray]] = []
            for frame in container.decode(stream):
                t = float(frame.time) if frame.time is not None else len(all_frames) / float(stream.average_rate or 25)
                if targets is None:
                    all_frames.append((t, _small(frame)))
                    continue
                while len(picked) < n and t + 1e-6 >= targets[len(picked)]:
                    picked.append(_small(frame))
                    times.append(t)
                last = (t, frame)
            if targets is None:
                if not all_frames:
                    raise InputError(name, "the video has no decodable frames", modality="video")
                idx = np.linspace(0, len(all_frames) - 1, n).round().astype(int)
                picked = [all_frames[i][1] for i in idx]
                times = [all_frames[i][0] for i in idx]
            elif len(picked) < n:
                if not picked and "last" not in locals():
                    raise InputError(name, "the video has no decodable frames", modality="video")
                tail = _small(last[1])
                while len(picked) < n:  # short or truncated stream: repeat the last frame
                    picked.append(tail)
                    times.append(last[0])
    except InputError:
        raise
    except (av.error.FFmpegError, OSError, ValueError, IndexError) as e:  # type: ignore[attr-defined]
        raise InputError(name, f"not a readable video: {e}", modality="video") from None
    return np.stack(picked), np.asarray(times, np.float32), float(duration), has_audio


def _duration(container: Any, stream: Any) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration) / 1_000_000
    return 0.0


def _small(frame: Any) -> np.ndarray:
    w, h = frame.width, frame.height
    scale = min(1.0, MAX_SIDE / max(1, min(w, h)))
    if scale < 1.0:
        frame = frame.reformat(width=max(1, round(w * scale)), height=max(1, round(h * scale)))
    return frame.to_ndarray(format="rgb24")


def _from_array(arr: np.ndarray, name: str, n: int, fps: float) -> VideoData:
    a = np.asarray(arr)
    if a.ndim != 4 or a.shape[-1] != 3 or a.shape[0] == 0:
        raise InputError(name, f"expected (T, H, W, 3) frames, got shape {a.shape}", modality="video")
    if a.dtype != np.uint8:
        a = np.clip(np.nan_to_num(a.astype(np.float32)) * (255 if a.max() <= 1 else 1), 0, 255).astype(np.uint8)
    idx = np.linspace(0, a.shape[0] - 1, n).round().astype(int)
    return VideoData(frames=a[idx], timestamps=(idx / fps).astype(np.float32), audio=None, duration=a.shape[0] / fps)
