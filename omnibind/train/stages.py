"""The training stages and the runner that turns a ``TrainConfig`` into a trained checkpoint.

- ``bind``: symmetric InfoNCE (CLIP) between pairs of modalities with the learned temperature
  ``bind.logit_scale``, anchored on images: image–text first, then each other modality against
  image or text (ImageBind). Reports recall@k per pair on held-out pairs against chance.
- ``align``: projector only, frozen LLM, image–caption data (PandaGPT / ImageBind-LLM stage 1).
- ``instruct``: projector + LoRA (+ bias/norm) on instruction data, language-only samples included.
- ``per_modality``: one projector per modality, each trained separately into the frozen LLM on its
  own modality's data (X-InstructBLIP).
"""

from __future__ import annotations

import importlib
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from omnibind.atomic import atomic_dir, atomic_write_text
from omnibind.errors import ConfigError
from omnibind.messages import MediaPart, TextPart
from omnibind.train.config import PipelineConfig, TrainConfig
from omnibind.train.data import Pair, TrainSample, load_samples, pairs_of
from omnibind.train.features import FeatureStore
from omnibind.train.loop import Batcher, TrainResult, run_training
from omnibind.train.losses import contrastive_loss, recall_at_k


# --------------------------------------------------------------------------- model
def build_model(cfg: TrainConfig) -> Any:
    """The ``OmnibindModel`` of a stage: its architecture, the recipe's LoRA / bias-norm switches,
    and the starting weights (``init_from``) when given."""
    from omnibind.checkpoint import CONFIG_FILE
    from omnibind.model import OmnibindModel
    from omnibind.train.recipes import load_partial

    init = Path(cfg.init_from) if cfg.init_from else None
    if init is not None and not (init / CONFIG_FILE).is_file():
        raise ConfigError(f"init_from: {init} is not a checkpoint folder (no {CONFIG_FILE})")
    core = OmnibindModel(stage_model_config(cfg), device=cfg.device)
    if init is not None:
        load_partial(core, init)
    return core


def stage_model_config(cfg: TrainConfig) -> Any:
    """The ``ModelConfig`` a stage builds: its ``model`` with ``model_overrides`` and the recipe's
    LoRA / bias-norm switches applied (``imports`` are imported first, registering their parts).
    ``omnibind plan`` sizes a stage file through this too."""
    from omnibind.config import ModelConfig, deep_merge

    for mod in cfg.imports:
        importlib.import_module(mod)
    d = resolve_model_config(cfg.model).to_dict()
    if cfg.model_overrides:
        d = deep_merge(d, cfg.model_overrides)
    if cfg.recipe.lora is not None:
        d["llm"]["lora"] = dict(cfg.recipe.lora)
    if cfg.recipe.train_bias_norm is not None:
        d["llm"]["train_bias_norm"] = bool(cfg.recipe.train_bias_norm)
    return ModelConfig.from_dict(d)


def resolve_model_config(spec: str) -> Any:
    from omnibind.api import PRESETS_DIR
    from omnibind.checkpoint import CONFIG_FILE
    from omnibind.config import ModelConfig

    p = Path(spec).expanduser()
    if p.is_dir():
        return ModelConfig.load(p / CONFIG_FILE)
    if p.is_file():
        return ModelConfig.load(p)
    if (PRESETS_DIR / f"{spec}.yaml").is_file():
        return ModelConfig.load(PRESETS_DIR / f"{spec}.yaml")
    raise ConfigError(f"model: {spec!r} is neither a checkpoint folder, a config file nor a preset")


