"""Media in a training set that cannot be decoded: found before the first step, reported by
``file:line``, then skipped (``data.on_bad_media: skip``, the default) or fatal (``error``).

A training set of thousands of scraped files nearly always holds a few truncated downloads or
mislabelled files. Frameworks that meet them in the middle of an epoch either crash hours in or
drop them silently. Here every medium is decoded once before training starts (the feature pass
does it for frozen encoders anyway; media of trainable encoders are decoded once to check), so:

- ``skip``: each sample that uses a bad medium is left out of training (or validation), a warning
  names the file, the problem and the sample's ``file:line``, and the run's report
  (``metrics.json`` → ``bad_media``) lists them all with the count. The set of samples trained on
  is fixed before step 0, so batches stay deterministic and a resumed run sees the same set.
- ``error``: the run stops before step 0 with a ``DatasetError`` naming the first sample (in file
  order) that uses a bad medium, its ``file:line``, and how many bad media there are; the warnings
  above it list every one (``omnibind data check FILE`` lists every problem of a file, too).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from omnibind.data.format import DatasetError
from omnibind.errors import InputError
from omnibind.messages import MediaPart
from omnibind.train.data import TrainSample

POLICIES = ("skip", "error")
_WARN_LINES = 20  # warnings printed as they are found; the report holds every one


@dataclass
class BadMedium:
    """One medium that cannot be decoded and the samples (``file:line``) that use it."""

    path: str
    modality: str
    problem: str
    samples: list[str] = field(default_factory=list)


def _ident(part: MediaPart) -> tuple[str, str]:
    return part.modality, str(part.source)


class BadMediaReport:
    """Collects bad media while features are computed, then drops the samples that use them.

    ``record`` is the ``on_error`` of ``FeatureStore.precompute``; ``drop`` filters a split (and
    under ``error`` raises instead); ``to_dict`` goes into the run's report.
    """

    def __init__(self, samples: Sequence[TrainSample], policy: str = "skip"):
        if policy not in POLICIES:
            raise ValueError(f"on_bad_media: expected one of {POLICIES}, got {policy!r}")
        self.policy = policy
        self._users: dict[tuple[str, str], list[TrainSample]] = {}
        self._order = {id(s): i for i, s in enumerate(samples)}
        for s in samples:
            for m in s.media:
                users = self._users.setdefault(_ident(m), [])
                if not users or users[-1] is not s:
                    users.append(s)
        self.media: dict[tuple[str, str], BadMedium] = {}
        self.skipped: dict[str, list[str]] = {}

    def record(self, part: MediaPart, error: InputError) -> None:
        """A medium failed to decode: noted (once) and warned about."""
        ident = _ident(part)
        users = self._users.get(ident, [])
        problem = error.problem if isinstance(error, InputError) else str(error)
        if ident in self.media:
            return
        self.media[ident] = BadMedium(str(part.source), part.modality, problem, [s.where for s in users])
        if len(self.media) <= _WARN_LINES:
            where = users[0].where if users else str(part.source)
            more = f" (and {len(users) - 1} more samples)" if len(users) > 1 else ""
            what = "bad medium in the sample" if self.policy == "error" else "skipping the sample"
            print(f"warning: {where}: {what}{more}: {part.modality} {part.source}: {problem}", file=sys.stderr)

    def drop(self, samples: Sequence[TrainSample], split: str) -> list[TrainSample]:
        """``samples`` without those that use a bad medium (each counted under ``split``).

        Under ``error`` a bad medium raises ``DatasetError`` here instead, naming the first sample
        (in file order) that uses one.
        """
        if self.policy == "error" and self.media:
            self._raise_first()
        keep, skipped = [], self.skipped.setdefault(split, [])
        for s in samples:
            if any(_ident(m) in self.media for m in s.media):
                skipped.append(s.where)
            else:
                keep.append(s)
        return keep

    def _raise_first(self) -> None:
        """The ``error`` policy: a ``DatasetError`` at the first sample (file order) with a bad medium."""
        last = len(self._order)

        def position(ident: tuple[str, str]) -> int:
            return min((self._order.get(id(s), last) for s in self._users.get(ident, [])), default=last)

        ident = min(self.media, key=position)
        bad = self.media[ident]
        users = self._users.get(ident, [])  # in sample order
        more = f"; {len(self.media) - 1} more undecodable media (see the warnings)" if len(self.media) > 1 else ""
        policy = "data.on_bad_media is 'error'; 'skip' leaves such samples out"
        raise DatasetError(
            users[0].file if users else None,
            users[0].line if users else None,
            f"{bad.modality} {bad.path}: {bad.problem}{more} ({policy})",
        )

    @property
    def count(self) -> int:
        """Samples skipped, all splits together."""
        return sum(len(v) for v in self.skipped.values())

    def to_dict(self) -> dict[str, Any]:
        """The report's ``bad_media`` entry: policy, skipped samples per split, every bad file."""
        return {
            "policy": self.policy,
            "skipped_samples": {k: len(v) for k, v in self.skipped.items()},
            "files": [asdict(m) for m in self.media.values()],
        }

    def summary(self) -> str:
        """Lines for the end of a run ('' when nothing was skipped)."""
        if not self.media:
            return ""
        per_split = ", ".join(f"{n} {k}" for k, n in self.to_dict()["skipped_samples"].items() if n)
        lines = [f"skipped {self.count} samples ({per_split}) with {len(self.media)} undecodable media:"]
        for m in list(self.media.values())[:_WARN_LINES]:
            lines.append(f"  {', '.join(m.samples[:3]) or '-'}: {m.modality} {m.path}: {m.problem}")
        if len(self.media) > _WARN_LINES:
            lines.append(f"  ... and {len(self.media) - _WARN_LINES} more (metrics.json: bad_media)")
        return "\n".join(lines)
