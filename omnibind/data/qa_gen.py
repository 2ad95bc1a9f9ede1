"""LLM-written instruction data, filtered by round-trip consistency (X-InstructBLIP, Panagopoulou et
al. 2023): from a caption the LLM picks an answer, writes a question for it, then answers its own
question from the caption again; the pair is kept only when the second answer matches the first
(token F1, or MiniLM cosine similarity). Also text-only chat samples: the LLM's own answers to seed
instructions (self-distillation keeps its language ability while the projector and LoRA train).

The LLM is reached through a ``ChatFn``: a batch of text prompts in, replies out.
``model_chat_fn()`` wraps ``omnibind.load()`` (the embedded SmolLM2 by default), text-only.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from omnibind.data import phrasings as T

ChatFn = Callable[[list[str]], list[str]]
Similarity = Callable[[str, str], float]


def model_chat_fn(model: Any = None, *, max_new_tokens: int = 48, batch_size: int = 8) -> ChatFn:
    """A ``ChatFn`` over an omnibind model (a loaded ``omnibind.Model``, a path/preset, or None = embedded)."""
    if model is None or isinstance(model, str):
        import omnibind

        model = omnibind.load(model)

    def chat(prompts: list[str]) -> list[str]:
        out: list[str] = []
        for i in range(0, len(prompts), batch_size):
            replies = model.generate(prompts[i : i + batch_size], max_new_tokens=max_new_tokens, temperature=0.0)
            out.extend(r.text for r in replies)
        return out

    return chat


# --------------------------------------------------------------------------- similarity


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (SQuAD-style answer normalisation)."""
    text = text.lower().translate(str.maketrans("", "", string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def token_f1(a: str, b: str) -> float:
    """Token-overlap F1 between two answers after ``normalize_answer`` (1.0 = same words)."""
    ta, tb = normalize_answer(a).split(), normalize_answer(b).split()
    if not ta or not tb:
        return float(ta == tb)
    common = sum((Counter(ta) & Counter(tb)).values())
    if common == 0:
        return 0.0
    p, r = common / len(tb), common / len(ta)
    return 2 * p * r / (p + r)


class MiniLMSimilarity:
    """Cosine similarity of all-MiniLM-L6-v2 sentence embeddings (the embedded text encoder)."""

    def __init__(self) -> None:
        from omnibind.encoders.minilm import MiniLMEncoder

        self.encoder = MiniLMEncoder()

    def __call__(self, a: str, b: str) -> float:
        vecs = self.encoder.encode([a or " ", b or " "]).pooled
        return float((vecs[0] * vecs[1]).sum())


# --------------------------------------------------------------------------- prompts and cleaning

# Few-shot prompts: the 135M embedded model follows a worked example far better than an instruction.
ANSWER_PROMPT = (
    "Pick a short answer from the description.\n"
    "Description: A red car parked on a street.\nAnswer: red\n"
    "Description: Two dogs playing in the snow.\nAnswer: two dogs\n"
    "Description: {caption}\nAnswer:"
)
QUESTION_PROMPT = (
    "Write the question that the answer replies to.\n"
    "Description: A red car parked on a street.\nAnswer: red\nQuestion: What colour is the car?\n"
    "Description: Two dogs playing in the snow.\nAnswer: snow\nQuestion: Where are the dogs playing?\n"
    "Description: {caption}\nAnswer: {answer}\nQuestion:"
)
REANSWER_PROMPT = (
    "Answer the question in a few words using the description.\n"
    "Description: A red car parked on a street.\nQuestion: What colour is the car?\nAnswer: red\n"
    "Description: Two dogs playing in the snow.\nQuestion: Where are the dogs playing?\nAnswer: in the snow\n"
    "Description: {caption}\nQuestion: {question}\nAnswer:"
)


def clean_reply(text: str) -> str:
    """First line, without quotes and 'Answer:'/'Question:' prefixes."""
    line = next((ln.strip() for ln in text.strip().splitlines() if ln.strip()), "")
    line = re.sub(r"^(answer|question|phrase|q|a)\s*[:\-]\s*", "", line, flags=re.IGNORECASE)
    return line.strip().strip("\"'“”‘’`").strip()


def clean_question(text: str) -> str | None:
    """A single question ending in '?', or None when the reply is not one."""
    q = clean_reply(text)
    if "?" not in q:
        return None
    q = q[: q.index("?") + 1].strip()
    return q if len(q.split()) >= 3 else None


STOPWORDS = frozenset(
    "what which who whom whose where when why how is are was were be been do does did the and with for from this "
    "that these those there here its it's into onto about shown show shows image picture photo description".split()
)


def content_words(text: str) -> set[str]:
    """Normalised words longer than two letters that are not question or stop words."""
    return {w for w in normalize_answer(text).split() if len(w) > 2 and w not in STOPWORDS}


def question_ok(question: str, answer: str, caption: str) -> bool:
    """Sanity filters on top of the round trip (a 135M model often copies or drifts):
    the question must not contain its own answer, and must mention something of the caption
    other than the answer when the caption has anything else to mention."""
    q, a = content_words(question), content_words(answer)
    if a and a <= q:
        return False
    rest = content_words(caption) - a
    return not rest or bool(q & rest)


@dataclass
class GeneratedQA:
    """One round trip: the picked answer, the question, the re-answer, their similarity, the verdict."""

    caption: str
    answer: str
    question: str | None
    answer2: str
    similarity: float
    kept: bool


def round_trip(
    captions: Sequence[str],
    chat: ChatFn,
    *,
    similarity: Similarity = token_f1,
    threshold: float = 0.5,
    answers: Sequence[str | None] | None = None,
) -> list[GeneratedQA]:
    """Answer → question → answer again for each caption (three batched LLM calls in all).

    ``answers`` may give the answer per caption (e.g. a known label) instead of asking the LLM.
    A pair is kept when ``similarity(answer, answer2) >= threshold``, the picked answer really
    occurs in the caption (a hallucinated answer cannot be grounded in the medium) and
    ``question_ok`` (the question neither gives its answer away nor drifts off the caption).
    """
    captions = list(captions)
    given = list(answers) if answers is not None else [None] * len(captions)
    ask = [i for i, a in enumerate(given) if not a]
    picked = dict(zip(ask, chat([ANSWER_PROMPT.format(caption=captions[i]) for i in ask]))) if ask else {}
    first = [clean_reply(given[i] or picked.get(i, "")) for i in range(len(captions))]
    qs = chat([QUESTION_PROMPT.format(caption=c, answer=a) for c, a in zip(captions, first)])
    questions = [clean_question(q) for q in qs]
    todo = [i for i, q in enumerate(questions) if q and first[i]]
    prompts = [REANSWER_PROMPT.format(caption=captions[i], question=questions[i]) for i in todo]
    re_answers = dict(zip(todo, chat(prompts))) if todo else {}
    out = []
    for i, cap in enumerate(captions):
        a2 = clean_reply(re_answers.get(i, ""))
        sim = similarity(first[i], a2) if i in re_answers and a2 else 0.0
        grounded = bool(first[i]) and normalize_answer(first[i]) in normalize_answer(cap)
        sane = bool(questions[i]) and question_ok(questions[i] or "", first[i], cap)
        kept = grounded and sane and sim >= threshold
        out.append(GeneratedQA(cap, first[i], questions[i], a2, round(sim, 4), kept))
    return out


def qa_samples(
    samples: list[dict[str, Any]], chat: ChatFn, *, use_labels: bool = True, **kwargs: Any
) -> tuple[list[dict], list[GeneratedQA]]:
    """New question–answer samples for caption samples (dicts of the JSONL format), round-trip filtered.

    Each kept pair becomes a sample with the same media, item, source and split as its caption
    sample (so generated data never crosses the held-out line), ``task`` ``"gen-qa"``.
    """
    with_caption = [s for s in samples if s.get("caption") and s.get("task", "caption") == "caption"]
    if use_labels:  # a known label is a grounded answer; the LLM then only writes and re-answers the question
        kwargs.setdefault("answers", [s.get("label") for s in with_caption])
    results = round_trip([s["caption"] for s in with_caption], chat, **kwargs)
    out = []
    for s, r in zip(with_caption, results):
        if not r.kept:
            continue
        tags = "".join(f"<{m['type']}>\n" for m in s.get("media", []))
        out.append(
            {
                "id": f"{s['id']}#gen",
                "media": s.get("media", []),
                "conversation": [
                    {"role": "user", "content": tags + r.question},
                    {"role": "assistant", "content": T.sentence(r.answer)},
                ],
                "task": "gen-qa",
                "caption": s["caption"],
                "generation": {k: v for k, v in asdict(r).items() if k in ("answer2", "similarity")},
                **{k: s[k] for k in ("source", "split", "item") if k in s},
            }
        )
    return out, results


def text_chat_samples(
    chat: ChatFn, instructions: Sequence[str] = T.SEED_INSTRUCTIONS, *, source: str = "text-chat-llm"
) -> list[dict[str, Any]]:
    """Self-distilled text-only samples: each seed instruction with the LLM's own reply.

    Replies that are empty or cut off mid-sentence (no final punctuation) are dropped; the split of
    each instruction follows ``split_of(source, instruction)``.
    """
    from omnibind.data.splits import split_of

    out = []
    for i, (inst, reply) in enumerate(zip(instructions, chat(list(instructions)))):
        text = reply.strip()
        if not text or text[-1] not in ".!?\"')":
            continue
        out.append(
            {
                "id": f"llm-{i:04d}",
                "media": [],
                "conversation": [{"role": "user", "content": inst}, {"role": "assistant", "content": text}],
                "task": "text",
                "source": source,
                "split": split_of(source, inst),
                "item": inst,
            }
        )
    return out
