"""LLM-as-judge over an eval output folder (MLLM-as-a-Judge, JudgeLM, LLaVA's GPT-4 review).

``omnibind eval run`` leaves every answer of every system in ``samples/<task>.jsonl``;
``judge_folder`` has a judge model grade them, in one of two modes, with the prompt templates as
data (``omnibind/eval/judge_templates/*.yaml``, or any YAML file of the same shape):

* **single-answer grading** (``single``: a 1–10 rating against the reference; ``verdict``: yes/no)
  of each chosen system's answers, with agreement with the task's exact-match correctness where the
  task has one;
* **pairwise** (``pairwise``): two systems' answers to the same question (``model`` vs the
  ``text_only`` baseline of the same run, or the ``model`` of another run's folder), every pair asked
  twice with the answers swapped, so the A/B order bias is measured (``judge_metrics``).

The judge is any ``EvalModel``: an OpenAI-compatible endpoint (``EndpointModel``, through
``omnibind.serve.openai_wire``) or a local omnibind model. ``method="rank"`` (local models only)
reads the verdict as the most likely of the template's ``choices`` (``Model.score``) instead of
decoding it, so a small judge always gives a readable verdict. Judgments are cached in the eval
output cache under the judge's fingerprint, so a re-run asks only what changed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from omnibind.errors import ConfigError, InputError
from omnibind.eval.cache import OutputCache
from omnibind.eval.judge_metrics import pair_winner, pairwise_metrics, single_metrics
from omnibind.eval.models import EvalModel
from omnibind.hashing import digest
from omnibind.messages import MediaPart, Message, TextPart

TEMPLATES_DIR = Path(__file__).resolve().parent / "judge_templates"
KINDS = ("single", "pairwise")
_KEYS = {"name", "kind", "description", "system", "prompt", "patterns", "values", "scale", "pass_threshold"}
_KEYS |= {"choices", "max_new_tokens", "media"}


@dataclass
class JudgeTemplate:
    """A judge prompt and how to read its reply (see the files in ``judge_templates/``)."""

    name: str
    kind: str
    prompt: str
    patterns: list[str]
    system: str | None = None
    description: str = ""
    values: dict[str, float] = field(default_factory=dict)
    """Verdict word → score (``verdict``: yes → 1); otherwise the matched number is the score."""
    scale: tuple[float, float] = (1, 10)
    pass_threshold: float | None = None
    choices: list[str] = field(default_factory=list)
    """The replies ``method="rank"`` chooses among (each must parse)."""
    max_new_tokens: int = 32
    media: bool = False
    """Show the judge the sample's media too (a multimodal judge)."""

    def render(self, **fields: str) -> str:
        try:
            return self.prompt.format(**fields)
        except KeyError as e:
            raise ConfigError(
                f"judge template {self.name}: the prompt uses {e}, unknown to a {self.kind} judge"
            ) from None

    def parse(self, reply: str) -> Any:
        """The verdict in a reply: a score (single) or ``A`` / ``B`` / ``C`` (pairwise); None if absent."""
        for pat in self.patterns:
            m = re.search(pat, reply, flags=re.IGNORECASE | re.MULTILINE)
            if m:
                word = m.group(1)
                if self.kind == "pairwise":
                    return word.upper()
                if self.values:
                    return float(self.values[word.lower()])
                v = float(word)
                return v if self.scale[0] <= v <= self.scale[1] else None
        return None


def template_names() -> list[str]:
    """The packaged judge templates."""
    return sorted(p.stem for p in TEMPLATES_DIR.glob("*.yaml"))


