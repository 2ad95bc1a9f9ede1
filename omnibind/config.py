"""The composite, self-describing model config: encoders + bind heads + projectors + LLM + injection.

It is saved as ``config.json`` beside every checkpoint; behaviour is never inferred from a path
or a model name. Presets live in ``configs/*.yaml``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from omnibind.atomic import atomic_write_text
from omnibind.errors import ConfigError


@dataclass
class EncoderConfig:
    """A registry key and its constructor params."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class HeadConfig:
    """A bind head: ``linear`` | ``mlp`` | ``identity``; ``share`` reuses another modality's head."""

    kind: str = "linear"
    share: str | None = None


@dataclass
class BindConfig:
    """The shared embedding space (ImageBind-style); ``anchor`` is the modality others align to."""

    dim: int = 384
    heads: dict[str, HeadConfig] = field(default_factory=dict)
    anchor: str = "image"
    init_temperature: float = 0.07


PROJECTOR_INPUTS = ("bind", "pooled", "tokens", "classes")


@dataclass
class ProjectorConfig:
    """A projector to ``num_tokens`` LLM-width soft tokens, and what it reads.

    ``inputs`` (any of ``PROJECTOR_INPUTS``, default ``[bind]``, today's behaviour):
    ``bind``: the bind-space vector (the only input a ``MixPart`` has);
    ``pooled``: the encoder's own pooled features (1280-d EfficientNet-Lite0, 384-d Whisper, ...);
    ``tokens``: the encoder's tokens (feature map / sequence) pooled to ``num_tokens`` soft tokens
    (a 2-D feature map to the ``token_grid`` [rows, cols], default the squarest grid of ``num_tokens``);
    ``classes``: the encoder's classifier distribution (EfficientNet-Lite0's 1000 ImageNet classes).
    Only projectors that declare ``supports_inputs`` (``feature_mlp``) read more than ``bind``.
    ``feature_modalities``: of the modalities this projector serves, the ones whose encoder inputs it
    reads (default: all); the others reach it with their bind vector alone (a shared projector need
    not carry input layers for modalities it was never trained on).
    """

    name: str = "linear"
    num_tokens: int = 1
    params: dict[str, Any] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=lambda: ["bind"])
    token_grid: list[int] | None = None
    feature_modalities: list[str] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.num_tokens, int) or self.num_tokens < 1:
            raise ConfigError(f"projector {self.name!r}: num_tokens must be an integer >= 1, got {self.num_tokens!r}")
        unknown = [i for i in self.inputs if i not in PROJECTOR_INPUTS]
        if unknown or not self.inputs or len(set(self.inputs)) != len(self.inputs):
            raise ConfigError(
                f"projector {self.name!r}: inputs must be a non-empty list without repeats of "
                f"{list(PROJECTOR_INPUTS)}, got {self.inputs!r}"
            )
        if self.token_grid is not None:
            grid = list(self.token_grid)
            if len(grid) != 2 or any(not isinstance(g, int) or g < 1 for g in grid):
                raise ConfigError(f"projector {self.name!r}: token_grid must be [rows, cols] >= 1, got {grid!r}")
            if grid[0] * grid[1] != self.num_tokens:
                raise ConfigError(
                    f"projector {self.name!r}: token_grid {grid} gives {grid[0] * grid[1]} tokens, "
                    f"num_tokens is {self.num_tokens}"
                )
            if "tokens" not in self.inputs:
                raise ConfigError(f"projector {self.name!r}: token_grid is set but 'tokens' is not among its inputs")


@dataclass
class LoRAConfig:
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])


QUANTIZATIONS = (None, "4bit")
"""``llm.quantization`` values: full-precision weights (``llm.dtype``) or a 4-bit NF4 base (QLoRA)."""


@dataclass
class LLMConfig:
    """The language model.

    ``source`` is ``embedded:smollm2-135m``, a local folder, or a hub id already in the local cache.
    ``arch``: the source's architecture as ``config.json`` keys (``model_type``, ``hidden_size``, ...),
    so ``omnibind plan`` can size the model without its files; when the weights load, every key
    given must equal the loaded config's (``check_declared_arch``), so it never describes another model.
    """

    backend: str = "transformers"
    source: str = "embedded:smollm2-135m"
    template: str = "chatml"
    dtype: str = "float32"
    lora: LoRAConfig | None = None
    lora_media_only: bool = False  # adapters act only on conversations that carry media
    train_bias_norm: bool = False
    system_prompt: str | None = None
    # "4bit": QLoRA — the base weights load in 4-bit NF4 (bitsandbytes), LoRA trains on top; transformers
    # backend on CUDA only (omnibind/llm/quantization.py)
    quantization: str | None = None

    arch: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.quantization not in QUANTIZATIONS:
            raise ConfigError(f"llm.quantization: expected one of {list(QUANTIZATIONS)}, got {self.quantization!r}")
        if self.quantization is not None and self.backend != "transformers":
            raise ConfigError(
                f"llm.quantization: {self.quantization} loads through bitsandbytes on the transformers backend; "
                f"backend {self.backend!r} has its own weight formats (a quantised GGUF for llamacpp)"
            )


