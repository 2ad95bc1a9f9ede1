"""``omnibind bench``: load times, per-modality encode time and the glue overhead, in one run.

glue overhead = (answer time − media encode time − bare LLM generate time for the same number of
prompt and new tokens) / bare LLM time. It measures what omnibind adds around the LLM: message
handling, template rendering, assembly, projection and the decode loop.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXTS = {
    "image": (".jpg", ".jpeg", ".png", ".webp"),
    "audio": (".wav", ".flac", ".ogg", ".mp3"),
    "video": (".mp4", ".mkv", ".webm", ".avi"),
    "depth": (".npy", ".npz", ".png"),
    "thermal": (".npy", ".tif", ".tiff", ".png"),
    "imu": (".csv", ".npy", ".npz"),
    "points": (".ply", ".obj", ".off", ".stl", ".glb", ".pcd", ".xyz"),
}


def example_files(folder: Path = EXAMPLES) -> dict[str, Path]:
    """One sample per modality from ``examples/`` (file names start with the modality)."""
    found: dict[str, Path] = {}
    if not folder.is_dir():
        return found
    for modality, exts in EXTS.items():
        for p in sorted(folder.iterdir()):
            if p.name.startswith(modality) and p.suffix.lower() in exts:
                found[modality] = p
                break
    return found


def _median_time(fn: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def load_times(model: str | None) -> dict[str, float]:
    """Cold: a fresh process (imports timed apart from the load). Warm: a second load in-process."""
    code = (
        "import time; t=time.perf_counter(); import omnibind, torch, transformers; "
        "from transformers import AutoModelForCausalLM, LlamaForCausalLM; import omnibind.model; "
        f"i=time.perf_counter()-t; t=time.perf_counter(); m=omnibind.load({model!r}); "
        "print(i, time.perf_counter()-t)"
    )
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    cold_total = time.perf_counter() - t
    imports, load = (float(x) for x in out.stdout.strip().splitlines()[-1].split())
    import omnibind

    omnibind.load(model)  # first in-process load pays the imports
    t = time.perf_counter()
    omnibind.load(model)
    warm = time.perf_counter() - t
    return {
        "cold_process_seconds": cold_total,
        "cold_imports_seconds": imports,
        "cold_load_seconds": load,
        "warm_load_seconds": warm,
    }


def run_core_bench(model_name: str | None = None, *, tokens: int = 32, repeats: int = 3) -> dict[str, Any]:
    import torch

    import omnibind
    from omnibind.messages import MediaPart, Message

    results: dict[str, Any] = {"model": model_name or "embedded default", "torch_threads": torch.get_num_threads()}
    results["load"] = load_times(model_name)
    m = omnibind.load(model_name)
    core = m.core
    samples = example_files()
    encode: dict[str, float] = {}
    for modality, path in samples.items():
        if modality not in core.encoders:
            continue
        part = MediaPart(modality, str(path))

        def run(part: MediaPart = part) -> None:
            prepared = core.prepare([Message.user(part, "x")])
            with torch.inference_mode():
                core.encode_inputs(prepared.inputs)

        run()  # warm-up (lazy weights, caches)
        encode[modality] = _median_time(run, repeats)
    results["encode_seconds"] = encode
    results["glue"] = glue_overhead(m, samples.get("image"), tokens=tokens, repeats=repeats)
    return results


def glue_overhead(m: Any, image: Path | None, *, tokens: int, repeats: int) -> dict[str, float]:
    """Answer with an image vs the bare HF ``generate`` on the same prompt length and token count.

    Both decode exactly ``tokens`` new tokens (end-of-sequence masked): a trained model's short
    answers would otherwise leave a handful of tokens, and the ratio would mostly time noise.
    The arms run interleaved, repetition by repetition, so load from other work falls on all alike.
    """
    import torch

    from omnibind.llm.backends.transformers import cache_keyword, cache_of
    from omnibind.messages import MediaPart, Message

    core = m.core
    parts = [MediaPart("image", str(image))] if image is not None else []
    conv = [Message.user(*parts, "Describe this in detail, please.")]
    # warm-up, and the token count (a template stop string may still end the answer early)
    n = max(1, m.chat(conv, max_new_tokens=tokens, ignore_eos=True).completion_tokens)
    hf = getattr(core.llm, "model", None)

    def answer() -> None:
        m.chat(conv, max_new_tokens=n, ignore_eos=True)

    def encode() -> None:
        prepared = core.prepare(conv)
        with torch.inference_mode():
            core.encode_inputs(prepared.inputs)

    with torch.inference_mode():
        prompt_len = core.build_inputs(core.prepare(conv), add_generation_prompt=True)[0].embeds.shape[0]
    ids = torch.full((1, prompt_len), 100, dtype=torch.long)

    def bare() -> None:
        with torch.inference_mode():
            hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n, do_sample=False)

    cache_kw = cache_keyword(hf) if hf is not None else ""  # once, outside the timed loop

    def bare_loop() -> None:
        """The least a KV-cached greedy decode can do: token ids in, argmax out, nothing else."""
        with torch.inference_mode():
            out = hf(input_ids=ids, use_cache=True)
            past, nxt = cache_of(out), out.logits[:, -1].argmax(-1, keepdim=True)
            for _ in range(n - 1):
                out = hf(input_ids=nxt, use_cache=True, **{cache_kw: past})
                past, nxt = cache_of(out), out.logits[:, -1].argmax(-1, keepdim=True)

    arms = {"answer": answer, "encode": encode} if parts else {"answer": answer}
    if hf is not None:
        arms |= {"bare": bare, "loop": bare_loop}
        bare()
        bare_loop()
    times: dict[str, list[float]] = {k: [] for k in arms}
    for _ in range(repeats):
        for name, fn in arms.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    answer_t, enc = med["answer"], med.get("encode", 0.0)
    if hf is None:
        return {"answer_seconds": answer_t, "encode_seconds": enc, "bare_seconds": float("nan")}
    bare_t, loop_t = med["bare"], med["loop"]
    return {
        "prompt_tokens": prompt_len,
        "new_tokens": n,
        "answer_seconds": answer_t,
        "encode_seconds": enc,
        "bare_llm_seconds": bare_t,
        "bare_loop_seconds": loop_t,
        "glue_overhead_ratio": (answer_t - enc - bare_t) / bare_t,
        "glue_overhead_vs_loop_ratio": (answer_t - enc - loop_t) / loop_t,
        "tokens_per_second": n / max(answer_t - enc, 1e-9),
    }


def print_report(r: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    c = Console()
    t = Table(title=f"omnibind bench — {r['model']} ({r['torch_threads']} torch threads)")
    t.add_column("measure")
    t.add_column("value", justify="right")
    ld = r["load"]
    t.add_row("cold process: imports (torch, transformers, omnibind) (s)", f"{ld['cold_imports_seconds']:.2f}")
    t.add_row("cold process: load the whole model (s)", f"{ld['cold_load_seconds']:.2f}")
    t.add_row("cold process: total incl. interpreter start (s)", f"{ld['cold_process_seconds']:.2f}")
    t.add_row("warm: second load in-process (s)", f"{ld['warm_load_seconds']:.2f}")
    for mod, s in r["encode_seconds"].items():
        t.add_row(f"encode {mod} (ms)", f"{s * 1000:.0f}")
    g = r["glue"]
    if "glue_overhead_ratio" in g:
        t.add_row("answer with image (s)", f"{g['answer_seconds']:.2f}")
        t.add_row("  of which image encode (s)", f"{g['encode_seconds']:.2f}")
        t.add_row(
            f"bare LLM generate, {g['prompt_tokens']}+{g['new_tokens']} tokens (s)", f"{g['bare_llm_seconds']:.2f}"
        )
        t.add_row("bare minimal KV-cached greedy loop, same tokens (s)", f"{g['bare_loop_seconds']:.2f}")
        t.add_row("glue overhead vs HF generate", f"{g['glue_overhead_ratio'] * 100:+.1f}%")
        t.add_row("glue overhead vs the minimal loop", f"{g['glue_overhead_vs_loop_ratio'] * 100:+.1f}%")
        t.add_row("decode tokens/s (excl. encode)", f"{g['tokens_per_second']:.1f}")
    c.print(t)
