"""Audio: wav/flac/ogg/mp3 (libsndfile; other containers through PyAV), any rate and channels
→ mono float32 at 16 kHz. Inputs longer than ``Limits.max_audio_seconds`` are refused (not
silently cut); encoders window long audio themselves.
"""

from __future__ import annotations

from math import gcd
from typing import Any

import numpy as np

from omnibind.errors import InputError, InputTooLargeError
from omnibind.modalities._source import Source, check_source, is_file_source
from omnibind.modalities.base import MODALITIES, AudioData, Limits, Modality, source_name

TARGET_RATE = 16000
FORMATS = ("wav", "flac", "ogg", "oga", "mp3", "m4a", "aac", "opus", "webm")


@MODALITIES.register("audio")
class AudioModality(Modality):
    name = "audio"
    extensions = FORMATS
    description = "sound or speech"

    def load(self, source: Any, *, format=None, options=None, limits=None, name=None) -> AudioData:
        limits = limits or Limits()
        options = options or {}
        label = source_name(source, name)
        if isinstance(source, AudioData):
            return finish_audio(source.waveform, source.sample_rate, label, limits)
        if isinstance(source, np.ndarray):
            rate = options.get("sample_rate")
            if not rate:
                raise InputError(label, "a raw waveform needs options['sample_rate']", modality="audio")
            return finish_audio(source, int(rate), label, limits)
        if not is_file_source(source):
            raise InputError(label, f"cannot read audio from {type(source).__name__}", modality="audio")
        src = check_source(source, modality="audio", limits=limits, format=format, name=name, allowed=FORMATS)
        wave, rate = decode_audio(src)
        return finish_audio(wave, rate, src.name, limits)


def decode_audio(src: Source) -> tuple[np.ndarray, int]:
    """Decode with soundfile; fall back to PyAV for formats libsndfile lacks."""
    import soundfile as sf

    try:
        with sf.SoundFile(src.target()) as f:
            frames = f.frames
            wave = f.read(dtype="float32", always_2d=True)
            rate = f.samplerate
        if frames and len(wave) < frames * 0.9:
            raise InputError(src.name, f"truncated audio: read {len(wave)} of {frames} frames", modality="audio")
        return wave, int(rate)
    except InputError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as first:
        try:
            return decode_audio_av(src.target())
        except InputError:
            raise InputError(src.name, f"not a readable audio file ({first})", modality="audio") from None


def decode_audio_av(target: Any) -> tuple[np.ndarray, int]:
    """Decode the first audio stream of any container PyAV reads (used for video tracks too)."""
    import av

    try:
        with av.open(target) as container:
            if not container.streams.audio:
                raise InputError(str(target), "no audio stream", modality="audio")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout="mono", rate=TARGET_RATE)
            chunks = []
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except InputError:
        raise
    except (av.error.FFmpegError, OSError, ValueError, IndexError) as e:  # type: ignore[attr-defined]
        raise InputError(str(target), f"cannot decode audio: {e}", modality="audio") from None
    wave = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return wave[:, None], TARGET_RATE


def finish_audio(wave: np.ndarray, rate: int, name: str, limits: Limits) -> AudioData:
    """Mix to mono, check, resample to 16 kHz, clip to [-1, 1]."""
    w = np.asarray(wave, dtype=np.float32)
    if w.ndim == 2:
        # (T, C) from decoders; (C, T) arrays with few rows are channel-first
        w = w.mean(axis=0) if w.shape[0] <= 8 < w.shape[1] else w.mean(axis=1)
    if w.ndim != 1:
        raise InputError(name, f"expected a 1-D or 2-D waveform, got shape {w.shape}", modality="audio")
    if rate <= 0:
        raise InputError(name, f"invalid sample rate {rate}", modality="audio")
    if w.size == 0:
        raise InputError(name, "audio has no samples", modality="audio")
    seconds = w.size / rate
    if seconds > limits.max_audio_seconds:
        raise InputTooLargeError(
            name, f"{seconds:.1f} s exceeds the limit of {limits.max_audio_seconds:.0f} s", modality="audio"
        )
    if not np.isfinite(w).all():
        raise InputError(name, "waveform contains NaN or infinite samples", modality="audio")
    if rate != TARGET_RATE:
        from scipy.signal import resample_poly

        g = gcd(int(rate), TARGET_RATE)
        w = resample_poly(w, TARGET_RATE // g, int(rate) // g).astype(np.float32)
    return AudioData(np.clip(w, -1.0, 1.0).astype(np.float32), TARGET_RATE)
