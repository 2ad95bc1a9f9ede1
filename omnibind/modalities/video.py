"""Video: mp4/avi/mkv/webm/mov through PyAV (FFmpeg bundled in its wheel).

``num_frames`` frames (default 8) are sampled uniformly: the first decoded frame at or after the
centre of each of ``num_frames`` equal segments of the duration. Frames are downscaled so the short
side is at most ``max_side`` px (default 256; the encoders resize to 224 anyway, and full-HD frames
would cost 24 MB each). The audio track, when present, is decoded to mono 16 kHz alongside.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np

from omnibind.errors import InputError, InputTooLargeError
from omnibind.modalities._source import check_source, is_file_source
from omnibind.modalities.audio import decode_audio_av, finish_audio
from omnibind.modalities.base import MODALITIES, AudioData, Limits, Modality, VideoData, source_name
from omnibind.modalities.options import Option

FORMATS = ("mp4", "m4v", "mov", "avi", "mkv", "webm")
MAX_SIDE = 256
MAX_FRAMES = 256  # more sampled frames than this is a mistake, not a request

OPTIONS = (
    Option(
        "num_frames",
        int,
        "frames sampled uniformly over the duration",
        default=8,
        range=(1, MAX_FRAMES),
        client=True,
        client_range=(1, 32),
    ),
    Option("audio", bool, "also decode the sound track", default=True, client=True),
    Option("max_side", int, "downscale frames so the short side is at most this (None: keep)", default=MAX_SIDE),
    Option("fps", float, "frame rate of a (T, H, W, 3) array source", default=8.0, unit="frames/s"),
    Option("audio_data", object, "the sound track (AudioData) of an array source"),
)
log = logging.getLogger(__name__)


@MODALITIES.register("video")
class VideoModality(Modality):
    """Videos → ``VideoData`` (uniformly sampled RGB frames plus the sound track)."""

    name = "video"
    extensions = FORMATS
    description = "video frames with their sound"
    options = OPTIONS

    def load(self, source: Any, *, format=None, options=None, limits=None, name=None) -> VideoData:
        limits = limits or Limits()
        label = source_name(source, name)
        options = self.checked_options(options, label)
        n = _num_frames(options, label)
        if isinstance(source, VideoData):
            return _check_video_data(source, label, limits)
        if isinstance(source, np.ndarray):
            return _from_array(source, label, n, options, limits)
        if not is_file_source(source):
            raise InputError(label, f"cannot read video from {type(source).__name__}", modality="video")
        src = check_source(source, modality="video", limits=limits, format=format, name=name, allowed=FORMATS)
        max_side = _max_side(options, label)
        frames, times, duration, has_audio = decode_frames(src.target, src.name, n, limits, max_side)
        audio = None
        if has_audio and options.get("audio", True):
            # The track is as long as the video; the video limit is the one that applies to it.
            track_limits = dataclasses.replace(
                limits, max_audio_seconds=max(limits.max_audio_seconds, limits.max_video_seconds)
            )
            try:
                wave, rate = decode_audio_av(src.target(), src.name, track_limits)
                if wave.size:
                    audio = finish_audio(wave, rate, src.name, track_limits)
            except InputError as e:
                log.warning("%s: sound track dropped (%s); the frames are used", src.name, e.problem)
        return VideoData(frames=frames, timestamps=times, audio=audio, duration=duration)


def _num_frames(options: dict[str, Any], label: str) -> int:
    try:
        n = int(options.get("num_frames", 8))
    except (TypeError, ValueError):
        raise InputError(
            label, f"num_frames must be an integer, got {options['num_frames']!r}", modality="video"
        ) from None
    if not 1 <= n <= MAX_FRAMES:
        raise InputError(label, f"num_frames must be in 1..{MAX_FRAMES}, got {n}", modality="video")
    return n


def _max_side(options: dict[str, Any], label: str) -> int | None:
    side = options.get("max_side", MAX_SIDE)
    if side is None:
        return None
    try:
        side = int(side)
    except (TypeError, ValueError):
        side = 0
    if side < 1:
        raise InputError(
            label, f"max_side must be a positive integer or None, got {options['max_side']!r}", modality="video"
        )
    return side


def decode_frames(
    open_target: Any, name: str, n: int, limits: Limits, max_side: int | None = MAX_SIDE
) -> tuple[np.ndarray, np.ndarray, float, bool]:
    """``n`` uniformly sampled RGB frames, their times, the duration and whether there is sound.

    ``open_target()`` gives a fresh path or file object (a second pass is needed only when the
    container does not state its duration).
    """
    import av

    try:
        with av.open(open_target()) as container:
            if not container.streams.video:
                raise InputError(name, "no video stream in the file", modality="video")
            stream = container.streams.video[0]
            has_audio = bool(container.streams.audio)
            ctx = stream.codec_context
            if ctx is None:  # FFmpeg has no decoder for the stream's codec tag
                raise InputError(name, "unknown or unsupported video codec", modality="video")
            pixels = (ctx.width or 0) * (ctx.height or 0)
            if pixels > limits.max_image_pixels:
                raise InputTooLargeError(
                    name, f"{pixels} pixels per frame exceeds the limit of {limits.max_image_pixels}", modality="video"
                )
            duration = _stated_duration(container, stream)
        if duration <= 0:
            duration = _scan_duration(open_target, name, limits)
        _check_seconds(duration, name, limits)
        with av.open(open_target()) as container:
            frames, times = _pick(container, container.streams.video[0], name, n, duration, limits, max_side)
    except InputError:
        raise
    except (av.FFmpegError, OSError, ValueError, IndexError, MemoryError) as e:
        raise InputError(name, f"not a readable video: {e}", modality="video") from None
    return np.stack(frames), np.asarray(times, np.float32), float(duration), has_audio


def _pick(container: Any, stream: Any, name: str, n: int, duration: float, limits: Limits, max_side: int | None):
    targets = (np.arange(n) + 0.5) * (duration / n)
    fps = float(stream.average_rate or 25)
    picked: list[np.ndarray] = []
    times: list[float] = []
    last = None
    for i, frame in enumerate(container.decode(stream)):
        t = float(frame.time) if frame.time is not None else i / fps
        _check_seconds(t, name, limits)  # a header that understates the length
        last = (t, frame)
        while len(picked) < n and t + 1e-6 >= targets[len(picked)]:
            picked.append(_small(frame, max_side))
            times.append(t)
        if len(picked) == n:
            break  # no need to decode the rest
    if last is None:
        raise InputError(name, "the video has no decodable frames", modality="video")
    if len(picked) < n:  # the stream is shorter than stated (or truncated): repeat the last frame
        tail = _small(last[1], max_side)
        picked += [tail] * (n - len(picked))
        times += [last[0]] * (n - len(times))
    return picked, times


def _stated_duration(container: Any, stream: Any) -> float:
    """The duration the container states, or 0 when it states none."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration) / 1_000_000
    if stream.frames and stream.average_rate:
        return float(stream.frames / stream.average_rate)
    return 0.0


