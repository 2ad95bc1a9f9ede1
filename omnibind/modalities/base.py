"""The modality interface: files in, validated, preprocessed arrays out.

A modality knows files, not models. ``load`` is the single place where decoding can fail, and
every failure is an ``InputError`` naming the source and the problem.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from omnibind.modalities.options import Option, check_options
from omnibind.registry import Registry


@dataclass
class Limits:
    """Configurable input limits; an input over a limit raises ``InputTooLargeError``."""

    max_file_bytes: int = 200 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_audio_seconds: float = 600.0
    max_video_seconds: float = 600.0
    max_depth_pixels: int = 40_000_000
    max_points: int = 5_000_000
    max_imu_samples: int = 1_000_000

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Limits:
        names = {f.name for f in fields(cls)}
        unknown = set(d or {}) - names
        if unknown:
            raise ValueError(f"unknown limits: {sorted(unknown)}")
        return cls(**(d or {}))


@dataclass
class AudioData:
    """Mono float32 waveform in [-1, 1] at ``sample_rate`` (16 kHz after loading)."""

    waveform: np.ndarray
    sample_rate: int = 16000

    @property
    def seconds(self) -> float:
        return len(self.waveform) / self.sample_rate


@dataclass
class VideoData:
    """Uniformly sampled RGB frames (T, H, W, 3) uint8, their times in seconds, and the audio track."""

    frames: np.ndarray
    timestamps: np.ndarray
    audio: AudioData | None = None
    duration: float = 0.0


@dataclass
class DepthData:
    """Depth map (H, W) float32; invalid pixels are NaN. ``kind`` is ``metric`` (metres) or ``disparity``."""

    depth: np.ndarray
    kind: str = "metric"


@dataclass
class ThermalData:
    """Thermal image (H, W) float32.

    ``unit`` is ``celsius`` (radiometric) or ``relative`` (8/16-bit counts scaled to [0, 1]).
    """

    values: np.ndarray
    unit: str = "relative"


@dataclass
class IMUData:
    """IMU samples (T, 6): accelerometer xyz then gyroscope xyz, at ``sample_rate`` Hz."""

    samples: np.ndarray
    sample_rate: float


@dataclass
class PointsData:
    """Point cloud (N, 3) float32, centred and scaled into the unit sphere; optional (N, 3) colours in [0, 1]."""

    xyz: np.ndarray
    colors: np.ndarray | None = None


@dataclass
class ImageData:
    """RGB image (H, W, 3) uint8."""

    pixels: np.ndarray


class Modality(ABC):
    """Base class: one subclass per modality, registered in ``MODALITIES``."""

    name: str = ""
    extensions: tuple[str, ...] = ()
    description: str = ""
    options: tuple[Option, ...] = ()
    """The loader options this modality reads, declared once in its own file (see ``options.py``)."""

    def checked_options(self, options: dict[str, Any] | None, label: str) -> dict[str, Any]:
        """``options`` as a dict; an ``InputError`` naming any key this modality does not declare."""
        return check_options(self.options, options, modality=self.name, label=label)

    @abstractmethod
    def load(
        self,
        source: Any,
        *,
        format: str | None = None,
        options: dict[str, Any] | None = None,
        limits: Limits | None = None,
        name: str | None = None,
    ) -> Any:
        """Decode and preprocess ``source`` (path, bytes or decoded data) into this modality's data type."""


MODALITIES: Registry[type[Modality]] = Registry("modality")


def source_name(source: Any, name: str | None = None) -> str:
    """How a source is named in errors."""
    if name:
        return name
    if isinstance(source, (str, Path)):
        return str(source)
    return f"<{type(source).__name__}>"
