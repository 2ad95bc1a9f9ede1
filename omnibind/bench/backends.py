"""``omnibind bench backends``: transformers and llama.cpp side by side, in one run, on one model.

Measured: LLM load time, decode tokens/s (and their ratio), time to first token with an image,
greedy agreement of the two backends on fixed prompts with and without media (first 10 tokens),
and KV-cache reuse across chat turns (second turn's prompt evaluation vs re-evaluating it all).

Both backends get the very same omnibind-side weights (bind heads, projectors): the llama.cpp model
copies them from the transformers one, so differences come from the LLM engines alone.

llama.cpp runs the model's own GGUF (the embedded default: an f16 GGUF of the very weights
transformers runs) and a second column (``exact``): for the embedded model the shipped 4-bit Q4_1
file, for other models an f16 GGUF of the transformers weights. llama.cpp's kernels for quantised
weights round the activations to 8 bits inside every matrix product, which alone changes greedy
answers of a 135M model; the two columns show the speed that buys and the answers it costs.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import typer

from omnibind.bench.backends_report import print_backends_report
from omnibind.bench.engine_limits import (
    RawLlama,
    TimedDecode,
    copy_bandwidth,
    decode_bound,
    system_info,
    tokens_per_second,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TEXT_PROMPTS = (
    "Describe a cat in one sentence.",
    "What is the capital of France?",
    "Give me three tips for sleeping better.",
    "Write a haiku about the sea.",
    "Explain what a rainbow is to a child.",
    "What are the primary colours?",
    "How do I boil an egg?",
    "Name two planets in the solar system.",
    "Why is the sky blue?",
    "Suggest a name for a pet goldfish.",
)
MEDIA_PROMPTS = (
    ("image_cat.jpg", "What is in this picture?"),
    ("image_coffee.jpg", "Describe this image."),
    ("image_cat.jpg", "What colour is the animal?"),
    ("image_coffee.jpg", "Is this a drink or a food?"),
    ("audio_bell.flac", "What do you hear?"),
    ("audio_speech.wav", "Summarise this recording."),
    ("depth_motorcycle.npz", "What does this depth map show?"),
    ("points_spider.ply", "What shape is this object?"),
    ("imu_walking.csv", "What activity is this person doing?"),
    ("thermal_person.npy", "What is in this thermal image?"),
)
_MODALITY_BY_PREFIX = {
    "image": "image",
    "audio": "audio",
    "depth": "depth",
    "points": "points",
    "imu": "imu",
    "thermal": "thermal",
    "video": "video",
}


def llamacpp_missing() -> str | None:
    """Why the llama.cpp side cannot run here (None when it can)."""
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is None:
        from omnibind.llm.backends.llamacpp_batch import INSTALL_HINT

        return f"llama-cpp-python is not installed ({INSTALL_HINT})"
    return None


def _media(name: str) -> Any:
    from omnibind.messages import MediaPart

    return MediaPart(_MODALITY_BY_PREFIX[name.split("_")[0]], str(EXAMPLES / name))


def exact_gguf(source: str) -> Path | None:
    """An f16 GGUF of the exact weights the transformers backend runs for ``source`` (built once,
    cached); None when the source is a GGUF already (no transformers copy to match)."""
    import hashlib

    from omnibind.atomic import atomic_file
    from omnibind.llm.embedded import cache_root
    from omnibind.llm.gguf_io import write_llama_gguf
    from omnibind.llm.sources import resolve_hf_source, tokenizer_source

    if source.lower().endswith(".gguf"):
        return None
    hf_dir = Path(resolve_hf_source(source))
    if not hf_dir.is_dir():
        return None
    files = sorted(f for f in hf_dir.iterdir() if f.suffix in (".safetensors", ".json"))
    key = ";".join(f"{f.resolve()}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files)
    path = cache_root() / "llamacpp-exact" / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}-f16.gguf"
    if not path.is_file():
        from transformers import AutoModelForCausalLM

        hf = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype="float32")
        base_gguf, tok_dir, pre = tokenizer_source(source, "auto")
        with atomic_file(path) as tmp:
            write_llama_gguf(hf, tmp, outtype="f16", tokenizer_dir=tok_dir, base_gguf=base_gguf, tokenizer_pre=pre)
    return path


def _load_models(model: str | None, gguf: str | None = None, exact: bool = True) -> tuple[dict[str, Any], dict]:
    """transformers, llama.cpp on the model's GGUF (or ``gguf``), and a second llama.cpp column: for
    the embedded LLM the shipped 4-bit file (``llamacpp_q4_1``; the default there is already an f16 of
    the transformers weights), for other models an f16 GGUF of the weights transformers runs
    (``llamacpp_f16``). LLM-only load times measured after the imports (second construction of each)."""
    import omnibind
    from omnibind.api import load_llamacpp
    from omnibind.llm.backends.base import LLM_BACKENDS
    from omnibind.llm.embedded import EMBEDDED_LLM, EMBEDDED_LLM_Q4_1

    tf = omnibind.load(model, backend="transformers")
    tf.core.llm.model.eval()  # peft's LoRA dropout modules start in training mode
    models = {"transformers": tf, "llamacpp": load_llamacpp(model, source=gguf)}
    if exact and gguf is None and tf.config.llm.source == EMBEDDED_LLM:
        models["llamacpp_q4_1"] = load_llamacpp(model, source=EMBEDDED_LLM_Q4_1)
    elif exact:
        f16 = exact_gguf(tf.config.llm.source)
        if f16 is not None:
            models["llamacpp_f16"] = load_llamacpp(model, source=str(f16))
    state = tf.core.trainable_state_dict()
    for ll in list(models.values())[1:]:
        if not ll.trained:  # fresh projectors differ between two builds: give llama.cpp the same ones
            ll.core.load_trainable_state_dict({k: v for k, v in state.items() if not k.startswith("llm.")})
    times = {}
    for name, m in models.items():
        cls = LLM_BACKENDS.get(m.core.llm.name)
        t = time.perf_counter()
        b = cls(m.core.llm.source, dtype=m.config.llm.dtype)
        times[name] = time.perf_counter() - t
        del b
    return models, times


def _timed_steps(model: Any, conv: Any, max_new: int) -> tuple[list[int], list[float], float]:
    """Greedy decode; token ids, the time of each step after the start, and when the call began."""
    from omnibind.llm.backends.base import GenerationOptions

    opts = GenerationOptions(max_new_tokens=max_new, temperature=0.0, stop=list(model.core.template.stop))
    start = time.perf_counter()
    steps, _ = model.core.generate_ids([conv], opts)
    ids, stamps = [], []
    for step in steps:
        if step[0] is None:
            break
        ids.append(step[0])
        stamps.append(time.perf_counter() - start)
    return ids, stamps, start


DECODE_PROMPT = "Write a long, detailed story about a cat who travels around the world."


def decode_speeds(
    models: dict[str, Any], *, tokens: int, repeats: int, peers: dict[str, TimedDecode] | None = None
) -> dict[str, dict[str, float]]:
    """Decode tokens/s of each engine between its first and last token (prompt evaluation excluded),
    interleaved repetition by repetition so that load from other work on a shared machine falls on
    all engines alike; medians. ``peers`` are more arms timed in the same loop: a callable taking the
    token count and returning (token ids, time of each token), e.g. llama-cpp-python alone."""
    from omnibind.messages import Message

    conv = [Message.user(DECODE_PROMPT)]

    def arm(m: Any) -> TimedDecode:
        def run(n: int) -> tuple[list[int], list[float]]:
            _reset(m)
            ids, stamps, _ = _timed_steps(m, conv, n)
            return ids, stamps

        return run

    arms: dict[str, TimedDecode] = {name: arm(m) for name, m in models.items()} | dict(peers or {})
    for run in arms.values():
        run(4)  # warm-up
    rates: dict[str, list[float]] = {k: [] for k in arms}
    counts: dict[str, list[int]] = {k: [] for k in arms}
    for _ in range(repeats):
        for name, run in arms.items():
            ids, stamps = run(tokens)
            rate = tokens_per_second(stamps)
            if rate is not None:
                rates[name].append(rate)
                counts[name].append(len(ids))
    return {
        k: {
            "tokens_per_second": statistics.median(rates[k]) if rates[k] else float("nan"),
            "tokens": min(counts[k], default=0),
        }
        for k in arms
    }


def raw_peers(lls: dict[str, Any], *, threads: int) -> dict[str, RawLlama]:
    """llama-cpp-python alone (``raw:<engine>``) on each llama.cpp engine's GGUF, fed the text omnibind's
    template renders for the decode prompt."""
    import torch

    from omnibind.messages import Message

    peers = {}
    for name, m in lls.items():
        with torch.inference_mode():
            segs = m.core.build_inputs(m.core.prepare([Message.user(DECODE_PROMPT)]), add_generation_prompt=True)[2]
        peers[f"raw:{name}"] = RawLlama(m.core.llm.gguf_path, "".join(s.text for s in segs), threads=threads)
    return peers


def engine_limits(speed: dict[str, Any], lls: dict[str, Any], *, threads: int) -> dict[str, Any]:
    """omnibind's llama.cpp decode ÷ llama-cpp-python alone and ÷ the memory-bandwidth bound, per engine."""
    bandwidth = copy_bandwidth(threads=threads)
    rows = {}
    for name, m in lls.items():
        ours = speed[name]["tokens_per_second"]
        bound = decode_bound(m.core.llm.gguf_path, bandwidth)
        row: dict[str, Any] = {
            "gguf": str(m.core.llm.gguf_path),
            "tokens_per_second": ours,
            "bytes_per_token": bound["bytes_per_token"],
            "bound_tokens_per_second": bound["tokens_per_second"],
            "vs_bound": ours / bound["tokens_per_second"],
        }
        raw = speed.get(f"raw:{name}")
        if raw is not None:
            row |= {"raw_tokens_per_second": raw["tokens_per_second"], "raw_tokens": raw["tokens"]}
            row["vs_raw"] = ours / raw["tokens_per_second"]
        rows[name] = row
    return {"copy_bandwidth_bytes_per_second": bandwidth, "system": system_info(), "engines": rows}


