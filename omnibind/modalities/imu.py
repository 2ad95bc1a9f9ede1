"""IMU recordings → ``IMUData`` (T, 6): accelerometer xyz then gyroscope xyz, resampled to 50 Hz.

Sources: .csv (header optional; 6 numeric columns, or 7 with a leading time column), .npy
(T×6, T×7 with time first, or channel-first 6×T / 7×T as pyts and sktime give), .npz (array
``samples``/``imu``/``data``/``x`` with optional ``sample_rate`` scalar or ``time`` array), and arrays.

The input rate comes from, in order: ``options["sample_rate"]`` (Hz), the time column / ``time``
array (``options["time_unit"]``: ``s`` default, ``ms``, ``us``, ``ns``), the npz ``sample_rate``.
Uniform input is resampled to 50 Hz with a polyphase filter (anti-aliased); irregular time stamps
are first interpolated linearly onto a uniform grid at their mean rate. Length is kept (no crop or
pad): T seconds in gives about 50·T samples out; encoders window or pool as they need.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

import numpy as np

from omnibind.errors import InputError, InputTooLargeError
from omnibind.modalities._source import Source, check_source, is_file_source, load_numpy, npz_array, npz_scalar
from omnibind.modalities.base import MODALITIES, IMUData, Limits, Modality, source_name
from omnibind.modalities.options import Option

FORMATS = ("csv", "txt", "npy", "npz")
TARGET_RATE = 50.0
_TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
_SEPARATORS = re.compile(r"\s*[,;\t]\s*|\s+")  # comma, semicolon, tab or spaces
_MAX_RATE = 100_000.0  # no IMU samples faster; a bigger "rate" means wrong time units

OPTIONS = (
    Option(
        "sample_rate",
        float,
        "input rate when there is no time column",
        unit="Hz",
        client=True,
        client_range=(0.1, 10_000.0),
    ),
    Option("time_unit", str, "unit of the time column or array", default="s", choices=tuple(_TIME_UNITS)),
)


@MODALITIES.register("imu")
class IMUModality(Modality):
    """Accelerometer + gyroscope recordings → ``IMUData`` at 50 Hz."""

    name = "imu"
    extensions = FORMATS
    description = "accelerometer + gyroscope recording"
    options = OPTIONS

    def load(self, source: Any, *, format=None, options=None, limits=None, name=None) -> IMUData:
        limits = limits or Limits()
        label = source_name(source, name)
        options = self.checked_options(options, label)
        rate = options.get("sample_rate")
        unit = options.get("time_unit", "s")
        if unit not in _TIME_UNITS:
            raise InputError(label, f"time_unit must be one of {list(_TIME_UNITS)}, got {unit!r}", modality="imu")
        if isinstance(source, IMUData):
            return _finish(source.samples, source.sample_rate, None, label, limits)
        if isinstance(source, (np.ndarray, list, tuple)):
            return _finish(source, rate, None, label, limits, _TIME_UNITS[unit])
        if not is_file_source(source):
            raise InputError(label, f"cannot read IMU data from {type(source).__name__}", modality="imu")
        src = check_source(source, modality="imu", limits=limits, format=format, name=name, allowed=FORMATS)
        if src.ext in ("csv", "txt"):
            arr, times = _decode_csv(src), None
        else:
            arr = load_numpy(src, keys=("samples", "imu", "data", "x"))[0]
            rate = rate or npz_scalar(src, "sample_rate")
            times = npz_array(src, "time")
        return _finish(arr, rate, times, src.name, limits, _TIME_UNITS[unit])


def _decode_csv(src: Source) -> np.ndarray:
    """Numeric rows; lines before the first numeric row are a header; ``#`` lines are comments."""
    try:
        text = src.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(src.name, "not a text CSV file (not UTF-8)", modality="imu") from None
    rows: list[list[float]] = []
    for i, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        cells = _SEPARATORS.split(line)
        try:
            rows.append([float(c) for c in cells])
        except ValueError:
            if not rows:  # a header line
                continue
            raise InputError(src.name, f"line {i}: non-numeric value in {line[:60]!r}", modality="imu") from None
    if not rows:
        raise InputError(src.name, "no numeric rows", modality="imu")
    widths = sorted({len(r) for r in rows})
    if len(widths) != 1:
        raise InputError(src.name, f"rows have different numbers of columns: {widths}", modality="imu")
    return np.asarray(rows, dtype=np.float64)


