"""The ImageBind network: six modality towers (preprocessor → transformer trunk → head → postprocessor)
whose outputs share one embedding space (Girdhar et al., "ImageBind: One Embedding Space To Bind Them
All", CVPR 2023).

Written for omnibind from the paper and the published architecture; module attribute names are chosen
so that ``state_dict()`` keys equal those of the official ``imagebind_huge.pth``
(``modality_preprocessors.vision.rgbt_stem.proj.1.weight``, ``modality_trunks.audio.blocks.0.attn.bias_k``
...), which lets that checkpoint load strictly. Inference only: stochastic depth (drop path) is not
built because the towers are frozen in omnibind.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

from omnibind.errors import ConfigError

MODALITIES = ("vision", "text", "audio", "depth", "thermal", "imu")

# Fixed logit scales of the official postprocessors (buffers in the checkpoint); text's is learned.
_LOGIT_SCALES = {"text": 1 / 0.07, "audio": 20.0, "depth": 5.0, "thermal": 10.0, "imu": 5.0}
# Towers whose attention adds a learned key/value bias token (all but vision and text).
_BIAS_KV = {"audio", "depth", "thermal", "imu"}


@dataclass
class ImageBindConfig:
    """Sizes of every tower. Defaults are ImageBind-Huge (``imagebind_huge.pth``)."""

    out_embed_dim: int = 1024
    vision_embed_dim: int = 1280
    vision_num_blocks: int = 32
    vision_num_heads: int = 16
    vision_patch: int = 14
    video_frames: int = 2
    image_size: int = 224
    text_embed_dim: int = 1024
    text_num_blocks: int = 24
    text_num_heads: int = 16
    vocab_size: int = 49408
    context_length: int = 77
    audio_embed_dim: int = 768
    audio_num_blocks: int = 12
    audio_num_heads: int = 12
    audio_kernel: int = 16
    audio_stride: int = 10
    audio_num_mel_bins: int = 128
    audio_target_len: int = 204
    depth_embed_dim: int = 384
    depth_num_blocks: int = 12
    depth_num_heads: int = 8
    depth_patch: int = 16
    thermal_embed_dim: int = 768
    thermal_num_blocks: int = 12
    thermal_num_heads: int = 12
    thermal_patch: int = 16
    imu_embed_dim: int = 512
    imu_num_blocks: int = 6
    imu_num_heads: int = 8
    imu_kernel: int = 8
    imu_len: int = 2000

    @classmethod
    def from_dict(cls, overrides: dict[str, Any] | None) -> ImageBindConfig:
        """Defaults (Huge) with ``overrides`` applied; unknown keys raise ``ConfigError``."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides or {}) - names)
        if unknown:
            raise ConfigError(f"imagebind arch: unknown keys {unknown}; known: {sorted(names)}")
        cfg = cls(**(overrides or {}))
        cfg.check()
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def check(self) -> None:
        for m in MODALITIES:
            dim, heads = getattr(self, f"{m}_embed_dim"), getattr(self, f"{m}_num_heads")
            if dim % heads:
                raise ConfigError(f"imagebind arch: {m}_embed_dim {dim} is not divisible by {m}_num_heads {heads}")
        if self.imu_len % self.imu_kernel:
            raise ConfigError(
                f"imagebind arch: imu_len {self.imu_len} is not a multiple of imu_kernel {self.imu_kernel}"
            )

    def embed_dim(self, modality: str) -> int:
        return int(getattr(self, f"{modality}_embed_dim"))

    def audio_grid(self) -> tuple[int, int]:
        """Patch grid of the (mel bins × frames) spectrogram under the strided audio convolution."""
        k, s = self.audio_kernel, self.audio_stride
        return (self.audio_num_mel_bins - k) // s + 1, (self.audio_target_len - k) // s + 1