def first_token_with_image(model: Any, image: Path, *, repeats: int) -> dict[str, float]:
    """Seconds from the call to the first token for a question about an image (decode + encode + prompt)."""
    from omnibind.messages import MediaPart, Message

    conv = [Message.user(MediaPart("image", str(image)), "What is in this picture?")]
    _timed_steps(model, conv, 1)
    times = []
    for _ in range(repeats):
        _reset(model)
        _, stamps, _ = _timed_steps(model, conv, 1)
        times.append(stamps[0])
    return {"seconds": statistics.median(times)}


def _reset(model: Any) -> None:
    reset = getattr(model.core.llm, "reset_cache", None)
    if reset is not None:
        reset()


def agreement(tf: Any, ll: Any, *, n_tokens: int = 10) -> dict[str, Any]:
    """Greedy first ``n_tokens`` of both backends on the fixed prompts; a case agrees when all match."""
    from omnibind.messages import Message

    cases = [(p, [Message.user(p)]) for p in TEXT_PROMPTS]
    cases += [(f"[{f}] {p}", [Message.user(_media(f), p)]) for f, p in MEDIA_PROMPTS if (EXAMPLES / f).is_file()]
    rows = []
    for label, conv in cases:
        a, _, _ = _timed_steps(tf, conv, n_tokens)
        b, _, _ = _timed_steps(ll, conv, n_tokens)
        same = a == b
        row: dict[str, Any] = {"prompt": label, "agree": same}
        if not same:
            at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            row.update(first_difference=at, transformers=tf.core.llm.detokenize(a), llamacpp=ll.core.llm.detokenize(b))
        rows.append(row)
    agreed = sum(r["agree"] for r in rows)
    return {
        "cases": len(rows),
        "agree": agreed,
        "rate": agreed / max(1, len(rows)),
        "disagreements": [r for r in rows if not r["agree"]],
    }


