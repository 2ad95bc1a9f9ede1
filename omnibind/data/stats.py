"""Dataset statistics for ``omnibind data stats``."""

from __future__ import annotations

from collections import Counter
from typing import Any

from omnibind.data.format import Sample


def dataset_stats(samples: list[Sample]) -> dict[str, Any]:
    """Counts per split, source, task and modality; items; turns and answer lengths (words)."""
    answers = [len(t.content.split()) for s in samples for t in s.conversation if t.role == "assistant"]
    modalities: Counter = Counter()
    for s in samples:
        modalities.update(m.type for m in s.media)
        if not s.media:
            modalities["text-only samples"] += 1
    return {
        "samples": len(samples),
        "items": len({(s.source, s.item) for s in samples}),
        "splits": dict(Counter(s.split or "-" for s in samples)),
        "sources": dict(Counter(s.source or "-" for s in samples)),
        "tasks": dict(Counter(str(s.extra.get("task", "-")) for s in samples)),
        "modalities": dict(modalities),
        "media per sample": dict(sorted(Counter(len(s.media) for s in samples).items())),
        "turns per sample": dict(sorted(Counter(len(s.conversation) for s in samples).items())),
        "answer words (mean)": round(sum(answers) / len(answers), 2) if answers else 0,
        "answer words (max)": max(answers, default=0),
        "distinct answers": len({t.content for s in samples for t in s.conversation if t.role == "assistant"}),
    }