def load_template(name_or_path: str | Path) -> JudgeTemplate:
    """A packaged template by name (``single``, ``verdict``, ``pairwise``) or a YAML file of the same shape."""
    import yaml

    p = Path(name_or_path)
    if not p.is_file():
        p = TEMPLATES_DIR / f"{name_or_path}.yaml"
        if not p.is_file():
            raise ConfigError(f"{name_or_path}: no such judge template file or name (packaged: {template_names()})")
    try:
        data = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{p}: cannot read judge template ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: a judge template must hold a mapping")
    unknown = set(data) - _KEYS
    if unknown:
        raise ConfigError(f"{p}: unknown keys {sorted(unknown)}; allowed: {sorted(_KEYS)}")
    for key in ("kind", "prompt", "patterns"):
        if key not in data:
            raise ConfigError(f"{p}: missing required key {key!r}")
    if data["kind"] not in KINDS:
        raise ConfigError(f"{p}: kind must be one of {KINDS}, got {data['kind']!r}")
    for pat in data["patterns"]:
        try:
            if re.compile(pat).groups != 1:
                raise ConfigError(f"{p}: pattern {pat!r} must have exactly one group (the verdict)")
        except re.error as e:
            raise ConfigError(f"{p}: pattern {pat!r} is not a regular expression ({e})") from None
    t = JudgeTemplate(
        name=str(data.get("name", p.stem)),
        kind=data["kind"],
        prompt=str(data["prompt"]),
        patterns=list(data["patterns"]),
        system=data.get("system"),
        description=str(data.get("description", "")),
        values={str(k).lower(): float(v) for k, v in (data.get("values") or {}).items()},
        scale=tuple(data.get("scale", (1, 10))),  # type: ignore[arg-type]
        pass_threshold=data.get("pass_threshold"),
        choices=list(data.get("choices") or []),
        max_new_tokens=int(data.get("max_new_tokens", 32)),
        media=bool(data.get("media", False)),
    )
    unreadable = [c for c in t.choices if t.parse(c) is None]
    if unreadable:
        raise ConfigError(f"{p}: choices {unreadable} do not parse with the template's patterns")
    return t


# --- what is judged --------------------------------------------------------------------------------
@dataclass
class Item:
    """One sample of a judged task: the question as the model saw it (text), the reference, and per
    system its answer and exact-match correctness (None where the task has none, e.g. captions)."""

    task: str
    sample: str
    question: str
    reference: str
    answers: dict[str, str]
    correct: dict[str, bool | None]
    media: list[MediaPart] = field(default_factory=list)


def read_items(folder: str | Path, *, with_media: bool = False, registry: Any = None) -> dict[str, list[Item]]:
    """Items of every task in an eval output folder whose answers are text (``generate`` tasks)."""
    from omnibind.eval.datasets import build
    from omnibind.eval.prompts import build_messages
    from omnibind.eval.report import sample_from_log
    from omnibind.eval.tasks import registry as default_registry

    out_dir = Path(folder)
    summary = out_dir / "results.json"
    if not summary.is_file():
        raise InputError(summary, "no results.json here: not an omnibind eval output folder")
    reg = registry or default_registry()
    out: dict[str, list[Item]] = {}
    for name in json.loads(summary.read_text())["tasks"]:
        task = reg.get(name)
        log = out_dir / "samples" / f"{name}.jsonl"
        if task.method != "generate" or not log.is_file():
            continue
        media = {s.id: s.media for s in build(task.dataset, **task.dataset_args)} if with_media else {}
        items = []
        for line in log.read_text().splitlines():
            if not line.strip():
                continue
            x = json.loads(line)
            s = sample_from_log(x)
            question = build_messages(task, s, "text_only")[-1].text
            kinds = ", ".join(m["modality"] for m in x["media"])
            if kinds:
                question = f"(The question is about this input: {kinds}.)\n{question}"
            answers = {k: str(v["raw"]) for k, v in x["outputs"].items() if isinstance(v.get("raw"), str)}
            correct = {k: x["outputs"][k].get("correct") for k in answers}
            ref = " / ".join(s.refs) if s.refs else s.target
            items.append(Item(name, s.id, question, ref, answers, correct, list(media.get(s.id, []))))
        out[name] = items
    return out