KV_CHATS = {
    # the model answers image questions in a few words: a short history, most of turn 2 is new
    "image chat": ("image_cat.jpg", "Describe this picture in a few sentences, then list three things you notice."),
    # a text question it answers at length (~100 tokens)
    "text chat": (None, "Give me three tips for sleeping better."),
}
FIRST_REPLY_TOKENS = 128  # the API's default max_new_tokens: turn 1 is answered as a chat would answer it
FOLLOW_UP = "Now summarise that in five words."


def kv_reuse(ll: Any, image: Path | None, *, repeats: int, question: str | None = None) -> dict[str, float]:
    """A chat's second turn with the first turn (prompt and reply) cached vs the whole history from scratch.

    Timed at the backend, from ``generate`` to the first token, on the assembled embeddings, so
    image encoding (the same in both) does not dilute the ratio.
    """
    import torch

    from omnibind.llm.backends.base import GenerationOptions
    from omnibind.messages import MediaPart, Message

    core = ll.core
    media = [MediaPart("image", str(image))] if image else []
    first = [Message.user(*media, question or KV_CHATS["image chat"][1])]
    opts = GenerationOptions(max_new_tokens=FIRST_REPLY_TOKENS)
    reply = ll.chat(first, max_new_tokens=opts.max_new_tokens)
    second = [*first, Message.assistant(reply.text), Message.user(FOLLOW_UP)]
    with torch.inference_mode():
        emb1 = core.build_inputs(core.prepare(first), add_generation_prompt=True)[0].embeds
        emb2 = core.build_inputs(core.prepare(second), add_generation_prompt=True)[0].embeds

    def time_first(emb: torch.Tensor) -> float:
        t = time.perf_counter()
        steps = core.llm.generate([emb], GenerationOptions(max_new_tokens=1))
        next(steps, None)
        steps.close()
        return time.perf_counter() - t

    reused, full, kept = [], [], []
    for _ in range(repeats):
        core.llm.reset_cache()
        for _step in core.llm.generate([emb1], opts):  # turn 1 as a chat leaves it: prompt + reply cached
            pass
        kept.append(core.llm.cached_prefix(emb2))  # what turn 2 reuses (the reply may re-tokenise differently)
        reused.append(time_first(emb2))
        core.llm.reset_cache()
        full.append(time_first(emb2))
    r, f = statistics.median(reused), statistics.median(full)
    return {
        "first_reply": reply.text,
        "history_positions": int(emb2.shape[0]),
        "cached_positions": int(min(kept)),
        "second_turn_seconds": r,
        "full_history_seconds": f,
        "ratio": r / f,
    }