# --------------------------------------------------------------------------- language-model stages
class LMTask:
    """Next-token loss on assistant turns through the one ``assemble`` path (``OmnibindModel.loss``)."""

    def __init__(
        self,
        core: Any,
        train: Sequence[TrainSample],
        val: Sequence[TrainSample],
        store: FeatureStore,
        batch_size: int,
        seed: int,
    ):
        if not train:
            raise ConfigError("no training samples (check data.train and data.modalities)")
        self.core, self.train, self.store = core, list(train), store
        self.batcher = Batcher(len(self.train), batch_size, seed)
        self.val = [list(val[i : i + batch_size]) for i in range(0, len(val), batch_size)]
        self._target_counts: dict[int, int] = {}

    def batch(self, step: int) -> list[TrainSample]:
        return [self.train[i] for i in self.batcher.indices(step)]

    def loss(self, batch: list[TrainSample]) -> torch.Tensor:
        return self.core.loss([s.conversation for s in batch], self.store.lookup)

    def weight(self, batch: list[TrainSample]) -> int:
        """How many terms ``loss`` averages over: the assistant tokens of the batch.

        The loop weights each micro-batch / process shard by this, so split batches (gradient
        accumulation, DDP shards) give the mean over the whole batch's tokens, not a mean of means.
        """
        return sum(self._targets(s) for s in batch)

    def _targets(self, sample: TrainSample) -> int:
        key = id(sample)
        if key not in self._target_counts:
            self._target_counts[key] = assistant_tokens(self.core, sample.conversation)
        return self._target_counts[key]

    def val_batches(self) -> list[list[TrainSample]]:
        return self.val

    def final_metrics(self) -> dict[str, Any]:
        return {
            "train_samples": len(self.train),
            "val_samples": sum(len(b) for b in self.val),
            "feature_cache_hits": self.store.hits,
            "feature_cache_misses": self.store.misses,
        }


def assistant_tokens(core: Any, conversation: Any) -> int:
    """The number of tokens ``core.loss`` trains on in a conversation (its labels).

    Counted on the one assembly path (``OmnibindModel.build_inputs``), so it cannot drift from the
    loss. Labels never depend on the media, so none are decoded or encoded: each media part stands
    in as one input with a single zero soft token.
    """
    from omnibind.llm.assemble import IGNORE_INDEX
    from omnibind.model import Prepared, PreparedInput

    media = [p for m in conversation for p in m.content if not isinstance(p, TextPart)]
    kinds = [p.modality if isinstance(p, MediaPart) else "mix" for p in media]
    placeholders = [[PreparedInput(k, k)] for k in kinds]
    with torch.no_grad():
        soft = [torch.zeros(1, core.llm.hidden_size, device=core.device)] * len(placeholders)
        assembled, _, _ = core.build_inputs(
            Prepared(list(conversation), placeholders), add_generation_prompt=False, soft=soft
        )
    return int((assembled.labels != IGNORE_INDEX).sum())