# --- asking the judge ------------------------------------------------------------------------------
class Judge:
    """A judge model with a template: asks, parses, caches."""

    def __init__(
        self,
        model: EvalModel,
        template: JudgeTemplate,
        *,
        method: str = "generate",
        cache: OutputCache | None = None,
        batch_size: int = 8,
    ):
        if method not in ("generate", "rank"):
            raise ConfigError(f"judge method must be 'generate' or 'rank', got {method!r}")
        if method == "rank" and not template.choices:
            raise ConfigError(f"judge template {template.name} has no 'choices' to rank")
        self.model = model
        self.template = template
        self.method = method
        self.cache = cache or OutputCache(None)
        self.batch_size = max(1, batch_size)

    def conversation(self, prompt: str, media: list[MediaPart]) -> list[Message]:
        user = Message.user(*(media if self.template.media else []), TextPart(prompt))
        return [Message.system(self.template.system), user] if self.template.system else [user]

    def ask(self, task: str, requests: list[tuple[str, str, list[MediaPart]]]) -> list[dict[str, Any]]:
        """(sample id, prompt, media) → ``{"reply", "verdict"}`` per request, in order."""
        from omnibind.eval.cache import conversation_key

        out: list[dict[str, Any] | None] = [None] * len(requests)
        todo = []
        for i, (sid, prompt, media) in enumerate(requests):
            conv = self.conversation(prompt, media)
            how = self.template.choices if self.method == "rank" else self.template.max_new_tokens
            req = digest(
                [self.model.fingerprint, "judge", self.template.name, self.method, conversation_key(conv), how]
            )
            key = self.cache.key(self.model.fingerprint, f"judge:{task}", sid, req)
            hit = self.cache.get(key, req)
            if hit is not None:
                out[i] = hit
            else:
                todo.append((i, sid, key, req, conv))
        for b in range(0, len(todo), self.batch_size):
            chunk = todo[b : b + self.batch_size]
            if self.method == "rank":
                replies = [
                    self.template.choices[int(np.argmax(self.model.score(c, self.template.choices, True)))]
                    for *_, c in chunk
                ]
            else:
                replies = self.model.generate([c for *_, c in chunk], self.template.max_new_tokens)
            for (i, sid, key, req, _), reply in zip(chunk, replies):
                value = {"reply": reply, "verdict": self.template.parse(reply)}
                self.cache.put(key, self.model.fingerprint, f"judge:{task}", sid, req, value)
                out[i] = value
        self.cache.commit()
        return out  # type: ignore[return-value]


def judge_single(judge: Judge, items: list[Item], systems: list[str]) -> dict[str, Any]:
    """Grade each system's answers; metrics per system and per-sample records."""
    t = judge.template
    results: dict[str, Any] = {"systems": {}, "records": {it.sample: {} for it in items}}
    for system in systems:
        have = [it for it in items if system in it.answers]
        if not have:
            continue
        reqs = [
            (it.sample, t.render(question=it.question, reference=it.reference, answer=it.answers[system]), it.media)
            for it in have
        ]
        got = judge.ask(have[0].task, reqs)
        values = [g["verdict"] for g in got]
        results["systems"][system] = single_metrics(values, t.pass_threshold, [it.correct[system] for it in have])
        for it, g in zip(have, got):
            results["records"][it.sample][system] = {**g, "exact_match_correct": it.correct[system]}
    return results


def judge_pairwise(judge: Judge, items: list[Item], a: str, b: str) -> dict[str, Any]:
    """Compare system ``a``'s answers with ``b``'s, each pair in both orders."""
    t = judge.template
    have = [it for it in items if a in it.answers and b in it.answers]
    if not have:
        return {"skipped": f"no sample has answers from both {a!r} and {b!r}"}
    first = [
        (
            it.sample,
            t.render(question=it.question, reference=it.reference, answer_a=it.answers[a], answer_b=it.answers[b]),
            it.media,
        )
        for it in have
    ]
    second = [
        (
            it.sample,
            t.render(question=it.question, reference=it.reference, answer_a=it.answers[b], answer_b=it.answers[a]),
            it.media,
        )
        for it in have
    ]
    g1, g2 = judge.ask(have[0].task, first), judge.ask(have[0].task, second)
    verdicts = [(x["verdict"], y["verdict"]) for x, y in zip(g1, g2)]
    correct = [(it.correct.get(a), it.correct.get(b)) for it in have]
    records = {
        it.sample: {
            "a_first": x,
            "b_first": y,
            "winner": pair_winner(x["verdict"], y["verdict"], a, b),
            "exact_match_correct": {a: it.correct.get(a), b: it.correct.get(b)},
        }
        for it, x, y in zip(have, g1, g2)
    }
    return {"pair": [a, b], "metrics": pairwise_metrics(verdicts, a, b, correct), "records": records}
