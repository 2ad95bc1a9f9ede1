"""Audio encoders from a local Hugging Face folder: the Whisper encoder (Radford et al. 2022),
wav2vec 2.0 (Baevski et al. 2020) and its relatives (HuBERT, WavLM, data2vec-audio, UniSpeech, SEW),
and the Audio Spectrogram Transformer (Gong et al. 2021).

Registry name ``hf_audio``; params ``path`` (a ``save_pretrained`` folder with the model's feature
extractor), ``dtype``, ``max_seconds`` (longer audio is cut; Whisper sees at most its 30 s window).
Features come from the folder's own feature extractor (numpy: no torchaudio needed).

``tokens`` are the last hidden states with a mask of the frames that hold real audio; ``pooled`` is their
mean over those frames (AST: its own pooled output, since its tokens are time × frequency patches).
These features are not in a shared space: give them a trained bind head (``linear`` or ``mlp``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from omnibind.encoders.base import ENCODERS, Encoder, EncoderOutput
from omnibind.encoders.hf_clip import (
    check_dtype,
    folder_fingerprint,
    load_local,
    local_model_dir,
    model_type,
    shared_model,
)
from omnibind.errors import ConfigError, InputError
from omnibind.modalities.base import AudioData

# model_type → how frames are produced: "whisper" (log-mel, fixed 30 s), "wave" (raw waveform), "ast".
FAMILIES = {
    "whisper": "whisper",
    "wav2vec2": "wave",
    "wav2vec2-conformer": "wave",
    "hubert": "wave",
    "wavlm": "wave",
    "data2vec-audio": "wave",
    "unispeech": "wave",
    "unispeech-sat": "wave",
    "sew": "wave",
    "sew-d": "wave",
    "audio-spectrogram-transformer": "ast",
}
SAMPLE_RATE = 16000


@ENCODERS.register("hf_audio")
class HFAudioEncoder(Encoder):
    """A local Hugging Face audio encoder (see the module docstring)."""

    modalities = ("audio",)
    trainable = False

    def __init__(self, path: str | None = None, dtype: str = "float32", max_seconds: float = 30.0):
        super().__init__(path=path, dtype=dtype, max_seconds=max_seconds)
        check_dtype(dtype)
        if max_seconds <= 0:
            raise ConfigError(f"hf_audio max_seconds must be positive, got {max_seconds}")
        self.folder = local_model_dir(path, "hf_audio")
        found = model_type(self.folder)
        if found not in FAMILIES:
            raise ConfigError(f"hf_audio: {self.folder} holds a {found!r} model; supported: {', '.join(FAMILIES)}")
        self.family = FAMILIES[found]
        self.max_seconds = float(max_seconds)
        from transformers import AutoFeatureExtractor

        self.extractor = load_local(self.folder, AutoFeatureExtractor.from_pretrained, "hf_audio feature extractor")
        if getattr(self.extractor, "sampling_rate", SAMPLE_RATE) != SAMPLE_RATE:
            raise ConfigError(f"hf_audio: {self.folder}'s feature extractor expects {self.extractor.sampling_rate} Hz")
        model = shared_model(self.folder, dtype, "hf_audio model")
        self.__dict__["_shared_model"] = model
        # Whisper folders hold encoder + decoder; only the encoder is used (and registered).
        self.net: nn.Module = model.get_encoder() if self.family == "whisper" else model
        cfg = model.config
        self.output_dim = int(cfg.d_model if self.family == "whisper" else cfg.hidden_size)
        self.token_dim = self.output_dim

    def fingerprint(self) -> str:
        return folder_fingerprint("hf_audio", self.params, self.folder)

    @torch.no_grad()
    def encode(self, items: list[Any]) -> EncoderOutput:
        """Mono 16 kHz ``AudioData`` batch → pooled (B, D), tokens (B, L, D) and their mask."""
        if not items:
            raise InputError("<batch>", "empty batch", modality="audio")
        waves = [self._wave(item, i) for i, item in enumerate(items)]
        if self.family == "wave" and not getattr(self.extractor, "return_attention_mask", False):
            # These checkpoints (group-norm wav2vec2-base style) were trained without attention masks:
            # zero padding changes their outputs, so each clip runs on its own.
            rows = [self._run([w]) for w in waves]
            return _stack(rows)
        return self._run(waves)

    def _wave(self, item: Any, i: int) -> np.ndarray:
        if not isinstance(item, AudioData):
            raise InputError(f"<item {i}>", f"hf_audio takes AudioData, got {type(item).__name__}", modality="audio")
        if item.sample_rate != SAMPLE_RATE:
            raise InputError(f"<item {i}>", f"audio must be 16 kHz, got {item.sample_rate} Hz", modality="audio")
        w = np.asarray(item.waveform, dtype=np.float32)
        if w.ndim != 1 or w.size == 0:
            raise InputError(f"<item {i}>", f"audio must be a non-empty mono waveform, got {w.shape}", modality="audio")
        return w[: int(self.max_seconds * SAMPLE_RATE)]

    def _run(self, waves: list[np.ndarray]) -> EncoderOutput:
        dtype = next(self.net.parameters()).dtype
        if self.family == "whisper":
            feats = self.extractor(waves, sampling_rate=SAMPLE_RATE, return_attention_mask=True, return_tensors="pt")
            hidden = self.net(feats["input_features"].to(self.device, dtype)).last_hidden_state
            frames = feats["attention_mask"].sum(1)
            valid = ((frames + 1) // 2).clamp(1, hidden.shape[1])  # the encoder's stride-2 convolution
            return _masked(hidden, valid.to(self.device))
        if self.family == "ast":
            feats = self.extractor(waves, sampling_rate=SAMPLE_RATE, return_tensors="pt")
            out = self.net(feats["input_values"].to(self.device, dtype))
            return EncoderOutput(pooled=out.pooler_output.float(), tokens=out.last_hidden_state.float())
        feats = self.extractor(
            waves, sampling_rate=SAMPLE_RATE, padding=True, return_attention_mask=True, return_tensors="pt"
        )
        mask = feats["attention_mask"].to(self.device)
        kwargs = {"attention_mask": mask} if getattr(self.extractor, "return_attention_mask", False) else {}
        hidden = self.net(feats["input_values"].to(self.device, dtype), **kwargs).last_hidden_state
        lengths = self.net._get_feat_extract_output_lengths(mask.sum(1))
        return _masked(hidden, lengths.clamp(1, hidden.shape[1]))


def _masked(hidden: torch.Tensor, valid: torch.Tensor) -> EncoderOutput:
    """Mean over each row's first ``valid`` frames, and the matching token mask."""
    mask = torch.arange(hidden.shape[1], device=hidden.device)[None, :] < valid[:, None]
    h = hidden.float()
    pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    return EncoderOutput(pooled=pooled, tokens=h, token_mask=mask)


def _stack(rows: list[EncoderOutput]) -> EncoderOutput:
    """Per-item outputs → one batch, tokens right-padded with zeros and masked."""
    longest = max(r.tokens.shape[1] for r in rows)  # type: ignore[union-attr]
    tokens, masks = [], []
    for r in rows:
        pad = longest - r.tokens.shape[1]  # type: ignore[union-attr]
        tokens.append(nn.functional.pad(r.tokens[0], (0, 0, 0, pad)))  # type: ignore[index]
        masks.append(nn.functional.pad(r.token_mask[0], (0, pad), value=False))  # type: ignore[index]
    return EncoderOutput(
        pooled=torch.cat([r.pooled for r in rows]), tokens=torch.stack(tokens), token_mask=torch.stack(masks)
    )
