"""GPU check on small random configs (run on an accelerator machine; see docs/PERFORMANCE.md).

Builds a tiny random Llama with SmolLM2's tokenizer and the real EfficientNet-Lite0 image encoder,
moves the whole omnibind model to CUDA, and checks chat / batched generate / score / a training
step / gated injection / Q-Former there, comparing greedy outputs with the same model on the CPU.
Usage: python scripts/gpu_check.py TOKENIZER_DIR
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def tiny_llm(tok_dir: Path, out: Path, layers: int = 2, hidden: int = 64) -> Path:
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=True,
        eos_token_id=tok.eos_token_id,
        bos_token_id=tok.bos_token_id,
        pad_token_id=tok.eos_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def main() -> None:
    from PIL import Image as PILImage

    import tests.tiny_encoder  # noqa: F401
    from omnibind.api import Model
    from omnibind.config import ModelConfig
    from omnibind.messages import Image, Message, MixPart
    from omnibind.model import OmnibindModel

    report: dict = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    tmp = Path(tempfile.mkdtemp())
    llm = tiny_llm(Path(sys.argv[1]), tmp / "llm")
    img = tmp / "img.png"
    PILImage.fromarray(np.random.default_rng(0).integers(0, 255, (64, 80, 3), dtype=np.uint8)).save(img)
    base = {
        "encoders": {"image": {"name": "efficientnet_lite0"}, "audio": {"name": "test_tiny", "params": {"dim": 24}}},
        "bind": {"dim": 32},
        "projectors": {"*": {"name": "mlp", "num_tokens": 2}},
        "llm": {"source": str(llm), "template": "chatml"},
    }
    conv = [Message.user(Image(str(img)), "Describe the picture.")]
    outs = {}
    for dev in ("cpu", "cuda"):
        core = OmnibindModel(ModelConfig.from_dict(base), device=dev)
        m = Model(core, origin="gpu-check", trained=False)
        t = time.perf_counter()
        outs[dev] = m.chat(conv, max_new_tokens=12).text
        report[f"chat_seconds_{dev}"] = time.perf_counter() - t
        batch = m.generate([conv, "Hello there"], max_new_tokens=6)
        assert next(r.text for r in batch) == m.chat(conv, max_new_tokens=6).text
        scores = m.score(conv, ["a cat", "a dog"])
        assert np.isfinite(scores).all()
        params = core.set_trainable()
        opt = torch.optim.AdamW(params, lr=1e-3)
        core.train()
        loss = core.loss([[*conv, Message.assistant("A small picture.")]])
        loss.backward()
        opt.step()
        core.eval()
        report[f"loss_{dev}"] = float(loss)
        v = m.embed([MixPart([Image(str(img)), "a picture"], [0.5, 0.5])]) if "text" in core.encoders else None
        del v
    report["greedy_cpu"], report["greedy_cuda"] = outs["cpu"], outs["cuda"]
    report["greedy_match"] = outs["cpu"] == outs["cuda"]
    for kind, proj in (
        ("gated", {"name": "bind_network", "num_tokens": 1}),
        ("prefix", {"name": "qformer", "num_tokens": 4}),
    ):
        cfg = json.loads(json.dumps(base))
        cfg["injection"] = {"kind": kind}
        cfg["projectors"] = {"*": proj}
        core = OmnibindModel(ModelConfig.from_dict(cfg), device="cuda")
        m = Model(core, origin="gpu-check", trained=False)
        report[f"{kind}_{proj['name']}_reply"] = m.chat(conv, max_new_tokens=4).text
    # a bigger random LLM: training-step throughput on the GPU
    big = tiny_llm(Path(sys.argv[1]), tmp / "big", layers=12, hidden=768)
    cfg = json.loads(json.dumps(base))
    cfg["llm"]["source"] = str(big)
    core = OmnibindModel(ModelConfig.from_dict(cfg), device="cuda")
    params = core.set_trainable()
    opt = torch.optim.AdamW(params, lr=1e-4)
    batch = [[*conv, Message.assistant("A small picture of noise.")]] * 16
    core.train()
    for i in range(6):
        if i == 1:
            torch.cuda.synchronize()
            t = time.perf_counter()
        opt.zero_grad()
        core.loss(batch).backward()
        opt.step()
    torch.cuda.synchronize()
    report["big_llm_params_M"] = sum(p.numel() for p in core.llm.model.parameters()) / 1e6
    report["big_train_step_seconds_batch16"] = (time.perf_counter() - t) / 5
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