def bench_backends(
    model_name_or_path: str | None = None,
    *,
    tokens: int = 64,
    repeats: int = 3,
    agreement_tokens: int = 10,
    threads: int | None = None,
    gguf: str | None = None,
    exact: bool = True,
    raw: bool = True,
    decode_only: bool = False,
) -> dict[str, Any]:
    """Run every measurement on every engine in one process; returns a JSON-able dict.

    ``threads`` sets torch's and llama.cpp's thread count alike (default: torch's current);
    ``gguf`` runs llama.cpp on another GGUF of the same base (e.g. an f32 export of the HF copy);
    ``exact`` adds a second llama.cpp column (``llamacpp_q4_1`` or ``llamacpp_f16``, see ``_load_models``);
    ``raw`` times llama-cpp-python alone on each llama.cpp engine's GGUF in the same decode loop
    (``raw:<engine>``). ``limits`` holds omnibind ÷ raw and ÷ the memory-bandwidth bound.
    ``decode_only`` stops after the decode speeds (no first token, agreement or KV reuse)."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    image = EXAMPLES / "image_cat.jpg"
    models, load = _load_models(model_name_or_path, gguf, exact)
    tf = models["transformers"]
    lls = {k: m for k, m in models.items() if k != "transformers"}
    res: dict[str, Any] = {
        "model": model_name_or_path or "embedded default",
        "threads": torch.get_num_threads(),
        "engines": list(models),
        "gguf": {k: str(m.core.llm.gguf_path) for k, m in lls.items()},
        "llamacpp_gguf": str(lls["llamacpp"].core.llm.gguf_path),
        "load_seconds": load,
    }
    peers = raw_peers(lls, threads=res["threads"]) if raw else {}
    speed: dict[str, Any] = dict(
        decode_speeds(models, tokens=tokens, repeats=repeats, peers={k: p.timed for k, p in peers.items()})
    )
    res["limits"] = engine_limits(speed, lls, threads=res["threads"])
    for p in peers.values():
        p.close()
    base = speed["transformers"]["tokens_per_second"]
    speed["ratio"] = speed["llamacpp"]["tokens_per_second"] / base
    speed["ratios"] = {k: speed[k]["tokens_per_second"] / base for k in lls}
    res["decode"] = speed
    if decode_only:
        return res
    if image.is_file():
        res["first_token_with_image_seconds"] = {
            k: first_token_with_image(m, image, repeats=repeats)["seconds"] for k, m in models.items()
        }
    res["agreement"] = agreement(tf, lls["llamacpp"], n_tokens=agreement_tokens)
    res["agreement_by_engine"] = {
        k: agreement(tf, m, n_tokens=agreement_tokens) for k, m in lls.items() if k != "llamacpp"
    }
    res["agreement_by_engine"]["llamacpp"] = res["agreement"]
    kv = {}
    for name, (media, question) in KV_CHATS.items():
        if media is None or (EXAMPLES / media).is_file():
            kv[name] = kv_reuse(
                lls["llamacpp"], EXAMPLES / media if media else None, repeats=repeats, question=question
            )
    res["kv_reuse"] = kv
    return res


def bench_backends_command(
    model: str | None = typer.Option(
        None, "--model", "-m", help="Checkpoint folder, config or preset; default: embedded."
    ),
    tokens: int = typer.Option(64, help="Tokens generated per decode-speed timing."),
    repeats: int = typer.Option(3, help="Timed repetitions (median reported)."),
    threads: int | None = typer.Option(None, help="Threads for both engines (default: torch's current count)."),
    gguf: str | None = typer.Option(None, "--gguf", help="Run llama.cpp on this GGUF of the same base weights."),
    exact: bool = typer.Option(
        True,
        "--exact/--no-exact",
        help="Also run a second llama.cpp column: the shipped Q4_1 file (embedded model) or an f16 GGUF "
        "of the weights transformers runs (other models).",
    ),
    raw: bool = typer.Option(
        True, "--raw/--no-raw", help="Also time llama-cpp-python alone on each llama.cpp engine's GGUF."
    ),
    decode_only: bool = typer.Option(
        False, "--decode-only", help="Only the load times and decode speeds (with the engine alone and the bound)."
    ),
    out: Path | None = typer.Option(None, "--out", help="Also write the figures as JSON."),
) -> None:
    """transformers vs llama.cpp in one run: load, decode speed (and llama.cpp alone, the bandwidth bound),
    first token with an image, agreement, KV reuse."""
    results = bench_backends(
        model, tokens=tokens, repeats=repeats, threads=threads, gguf=gguf, exact=exact, raw=raw, decode_only=decode_only
    )
    print_backends_report(results)
    if out:
        out.write_text(json.dumps(results, indent=2))