def check_declared_arch(declared: dict[str, Any], actual: dict[str, Any], where: str) -> None:
    """Every key of ``declared`` (nested mappings key by key) equals ``actual``'s, else ``ConfigError``.

    Presets carry the architecture of weights the user keeps elsewhere (for sizing them on the meta
    device); this is the check that the files they point at are that model.
    """
    diffs: list[str] = []

    def walk(d: dict[str, Any], a: Any, path: str) -> None:
        for k, v in d.items():
            have = a.get(k, "<absent>") if isinstance(a, dict) else "<absent>"
            if isinstance(v, dict) and isinstance(have, dict):
                walk(v, have, f"{path}{k}.")
            elif have != v:
                diffs.append(f"{path}{k}: declared {v!r}, loaded {have!r}")

    walk(declared, actual, "")
    if diffs:
        raise ConfigError(f"{where}: the loaded model is not the declared architecture ({'; '.join(diffs[:8])})")


@dataclass
class InjectionConfig:
    """How soft tokens reach the LLM.

    ``prefix``: soft tokens at the modality's placeholder after a text cue (X-InstructBLIP).
    ``gated``: zero-initialised gated addition to every token in every layer (ImageBind-LLM).
    Under ``prefix`` a slot is ``cue + cue_separator + soft tokens + slot_end`` (an empty cue writes
    no separator): ``"Image: " … "\n"`` by default, LLaVA's ``… "\n"`` with an empty cue, PandaGPT's
    ``"<Img>" … "</Img> "``.
    """

    kind: str = "prefix"
    cue_separator: str = " "
    slot_end: str = "\n"
    cues: dict[str, str] = field(
        default_factory=lambda: {
            "image": "Image:",
            "audio": "Audio:",
            "video": "Video:",
            "depth": "Depth map:",
            "thermal": "Thermal image:",
            "imu": "Motion sensor (IMU):",
            "points": "3D point cloud:",
            "text": "Text:",
            "mix": "Mixed input:",
        }
    )


@dataclass
class RetrievalCacheConfig:
    """ImageBind-LLM's cache: non-image features retrieve top-k image features and blend with weight ``alpha``."""

    enabled: bool = False
    path: str | None = None
    top_k: int = 8
    alpha: float = 0.5
    modalities: list[str] = field(
        default_factory=lambda: ["audio", "video", "depth", "thermal", "imu", "points", "text"]
    )


BACKEND_ENV = "OMNIBIND_BACKEND"
"""Set to ``transformers`` or ``llamacpp`` to choose the inference backend of ``omnibind.load`` (and
every command built on it) where no ``backend=`` / ``--backend`` is given."""
DEFAULT_INFERENCE_BACKEND = "llamacpp"
LLAMACPP_MISSING = (
    "omnibind: llama-cpp-python is not installed, answering on the transformers backend (slower start); "
    "`make install-dev` (builds it, ~7 min) or pip install 'omnibind[llamacpp]' adds it"
)


def default_inference_backend(config: ModelConfig, device: str = "cpu") -> tuple[str, str | None]:
    """The backend ``omnibind.load`` runs ``config`` on when the caller names none, and a note for
    stderr when it had to fall back.

    llama.cpp is the default for models on the embedded LLM (its f16 GGUF gives transformers'
    greedy answers: 20/20 in ``omnibind bench backends``) with prefix injection on the CPU; gated
    injection, other LLM sources and other devices keep the config's own backend. A missing
    ``llama_cpp`` module falls back to transformers. ``$OMNIBIND_BACKEND`` overrides all of this.
    """
    import os

    env = os.environ.get(BACKEND_ENV, "").strip()
    if env:
        return env, None
    own = config.llm.backend
    if (
        own == DEFAULT_INFERENCE_BACKEND
        or not config.llm.source.startswith("embedded:")
        or config.injection.kind != "prefix"
        or str(device) != "cpu"
    ):
        return own, None
    try:  # importing it (~25 ms; the backend imports it next anyway) also catches a broken build
        import llama_cpp  # noqa: F401
    except (ImportError, OSError, RuntimeError):  # llama_cpp raises these when its library fails to load
        return own, LLAMACPP_MISSING
    return DEFAULT_INFERENCE_BACKEND, None


