"""Regenerate the ImageBind equivalence fixture (tests/fixtures/imagebind_tiny*) from the official code.

The fixture is data produced by facebookresearch/ImageBind's own model definition and preprocessing on
tiny random weights; tests/unit/test_imagebind_equivalence.py runs omnibind's reimplementation on the same
weights and inputs and compares. No official code is copied into the project: this script imports it from
a checkout outside the project, in a scratch environment (it needs timm, torchvision, torchaudio and
pytorchvideo, which omnibind does not depend on)::

    git --git-dir=<mirror of facebookresearch/ImageBind> archive HEAD | tar -x -C /tmp/imagebind_official
    python3 -m venv /tmp/ibvenv
    /tmp/ibvenv/bin/pip install torch torchvision timm einops ftfy regex iopath numpy safetensors \
        'setuptools<81' pillow
    /tmp/ibvenv/bin/pip install --no-deps torchaudio pytorchvideo   # kaldi fbank and the clip sampler only
    /tmp/ibvenv/bin/python scripts/make_imagebind_fixture.py --official /tmp/imagebind_official \
        --commit <the checkout's commit hash>

Writes four files (about 1.5 MB together):

- ``imagebind_tiny_weights.safetensors``: the official ``ImageBindModel`` state dict at tiny sizes, every
  tensor randomised (LayerNorm gains and biases too, so a swapped norm would show) and stored as float16;
  the official model ran on exactly these values (rounded to float16 before the forward passes).
- ``imagebind_tiny_bpe.txt.gz``: a synthetic CLIP-format merges file with exactly as many merges as the
  official tokenizer reads (plus some it must ignore), so its vocabulary has the official 49408 ids.
- ``imagebind_tiny.safetensors``: the model inputs, the official outputs per modality and the official
  preprocessing outputs (image, audio, video transforms).
- ``imagebind_tiny.json``: the official commit, the sizes, the texts and their official token ids, the
  clip timepoints, and how the compact inputs expand.

Compact inputs: depth, thermal and video are stored at low resolution as int8 multiples of 1/32 and
expanded by nearest-neighbour repetition; the expansion is exact in float32, so test and generator feed
bit-identical tensors. The I/O that the official loaders do from files (PNG via PIL, WAV via
torchaudio.load, video decoding via decord) is done here from in-memory arrays; the transforms after it
are the official ones.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.metadata
import importlib.util
import itertools
import json
import sys
from collections import Counter
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures"
SEED = 20240614

# Tiny sizes, in the official constructor's argument names. Patch sizes differ from Huge on purpose, so
# the test shows omnibind's sizes are honoured rather than assumed.
OFFICIAL_ARGS = {
    "video_frames": 2,
    "kernel_size": (2, 16, 16),
    "audio_kernel_size": 16,
    "audio_stride": 12,
    "out_embed_dim": 16,
    "vision_embed_dim": 16,
    "vision_num_blocks": 2,
    "vision_num_heads": 2,
    "audio_embed_dim": 16,
    "audio_num_blocks": 2,
    "audio_num_heads": 4,
    "audio_num_mel_bins": 128,
    "audio_target_len": 204,
    "audio_drop_path": 0.1,  # as in imagebind_huge(); identity in eval mode
    "text_embed_dim": 8,  # the text tower's 49408-row embedding dominates the file size
    "text_num_blocks": 2,
    "text_num_heads": 2,
    "depth_embed_dim": 8,
    "depth_kernel_size": 32,
    "depth_num_blocks": 2,
    "depth_num_heads": 2,
    "thermal_embed_dim": 16,
    "thermal_kernel_size": 28,
    "thermal_num_blocks": 2,
    "thermal_num_heads": 4,
    "imu_embed_dim": 16,
    "imu_num_blocks": 2,
    "imu_num_heads": 2,
    "imu_drop_path": 0.7,  # as in imagebind_huge(); identity in eval mode
}
# The same sizes in omnibind's ImageBindConfig names (the official constructor fixes image size 224,
# context 77, vocabulary 49408, IMU length 2000 and IMU kernel 8, which are omnibind's defaults).
OMNIBIND_ARCH = {
    "out_embed_dim": 16,
    "video_frames": 2,
    "vision_embed_dim": 16,
    "vision_num_blocks": 2,
    "vision_num_heads": 2,
    "vision_patch": 16,
    "text_embed_dim": 8,
    "text_num_blocks": 2,
    "text_num_heads": 2,
    "audio_embed_dim": 16,
    "audio_num_blocks": 2,
    "audio_num_heads": 4,
    "audio_kernel": 16,
    "audio_stride": 12,
    "audio_num_mel_bins": 128,
    "audio_target_len": 204,
    "depth_embed_dim": 8,
    "depth_num_blocks": 2,
    "depth_num_heads": 2,
    "depth_patch": 32,
    "thermal_embed_dim": 16,
    "thermal_num_blocks": 2,
    "thermal_num_heads": 4,
    "thermal_patch": 28,
    "imu_embed_dim": 16,
    "imu_num_blocks": 2,
    "imu_num_heads": 2,
}

# Texts for the tokenizer and the text tower: case and spacing, HTML entities (unescaped twice upstream),
# the quote/ligature/width repairs ftfy makes, digits, emoji, a literal special token, truncation.
TEXTS = [
    "a dog barking in the rain",
    "  A Photo of a CAT!!  on\tthe   mat ",
    "it’s a “quoted” ﬁne café, isn’t it",
    "&amp;lt;b&amp;gt; bold &quot;words&quot;",
    "Ｆｕｌｌｗｉｄｔｈ ｌｅｔｔｅｒｓ and ｶﾀｶﾅ",
    "numbers 12345 and 3.14, emoji 🐶🎵",
    "before <|endoftext|> after",
    "",
    "\x1b[31mred\x1b[0m alert: cp\x93quoted\x94 \x85 and \x00nul\ufeff",
    "&amp;amp;amp; &EACUTE;t&eacute; &ampx; &#128054; &#x41;",
    "<b>&amp;lt;kept&amp;gt;</b> because of the tag",
    "e\u0301te\u0301 \u3000 ideographic\u00a0nbsp\u2028line",
    "\u0133ssel \u01c6 \ufb05 \ufb06 \u0149",
    " ".join(["the quick brown fox jumps over the lazy dog"] * 12),
]
CORPUS = (
    "a dog is barking in the rain while a cat sits on the mat . the quick brown fox jumps over the lazy "
    "dog . a photo of a bird singing in a tree . the sound of a car engine and a siren in the city . "
    "people are talking and laughing in a room . water is running in a stream near the forest . "
    "a man plays the guitar and a woman sings . the train passes by the station at night ."
)
LEARNED_MERGES = 400
OFFICIAL_MERGES = 49152 - 256 - 2  # how many the official tokenizer reads (merges[1 : 49152 - 256 - 2 + 1])
EXTRA_MERGES = 7  # beyond what it reads: both tokenizers must ignore these

# Compact inputs: int8 multiples of 1/32, repeated `scale` times along each spatial axis.
COMPACT = {"vision": 8, "audio": 4, "depth": 4, "thermal": 4, "video": 8}
# The preprocessed image and audio are stored at every STRIDE-th position of their last two axes, the
# video (5 clips × 3 crops × (3, 2, 224, 224) in full) at every VIDEO_STRIDE-th.
STRIDE, VIDEO_STRIDE = 4, 8


def _atomic():
    """omnibind.atomic (stdlib only), loaded by path: this environment has not omnibind's dependencies."""
    spec = importlib.util.spec_from_file_location("omnibind_atomic", ROOT / "omnibind" / "atomic.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def expand(compact: torch.Tensor, scale: int) -> torch.Tensor:
    """int8 (…, h, w) → float32 (…, h·scale, w·scale): value/32, each pixel repeated (exact)."""
    x = compact.to(torch.float32) / 32.0
    return x.repeat_interleave(scale, dim=-2).repeat_interleave(scale, dim=-1)


# --- the synthetic BPE vocabulary -------------------------------------------------------------------
def learn_merges(byte_encoder: dict[int, str], n: int) -> list[tuple[str, str]]:
    """Plain BPE learning over CORPUS in CLIP's symbol space (bytes as printable symbols, ``</w>``)."""
    words = Counter(CORPUS.split())
    seqs = {w: [byte_encoder[b] for b in w.encode()] for w in words}
    for s in seqs.values():
        s[-1] += "</w>"
    merges: list[tuple[str, str]] = []
    while len(merges) < n:
        pairs: Counter[tuple[str, str]] = Counter()
        for w, s in seqs.items():
            for pair in itertools.pairwise(s):
                pairs[pair] += words[w]
        if not pairs:
            break
        best = max(pairs, key=lambda p: (pairs[p], p))
        merges.append(best)
        for w, s in seqs.items():
            out, i = [], 0
            while i < len(s):
                if i + 1 < len(s) and (s[i], s[i + 1]) == best:
                    out.append(s[i] + s[i + 1])
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out
    return merges


def merges_file(byte_encoder: dict[int, str]) -> bytes:
    """Learned merges, then byte-pair fillers (each a new, distinct token) up to the official count."""
    merges = learn_merges(byte_encoder, LEARNED_MERGES)
    seen = {a + b for a, b in merges} | set(byte_encoder.values()) | {s + "</w>" for s in byte_encoder.values()}
    symbols = list(byte_encoder.values())
    # Fillers pair symbols from the end of the table (non-ASCII bytes) first, so the learned merges keep
    # deciding how ordinary words split.
    for a in reversed(symbols):
        for b in reversed(symbols):
            if len(merges) >= OFFICIAL_MERGES + EXTRA_MERGES:
                break
            if a + b not in seen:
                merges.append((a, b))
                seen.add(a + b)
    text = "#version: 0.2 (synthetic, omnibind test fixture)\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n"
    return gzip.compress(text.encode("utf-8"), mtime=0)


def ftfy_map() -> dict[str, str]:
    """``ftfy.fix_text("a" + c + "b")`` for every code point ``c`` it changes (planes 0-1 and the tag
    block; surrogates cannot be in a str): omnibind's stand-in is checked against it point by point."""
    import ftfy

    out = {}
    for cp in [*range(0x20000), *range(0xE0000, 0xE0100)]:
        if 0xD800 <= cp <= 0xDFFF:
            continue
        text = f"a{chr(cp)}b"
        fixed = ftfy.fix_text(text)
        if fixed != text:
            out[f"{cp:04X}"] = fixed
    return out


# --- weights ------------------------------------------------------------------------------------------
def randomise(model: torch.nn.Module, gen: torch.Generator) -> None:
    """Perturb every floating tensor (the official init leaves LayerNorms at 1/0 and biases at 0, which
    would hide a mis-mapped norm or bias), then round to float16 so the stored file is exact."""
    with torch.no_grad():
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            if not t.is_floating_point() or name.endswith(".mask"):
                continue  # the causal mask is a fixed buffer
            noise = torch.randn(t.shape, generator=gen)
            if name.endswith("log_logit_scale"):
                t.add_(0.1 * noise)
            elif t.ndim <= 1 or bool((t == t.flatten()[0]).all()):
                t.add_(0.2 * noise)  # norms and biases
            else:
                t.add_(0.02 * noise)
            t.copy_(t.half().float())


# --- official preprocessing ---------------------------------------------------------------------------
def official_image(data, pixels: np.ndarray, tmp: Path) -> torch.Tensor:
    from PIL import Image

    path = tmp / "image.png"
    Image.fromarray(pixels).save(path)  # lossless: the loader reads back these pixels
    return data.load_and_transform_vision_data([str(path)], "cpu")


def official_audio(data, waveform: torch.Tensor) -> torch.Tensor:
    """``load_and_transform_audio_data`` with its file read (torchaudio.load) answered from memory."""
    original = data.torchaudio.load
    data.torchaudio.load = lambda _path: (waveform.clone()[None], 16000)
    try:
        return data.load_and_transform_audio_data(["memory.wav"], "cpu")
    finally:
        data.torchaudio.load = original


def official_video(data, frames: torch.Tensor, duration: float, fps: float) -> tuple[torch.Tensor, list]:
    """``load_and_transform_video_data`` after decoding: the clip sampler picks windows of the decoded
    frames (T, H, W, 3) at ``fps``, then the official frame subsampling, scaling, normalisation and
    crops run on them."""
    from pytorchvideo import transforms as pv_transforms
    from pytorchvideo.data.clip_sampling import ConstantClipsPerVideoSampler
    from torchvision import transforms

    sampler = ConstantClipsPerVideoSampler(clip_duration=2, clips_per_video=5)
    points = data.get_clip_timepoints(sampler, duration)
    times = torch.arange(frames.shape[0], dtype=torch.float64) / fps
    video_transform = transforms.Compose(
        [
            pv_transforms.ShortSideScale(224),
            data.NormalizeVideo(mean=(0.48145466, 0.4578275, 0.40821073), std=(0.26862954, 0.26130258, 0.27577711)),
        ]
    )
    clips = []
    for start, end in points:
        # EncodedVideo.get_clip returns the frames with start <= t < end, as (C, T, H, W)
        inside = (times >= float(start)) & (times < float(end))
        clip = frames[inside].permute(3, 0, 1, 2).to(torch.float32)
        clip = pv_transforms.UniformTemporalSubsample(num_samples=2)(clip) / 255.0
        clips.append(video_transform(clip))
    views = data.SpatialCrop(224, num_crops=3)(clips)
    return torch.stack(views), [[str(Fraction(s)), str(Fraction(e))] for s, e in points]


# --- main ---------------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--official", required=True, help="an extracted facebookresearch/ImageBind checkout")
    ap.add_argument("--commit", required=True, help="that checkout's commit hash (recorded in the fixture)")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(args.official).resolve()))
    # pytorchvideo 0.1.5 imports a torchvision module that was renamed (functional_tensor →
    # _functional_tensor); alias it so ``imagebind.data`` imports. Only its augmentations use it.
    import torchvision.transforms._functional_tensor as functional_tensor

    sys.modules.setdefault("torchvision.transforms.functional_tensor", functional_tensor)
    from imagebind import data
    from imagebind.models import imagebind_model
    from imagebind.models.multimodal_preprocessors import SimpleTokenizer, bytes_to_unicode
    from safetensors.torch import save

    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    OUT.mkdir(parents=True, exist_ok=True)
    atomic = _atomic()
    tmp = OUT / ".tmp_make_imagebind_fixture"
    tmp.mkdir(exist_ok=True)

    model = imagebind_model.ImageBindModel(**OFFICIAL_ARGS)
    randomise(model, gen)
    model.eval()
    state = {k: v.detach().contiguous().half() if v.is_floating_point() else v for k, v in model.state_dict().items()}

    # Tokenizer: the synthetic vocabulary through the official SimpleTokenizer.
    bpe = merges_file(bytes_to_unicode())
    bpe_path = tmp / "bpe.txt.gz"
    bpe_path.write_bytes(bpe)
    tokenizer = SimpleTokenizer(bpe_path=str(bpe_path))
    assert len(tokenizer.encoder) == 49408, len(tokenizer.encoder)
    text_ids = tokenizer(TEXTS)  # (len(TEXTS), 77)

    # Raw inputs for the official preprocessing.
    yy, xx = np.mgrid[0:90, 0:120]
    pixels = np.stack([(xx * 0.8 + yy * 0.3) % 256, (yy * 1.1) % 256, (xx * yy * 0.01) % 256], -1)
    pixels = np.clip(pixels + rng.normal(0, 25, pixels.shape), 0, 255).astype(np.uint8)
    sr = 16000
    t = np.arange(int(2.5 * sr)) / sr
    wave = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 3000 * t * (1 + t))  # a tone and a chirp
    wave += rng.normal(0, 0.05, t.size)
    wave_i16 = np.clip(np.round(wave * 32767), -32768, 32767).astype(np.int16)  # stored exactly
    waveform = torch.from_numpy(wave_i16.astype(np.float32) / 32768.0)
    video_fps, video_duration = 4.0, 5.0
    video_frames = rng.integers(0, 256, (20, 30, 40, 3), dtype=np.uint8)  # 20 frames = 5 s at 4 fps

    image_pre = official_image(data, pixels, tmp)  # (1, 3, 224, 224)
    audio_pre = official_audio(data, waveform)  # (1, 3, 1, 128, 204)
    video_pre, video_points = official_video(data, torch.from_numpy(video_frames), video_duration, video_fps)
    audio_sampler = data.ConstantClipsPerVideoSampler(clip_duration=2, clips_per_video=3)
    audio_points = data.get_clip_timepoints(audio_sampler, waveform.numel() / sr)

    # Model inputs.
    compact = {
        "vision": torch.randint(-64, 64, (2, 3, 28, 28), generator=gen, dtype=torch.int8),
        "audio": torch.randint(-64, 64, (1, 3, 1, 32, 51), generator=gen, dtype=torch.int8),
        "depth": torch.randint(-64, 64, (2, 1, 56, 56), generator=gen, dtype=torch.int8),
        "thermal": torch.randint(0, 32, (2, 1, 56, 56), generator=gen, dtype=torch.int8),
        "video": torch.randint(-64, 64, (2, 2, 3, 2, 28, 28), generator=gen, dtype=torch.int8),
        "imu": torch.randint(-96, 96, (2, 6, 2000), generator=gen, dtype=torch.int8),
    }
    inputs = {
        "vision": expand(compact["vision"], COMPACT["vision"]),
        "text": text_ids,
        "audio": expand(compact["audio"], COMPACT["audio"]),  # (B, clips, 1, bins, frames): per clip, averaged
        "depth": expand(compact["depth"], COMPACT["depth"]),
        "thermal": expand(compact["thermal"], COMPACT["thermal"]),
        "imu": compact["imu"].to(torch.float32) / 32.0,
    }
    video_in = expand(compact["video"], COMPACT["video"])  # (B, clips, 3, 2, 224, 224)

    tensors: dict[str, torch.Tensor] = {f"compact.{k}": v for k, v in compact.items()}
    tensors["raw.image"] = torch.from_numpy(pixels)
    tensors["raw.audio_int16"] = torch.from_numpy(wave_i16)
    tensors["raw.video_frames"] = torch.from_numpy(video_frames)
    tensors["pre.image"] = image_pre[0, :, ::STRIDE, ::STRIDE].contiguous()
    tensors["pre.audio"] = audio_pre[0, ..., ::STRIDE, ::STRIDE].contiguous()
    tensors["pre.video"] = video_pre[..., ::VIDEO_STRIDE, ::VIDEO_STRIDE].contiguous()
    tensors["in.text"] = text_ids
    with torch.no_grad():
        outputs = model(inputs)
        outputs["video"] = model({"vision": video_in})["vision"]
        for m, x in [*inputs.items(), ("video", video_in)]:
            tower = "vision" if m == "video" else m
            x = x.reshape(-1, *x.shape[2:]) if x.ndim >= 5 else x
            pre = model.modality_preprocessors[tower](**{tower: x})
            trunk = model.modality_trunks[tower](**pre["trunk"])
            head = model.modality_heads[tower]
            norm = head.proj[0] if tower == "text" else head[0]
            tensors[f"tokens.{m}"] = norm(trunk).contiguous()
        # End to end: the official loaders' output through the official model.
        outputs["image_from_raw"] = model({"vision": image_pre})["vision"]
        outputs["audio_from_raw"] = model({"audio": audio_pre})["audio"]
        outputs["video_from_raw"] = model({"vision": video_pre[None]})["vision"]
    for m, v in outputs.items():
        tensors[f"out.{m}"] = v.contiguous()

    meta = {
        "official": {
            "repository": "facebookresearch/ImageBind",
            "commit": args.commit,
            "files": [
                "imagebind/models/imagebind_model.py",
                "imagebind/models/multimodal_preprocessors.py",
                "imagebind/models/transformer.py",
                "imagebind/models/helpers.py",
                "imagebind/data.py",
            ],
            "constructor_args": {k: list(v) if isinstance(v, tuple) else v for k, v in OFFICIAL_ARGS.items()},
            "torch": torch.__version__,
        },
        "omnibind_arch": OMNIBIND_ARCH,
        "seed": SEED,
        "weights_dtype": "float16",
        "texts": TEXTS,
        "ftfy": {"version": importlib.metadata.version("ftfy"), "changed": ftfy_map()},
        "compact_scale": COMPACT,
        "compact_divisor": 32,
        "stride": STRIDE,
        "video_stride": VIDEO_STRIDE,
        "audio_seconds": waveform.numel() / sr,
        "audio_clip_points": [[str(Fraction(s)), str(Fraction(e))] for s, e in audio_points],
        "video": {"fps": video_fps, "duration": video_duration, "clip_points": video_points},
        "regenerate": "python scripts/make_imagebind_fixture.py --official DIR --commit HASH (see its docstring)",
    }
    atomic.atomic_write_bytes(OUT / "imagebind_tiny_weights.safetensors", save(state))
    atomic.atomic_write_bytes(OUT / "imagebind_tiny.safetensors", save(tensors))
    atomic.atomic_write_bytes(OUT / "imagebind_tiny_bpe.txt.gz", bpe)
    atomic.atomic_write_text(OUT / "imagebind_tiny.json", json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
    for p in tmp.iterdir():
        p.unlink()
    tmp.rmdir()
    for name in ("imagebind_tiny_weights.safetensors", "imagebind_tiny.safetensors", "imagebind_tiny_bpe.txt.gz"):
        print(f"{OUT / name}: {(OUT / name).stat().st_size / 1e6:.2f} MB")
    print({m: tuple(v.shape) for m, v in outputs.items()})


if __name__ == "__main__":
    main()
