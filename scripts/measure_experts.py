"""Side by side, one run, the shipped weights: does an expert note help the default model answer?

    python scripts/measure_experts.py --data DIR_WITH_tuxpaint.test.jsonl [--limit N] [--out results.json]

Variants (all greedy, 12 new tokens, the same model object):

- ``off``: no expert note (what the shipped model was trained with);
- ``old``: the old line, raw ImageNet top-3 class names, written inside the cue
  (``Image: Detected: tabby cat (0.41), ... <soft tokens>``), as docs/RESULTS.md measured it;
- ``new_at_old_place``: the new common-name line in that same place (isolates the wording);
- ``new``: the new common-name line on its own line after the soft tokens (what the model and
  the dataset reader now write).

Held-out Tux Paint stamps ("What is this?", hit = the answer names the object, as
``omnibind.train.results.names_object`` judges) and the examples/ files (cat and coffee photos;
the speech wav with transcripts off / old phrasing / new phrasing).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import omnibind
from omnibind.data.format import read_dataset
from omnibind.encoders import experts
from omnibind.messages import Audio, Image, Message
from omnibind.modalities import load_part
from omnibind.train.results import names_object

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "What is this?"


def _old_line(model: Any, part: Any) -> str:
    enc = model.core.encoders["image"]
    labels = enc.top_labels([load_part(part)], 3)[0]
    return "Detected: " + ", ".join(f"{n} ({p:.2f})" for n, p in labels)


def _new_line(model: Any, part: Any) -> str:
    return experts.image_labels(model.core.encoders["image"], [load_part(part)], 3)[0]


def _ask_with_cue(model: Any, part: Any, line: str, question: str, n: int) -> str:
    """The old layout: the note inside the image cue, before the soft tokens."""
    cues = model.core.config.injection.cues
    saved = cues.get("image", "Image:")
    cues["image"] = f"{saved} {line}" if line else saved
    try:
        return model.chat([Message.user(part, question)], max_new_tokens=n, experts=False).text
    finally:
        cues["image"] = saved


def image_variants(model: Any, n: int) -> dict[str, Callable[[Any, str], str]]:
    """Variant name → ask(image part, question) → answer."""
    return {
        "off": lambda p, q: model.chat([Message.user(p, q)], max_new_tokens=n, experts=False).text,
        "old": lambda p, q: _ask_with_cue(model, p, _old_line(model, p), q, n),
        "new_at_old_place": lambda p, q: _ask_with_cue(model, p, _new_line(model, p), q, n),
        "new": lambda p, q: model.chat([Message.user(p, q)], max_new_tokens=n, experts={"image_labels": 3}).text,
    }


def tuxpaint(model: Any, data: Path, limit: int | None, n: int) -> dict[str, Any]:
    items = [s for s in read_dataset(data / "tuxpaint.test.jsonl") if s.id.endswith("#caption")][:limit]
    out: dict[str, Any] = {}
    for name, ask in image_variants(model, n).items():
        hits, examples, t0 = 0, [], time.perf_counter()
        for s in items:
            part = s.to_messages()[0].media[0]
            answer = ask(part, QUESTION)
            ok = names_object(answer, s.extra["label"])
            hits += ok
            if len(examples) < 8:
                examples.append({"label": s.extra["label"], "answer": answer, "hit": ok})
        out[name] = {"n": len(items), "accuracy": hits / max(1, len(items)), "examples": examples,
                     "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
        print(name, f"{hits}/{len(items)}", flush=True)
    return out


def examples_dir(model: Any, n: int) -> dict[str, Any]:
    ex = ROOT / "examples"
    out: dict[str, Any] = {}
    photos = {"image_cat.jpg": "cat", "image_coffee.jpg": "coffee"}
    for name, ask in image_variants(model, n).items():
        out[name] = {}
        for f, label in photos.items():
            part = Image(str(ex / f))
            answer = ask(part, QUESTION)
            out[name][f] = {
                "answer": answer,
                "hit": names_object(answer, label) or (label == "coffee" and "cup" in answer.lower()),
            }
    speech = Audio(str(ex / "audio_speech.wav"))
    q = "What is said?"
    heard = experts.speech(load_part(speech))
    old_note = f'(transcript: "{heard.text}")'
    words = ("coffee", "cat", "sofa")
    cues = model.core.config.injection.cues
    saved = cues.get("audio", "Audio:")

    def judge(a: str) -> dict[str, Any]:
        return {"answer": a, "words": sum(w in a.lower() for w in words)}

    out["speech"] = {"transcript": heard.text, "confidence": round(heard.confidence, 3)}
    out["speech"]["off"] = judge(model.chat([Message.user(speech, q)], max_new_tokens=32, experts=False).text)
    cues["audio"] = f"{saved} {old_note}"
    try:
        out["speech"]["old"] = judge(model.chat([Message.user(speech, q)], max_new_tokens=32, experts=False).text)
    finally:
        cues["audio"] = saved
    out["speech"]["new"] = judge(
        model.chat([Message.user(speech, q)], max_new_tokens=32, experts={"transcript": True}).text
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--max-new-tokens", type=int, default=12)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    model = omnibind.load()
    res = {"examples": examples_dir(model, a.max_new_tokens)}
    print(json.dumps(res["examples"], indent=1), flush=True)
    res["tuxpaint"] = tuxpaint(model, a.data, a.limit, a.max_new_tokens)
    text = json.dumps(res, indent=1)
    if a.out:
        a.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
