"""ImageBind encoders (Girdhar et al., "ImageBind: One Embedding Space To Bind Them All", CVPR 2023)
from a checkpoint the user already has on disk (``imagebind_huge.pth`` or a safetensors copy).

One registry entry, ``imagebind``, with ``modality`` picking the tower: ``vision`` (images and videos),
``text``, ``audio``, ``depth``, ``thermal`` or ``imu``. Every tower of one checkpoint + architecture is
served by a single loaded network (a module-level weak cache), so six encoders cost one load.

``pooled`` is the unit-norm embedding in ImageBind's own shared space (the official output before the
per-modality logit scale, which only rescales it), so the omnibind bind head for these encoders should be
``identity`` with ``bind.dim`` = ``out_embed_dim`` (1024 for Huge). ``tokens`` are the tower's trunk
outputs after its final LayerNorm (width = that tower's embed dim), for token-reading projectors.

Checkpoints load without unpickling arbitrary objects (safetensors, or ``torch.load(weights_only=True)``)
and must match the architecture key for key; any difference raises ``CheckpointError`` listing the
missing, unexpected and mis-shaped keys.
"""

from __future__ import annotations

import functools
import json
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import torch

from omnibind.encoders.base import ENCODERS, Encoder, EncoderOutput, FeatureDims, SizedNetwork
from omnibind.encoders.imagebind_model import preprocess as pre
from omnibind.encoders.imagebind_model.net import MODALITIES, ImageBindConfig, ImageBindNet
from omnibind.errors import CheckpointError, ConfigError, InputError
from omnibind.modalities.base import AudioData, DepthData, ImageData, IMUData, ThermalData, VideoData
from omnibind.tensor_files import read_state_dict as read_tensor_file

# Omnibind modality names each tower accepts.
_ACCEPTS = {
    "vision": ("image", "video"),
    "text": ("text",),
    "audio": ("audio",),
    "depth": ("depth",),
    "thermal": ("thermal",),
    "imu": ("imu",),
}
_ALIASES = {"image": "vision", "video": "vision"}
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_NETS: weakref.WeakValueDictionary[str, ImageBindNet] = weakref.WeakValueDictionary()


