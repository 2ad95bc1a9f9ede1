"""Audio: wav/flac/ogg/mp3 (libsndfile; other containers through PyAV), any rate and channels
→ mono float32 at 16 kHz.

Clip policy: inputs longer than ``Limits.max_audio_seconds`` are refused (not silently cut); the
length is read from the header before decoding where the format gives it. Encoders window long
audio themselves (Whisper: 30 s windows).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

from omnibind.errors import InputError, InputTooLargeError
from omnibind.modalities._source import Source, check_source, is_file_source
from omnibind.modalities.base import MODALITIES, AudioData, Limits, Modality, source_name
from omnibind.modalities.options import Option

TARGET_RATE = 16000
FORMATS = ("wav", "flac", "ogg", "oga", "mp3", "m4a", "aac", "opus", "webm")
# libsndfile reads these; the rest go straight to PyAV.
_SNDFILE = ("wav", "flac", "ogg", "mp3")
# Polyphase filters grow with the up/down factors; odd rates (e.g. 44101 Hz) are approximated
# to within 0.1 % rather than building a filter with hundreds of thousands of taps.
_MAX_FACTOR = 1000

OPTIONS = (Option("sample_rate", float, "rate of a raw waveform array (file sources carry their own)", unit="Hz"),)


@MODALITIES.register("audio")
class AudioModality(Modality):
    """Sounds and speech → ``AudioData`` (mono float32, 16 kHz)."""

    name = "audio"
    extensions = FORMATS
    description = "sound or speech"
    options = OPTIONS

    def load(self, source: Any, *, format=None, options=None, limits=None, name=None) -> AudioData:
        limits = limits or Limits()
        label = source_name(source, name)
        options = self.checked_options(options, label)
        if isinstance(source, AudioData):
            return finish_audio(source.waveform, source.sample_rate, label, limits)
        if isinstance(source, (np.ndarray, list, tuple)):
            rate = options.get("sample_rate")
            if not rate:
                raise InputError(label, "a raw waveform needs options['sample_rate'] (Hz)", modality="audio")
            return finish_audio(source, rate, label, limits)
        if not is_file_source(source):
            raise InputError(label, f"cannot read audio from {type(source).__name__}", modality="audio")
        src = check_source(source, modality="audio", limits=limits, format=format, name=name, allowed=FORMATS)
        if src.ext in _SNDFILE:
            wave, rate = decode_sndfile(src, limits)
        else:
            wave, rate = decode_audio_av(src.target(), src.name, limits)
        return finish_audio(wave, rate, src.name, limits)


def decode_sndfile(src: Source, limits: Limits) -> tuple[np.ndarray, int]:
    """Decode with libsndfile (length checked from the header first); fall back to PyAV."""
    import soundfile as sf

    if src.ext == "wav":
        _check_wav_length(src)
    try:
        with sf.SoundFile(src.target()) as f:
            frames, rate = f.frames, f.samplerate
            if rate > 0:
                _check_seconds(frames / rate, src.name, limits)
            wave = f.read(dtype="float32", always_2d=True)
    except InputError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as first:
        # libsndfile lacks some codecs (e.g. ogg/opus in older builds); FFmpeg may still read it.
        try:
            return decode_audio_av(src.target(), src.name, limits)
        except InputTooLargeError:
            raise
        except InputError:
            problem = getattr(first, "error_string", None) or str(first)
            raise InputError(src.name, f"not a readable audio file ({problem})", modality="audio") from None
    # libsndfile returns what it could read from a cut file; a header promising much more is corrupt.
    if frames and len(wave) < frames * 0.9:
        raise InputError(src.name, f"truncated audio: read {len(wave)} of {frames} frames", modality="audio")
    return wave, int(rate)


def _check_wav_length(src: Source) -> None:
    """Refuse a WAV whose data chunk is shorter than its header says (libsndfile silently shortens it)."""
    head = src.data[:65536] if src.data is not None else _head(src)
    size = len(src.data) if src.data is not None else src.path.stat().st_size  # type: ignore[union-attr]
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return
    pos = 12
    while pos + 8 <= len(head):
        chunk, length = head[pos : pos + 4], int.from_bytes(head[pos + 4 : pos + 8], "little")
        if chunk == b"data":
            # 0 and 0xFFFFFFFF mean "unknown length" (streamed WAV); those are read as far as they go.
            if 0 < length < 0xFFFFFFFF and size - (pos + 8) < 0.99 * length:
                raise InputError(
                    src.name,
                    f"truncated audio: the header promises {length} bytes of samples, the file has {size - pos - 8}",
                    modality="audio",
                )
            return
        pos += 8 + length + (length & 1)


def _head(src: Source, n: int = 65536) -> bytes:
    try:
        with open(src.path, "rb") as f:  # type: ignore[arg-type]
            return f.read(n)
    except OSError as e:
        raise InputError(src.name, f"cannot read the file: {e.strerror or e}", modality="audio") from None


def decode_audio_av(target: Any, name: str, limits: Limits) -> tuple[np.ndarray, int]:
    """Decode the first audio stream of any container PyAV reads, to mono 16 kHz (video tracks too)."""
    import av

    try:
        with av.open(target) as container:
            if not container.streams.audio:
                raise InputError(name, "no audio stream", modality="audio")
            stream = container.streams.audio[0]
            if stream.duration is not None and stream.time_base is not None:
                _check_seconds(float(stream.duration * stream.time_base), name, limits)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=TARGET_RATE)
            chunks, total = [], 0
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
                    total += chunks[-1].size
                # Headers can lie or be missing: stop decoding once the limit is passed.
                _check_seconds(total / TARGET_RATE, name, limits)
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except InputError:
        raise
    except (av.FFmpegError, OSError, ValueError, IndexError) as e:
        raise InputError(name, f"cannot decode audio: {e}", modality="audio") from None
    wave = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return wave[:, None], TARGET_RATE


def _check_seconds(seconds: float, name: str, limits: Limits) -> None:
    if seconds > limits.max_audio_seconds:
        raise InputTooLargeError(
            name, f"{seconds:.1f} s exceeds the limit of {limits.max_audio_seconds:g} s", modality="audio"
        )


def finish_audio(wave: Any, rate: Any, name: str, limits: Limits) -> AudioData:
    """Scale integer PCM, mix to mono, check, resample to 16 kHz, clip to [-1, 1].

    2-D input is (T, C); an array with at most 8 rows and more columns is taken as (C, T).
    """
    w = _pcm_to_float(wave, name)
    if w.ndim == 2:
        w = w.mean(axis=0) if w.shape[0] <= 8 < w.shape[1] else w.mean(axis=1)
    if w.ndim != 1:
        raise InputError(name, f"expected a 1-D or 2-D waveform, got shape {w.shape}", modality="audio")
    try:
        rate = float(rate)
    except (TypeError, ValueError):
        raise InputError(name, f"sample rate must be a number, got {rate!r}", modality="audio") from None
    if not np.isfinite(rate) or rate <= 0:
        raise InputError(name, f"invalid sample rate {rate}", modality="audio")
    if w.size == 0:
        raise InputError(name, "audio has no samples", modality="audio")
    _check_seconds(w.size / rate, name, limits)
    if not np.isfinite(w).all():
        raise InputError(name, "waveform contains NaN or infinite samples", modality="audio")
    if rate != TARGET_RATE:
        from scipy.signal import resample_poly

        ratio = Fraction(TARGET_RATE) / Fraction(rate).limit_denominator(1000)
        ratio = ratio.limit_denominator(_MAX_FACTOR)
        w = resample_poly(w, ratio.numerator, ratio.denominator).astype(np.float32)
    return AudioData(np.clip(w, -1.0, 1.0).astype(np.float32), TARGET_RATE)


def _pcm_to_float(wave: Any, name: str) -> np.ndarray:
    """Integer PCM → [-1, 1] floats by its bit depth (int16 ÷ 32768, uint8 centred on 128...)."""
    try:
        a = np.asarray(wave)
    except ValueError as e:  # ragged nested lists
        raise InputError(name, f"not a waveform: {e}", modality="audio") from None
    if a.dtype.kind == "i":
        return (a.astype(np.float64) / float(2 ** (8 * a.dtype.itemsize - 1))).astype(np.float32)
    if a.dtype.kind == "u":
        half = float(2 ** (8 * a.dtype.itemsize - 1))
        return ((a.astype(np.float64) - half) / half).astype(np.float32)
    if a.dtype.kind not in "bf":
        raise InputError(name, f"waveform must be numeric, got dtype {a.dtype}", modality="audio")
    return a.astype(np.float32)