# --------------------------------------------------------------------------- bind stage
class BindTask:
    """Symmetric InfoNCE per pair kind; each step trains one kind, chosen ∝ √(its pair count)."""

    def __init__(
        self,
        core: Any,
        train: dict[tuple[str, str], list[Pair]],
        val: dict[tuple[str, str], list[Pair]],
        store: FeatureStore,
        batch_size: int,
        seed: int,
        max_steps: int,
        cfg: Any,
    ):
        self.core, self.store, self.cfg = core, store, cfg
        self.train = {k: v for k, v in train.items() if len(v) >= 2}
        if not self.train:
            raise ConfigError(f"bind: no pairs of kinds {list(train)} in the training data")
        self.val = {k: v for k, v in val.items() if len(v) >= 2}
        self.batchers = {
            k: Batcher(len(v), min(batch_size, len(v)), seed + i) for i, (k, v) in enumerate(self.train.items())
        }
        kinds = list(self.train)
        p = np.sqrt([len(self.train[k]) for k in kinds])
        rng = np.random.default_rng([seed, 7])
        self.schedule = [kinds[i] for i in rng.choice(len(kinds), size=max_steps, p=p / p.sum())]
        self._count: dict[tuple[str, str], list[int]] = {k: [] for k in kinds}
        for s, k in enumerate(self.schedule):
            self._count[k].append(s)
        self._decoded: dict[str, Any] = {}
        self.batch_size = batch_size

    def batch(self, step: int) -> list[Pair]:
        kind = self.schedule[step]
        nth = self._count[kind].index(step)  # how many times this kind trained before: its own step
        return [self.train[kind][i] for i in self.batchers[kind].indices(nth)]

    def _pooled(self, parts: Sequence[MediaPart | TextPart]) -> torch.Tensor:
        """(N, D) encoder features: stored ones for frozen encoders, a live forward for trainable ones."""
        modality = "text" if isinstance(parts[0], TextPart) else parts[0].modality
        cached = [self.store.lookup(p) for p in parts]
        if all(c is not None for c in cached):
            return torch.stack([c.pooled for c in cached]).to(self.core.device)
        enc = self.core.encoders[modality]
        data = [self._decode(p) for p in parts]
        with torch.set_grad_enabled(enc.trainable and torch.is_grad_enabled()):
            return enc.encode(data).to(self.core.device).pooled

    def _decode(self, part: MediaPart | TextPart) -> Any:
        from omnibind.modalities import load_part
        from omnibind.train.features import part_key

        if isinstance(part, TextPart):
            return part.text
        key = part_key(part)
        if key is None:
            return load_part(part, self.core.limits)
        if key not in self._decoded:  # raw media of trainable encoders are small (IMU): decode once
            self._decoded[key] = load_part(part, self.core.limits)
        return self._decoded[key]

    def embed(self, pairs: Sequence[Pair]) -> tuple[torch.Tensor, torch.Tensor]:
        a_mod, b_mod = pairs[0].kind
        za = self.core.bind(a_mod, self._pooled([p.a for p in pairs]))
        zb = self.core.bind(b_mod, self._pooled([p.b for p in pairs]))
        return za, zb

    @property
    def global_loss(self) -> bool:
        """With ``bind.global_negatives`` (default) the loss gathers every process's embeddings, so
        each process returns the loss of the global batch (the loop weighs it accordingly)."""
        return bool(self.cfg.global_negatives)

    def loss(self, batch: list[Pair]) -> torch.Tensor:
        za, zb = self.embed(batch)
        keys_a, keys_b = [p.key_a for p in batch], [p.key_b for p in batch]
        return contrastive_loss(
            za, zb, keys_a, keys_b, self.core.bind.logit_scale, self.cfg.max_logit_scale, gather=self.global_loss
        )

    def val_batches(self) -> list[list[Pair]]:
        out = []
        for pairs in self.val.values():
            out.extend(pairs[i : i + self.batch_size] for i in range(0, len(pairs), self.batch_size))
        return [b for b in out if len(b) >= 2]

    @torch.no_grad()
    def final_metrics(self) -> dict[str, Any]:
        """Recall@k both ways per pair kind on held-out pairs, with chance for comparison."""
        self.core.eval()
        out: dict[str, Any] = {"temperature": float(1 / self.core.bind.logit_scale.exp())}
        for kind, pairs in self.val.items():
            za, zb = [], []
            for i in range(0, len(pairs), 64):
                a, b = self.embed(pairs[i : i + 64])
                za.append(a)
                zb.append(b)
            za_t, zb_t = torch.cat(za), torch.cat(zb)
            name = f"{kind[0]}->{kind[1]}"
            out[name] = recall_at_k(za_t, zb_t, [p.key_b for p in pairs], self.cfg.recall_at)
            out[f"{kind[1]}->{kind[0]}"] = recall_at_k(zb_t, za_t, [p.key_a for p in pairs], self.cfg.recall_at)
        return {"retrieval": out, "train_pairs": {f"{a}-{b}": len(v) for (a, b), v in self.train.items()}}


# --------------------------------------------------------------------------- running
def _samples(cfg: TrainConfig, which: str, *, text_only: bool) -> list[TrainSample]:
    paths = cfg.data.train if which == "train" else cfg.data.val
    limit = cfg.data.max_samples if which == "train" else cfg.data.max_val_samples
    return load_samples(
        paths,
        modalities=cfg.data.modalities,
        limit=limit,
        text_only=text_only,
        tasks=cfg.data.tasks,
        experts=cfg.data.experts,
    )


def run_stage(cfg: TrainConfig, *, progress: bool = True, stop_after: int | None = None) -> TrainResult:
    """Run one stage config end to end; returns where its checkpoints and report are."""
    if cfg.stage == "per_modality":
        return _run_per_modality(cfg, progress=progress, stop_after=stop_after)
    core = build_model(cfg)
    return _train(cfg, core, progress=progress, stop_after=stop_after)


