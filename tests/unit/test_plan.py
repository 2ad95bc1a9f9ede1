"""``omnibind plan``: meta-device sizing of the real-size presets against published parameter counts,
the memory arithmetic on a case worked by hand, and meta counts against a really built tiny model.

The real-size presets run on the meta device (their weight paths do not exist here: nothing is
read); the tiny comparison builds the tiny random model for real.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from omnibind.cli import app
from omnibind.config import ModelConfig, check_declared_arch
from omnibind.errors import ConfigError

runner = CliRunner()
PRESETS = Path(__file__).resolve().parents[2] / "omnibind" / "configs"


def _part(plan: dict, name: str) -> dict:
    found = [p for p in plan["parts"] if p["name"] == name]
    assert found, [p["name"] for p in plan["parts"]]
    return found[0]


@pytest.fixture(scope="module")
def real_plans() -> dict[str, dict]:
    """The three real-size presets, planned once on the meta device (8 GPUs, batch 64, 1024 tokens)."""
    from omnibind.train.plan_cli import make_plan

    return {name: make_plan(name, gpus=8, batch=64, seq=1024) for name in ("pandagpt-7b", "pandagpt", "llava-1.5-7b")}


def test_real_presets_point_at_files_that_are_not_here():
    """The sizes below come from the presets' declared architectures alone."""
    for name in ("pandagpt-7b", "pandagpt", "llava-1.5-7b"):
        cfg = ModelConfig.load(PRESETS / f"{name}.yaml")
        assert not Path(cfg.llm.source).expanduser().exists(), cfg.llm.source
        assert cfg.llm.arch, name


def test_vicuna_and_imagebind_counts(real_plans):
    seven, thirteen = real_plans["pandagpt-7b"], real_plans["pandagpt"]
    # Vicuna-7B / LLaMA-7B: 6.74 B; Vicuna-13B / LLaMA-13B: 13.0 B (the published figures)
    assert _part(seven, "llm")["params"] == 6_738_415_616
    assert _part(thirteen, "llm")["params"] == 13_015_864_320
    # ImageBind-Huge's image tower: ViT-H/14 (630 M in the paper) + its 1280 → 1024 head
    vision = _part(seven, "encoder image, video")
    assert vision["params"] == 632_829_440 and vision["trainable"] == 0 and vision["dtype"] == "float16"
    towers = sum(p["params"] for p in seven["parts"] if p["name"].startswith("encoder"))
    assert towers == 1_200_781_057  # all six towers of imagebind_huge.pth, video sharing the image tower
    # PandaGPT's recipe: LoRA r=32 on q, k, v, o (r·(in + out) per module) + one linear projection
    assert _part(seven, "lora")["trainable"] == 32 * 4 * 32 * (4096 + 4096)
    assert _part(seven, "projector *")["trainable"] == 1024 * 4096 + 4096
    assert _part(thirteen, "lora")["trainable"] == 40 * 4 * 32 * (5120 + 5120)
    assert seven["groups"] == ["lora", "projectors"]  # instruct's gates match nothing: prefix injection


def test_llava_counts(real_plans):
    llava = real_plans["llava-1.5-7b"]
    assert _part(llava, "llm")["params"] == 6_738_415_616  # Vicuna-7B v1.5
    # CLIP ViT-L/14-336's vision tower: 303.5 M (~304 M), plus CLIP's 1024 → 768 projection
    assert _part(llava, "encoder image")["params"] == 303_507_456 + 1024 * 768
    # LLaVA-1.5's connector Linear(1024, 4096) → GELU → Linear(4096, 4096) is 20.98 M (~21 M);
    # feature_mlp adds its input LayerNorm and 576 learned token positions
    connector = 1024 * 4096 + 4096 + 4096 * 4096 + 4096
    assert connector == 20_979_712
    assert _part(llava, "projector image")["params"] == connector + 2 * 1024 + 576 * 4096
    per_layer = 128 * (4 * (4096 + 4096) + 2 * (4096 + 11008) + (11008 + 4096))  # r=128 on all 7 linears
    assert _part(llava, "lora")["trainable"] == 32 * per_layer