# --- small parameter-free pieces ------------------------------------------------------------------
class _RepeatFrames(nn.Module):
    """Image (B, C, H, W) → clip (B, C, T, H, W) by repeating it ``times``: the vision stem is a 3-D conv
    over 2-frame clips, so one image is seen as a still 2-frame video (as in the paper)."""

    def __init__(self, times: int):
        super().__init__()
        self.times = times

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 4:
            x = x.unsqueeze(2)
        if x.shape[2] == 1:
            x = x.expand(-1, -1, self.times, -1, -1)
        return x


class _SelectFirst(nn.Module):
    """The class token (position 0)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0]


class _L2Normalize(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(x, dim=-1)


class _LogitScale(nn.Module):
    """Multiplies by ``exp(log_logit_scale)`` capped at 100; learned for text, a fixed buffer elsewhere."""

    def __init__(self, init: float, learnable: bool):
        super().__init__()
        value = torch.tensor(float(init)).log()
        if learnable:
            self.log_logit_scale = nn.Parameter(value)
        else:
            self.register_buffer("log_logit_scale", value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_logit_scale.exp().clamp(max=100.0) * x


# --- preprocessors (patchify + class token + positions) --------------------------------------------
class _PatchStem(nn.Module):
    """``proj`` (a conv, or a linear for IMU) then an optional LayerNorm; conv maps are flattened to tokens."""

    def __init__(self, proj: nn.Module, norm_dim: int | None = None):
        super().__init__()
        self.proj = proj
        if norm_dim is not None:
            self.norm_layer = nn.LayerNorm(norm_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)
        if x.ndim > 3:  # (B, D, [T,] H, W) → (B, L, D)
            x = x.flatten(2).transpose(1, 2)
        if hasattr(self, "norm_layer"):
            x = self.norm_layer(x)
        return x


class _PositionTable(nn.Module):
    def __init__(self, num_tokens: int, dim: int):
        super().__init__()
        self.pos_embed = nn.Parameter(torch.randn(1, num_tokens, dim) * dim**-0.5)


class _PatchPreprocessor(nn.Module):
    """Vision / audio / depth / thermal: patch stem, a class token, learned positions."""

    def __init__(self, stem_name: str, stem: _PatchStem, num_patches: int, dim: int):
        super().__init__()
        self.stem_name = stem_name
        self.add_module(stem_name, stem)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * dim**-0.5)
        self.pos_embedding_helper = _PositionTable(num_patches + 1, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = getattr(self, self.stem_name)(x)
        expected = self.pos_embedding_helper.pos_embed.shape[1] - 1
        if tokens.shape[1] != expected:
            raise ValueError(f"input gives {tokens.shape[1]} patches, the position table has {expected}")
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        return torch.cat([cls, tokens], dim=1) + self.pos_embedding_helper.pos_embed


class _TextPreprocessor(nn.Module):
    """Token + position embeddings and the causal mask (a buffer in the official checkpoint)."""

    def __init__(self, vocab_size: int, context_length: int, dim: int):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, dim)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, context_length, dim) * 0.01)
        causal = torch.full((context_length, context_length), float("-inf")).triu(1)
        self.register_buffer("mask", causal)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.token_embedding(ids) + self.pos_embed[:, : ids.shape[1]]


class _IMUPreprocessor(nn.Module):
    """(B, 6, T) signal → windows of ``kernel`` steps × 6 channels → linear stem, class token, positions."""

    def __init__(self, kernel: int, length: int, dim: int):
        super().__init__()
        self.kernel = kernel
        self.pos_embed = nn.Parameter(torch.randn(1, length // kernel + 1, dim) * 0.01)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * dim**-0.5)
        self.imu_stem = _PatchStem(nn.Linear(6 * kernel, dim, bias=False), norm_dim=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        windows = x.unfold(-1, self.kernel, self.kernel).permute(0, 2, 1, 3).reshape(b, -1, 6 * self.kernel)
        tokens = self.imu_stem(windows)
        return torch.cat([self.cls_token.expand(b, -1, -1), tokens], dim=1) + self.pos_embed


# --- trunk -------------------------------------------------------------------------------------------
class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class _Block(nn.Module):
    """Pre-norm transformer block; attention is torch's MultiheadAttention (its parameter names are the
    checkpoint's ``in_proj_weight``/``out_proj``/``bias_k``/``bias_v``)."""

    def __init__(self, dim: int, heads: int, bias_kv: bool):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, bias=True, add_bias_kv=bias_kv, batch_first=True)
        self.norm_1 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = _Mlp(dim, 4 * dim)
        self.norm_2 = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        h = self.norm_1(x)
        x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + self.mlp(self.norm_2(x))