def _scan_duration(open_target: Any, name: str, limits: Limits) -> float:
    """Decode once just to learn the length (streams with no stated duration, e.g. some WebM/AVI)."""
    import av

    with av.open(open_target()) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or 25)
        end = 0.0
        for i, frame in enumerate(container.decode(stream)):
            t = float(frame.time) if frame.time is not None else i / fps
            end = t + 1.0 / fps
            _check_seconds(end, name, limits)
    if end <= 0:
        raise InputError(name, "the video has no decodable frames", modality="video")
    return end


def _check_seconds(seconds: float, name: str, limits: Limits) -> None:
    if seconds > limits.max_video_seconds:
        raise InputTooLargeError(
            name, f"{seconds:.1f} s exceeds the limit of {limits.max_video_seconds:g} s", modality="video"
        )


def _small(frame: Any, max_side: int | None) -> np.ndarray:
    """RGB uint8 with the short side at most ``max_side`` (aspect kept)."""
    w, h = frame.width, frame.height
    scale = min(1.0, max_side / max(1, min(w, h))) if max_side else 1.0
    if scale < 1.0:
        frame = frame.reformat(width=max(1, round(w * scale)), height=max(1, round(h * scale)))
    return frame.to_ndarray(format="rgb24")


def _from_array(arr: np.ndarray, name: str, n: int, options: dict[str, Any], limits: Limits) -> VideoData:
    """(T, H, W, 3) frames (uint8, or floats in [0, 1]) at ``options['fps']`` (default 8), sampled to ``n``."""
    a = np.asarray(arr)
    if a.ndim != 4 or a.shape[-1] != 3 or min(a.shape) == 0:
        raise InputError(name, f"expected (T, H, W, 3) frames, got shape {a.shape}", modality="video")
    if a.dtype.kind not in "uif":
        raise InputError(name, f"frames must be numeric, got dtype {a.dtype}", modality="video")
    fps = float(options.get("fps", 8.0))
    if fps <= 0:
        raise InputError(name, f"fps must be positive, got {fps}", modality="video")
    _check_seconds(a.shape[0] / fps, name, limits)
    if a.dtype != np.uint8:
        f = a.astype(np.float32)
        if not np.isfinite(f).all():
            raise InputError(name, "frames contain NaN or infinite values", modality="video")
        a = np.clip(f * (255 if f.max() <= 1 else 1), 0, 255).astype(np.uint8)
    idx = np.floor((np.arange(n) + 0.5) * a.shape[0] / n).astype(int)
    audio = options.get("audio_data")
    if audio is not None and not isinstance(audio, AudioData):
        raise InputError(name, "options['audio_data'] must be an AudioData", modality="video")
    return VideoData(frames=a[idx], timestamps=(idx / fps).astype(np.float32), audio=audio, duration=a.shape[0] / fps)


def _check_video_data(v: VideoData, name: str, limits: Limits) -> VideoData:
    f = np.asarray(v.frames)
    if f.ndim != 4 or f.shape[-1] != 3 or f.dtype != np.uint8 or f.shape[0] == 0:
        raise InputError(
            name, f"VideoData frames must be (T, H, W, 3) uint8, got {f.shape} {f.dtype}", modality="video"
        )
    _check_seconds(float(v.duration), name, limits)
    return v