# --- checkpoints -----------------------------------------------------------------------------------
def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of an ImageBind checkpoint file (``omnibind.tensor_files.read_state_dict``)."""
    return read_tensor_file(path, what="ImageBind checkpoint")


def check_keys(state: dict[str, torch.Tensor], net: torch.nn.Module, source: str, limit: int = 20) -> None:
    """Strict comparison of names and shapes; raises ``CheckpointError`` describing every difference."""
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(state) & set(expected))
        if tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if not (missing or unexpected or shapes):
        return
    parts = [f"ImageBind checkpoint {source} does not match the configured architecture"]
    for title, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes)):
        if items:
            more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
            parts.append(f"{len(items)} {title}: {', '.join(items[:limit])}{more}")
    parts.append("set the encoder's `arch` params to the checkpoint's sizes (defaults are ImageBind-Huge)")
    raise CheckpointError("; ".join(parts))


def load_net(
    checkpoint: str | Path | None,
    config: ImageBindConfig,
    dtype: str = "float32",
    *,
    random_init: bool = False,
    seed: int = 0,
) -> ImageBindNet:
    """The shared, frozen network for (checkpoint file version, architecture, dtype); loaded once while used."""
    if dtype not in _DTYPES:
        raise ConfigError(f"imagebind dtype {dtype!r}: expected one of {sorted(_DTYPES)}")
    if checkpoint is None and not random_init:
        raise ConfigError("imagebind encoder needs `checkpoint` (a local imagebind_huge.pth or .safetensors path)")
    key = json.dumps([_file_identity(checkpoint, seed), config.to_dict(), dtype], sort_keys=True)
    net = _NETS.get(key)
    if net is None:
        net = _build(checkpoint, config, seed)
        net = net.to(_DTYPES[dtype]).eval().requires_grad_(False)
        _NETS[key] = net
    return net


def _file_identity(checkpoint: str | Path | None, seed: int) -> str:
    if checkpoint is None:
        return f"random:{seed}"
    p = Path(checkpoint).expanduser().resolve()
    if not p.is_file():
        raise CheckpointError(f"ImageBind checkpoint {p}: file not found")
    st = p.stat()
    return f"{p}:{st.st_size}:{st.st_mtime_ns}"


def _build(checkpoint: str | Path | None, config: ImageBindConfig, seed: int) -> ImageBindNet:
    if checkpoint is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return ImageBindNet(config)
    state = read_state_dict(checkpoint)
    with torch.device("meta"):  # no memory for random weights that the checkpoint replaces anyway
        net = ImageBindNet(config)
    check_keys(state, net, str(checkpoint))
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, assign=True)
    return net


@functools.lru_cache(maxsize=4)
def _meta_net(arch_json: str) -> ImageBindNet:
    """One meta-device network per architecture, shared by the six towers' sizings: building it runs
    every initialiser through meta kernels (~0.4 s), and a meta network holds no memory to free."""
    with torch.device("meta"):
        return ImageBindNet(ImageBindConfig.from_dict(json.loads(arch_json)))


# --- the encoder -----------------------------------------------------------------------------------
@ENCODERS.register("imagebind")
class ImageBindEncoder(Encoder):
    """One ImageBind tower as an omnibind encoder (see the module docstring).

    Params: ``modality`` (vision|image, text, audio, depth, thermal, imu); ``checkpoint`` (local path);
    ``bpe_path`` (text: CLIP's ``bpe_simple_vocab_16e6.txt.gz``); ``arch`` (overrides of the Huge sizes,
    see ``ImageBindConfig``); ``dtype``; preprocessing knobs ``audio_clips``, ``video_clips``,
    ``video_crops``, ``depth_focal``, ``depth_baseline``, ``imu_rate``; ``random_init`` + ``seed`` build
    untrained weights (tests, debugging) instead of loading a checkpoint.
    """

    trainable = False

    def __init__(
        self,
        modality: str = "vision",
        checkpoint: str | None = None,
        bpe_path: str | None = None,
        arch: dict[str, Any] | None = None,
        dtype: str = "float32",
        audio_clips: int = 3,
        video_clips: int = 5,
        video_crops: int = 3,
        depth_focal: float = 518.8579,
        depth_baseline: float = 0.075,
        imu_rate: float = 400.0,
        random_init: bool = False,
        seed: int = 0,
    ):
        super().__init__(
            modality=modality,
            checkpoint=checkpoint,
            bpe_path=bpe_path,
            arch=dict(arch or {}),
            dtype=dtype,
            audio_clips=audio_clips,
            video_clips=video_clips,
            video_crops=video_crops,
            depth_focal=depth_focal,
            depth_baseline=depth_baseline,
            imu_rate=imu_rate,
            random_init=random_init,
            seed=seed,
        )
        tower = _ALIASES.get(modality, modality)
        if tower not in MODALITIES:
            raise ConfigError(f"imagebind modality {modality!r}: expected one of vision, {', '.join(MODALITIES[1:])}")
        if video_crops not in (1, 3):
            raise ConfigError(f"imagebind video_crops must be 1 or 3, got {video_crops}")
        if audio_clips < 1 or video_clips < 1:
            raise ConfigError("imagebind audio_clips and video_clips must be at least 1")
        self.tower_name = tower
        self.config = ImageBindConfig.from_dict(arch)
        self.modalities = _ACCEPTS[tower]
        self.output_dim = self.config.out_embed_dim
        self.token_dim = self.config.embed_dim(tower)
        self.tokenizer = self._tokenizer(bpe_path) if tower == "text" else None
        net = load_net(checkpoint, self.config, dtype, random_init=random_init, seed=seed)
        # Keep the shared net alive (the cache holds it weakly) without registering it as a submodule:
        # only this tower's parts are registered, and ``.to()`` moves those shared parameters in place.
        self.__dict__["_shared_net"] = net
        self.tower = net.tower(tower)

    @classmethod
    def meta_network(cls, params: dict[str, Any], build: Any) -> SizedNetwork:
        """The tower's network on the meta device from the ``arch`` params alone (defaults: Huge):
        no checkpoint or vocabulary is read."""
        modality = str(params.get("modality", "vision"))
        tower = _ALIASES.get(modality, modality)
        if tower not in MODALITIES:
            raise ConfigError(f"imagebind modality {modality!r}: expected one of vision, {', '.join(MODALITIES[1:])}")
        config = ImageBindConfig.from_dict(params.get("arch"))
        dims = FeatureDims(config.out_embed_dim, config.embed_dim(tower))
        net = _meta_net(json.dumps(config.to_dict(), sort_keys=True))
        return SizedNetwork(net.tower(tower), dims, dtype=str(params.get("dtype", "float32")))

    def _tokenizer(self, bpe_path: str | None) -> Any:
        from omnibind.encoders.imagebind_model.bpe import BPETokenizer

        if not bpe_path:
            raise ConfigError("imagebind text encoder needs `bpe_path` (CLIP's bpe_simple_vocab_16e6.txt.gz)")
        tok = BPETokenizer.from_file(bpe_path, self.config.context_length)
        if tok.vocab_size != self.config.vocab_size:
            raise ConfigError(
                f"BPE vocabulary {bpe_path} gives {tok.vocab_size} token ids but the text tower has "
                f"vocab_size {self.config.vocab_size}"
            )
        return tok

    def fingerprint(self) -> str:
        import hashlib

        from omnibind.encoders._weights import file_hash

        ck = self.params.get("checkpoint")
        weights = file_hash(Path(ck).expanduser()) if ck else f"random{self.params['seed']}"
        vocab = file_hash(Path(self.params["bpe_path"]).expanduser()) if self.tokenizer is not None else ""
        blob = json.dumps({"params": self.params, "w": weights, "v": vocab}, sort_keys=True, default=str)
        return "imagebind-" + hashlib.sha256(blob.encode()).hexdigest()[:16]

    # --- encoding --------------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, items: list[Any]) -> EncoderOutput:
        """Encode a batch of this tower's modality data (``str`` for text)."""
        if not items:
            raise InputError("<batch>", "empty batch", modality=self.tower_name)
        if self.tower_name == "text":
            return self._encode_text(items)
        if self.tower_name in ("vision", "audio"):
            return self._encode_clips(items)
        batch = torch.stack([self._single(item, i) for i, item in enumerate(items)])
        return self._finish(self._run(batch))

    def _run(self, x: torch.Tensor, eos: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        dtype = next(self.tower.parameters()).dtype
        x = x.to(self.device, dtype if x.is_floating_point() else x.dtype)
        return self.tower(x, None if eos is None else eos.to(self.device))

    @staticmethod
    def _finish(out: dict[str, torch.Tensor], mask: torch.Tensor | None = None) -> EncoderOutput:
        return EncoderOutput(pooled=out["embedding"].float(), tokens=out["tokens"].float(), token_mask=mask)

    def _single(self, item: Any, i: int) -> torch.Tensor:
        p, cfg = self.params, self.config
        if self.tower_name == "depth" and isinstance(item, DepthData):
            _check_2d(item.depth, "depth", i)
            return pre.depth_map(
                item.depth, item.kind, cfg.image_size, focal=p["depth_focal"], baseline=p["depth_baseline"]
            )
        if self.tower_name == "thermal" and isinstance(item, ThermalData):
            _check_2d(item.values, "thermal", i)
            return pre.thermal_map(item.values, item.unit, cfg.image_size)
        if self.tower_name == "imu" and isinstance(item, IMUData):
            s = np.asarray(item.samples)
            if s.ndim != 2 or s.shape[1] != 6 or s.shape[0] < 1:
                raise InputError(f"<item {i}>", f"IMU samples must be (T, 6), got {s.shape}", modality="imu")
            return pre.imu_window(s, item.sample_rate, p["imu_rate"], cfg.imu_len)
        raise _wrong_type(item, i, self.tower_name)

    def _clips(self, item: Any, i: int) -> torch.Tensor:
        """Vision: (1, 3, S, S) for an image or (clips, 3, 2, S, S) for a video; audio: (clips, 1, bins, frames)."""
        cfg, p = self.config, self.params
        if self.tower_name == "vision" and isinstance(item, ImageData):
            px = np.asarray(item.pixels)
            if px.ndim != 3 or px.shape[2] != 3 or px.dtype != np.uint8:
                raise InputError(
                    f"<item {i}>", f"image must be (H, W, 3) uint8, got {px.shape} {px.dtype}", modality="image"
                )
            return pre.vision_image(px, cfg.image_size)[None]
        if self.tower_name == "vision" and isinstance(item, VideoData):
            f = np.asarray(item.frames)
            if f.ndim != 4 or f.shape[0] == 0 or f.shape[3] != 3:
                raise InputError(f"<item {i}>", f"video frames must be (T, H, W, 3), got {f.shape}", modality="video")
            return pre.vision_video(
                f, item.timestamps, item.duration, cfg.image_size, p["video_clips"], p["video_crops"]
            )
        if self.tower_name == "audio" and isinstance(item, AudioData):
            if item.sample_rate != 16000:
                raise InputError(f"<item {i}>", f"audio must be 16 kHz, got {item.sample_rate} Hz", modality="audio")
            if np.asarray(item.waveform).ndim != 1 or len(item.waveform) < 400:
                raise InputError(f"<item {i}>", "audio must be mono and at least 25 ms long", modality="audio")
            return pre.audio_clips(
                item.waveform, 16000, p["audio_clips"], 2.0, cfg.audio_num_mel_bins, cfg.audio_target_len
            )
        raise _wrong_type(item, i, self.tower_name)

    def _encode_clips(self, items: list[Any]) -> EncoderOutput:
        """Every clip of every item in one pass; an item's embedding is the mean of its clips' unit
        embeddings, re-normalised (upstream averages the same way), its tokens the per-position mean."""
        clips = [self._clips(item, i) for i, item in enumerate(items)]
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, c in enumerate(clips):  # images and videos have different clip shapes: run each shape once
            groups.setdefault(tuple(c.shape[1:]), []).append(i)
        pooled: list[torch.Tensor | None] = [None] * len(items)
        tokens: list[torch.Tensor | None] = [None] * len(items)
        for idx in groups.values():
            out = self._run(torch.cat([clips[i] for i in idx]))
            start = 0
            for i in idx:
                n = clips[i].shape[0]
                emb = out["embedding"][start : start + n].float().mean(0)
                pooled[i] = torch.nn.functional.normalize(emb, dim=-1)
                tokens[i] = out["tokens"][start : start + n].float().mean(0)
                start += n
        return EncoderOutput(pooled=torch.stack(pooled), tokens=torch.stack(tokens), token_mask=None)  # type: ignore[arg-type]

    def _encode_text(self, items: list[Any]) -> EncoderOutput:
        for i, t in enumerate(items):
            if not isinstance(t, str):
                raise InputError(f"<item {i}>", f"expected a str, got {type(t).__name__}", modality="text")
        rows, eos = self.tokenizer(items)  # type: ignore[misc]
        # Causal attention makes the end token blind to padding, so padding to the batch's longest row
        # (not the full 77) gives the same embedding as upstream.
        width = max(len(r) for r in rows)
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        for j, r in enumerate(rows):
            ids[j, : len(r)] = torch.tensor(r)
        eos_t = torch.tensor(eos)
        mask = torch.arange(width)[None, :] <= eos_t[:, None]
        return self._finish(self._run(ids, eos_t), mask.to(self.device))


def _check_2d(a: np.ndarray, modality: str, i: int) -> None:
    arr = np.asarray(a)
    if arr.ndim != 2 or min(arr.shape) < 1:
        raise InputError(f"<item {i}>", f"{modality} map must be (H, W), got {arr.shape}", modality=modality)


def _wrong_type(item: Any, i: int, tower: str) -> InputError:
    wanted = {
        "vision": "ImageData or VideoData",
        "audio": "AudioData",
        "depth": "DepthData",
        "thermal": "ThermalData",
        "imu": "IMUData",
    }[tower]
    return InputError(
        f"<item {i}>", f"the imagebind {tower} encoder takes {wanted}, got {type(item).__name__}", modality=tower
    )