DEFAULT_IMAGE_LABELS = 3
"""How many everyday names the image-labels expert gives when switched on without a count."""


@dataclass
class ExpertsConfig:
    """Modality experts added as text context: Whisper transcript, image-classifier labels.

    ``image_labels``: how many merged everyday names (0 = off). Both are off unless a config turns
    them on; the embedded preset and the shipped default do (docs/ENCODERS.md has the measurement).
    """

    transcript: bool = False
    image_labels: int = 0

    def switched(self, on: bool | ExpertsConfig | dict[str, Any] | None) -> ExpertsConfig:
        """The experts one call uses: ``None`` = this config, ``False`` = none, ``True`` = both
        (this config's label count, else ``DEFAULT_IMAGE_LABELS``), or an explicit setting."""
        if on is None:
            return self
        if isinstance(on, ExpertsConfig):
            return on
        if isinstance(on, dict):
            unknown = set(on) - {"transcript", "image_labels"}
            if unknown:
                raise ConfigError(f"experts: unknown keys {sorted(unknown)}; expected transcript, image_labels")
            return ExpertsConfig(**{**asdict(self), **on}).validate()
        if not isinstance(on, bool):
            raise ConfigError(f"experts must be true, false, a dict or ExpertsConfig, got {type(on).__name__}")
        if not on:
            return ExpertsConfig(transcript=False, image_labels=0)
        return ExpertsConfig(transcript=True, image_labels=self.image_labels or DEFAULT_IMAGE_LABELS)

    def validate(self) -> ExpertsConfig:
        """Types and ranges, else ``ConfigError``."""
        if not isinstance(self.transcript, bool):
            raise ConfigError(f"experts.transcript must be true or false, got {self.transcript!r}")
        if isinstance(self.image_labels, bool) or not isinstance(self.image_labels, int) or self.image_labels < 0:
            raise ConfigError(f"experts.image_labels must be an integer >= 0, got {self.image_labels!r}")
        return self


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model; weights live beside it in ``weights.safetensors``."""

    name: str = "omnibind"
    encoders: dict[str, EncoderConfig] = field(default_factory=dict)
    bind: BindConfig = field(default_factory=BindConfig)
    projectors: dict[str, ProjectorConfig] = field(default_factory=lambda: {"*": ProjectorConfig()})
    llm: LLMConfig = field(default_factory=LLMConfig)
    injection: InjectionConfig = field(default_factory=InjectionConfig)
    cache: RetrievalCacheConfig = field(default_factory=RetrievalCacheConfig)
    experts: ExpertsConfig = field(default_factory=ExpertsConfig)
    limits: dict[str, Any] = field(default_factory=dict)
    seed: int = 0

    def projector_for(self, modality: str) -> tuple[str, ProjectorConfig]:
        """The projector key and config that serve ``modality`` (per-modality key, else ``*``)."""
        if modality in self.projectors:
            return modality, self.projectors[modality]
        if "*" in self.projectors:
            return "*", self.projectors["*"]
        raise ConfigError(f"no projector for modality {modality!r} (keys: {sorted(self.projectors)})")

    # --- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        return build_strict(cls, d, "config")

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> ModelConfig:
        p = Path(path)
        try:
            if p.suffix in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(p.read_text())
            else:
                data = json.loads(p.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{p}: no such config file") from None
        except Exception as e:
            raise ConfigError(f"{p}: cannot parse config: {e}") from e
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: config must be a mapping")
        try:
            return cls.from_dict(data)
        except ConfigError as e:
            raise ConfigError(f"{p}: {e}") from None


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` merged in: nested mappings merge key by key, anything else replaces."""
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def build_strict(tp: Any, value: Any, where: str) -> Any:
    """Strictly build a dataclass tree of type ``tp`` from plain data; unknown keys are errors.

    ``where`` names the value in error messages (``config.llm.lora``). The train config parses
    with it too, so both configs refuse the same mistakes.
    """
    origin = get_origin(tp)
    if is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        hints = get_type_hints(tp)
        names = {f.name for f in fields(tp)}
        unknown = set(value) - names
        if unknown:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; allowed {sorted(names)}")
        return tp(**{k: build_strict(hints[k], v, f"{where}.{k}") for k, v in value.items()})
    if origin is dict:
        _, vt = get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return {str(k): build_strict(vt, v, f"{where}.{k}") for k, v in value.items()}
    if origin is list:
        (it,) = get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        return [build_strict(it, v, f"{where}[{i}]") for i, v in enumerate(value)]
    args = get_args(tp)
    if args and type(None) in args:  # Optional[X]
        if value is None:
            return None
        inner = [a for a in args if a is not type(None)]
        return build_strict(inner[0], value, where)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, str, bool) and not isinstance(value, tp):
        raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}")
    return value