def _train(
    cfg: TrainConfig,
    core: Any,
    *,
    progress: bool,
    stop_after: int | None,
    modalities: Sequence[str] | None = None,
    output: str | None = None,
) -> TrainResult:
    from omnibind.train.bad_media import BadMediaReport
    from omnibind.train.recipes import apply_recipe, copy_heads, param_names, select_trainable

    torch.manual_seed(cfg.optim.seed)
    store = FeatureStore(core, folder=cfg.data.feature_cache)
    mods = list(modalities if modalities is not None else cfg.recipe.modalities)
    if cfg.stage == "bind":
        if cfg.bind.init_heads_from:  # after init_from (the heads copied are the trained ones)
            copy_heads(core, cfg.bind.init_heads_from)
        train_s, val_s = _samples(cfg, "train", text_only=False), _samples(cfg, "val", text_only=False)
        bad = BadMediaReport([*train_s, *val_s], cfg.data.on_bad_media)
        train_p, val_p = pairs_of(train_s, cfg.bind.pairs), pairs_of(val_s, cfg.bind.pairs)
        parts = [x for ps in (*train_p.values(), *val_p.values()) for p in ps for x in (p.a, p.b)]
        # every medium is decoded here, before step 0: a bad one drops its samples now, never mid-run
        store.precompute(parts, progress=progress, on_error=bad.record)
        train_s, val_s = bad.drop(train_s, "train"), bad.drop(val_s, "val")
        if bad.media:
            train_p, val_p = pairs_of(train_s, cfg.bind.pairs), pairs_of(val_s, cfg.bind.pairs)
        task: Any = BindTask(
            core, train_p, val_p, store, cfg.optim.batch_size, cfg.optim.seed, cfg.optim.max_steps, cfg.bind
        )
    else:
        text_only = cfg.stage == "instruct"
        train_s, val_s = _samples(cfg, "train", text_only=text_only), _samples(cfg, "val", text_only=text_only)
        if modalities is not None:
            train_s = [s for s in train_s if s.modalities and s.modalities <= set(modalities)]
            val_s = [s for s in val_s if s.modalities and s.modalities <= set(modalities)]
        bad = BadMediaReport([*train_s, *val_s], cfg.data.on_bad_media)
        store.precompute([m for s in (*train_s, *val_s) for m in s.media], progress=progress, on_error=bad.record)
        train_s, val_s = bad.drop(train_s, "train"), bad.drop(val_s, "val")
        task = LMTask(core, train_s, val_s, store, cfg.optim.batch_size, cfg.optim.seed)
    names = select_trainable(core, cfg.recipe.train, mods)
    params = apply_recipe(core, names)
    out = output or cfg.output
    print(f"[{cfg.stage}] {out}: training {sum(p.numel() for p in params):,} parameters in {len(names)} tensors")
    result = run_training(
        core,
        task,
        params,
        param_names(core),
        cfg.optim,
        out,
        device=cfg.device,
        resume=cfg.resume,
        select=cfg.select,
        progress=progress,
        stop_after=stop_after,
        extra_info={"stage": cfg.stage, "config": cfg.to_dict()},
        extra_metrics={"bad_media": bad.to_dict()},
    )
    if bad.media:  # said again at the end, where a long run's log is read
        print(f"[{cfg.stage}] {out}: {bad.summary()}", file=sys.stderr)
    return result


