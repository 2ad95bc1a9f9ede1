"""Text-only chat samples (no media) so instruction tuning keeps the LLM's language ability:
templated questions with computed answers (``omnibind.data.phrasings.TEXT_TASKS``). Samples the
LLM writes itself come from ``omnibind data textgen`` (``omnibind.data.qa_gen``)."""

from __future__ import annotations

from pathlib import Path

from omnibind.data import phrasings as T
from omnibind.data.builders.common import DatasetWriter, conversation, item_rng


def build_text_chat(out: Path, *, limit=500, seed: int = 0, splits=("train", "val", "test"), total: int | None = None):
    """``limit`` templated text-only questions per split (``total`` candidates considered)."""
    w = DatasetWriter(out, "text-chat", splits=splits, limit=limit)
    total = total or (limit or 500) * 40
    seen: set[str] = set()
    for i in range(total):
        if w.full():
            break
        item = f"task-{i:06d}"
        if not w.wants(item):
            continue
        q, a = T.text_task(item_rng(seed, "text-chat", item))
        if q in seen:  # identical questions add nothing and would blur the held-out split
            continue
        seen.add(q)
        w.add_item(item, [{"id": item, "media": [], "conversation": conversation(q, a), "task": "text"}])
    return w.write()