def test_real_presets_fit_as_documented(real_plans):
    """The qualitative claims docs/TRAINING.md makes from these plans (80 GiB GPUs, 8 per GPU x 1024)."""
    s13 = real_plans["pandagpt"]["memory"]["strategies"]
    assert not s13["ddp"]["fits"] and s13["ddp"]["fits_ckpt"]  # 13B: DDP needs gradient checkpointing
    assert s13["fsdp"]["weights"] < s13["zero2"]["weights"] / 3  # full sharding splits the frozen base
    assert s13["qlora"]["weights"] < s13["ddp"]["weights"] / 2
    s7 = real_plans["pandagpt-7b"]["memory"]["strategies"]
    assert s7["ddp"]["fits"]


def test_memory_arithmetic_by_hand():
    """A two-part model and a 4-layer toy LLM, every figure worked out on paper (bf16-mixed)."""
    from omnibind.train.plan import LLMShape, Part, Sizing
    from omnibind.train.plan_memory import NF4_BYTES, estimate

    llm = LLMShape(
        hidden=8,
        layers=4,
        intermediate=16,
        heads=2,
        kv_heads=1,
        vocab=10,
        layer_params=200,
        linear_params=500,
        lora_inputs_per_layer=0,
    )
    parts = [Part("frozen", "", 1000, 0, "float16"), Part("trained", "", 100, 100, "float32")]
    sizing = Sizing("toy", parts, ["projectors"], llm, "float16")
    m = estimate(sizing, gpus=4, batch=4, seq=3)
    assert m["micro_batch"] == 1  # ceil(4 / (4 GPUs x 1 accumulation))
    ddp, zero2, fsdp, qlora = (m["strategies"][k] for k in ("ddp", "zero2", "fsdp", "qlora"))
    # frozen 1000 x 2 B + trainable 100 x (2 + 2 + 12) B
    assert (ddp["weights"], ddp["grads"], ddp["optimizer"]) == (2200, 200, 1200)
    assert (zero2["weights"], zero2["grads"], zero2["optimizer"]) == (2200, 50, 300)
    # FSDP: all/4 + (1 - 1/4)·(root + 2 gathered layers); layer = 200 x 2 B, root = 2200 - 4 x 400
    assert fsdp["weights"] == 2200 / 4 + 0.75 * (600 + 800)
    assert (fsdp["grads"], fsdp["optimizer"]) == (50, 300)
    # QLoRA: the 500 linear weights go from 2 B to 4.127 bits
    assert NF4_BYTES == pytest.approx(4.127 / 8, abs=1e-4)
    assert qlora["weights"] == round(2200 - 500 * (2 - NF4_BYTES))
    # activations per token per layer (frozen base, fused attention): 2 RMSNorm fp32 inputs 2 x 4h = 64,
    # q, k, v, out 2 B x (2h + 2 h_kv) = 48, fp32 log-sum-exp 4 x heads = 8, SwiGLU 3 x 2 B x i = 96
    assert m["activation_bytes_per_token_per_layer"] == 64 + 48 + 8 + 96
    # output side per token: the final norm's fp32 input 4h + fp32 logits and their gradient 8 x vocab
    tokens = 1 * 3
    assert ddp["activations"] == 4 * tokens * 216 + tokens * (32 + 80)
    # checkpointed: each layer keeps its input (2h B per token), one layer recomputed at a time
    assert ddp["activations_ckpt"] == 4 * tokens * 2 * 8 + tokens * 216 + tokens * 112
    assert ddp["total"] == 2200 + 200 + 1200 + ddp["activations"]

    fp32 = estimate(sizing, gpus=1, batch=2, seq=3, precision="fp32")["strategies"]["ddp"]
    assert (fp32["weights"], fp32["grads"], fp32["optimizer"]) == (2000 + 400, 400, 800)
    assert fp32["activations"] == 4 * 6 * (64 + 4 * 24 + 8 + 12 * 16) + 6 * 112
    eager = estimate(sizing, gpus=1, batch=1, seq=3, attention="eager")
    # eager: q, k, v at every head's width 2 B x 3h, probabilities (4 + 2) B x heads x seq
    assert eager["activation_bytes_per_token_per_layer"] == 64 + 2 * 3 * 8 + 6 * 2 * 3 + 96
    bind = estimate(sizing, gpus=1, batch=1, seq=3, runs_llm=False)["strategies"]["ddp"]
    assert bind["activations"] == 0 and bind["activations_ckpt"] == 0
    assert math.isclose(m["gpu_memory_gib"], 80.0)


