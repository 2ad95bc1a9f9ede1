"""LoRA merge/export: fold the trained adapters into the LLM's weights.

The result is a self-contained checkpoint folder: ``llm/`` (the merged Hugging Face model and its
tokenizer, safetensors) and an omnibind checkpoint whose config points ``llm.source`` at it with
no LoRA — so it loads without peft, converts to GGUF for llama.cpp, and decodes a little faster.
"""

from __future__ import annotations

from pathlib import Path

from omnibind.errors import ConfigError


def merge_lora(checkpoint: str | Path, out: str | Path) -> Path:
    """Merge the LoRA adapters of ``checkpoint`` into its LLM and write a checkpoint to ``out``."""
    from omnibind.checkpoint import load_config, load_weights, save_checkpoint
    from omnibind.model import OmnibindModel

    checkpoint, out = Path(checkpoint), Path(out)
    config = load_config(checkpoint)
    if config.llm.lora is None:
        raise ConfigError(f"{checkpoint}: this checkpoint has no LoRA adapters to merge")
    core = OmnibindModel(config)
    load_weights(core, checkpoint)
    merged = core.llm.model.merge_and_unload()  # peft: W + BA, adapters removed
    llm_dir = out / "llm"
    llm_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(str(llm_dir), safe_serialization=True)
    core.llm.tokenizer.save_pretrained(str(llm_dir))
    core.llm.model = merged
    config.llm.lora = None
    config.llm.source = str(llm_dir.resolve())
    # bias/norm tuning lives in the merged weights now; the checkpoint keeps heads and projectors
    config.llm.train_bias_norm = False
    core.config = config
    save_checkpoint(core, out / "model")
    return out / "model"