def _run_per_modality(cfg: TrainConfig, *, progress: bool, stop_after: int | None) -> TrainResult:
    """X-InstructBLIP: one projector per modality, each trained alone into the frozen LLM.

    Layout under ``output``: one complete run per modality in ``<output>/<modality>/`` (``last/``,
    ``best/``, ``final/``, ``loss.png``, ``metrics.json``, resumable like any stage), then the
    stage's own ``final/`` (every modality's projector from its selected checkpoint) and a
    ``metrics.json`` / ``loss.png`` that put the modalities side by side. The result's ``output`` and
    ``final`` are the stage's; ``last`` is the last modality's resumable state.
    """
    from accelerate import PartialState

    from omnibind.checkpoint import save_checkpoint
    from omnibind.train.recipes import load_partial
    from omnibind.train.report import write_report

    core = build_model(cfg)
    mods = cfg.recipe.modalities or sorted({m for s in _samples(cfg, "train", text_only=False) for m in s.modalities})
    if not mods:
        raise ConfigError("per_modality: no modality to train (no media in data.train and no recipe.modalities)")
    if "*" in mods:
        raise ConfigError("per_modality: recipe.modalities lists modalities, not the shared projector '*'")
    missing = [m for m in mods if m not in core.config.projectors]
    if missing:
        raise ConfigError(f"per_modality: the model has no projector of its own for {missing}; add projectors.<m>")
    out = Path(cfg.output)
    runs: dict[str, TrainResult] = {}
    for m in mods:
        runs[m] = _train(cfg, core, progress=progress, stop_after=stop_after, modalities=[m], output=str(out / m))
        load_partial(core, runs[m].final)  # carry this modality's selected weights into the next run
    final = out / "final"
    history: list[dict[str, Any]] = []
    for m, r in runs.items():
        offset = history[-1]["step"] if history else 0
        history.extend({**row, "step": offset + row["step"], "modality": m} for row in r.history)
    metrics: dict[str, Any] = {
        "modalities": {m: r.metrics for m, r in runs.items()},
        "steps": sum(r.steps for r in runs.values()),
        "seconds_this_session": round(sum(r.seconds for r in runs.values()), 1),
    }
    state = PartialState()
    metrics["processes"] = state.num_processes
    if state.is_main_process:
        save_checkpoint(core, final, extra={"training": {"stage": "per_modality", "modalities": mods}})
        write_report(out, history, metrics)
    state.wait_for_everyone()
    last = runs[mods[-1]]
    return TrainResult(out, None, last.last, final, metrics["steps"], history, metrics, metrics["seconds_this_session"])


def prepare_data(steps: Sequence[dict[str, Any]], root: str | Path = ".") -> None:
    """Run the data builders a pipeline lists (``{source, out, limit?}``) unless their train file exists.

    Under a multi-process launch the data must exist already: N processes building the same files
    at once would race, so the error names the one command to run first.
    """
    from omnibind.data.builders import BUILDERS, build
    from omnibind.train.loop import launched_world_size

    for st in steps:
        unknown = set(st) - {"source", "out", "limit", "experts"}
        if unknown or "source" not in st or "out" not in st:
            raise ConfigError(
                f"prepare: each step needs 'source' and 'out' (and optional 'limit', 'experts'); got {st}"
            )
        if st["source"] not in BUILDERS:
            raise ConfigError(f"prepare: unknown data source {st['source']!r}; expected one of {sorted(BUILDERS)}")
        out = Path(root) / st["out"]
        if (out / f"{st['source']}.train.jsonl").is_file():
            _experts_step(st, out)
            continue
        kwargs = {"limit": st["limit"]} if "limit" in st else {}
        if launched_world_size() > 1:
            lim = f" --limit {st['limit']}" if "limit" in st else ""
            raise ConfigError(
                f"prepare: {out / (st['source'] + '.train.jsonl')} is missing; build the data once before a "
                f"multi-process run: omnibind data build {st['source']} --out {out}{lim}"
            )
        res = build(st["source"], out, **kwargs)
        print(f"built {st['source']}: {dict(res.samples)} samples, {len(res.skipped)} items skipped")
        _experts_step(st, out)


def _experts_step(st: dict[str, Any], out: Path) -> None:
    """``experts: true``: add the image-labels and transcript notes to the train and val files once
    (a marker file records it), so ``data.experts`` can train with the notes the model makes itself."""
    if not st.get("experts"):
        return
    from omnibind.data.experts import annotate_files

    marker = out / f".{st['source']}.experts"
    if marker.is_file():
        return
    files = [p for p in (out / f"{st['source']}.{split}.jsonl" for split in ("train", "val")) if p.is_file()]
    counts = annotate_files(files)
    atomic_write_text(marker, json.dumps(counts) + "\n")
    print(f"experts for {st['source']}: {counts['images']} images labelled, {counts['audio']} sounds transcribed")


def run_pipeline(pipe: PipelineConfig, *, progress: bool = True) -> list[TrainResult]:
    """Run stages in order; a stage without ``init_from`` starts from the previous stage's result."""
    prepare_data(pipe.prepare)
    results: list[TrainResult] = []
    for i, st in enumerate(pipe.stages):
        if i > 0 and st.init_from is None:
            st.init_from = str(results[-1].final)
        results.append(run_stage(st, progress=progress))
    if pipe.final:  # swapped in whole: a reader never sees half a copied checkpoint
        with atomic_dir(pipe.final) as tmp:
            shutil.copytree(results[-1].final, tmp, dirs_exist_ok=True)
    return results