class _Trunk(nn.Module):
    def __init__(self, dim: int, depth: int, heads: int, *, pre_norm: bool, bias_kv: bool):
        super().__init__()
        # Sequential so the pre-norm is ``pre_transformer_layer.0`` like the official checkpoint.
        self.pre_transformer_layer = nn.Sequential(nn.LayerNorm(dim, eps=1e-6) if pre_norm else nn.Identity())
        self.blocks = nn.Sequential(*[_Block(dim, heads, bias_kv) for _ in range(depth)])
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.pre_transformer_layer(tokens)
        for block in self.blocks:
            x = block(x, mask)
        return x


# --- heads -------------------------------------------------------------------------------------------
class _EOSHead(nn.Module):
    """Text head: LayerNorm + projection of the end-of-text token (OpenCLIP pooling)."""

    def __init__(self, dim: int, out: int):
        super().__init__()
        self.proj = nn.Sequential(nn.LayerNorm(dim, eps=1e-6), nn.Linear(dim, out, bias=False))


def _cls_head(dim: int, out: int, dropout: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.LayerNorm(dim, eps=1e-6), _SelectFirst()]
    if dropout:  # the IMU head has a Dropout(0.5) before its projection (index 2, so the projection is 3)
        layers.append(nn.Dropout(0.5))
    layers.append(nn.Linear(dim, out, bias=False))
    return nn.Sequential(*layers)