def _finish(
    arr: Any,
    rate: Any,
    times: np.ndarray | None,
    name: str,
    limits: Limits,
    time_scale: float = 1.0,
) -> IMUData:
    a = _as_samples(arr, name)
    if a.shape[1] == 7:
        times, a = a[:, 0], a[:, 1:]
    if a.shape[1] != 6:
        raise InputError(
            name, f"expected 6 channels (acc xyz, gyro xyz) or 7 with time first, got {a.shape[1]}", modality="imu"
        )
    if a.shape[0] < 2:
        raise InputError(name, "need at least 2 samples", modality="imu")
    if a.shape[0] > limits.max_imu_samples:
        raise InputTooLargeError(
            name, f"{a.shape[0]} samples exceeds the limit of {limits.max_imu_samples}", modality="imu"
        )
    if not np.isfinite(a).all():
        raise InputError(name, "IMU data contain NaN or infinite values", modality="imu")
    if rate:
        rate = _check_rate(rate, name)
    elif times is not None:
        a, rate = _uniform(a, np.asarray(times, dtype=np.float64) * time_scale, name)
    else:
        raise InputError(
            name, "unknown sample rate: give options['sample_rate'] or a leading time column", modality="imu"
        )
    n_out = round(a.shape[0] * TARGET_RATE / rate)
    if n_out > limits.max_imu_samples:
        raise InputTooLargeError(
            name, f"{n_out} samples at {TARGET_RATE:g} Hz exceeds the limit of {limits.max_imu_samples}", modality="imu"
        )
    return IMUData(samples=_resample(a, rate), sample_rate=TARGET_RATE)


def _as_samples(arr: Any, name: str) -> np.ndarray:
    """A (T, C) float64 array; channel-first (6, T)/(7, T) input is transposed."""
    try:
        a = np.asarray(arr, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise InputError(name, f"not numeric IMU data: {e}", modality="imu") from None
    if a.ndim == 3 and a.shape[0] == 1:  # one recording of a pyts/sktime batch (1, 6, T)
        a = a[0]
    if a.ndim != 2:
        raise InputError(name, f"expected a (T, 6) array, got shape {a.shape}", modality="imu")
    if a.shape[1] not in (6, 7) and a.shape[0] in (6, 7):
        a = a.T
    return a


def _check_rate(rate: Any, name: str) -> float:
    try:
        r = float(rate)
    except (TypeError, ValueError):
        raise InputError(name, f"sample rate must be a number, got {rate!r}", modality="imu") from None
    if not np.isfinite(r) or not 0 < r <= _MAX_RATE:
        raise InputError(name, f"sample rate {r} Hz is out of range (0, {_MAX_RATE:g}]", modality="imu")
    return r


def _uniform(a: np.ndarray, t: np.ndarray, name: str) -> tuple[np.ndarray, float]:
    """Samples on a uniform grid at their mean rate, from a (possibly irregular) time column."""
    if t.shape[0] != a.shape[0] or not np.isfinite(t).all() or np.any(np.diff(t) <= 0):
        raise InputError(name, "time column must increase strictly, one entry per sample", modality="imu")
    t = t - t[0]
    rate = _check_rate((len(t) - 1) / t[-1], name)
    steps = np.diff(t)
    if steps.max() - steps.min() <= 0.01 * steps.mean():  # already uniform (up to rounding)
        return a, rate
    grid = np.arange(len(t)) / rate
    return np.stack([np.interp(grid, t, a[:, c]) for c in range(a.shape[1])], axis=1), rate


def _resample(a: np.ndarray, rate: float) -> np.ndarray:
    """Polyphase resampling to 50 Hz; ``padtype='line'`` avoids dips at the ends from gravity's offset."""
    ratio = (Fraction(TARGET_RATE).limit_denominator(1) / Fraction(rate).limit_denominator(1000)).limit_denominator(
        1000
    )
    if ratio == 1:
        return a.astype(np.float32)
    from scipy.signal import resample_poly

    out = resample_poly(a, ratio.numerator, ratio.denominator, axis=0, padtype="line")
    return out.astype(np.float32)