def test_meta_counts_equal_a_real_build(tiny_config_dict):
    """The tiny random model sized on the meta device has the parameters it has when really built."""
    from omnibind.model import OmnibindModel
    from omnibind.train.plan import size_model
    from omnibind.train.recipes import select_trainable

    d = json.loads(json.dumps(tiny_config_dict))
    d["llm"]["lora"] = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
    config = ModelConfig.from_dict(d)
    groups = ["projectors", "lora", "bind_heads"]
    sizing = size_model(config, groups)
    core = OmnibindModel(ModelConfig.from_dict(d))
    real = core.trainable_parameters()
    want = sum(real[n].numel() for n in select_trainable(core, groups))
    assert sizing.trainable == want
    llm_base = sum(p.numel() for n, p in core.llm.model.named_parameters() if "lora_" not in n)
    lora = sum(p.numel() for n, p in core.llm.model.named_parameters() if "lora_" in n)
    parts = {p.name: p for p in sizing.parts}
    assert parts["llm"].params == llm_base and parts["lora"].params == lora
    proj = sum(p.numel() for p in core.projectors.parameters())
    assert sum(p.params for p in sizing.parts if p.name.startswith("projector")) == proj
    assert parts["bind heads"].params == sum(p.numel() for p in core.bind.parameters())
    assert sizing.llm.layers == core.llm.num_layers and sizing.llm.hidden == core.llm.hidden_size