# --- towers ------------------------------------------------------------------------------------------
class ImageBindTower(nn.Module):
    """One modality's path through a (shared) ``ImageBindNet``; holds references to its four parts."""

    def __init__(self, modality: str, preprocessor: nn.Module, trunk: nn.Module, head: nn.Module, post: nn.Module):
        super().__init__()
        self.modality = modality
        self.preprocessor = preprocessor
        self.trunk = trunk
        self.head = head
        self.postprocessor = post

    def forward(self, x: torch.Tensor, eos_index: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``x``: the preprocessed batch; ``eos_index`` (B,) for text.

        Returns ``embedding`` (B, out) unit-norm in the shared space, ``scaled`` (the official output:
        embedding × the modality's logit scale) and ``tokens`` (B, L, D), the trunk output after the
        head's LayerNorm.
        """
        tokens = self.preprocessor(x)
        mask = self.preprocessor.mask.to(tokens.dtype) if self.modality == "text" else None
        if mask is not None:
            mask = mask[: tokens.shape[1], : tokens.shape[1]]
        out = self.trunk(tokens, mask)
        if self.modality == "text":
            if eos_index is None:
                raise ValueError("text tower needs eos_index")
            normed = self.head.proj[0](out)
            pooled = self.head.proj[1](normed[torch.arange(out.shape[0], device=out.device), eos_index])
        else:
            normed = self.head[0](out)
            pooled = self.head[-1](normed[:, 0])
        embedding = nn.functional.normalize(pooled, dim=-1)
        return {"embedding": embedding, "scaled": self.postprocessor(pooled), "tokens": normed}


class ImageBindNet(nn.Module):
    """All six towers. ``state_dict()`` keys match the official checkpoint for the same sizes."""

    def __init__(self, config: ImageBindConfig | None = None):
        super().__init__()
        self.config = cfg = config or ImageBindConfig()
        cfg.check()
        self.modality_preprocessors = nn.ModuleDict(self._preprocessors(cfg))
        self.modality_trunks = nn.ModuleDict(
            {
                m: _Trunk(
                    cfg.embed_dim(m),
                    getattr(cfg, f"{m}_num_blocks"),
                    getattr(cfg, f"{m}_num_heads"),
                    pre_norm=m == "vision",
                    bias_kv=m in _BIAS_KV,
                )
                for m in MODALITIES
            }
        )
        heads: dict[str, nn.Module] = {"text": _EOSHead(cfg.text_embed_dim, cfg.out_embed_dim)}
        for m in ("vision", "audio", "depth", "thermal", "imu"):
            heads[m] = _cls_head(cfg.embed_dim(m), cfg.out_embed_dim, dropout=m == "imu")
        self.modality_heads = nn.ModuleDict({m: heads[m] for m in MODALITIES})
        post: dict[str, nn.Module] = {"vision": _L2Normalize()}
        for m, scale in _LOGIT_SCALES.items():
            post[m] = nn.Sequential(_L2Normalize(), _LogitScale(scale, learnable=m == "text"))
        self.modality_postprocessors = nn.ModuleDict({m: post[m] for m in MODALITIES})

    @staticmethod
    def _preprocessors(cfg: ImageBindConfig) -> dict[str, nn.Module]:
        vd, k = cfg.vision_embed_dim, cfg.vision_patch
        conv3d = nn.Conv3d(3, vd, kernel_size=(2, k, k), stride=(2, k, k), bias=False)
        vision_stem = _PatchStem(nn.Sequential(_RepeatFrames(cfg.video_frames), conv3d))
        t_out = (cfg.video_frames - 2) // 2 + 1
        vision = _PatchPreprocessor("rgbt_stem", vision_stem, t_out * (cfg.image_size // k) ** 2, vd)

        ad = cfg.audio_embed_dim
        audio_conv = nn.Conv2d(1, ad, kernel_size=cfg.audio_kernel, stride=cfg.audio_stride, bias=False)
        rows, cols = cfg.audio_grid()
        audio = _PatchPreprocessor("rgbt_stem", _PatchStem(audio_conv, ad), rows * cols, ad)

        def single_channel(dim: int, patch: int, stem_name: str) -> _PatchPreprocessor:
            conv = nn.Conv2d(1, dim, kernel_size=patch, stride=patch, bias=False)
            return _PatchPreprocessor(stem_name, _PatchStem(conv, dim), (cfg.image_size // patch) ** 2, dim)

        return {
            "vision": vision,
            "text": _TextPreprocessor(cfg.vocab_size, cfg.context_length, cfg.text_embed_dim),
            "audio": audio,
            "depth": single_channel(cfg.depth_embed_dim, cfg.depth_patch, "depth_stem"),
            "thermal": single_channel(cfg.thermal_embed_dim, cfg.thermal_patch, "rgbt_stem"),
            "imu": _IMUPreprocessor(cfg.imu_kernel, cfg.imu_len, cfg.imu_embed_dim),
        }

    def tower(self, modality: str) -> ImageBindTower:
        if modality not in MODALITIES:
            raise ConfigError(f"imagebind has no {modality!r} tower; towers: {', '.join(MODALITIES)}")
        return ImageBindTower(
            modality,
            self.modality_preprocessors[modality],
            self.modality_trunks[modality],
            self.modality_heads[modality],
            self.modality_postprocessors[modality],
        )

    def forward(
        self, inputs: dict[str, torch.Tensor], eos_index: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Official-style call: ``{modality: batch}`` → ``{modality: scaled embedding}``. Batches with a
        clip axis (B, S, ...) of 5 or more dims are encoded per clip and averaged, as upstream does."""
        result = {}
        for modality, x in inputs.items():
            clips = x.ndim >= 5
            b = x.shape[0]
            if clips:
                x = x.reshape(-1, *x.shape[2:])
            out = self.tower(modality)(x, eos_index if modality == "text" else None)["scaled"]
            result[modality] = out.reshape(b, -1, out.shape[-1]).mean(1) if clips else out
        return result
