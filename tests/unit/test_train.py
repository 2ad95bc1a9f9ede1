"""Training on TINY random configs: losses fall, resume reproduces, checkpoints hold trainable weights
only, the bind stage reports recall, configs are validated, and 2 CPU processes (gloo) match 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from omnibind.errors import ConfigError
from tests.train_data import run_cfg, stage_cfg

_cfg = stage_cfg
_run = run_cfg


def test_align_loss_decreases_and_report(model_file, dataset, tmp_path):
    res = _run(_cfg(model_file, dataset, tmp_path / "run", optim={"max_steps": 24, "eval_every": 12}))
    losses = [h["loss"] for h in res.history]
    assert np.mean(losses[-6:]) < np.mean(losses[:6])
    vals = [h["val_loss"] for h in res.history if "val_loss" in h]
    assert len(vals) == 2 and vals[-1] < vals[0]
    assert (tmp_path / "run" / "loss.png").stat().st_size > 1000
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["metrics"]["selected"] == "best" and len(metrics["history"]) == 24


def test_checkpoint_holds_trainable_weights_only(model_file, dataset, tmp_path):
    from safetensors.torch import load_file

    res = _run(_cfg(model_file, dataset, tmp_path / "run", optim={"max_steps": 2, "eval_every": 0}))
    names = set(load_file(str(res.final / "weights.safetensors")))
    assert names and all(not n.startswith(("encoders.", "llm.")) for n in names)
    assert any(n.startswith("projectors.") for n in names)
    manifest = json.loads((res.final / "manifest.json").read_text())
    assert manifest["num_tensors"] == len(names)
    # the loop's training state holds optimiser moments of exactly the trained tensors, no pickles
    state = load_file(str(res.last / "trainer_state.safetensors"))
    trained = {k[4:].rsplit(".", 1)[0] for k in state if k.startswith("opt.")}
    assert trained == {n for n in names if n.startswith("projectors.")}


def test_resume_after_kill_reproduces(model_file, dataset, tmp_path):
    from omnibind.train.loop import KilledForTestError

    full = _run(_cfg(model_file, dataset, tmp_path / "full"))
    with pytest.raises(KilledForTestError):
        _run(_cfg(model_file, dataset, tmp_path / "killed"), stop_after=8)
    resumed = _run(_cfg(model_file, dataset, tmp_path / "killed"))
    from safetensors.torch import load_file

    a = load_file(str(full.last / "model" / "weights.safetensors"))
    b = load_file(str(resumed.last / "model" / "weights.safetensors"))
    assert set(a) == set(b)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    assert [h["loss"] for h in full.history] == pytest.approx([h["loss"] for h in resumed.history], rel=1e-5)


def test_bind_stage_learns_pairs_and_reports_recall(model_file, dataset, tmp_path):
    cfg = _cfg(
        model_file,
        dataset,
        tmp_path / "bind",
        stage="bind",
        recipe={"train": ["bind_heads", "logit_scale", "encoders"]},
        # the tiny test encoder sees summary statistics: image grey level and IMU offset carry the
        # class, while its text features barely differ, so image–IMU is the pair that must be learned
        bind={"pairs": [["image", "imu"], ["imu", "text"]]},
        optim={"lr": 3e-2, "batch_size": 8, "max_steps": 60, "eval_every": 30},
    )
    res = _run(cfg)
    r = res.metrics["retrieval"]
    assert r["imu->text"]["candidates"] == 4  # four distinct captions in the val split (duplicates merged)
    assert r["image->imu"]["candidates"] == 8
    assert r["image->imu"]["recall@1"] > 2 * r["image->imu"]["chance@1"]
    assert "text->imu" in r and "imu->image" in r
    vals = [h["val_loss"] for h in res.history if "val_loss" in h]
    assert vals[-1] < vals[0]


def test_instruct_with_lora_and_merge(model_file, dataset, tmp_path):
    from safetensors.torch import load_file

    from omnibind.train.lora import merge_lora

    cfg = _cfg(
        model_file,
        dataset,
        tmp_path / "inst",
        stage="instruct",
        recipe={"train": ["projectors", "lora"], "lora": {"r": 2, "alpha": 4, "target_modules": ["q_proj", "v_proj"]}},
        optim={"max_steps": 4, "eval_every": 0},
    )
    res = _run(cfg)
    names = set(load_file(str(res.final / "weights.safetensors")))
    assert any("lora_" in n for n in names)
    merged = merge_lora(res.final, tmp_path / "merged")
    from omnibind.api import load

    m = load(merged)
    assert m.config.llm.lora is None and m.trained
    assert not any("lora_" in n for n in m.core.trainable_parameters())


def test_per_modality_trains_only_own_projector(model_file, dataset, tmp_path, tiny_config_dict):
    """X-InstructBLIP: image, then IMU, each run training only its own projector into the frozen LLM.

    Layout: <output>/<modality>/{last,best,final,metrics.json}, then <output>/final (all projectors)
    and <output>/metrics.json; the result's output/final are the stage's."""
    from safetensors.torch import load_file

    d = dict(tiny_config_dict)
    d["projectors"] = {
        "image": {"name": "mlp", "num_tokens": 2},
        "imu": {"name": "linear", "num_tokens": 1},
        "*": {"name": "linear", "num_tokens": 1},
    }
    mf = tmp_path / "pm.json"
    mf.write_text(json.dumps(d))
    cfg = _cfg(mf, dataset, tmp_path / "pm", stage="per_modality", recipe={"train": ["projectors"]})
    # samples hold image+imu; split each into an image-only and an IMU-only one
    rows = [json.loads(x) for x in dataset["train"].read_text().splitlines()]
    single = []
    for r in rows:
        for i, tag in enumerate(("<image>", "<imu>")):
            if not r.get("media"):
                continue
            m = {**r["media"][i], "path": str(dataset["train"].parent / r["media"][i]["path"])}
            user = {"role": "user", "content": f"{tag}\nWhat is this?"}
            single.append({**r, "id": f"{r['id']}-{i}", "media": [m], "conversation": [user, r["conversation"][1]]})
    f = tmp_path / "single.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in single))
    cfg["data"] = {"train": [str(f)], "val": []}
    cfg["optim"] = {**cfg["optim"], "max_steps": 6, "eval_every": 0, "save_every": 0}
    res = _run(cfg)

    out = tmp_path / "pm"
    assert res.output == out and res.final == out / "final" and res.last == out / "imu" / "last"
    final = load_file(str(out / "final" / "weights.safetensors"))
    finals = {m: load_file(str(out / m / "final" / "weights.safetensors")) for m in ("image", "imu")}
    for m in ("image", "imu"):
        state = load_file(str(out / m / "last" / "trainer_state.safetensors"))
        trained = {k[4:].rsplit(".", 1)[0] for k in state if k.startswith("opt.")}
        assert trained and all(n.startswith(f"projectors.{m}.") for n in trained), (m, trained)
        assert (out / m / "metrics.json").is_file()
    for k, v in final.items():  # each projector comes from its own modality's run; the shared one never trained
        src = "image" if k.startswith("projectors.image.") else "imu"
        torch.testing.assert_close(v, finals[src][k], rtol=0, atol=0)
    assert any(not torch.equal(finals["image"][k], finals["imu"][k]) for k in final if k.startswith("projectors.imu"))
    shared = [k for k in final if k.startswith("projectors.shared.")]
    assert shared and all(torch.equal(finals["image"][k], finals["imu"][k]) for k in shared)
    report = json.loads((out / "metrics.json").read_text())
    assert set(report["metrics"]["modalities"]) == {"image", "imu"} and report["metrics"]["steps"] == 12
    assert [h["step"] for h in report["history"]] == list(range(1, 13))
    assert {h["modality"] for h in report["history"]} == {"image", "imu"}


def test_config_errors_are_typed(tmp_path):
    from omnibind.train.config import TrainConfig, load_train_config

    with pytest.raises(ConfigError, match="unknown stage"):
        TrainConfig.from_dict({"stage": "pretrain"})
    with pytest.raises(ConfigError, match="unknown keys"):
        TrainConfig.from_dict({"stage": "align", "optim": {"learning_rate": 1}})
    with pytest.raises(ConfigError, match="parameter groups"):
        TrainConfig.from_dict({"recipe": {"train": ["everything"]}})
    bad = tmp_path / "bad.yaml"
    bad.write_text("stage: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_train_config(bad)


def test_shipped_train_configs_parse():
    from omnibind.train.config import PipelineConfig, load_train_config

    root = Path(__file__).resolve().parents[2]
    files = sorted((root / "configs" / "train").glob("*.yaml"))
    assert files
    for f in files:
        cfg = load_train_config(f)
        stages = cfg.stages if isinstance(cfg, PipelineConfig) else [cfg]
        assert all(s.stage for s in stages)


@pytest.mark.slow
def test_two_gloo_processes_match_one(model_file, dataset, tmp_path):
    """Two CPU processes (DDP over gloo, the shipped configs/accelerate/ddp-cpu-2.yaml) train the same
    model as 1 process. Not `accelerate launch --cpu --num_processes 2`: that starts one process (see
    test_launches_that_would_not_train_as_configured_are_refused)."""
    import yaml

    root = Path(__file__).resolve().parents[2]
    # LoRA too: its parameters live in the LLM backend, outside the core's own modules
    recipe = {"train": ["projectors", "lora"], "lora": {"r": 2, "alpha": 4, "dropout": 0.0}}
    opt = {"max_steps": 6, "eval_every": 3, "save_every": 0}
    cfg = _cfg(model_file, dataset, tmp_path / "ddp", stage="instruct", recipe=recipe, optim=opt)
    (tmp_path / "ddp.yaml").write_text(yaml.safe_dump(cfg))
    single = _run(_cfg(model_file, dataset, tmp_path / "one", stage="instruct", recipe=recipe, optim=opt))
    accelerate = Path(sys.executable).parent / "accelerate"
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [
        str(accelerate),
        "launch",
        "--config_file",
        str(root / "configs" / "accelerate" / "ddp-cpu-2.yaml"),
        "-m",
        "omnibind.train.cli",
        str(tmp_path / "ddp.yaml"),
        "--no-progress",
    ]
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from safetensors.torch import load_file

    a = load_file(str(single.last / "model" / "weights.safetensors"))
    b = load_file(str(tmp_path / "ddp" / "last" / "model" / "weights.safetensors"))
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=2e-3, atol=2e-4)
    assert any("lora_B" in k and a[k].abs().sum() > 0 for k in a)  # LoRA moved (starts at zero) and matched
    m = json.loads((tmp_path / "ddp" / "metrics.json").read_text())["metrics"]
    assert m["processes"] == 2
    ref = json.loads((tmp_path / "one" / "metrics.json").read_text())["history"]
    got = json.loads((tmp_path / "ddp" / "metrics.json").read_text())["history"]
    assert [h["loss"] for h in got] == pytest.approx([h["loss"] for h in ref], rel=2e-3)
    assert [h.get("val_loss") for h in got if "val_loss" in h] == pytest.approx(
        [h["val_loss"] for h in ref if "val_loss" in h], rel=2e-3
    )


def test_launches_that_would_not_train_as_configured_are_refused(monkeypatch, tmp_path):
    """`accelerate launch --cpu --num_processes 2` runs ONE process (accelerate's CPU launcher leaves the
    rest to mpirun); it sets MASTER_ADDR but no world size. Training must refuse, not train alone."""
    from omnibind.train.loop import check_launch

    alone = {"ACCELERATE_USE_CPU": "True", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
    with pytest.raises(ConfigError, match="ddp-cpu-2.yaml"):
        check_launch(alone)
    check_launch({**alone, "WORLD_SIZE": "2", "RANK": "0"})  # torchrun / the elastic launcher
    check_launch({**alone, "OMPI_COMM_WORLD_SIZE": "2"})  # mpirun
    check_launch({"ACCELERATE_USE_CPU": "True"})  # --num_processes 1: no MASTER_ADDR
    check_launch({})  # plain python
    # FSDP2 is accepted with the options the loop implements; the others are refused up front
    fsdp = {"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2", "WORLD_SIZE": "2"}
    settings = check_launch({**fsdp, "FSDP_TRANSFORMER_CLS_TO_WRAP": "LlamaDecoderLayer"})
    assert settings.layer_classes == ("LlamaDecoderLayer",) and settings.reshard_after_forward
    assert check_launch({"WORLD_SIZE": "2"}) is None  # DDP
    for extra, what in (
        ({"FSDP_VERSION": "1"}, "fsdp_version: 2"),
        ({"FSDP_OFFLOAD_PARAMS": "true"}, "fsdp_offload_params"),
        ({"FSDP_STATE_DICT_TYPE": "SHARDED_STATE_DICT"}, "FULL_STATE_DICT"),
        ({"ACCELERATE_MIXED_PRECISION": "bf16"}, "llm.dtype"),
    ):
        with pytest.raises(ConfigError, match=what):
            check_launch({**fsdp, **extra})
    # DeepSpeed: refused, naming what works instead
    with pytest.raises(ConfigError, match="DeepSpeed.*ddp-gpu.yaml.*fsdp.yaml"):
        check_launch({"ACCELERATE_USE_DEEPSPEED": "true", "WORLD_SIZE": "2"})
    # a pipeline's prepare step is not raced by N processes: the data must be built first
    from omnibind.train.stages import prepare_data

    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="omnibind data build tuxpaint --out"):
        prepare_data([{"source": "tuxpaint", "out": str(tmp_path / "data"), "limit": 4}])
    assert not (tmp_path / "data").exists()


def test_shipped_accelerate_configs_are_valid():
    """configs/accelerate/*.yaml load as accelerate configs and resolve to the launcher they promise."""
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    root = Path(__file__).resolve().parents[2] / "configs" / "accelerate"
    want = {  # file → (multi-process launcher, FSDP, DeepSpeed)
        "ddp-cpu-2.yaml": (True, False, False),  # torch elastic: really 2 processes
        "ddp-gpu.yaml": (True, False, False),
        "fsdp.yaml": (False, True, False),
        "deepspeed-zero2.yaml": (False, False, True),
    }
    assert sorted(p.name for p in root.glob("*.yaml")) == sorted(want)
    for name, (multi, fsdp, ds) in want.items():
        f = root / name
        cfg = load_config_from_file(str(f))
        assert cfg.num_processes >= 2 and cfg.num_machines == 1, name
        args = launch_command_parser().parse_args(["--config_file", str(f), "-m", "omnibind.train.cli", "x.yaml"])
        args, _, _ = _validate_launch_command(args)
        assert (bool(args.multi_gpu), bool(args.use_fsdp), bool(args.use_deepspeed)) == (multi, fsdp, ds), name


def test_feature_store_encodes_once_and_serves_lookups(tiny_model, dataset, tmp_path):
    from omnibind.modalities import load_part
    from omnibind.train.data import load_samples
    from omnibind.train.features import FeatureStore

    core = tiny_model.core
    samples = load_samples([dataset["train"]], text_only=False)
    media = [m for s in samples for m in s.media]
    first = FeatureStore(core, folder=tmp_path / "cache")
    assert first.precompute(media, progress=False) == len(media) > 0
    again = FeatureStore(core, folder=tmp_path / "cache")
    assert again.precompute(media, progress=False) == 0  # read from disk, nothing re-encoded
    img = next(m for m in media if m.modality == "image")
    got = again.lookup(img)
    want = core.encoders["image"].encode([load_part(img)])
    torch.testing.assert_close(got.pooled, want.pooled[0])
    assert again.hits == 1 and again.misses == 0


def test_bench_train_runs_both_arms_on_the_same_batches(model_file):
    """`omnibind bench train` on the tiny model: both arms time the same steps; the cached arm reads
    every image from the store."""
    from omnibind.bench.train import run_train_bench

    res = run_train_bench(str(model_file), None, steps=2, batch_size=2, threads=None)
    assert res["steps"] == 2 and res["cache_hits"] == 4  # 2 steps x 2 samples x 1 image, timed arm only
    assert res["without_cache_samples_per_s"] > 0 and res["with_cache_samples_per_s"] > 0
    assert res["speedup"] == pytest.approx(
        res["with_cache_samples_per_s"] / res["without_cache_samples_per_s"], rel=0.05
    )


def test_assistant_tokens_equals_the_label_count(tiny_model, tiny_config_dict, tmp_path):
    """The loss weight of a sample is its label count on the one assembly path, under both layouts."""
    from omnibind.config import ModelConfig
    from omnibind.llm.assemble import IGNORE_INDEX
    from omnibind.messages import Image, Message, MixPart
    from omnibind.model import OmnibindModel
    from omnibind.train.stages import assistant_tokens

    img = tmp_path / "a.png"
    PILImage.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(img)
    conversations = [
        [Message.user("Hi"), Message.assistant("Hello there!")],
        [Message.user(Image(str(img)), "What is this?"), Message.assistant("A grey square.")],
        [
            Message.system("Be brief."),
            Message.user(Image(str(img)), "And this?"),
            Message.assistant("Grey."),
            Message.user(MixPart([Image(str(img)), Image(str(img))], [0.5, 0.5]), "Both?"),
            Message.assistant("Both grey, and quite small."),
        ],
    ]
    gated = OmnibindModel(ModelConfig.from_dict({**tiny_config_dict, "injection": {"kind": "gated"}}))
    for core in (tiny_model.core, gated):
        for conv in conversations:
            assembled, _, _ = core.build_inputs(core.prepare(conv), add_generation_prompt=False)
            assert assistant_tokens(core, conv) == int((assembled.labels != IGNORE_INDEX).sum()) > 0


def test_qlora_config_path_refuses_clearly_where_it_cannot_run(tiny_config_dict):
    """`llm.quantization: 4bit` (QLoRA) is a valid config, refused with a typed error on this CPU before
    any weight loads; other values and the llama.cpp backend are config errors."""
    from omnibind.config import ModelConfig
    from omnibind.errors import BackendUnsupportedError
    from omnibind.model import OmnibindModel

    d = {**tiny_config_dict, "llm": {**tiny_config_dict["llm"], "quantization": "4bit", "lora": {"r": 2}}}
    cfg = ModelConfig.from_dict(d)
    assert cfg.llm.quantization == "4bit" and ModelConfig.from_dict(cfg.to_dict()).llm.quantization == "4bit"
    with pytest.raises(BackendUnsupportedError, match="needs a CUDA GPU.*device 'cpu'"):
        OmnibindModel(cfg, device="cpu")
    with pytest.raises(ConfigError, match="llm.quantization"):
        ModelConfig.from_dict({**d, "llm": {**d["llm"], "quantization": "8bit"}})
    with pytest.raises(ConfigError, match="quantised GGUF"):
        ModelConfig.from_dict({**d, "llm": {**d["llm"], "backend": "llamacpp"}})