def test_cli_table_and_json():
    out = runner.invoke(app, ["plan", "pandagpt-7b", "--gpus", "4", "--batch", "16", "--seq", "512"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert any(line.startswith("llm ") and "6.74 B" in line for line in lines)
    assert any(line.startswith("FSDP full shard") for line in lines)
    js = runner.invoke(app, ["plan", "pandagpt-7b", "--gpus", "4", "--strategy", "zero2,qlora", "--json"])
    plan = json.loads(js.output)
    assert sorted(plan["memory"]["strategies"]) == ["qlora", "zero2"]
    assert plan["memory"]["micro_batch"] == 2  # default batch 8 over 4 GPUs
    bind = json.loads(runner.invoke(app, ["plan", "pandagpt-7b", "--stage", "bind", "--json"]).output)
    assert bind["groups"] == ["logit_scale"]  # identity heads: only the temperature trains
    assert bind["memory"]["strategies"]["ddp"]["activations"] == 0


def test_cli_stage_file_and_lora_rank(tmp_path):
    stage = tmp_path / "stage.yaml"
    stage.write_text(
        "stage: instruct\nmodel: pandagpt-7b\noutput: runs/x\n"
        "recipe: {train: [projectors, lora], lora: {r: 8, alpha: 16, target_modules: [q_proj, v_proj]}}\n"
        "optim: {batch_size: 32, grad_accum: 2}\n"
    )
    plan = json.loads(runner.invoke(app, ["plan", str(stage), "--gpus", "2", "--json"]).output)
    assert plan["stage"] == "instruct" and plan["memory"]["batch"] == 32 and plan["memory"]["micro_batch"] == 8
    assert _part(plan, "lora")["trainable"] == 32 * 2 * 8 * (4096 + 4096)
    r64 = json.loads(runner.invoke(app, ["plan", "pandagpt-7b", "--lora-r", "64", "--json"]).output)
    assert _part(r64, "lora")["trainable"] == 32 * 4 * 64 * (4096 + 4096)


def test_cli_errors_are_clear(tmp_path):
    bad = runner.invoke(app, ["plan", "pandagpt-7b", "--stage", "pretrain"])
    assert bad.exit_code == 2 and "stage 'pretrain'" in bad.output
    nothing = runner.invoke(app, ["plan", "pandagpt-7b", "--train", "gates"])
    assert nothing.exit_code == 2 and "trains nothing" in nothing.output
    cfg = tmp_path / "m.yaml"
    cfg.write_text("name: x\nllm: {source: /nowhere/llm}\n")
    missing = runner.invoke(app, ["plan", str(cfg)])
    assert missing.exit_code == 2 and "llm.arch" in missing.output
    strat = runner.invoke(app, ["plan", "pandagpt-7b", "--strategy", "zero3"])
    assert strat.exit_code == 2 and "zero3" in strat.output


def test_declared_arch_is_checked_when_the_weights_load(tiny_config_dict):
    check_declared_arch({"hidden_size": 64, "sub": {"a": 1}}, {"hidden_size": 64, "sub": {"a": 1, "b": 2}}, "x")
    with pytest.raises(ConfigError, match="sub.a: declared 1, loaded 3"):
        check_declared_arch({"sub": {"a": 1}}, {"sub": {"a": 3}}, "x")
    from omnibind.model import OmnibindModel

    d = json.loads(json.dumps(tiny_config_dict))
    d["llm"]["arch"] = {"model_type": "llama", "hidden_size": 4096}
    with pytest.raises(ConfigError, match="hidden_size: declared 4096, loaded 64"):
        OmnibindModel(ModelConfig.from_dict(d))
    d["llm"]["arch"] = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2}
    OmnibindModel(ModelConfig.from_dict(d))  # the right description loads


def _saved_bytes_per_token(layers: int, attention: str, lora: bool) -> float:
    """Bytes of the tensors autograd keeps (parameters excluded) for one forward of a small random
    bf16 Llama (frozen, as omnibind trains it) on 2 x 64 input embeddings, per token."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(0)
    cfg = LlamaConfig(
        hidden_size=256,
        intermediate_size=688,
        num_hidden_layers=layers,
        num_attention_heads=8,
        num_key_value_heads=2,
        vocab_size=1000,
        attn_implementation=attention,
    )
    model = AutoModelForCausalLM.from_config(cfg).to(torch.bfloat16).requires_grad_(False)
    if lora:
        from peft import LoraConfig, get_peft_model

        targets = ["q_proj", "v_proj", "down_proj"]
        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=targets))
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    kept: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        st = t.untyped_storage()
        if st.data_ptr() not in params:
            kept[st.data_ptr()] = st.nbytes()
        return t

    x = torch.randn(2, 64, 256, dtype=torch.bfloat16, requires_grad=True)  # soft tokens need gradients
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(inputs_embeds=x, attention_mask=torch.ones(2, 64, dtype=torch.long))
    return sum(kept.values()) / (2 * 64)


@pytest.mark.parametrize(("attention", "lora"), [("sdpa", False), ("eager", False), ("sdpa", True)])
def test_layer_estimate_matches_saved_tensors(attention, lora):
    """The per-layer activation formula against what autograd really keeps (one layer = the
    difference between a 2-layer and a 1-layer model), on CPU, within 1 %."""
    from omnibind.train.plan import LLMShape
    from omnibind.train.plan_memory import layer_activation_bytes

    measured = _saved_bytes_per_token(2, attention, lora) - _saved_bytes_per_token(1, attention, lora)
    shape = LLMShape(
        hidden=256,
        layers=2,
        intermediate=688,
        heads=8,
        kv_heads=2,
        vocab=1000,
        layer_params=0,
        linear_params=0,
        lora_inputs_per_layer=(256 + 256 + 688) if lora else 0,
        lora_modules_per_layer=3 if lora else 0,
        lora_r=8 if lora else 0,
    )
    estimate = layer_activation_bytes(shape, 64, 2.0, attention)
    assert estimate == pytest.approx(measured, rel=0.01), (estimate, measured)
