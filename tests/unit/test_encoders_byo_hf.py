"""Hugging Face encoders from local folders (hf_clip, hf_audio) on tiny random configs saved to tmp dirs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from omnibind.encoders.base import ENCODERS
from omnibind.encoders.hf_audio import HFAudioEncoder
from omnibind.encoders.hf_clip import HFClipEncoder
from omnibind.errors import CheckpointError, ConfigError, InputError
from omnibind.modalities.base import AudioData, ImageData

WORDS = ["<pad>", "<bos>", "<eos>", "<unk>", "a", "cat", "dog", "photo", "of", "the"]
TEXT = dict(
    vocab_size=len(WORDS),
    hidden_size=16,
    intermediate_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    max_position_embeddings=16,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=0,
)
VISION = dict(
    hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=32, patch_size=8
)


def _save_tokenizer(folder: Path) -> None:
    """A word-level tokenizer that wraps text in <bos> … <eos>, saved as tokenizer.json (no download)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>", special_tokens=[("<bos>", 1), ("<eos>", 2)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )
    fast.save_pretrained(folder)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from transformers import (
        ASTConfig,
        ASTFeatureExtractor,
        ASTModel,
        CLIPConfig,
        CLIPImageProcessorPil,
        CLIPModel,
        SiglipConfig,
        SiglipModel,
        Wav2Vec2Config,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2Model,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperModel,
    )

    root = tmp_path_factory.mktemp("hf")
    torch.manual_seed(0)
    out = {k: root / k for k in ("clip", "siglip", "whisper", "wav2vec2", "ast")}
    CLIPModel(CLIPConfig(text_config=TEXT, vision_config=VISION, projection_dim=8)).save_pretrained(out["clip"])
    CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        out["clip"]
    )
    _save_tokenizer(out["clip"])
    SiglipModel(SiglipConfig(text_config=TEXT, vision_config=VISION)).save_pretrained(out["siglip"])
    _save_tokenizer(out["siglip"])  # no preprocessor_config.json: the encoder builds SigLIP's default
    whisper = WhisperConfig(
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        vocab_size=64,
        max_target_positions=16,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
    )
    WhisperModel(whisper).save_pretrained(out["whisper"])
    WhisperFeatureExtractor(feature_size=80).save_pretrained(out["whisper"])
    w2v = Wav2Vec2Config(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(16, 16),
        conv_stride=(5, 4),
        conv_kernel=(10, 8),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        vocab_size=8,
    )
    Wav2Vec2Model(w2v).save_pretrained(out["wav2vec2"])
    Wav2Vec2FeatureExtractor(return_attention_mask=False).save_pretrained(out["wav2vec2"])
    ast = ASTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, max_length=100)
    ASTModel(ast).save_pretrained(out["ast"])
    ASTFeatureExtractor(max_length=100).save_pretrained(out["ast"])
    return out


def _image(seed: int = 0, shape: tuple[int, int] = (40, 60)) -> ImageData:
    return ImageData(np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8))


def _audio(seconds: float, seed: int = 0) -> AudioData:
    rng = np.random.default_rng(seed)
    return AudioData((rng.standard_normal(int(seconds * 16000)) * 0.1).astype(np.float32))


def test_clip_image_and_text_match_the_hf_model(folders: dict[str, Path]) -> None:
    from transformers import CLIPImageProcessorPil, CLIPModel

    cls = ENCODERS.get("hf_clip")
    img_enc = cls.from_config({"path": str(folders["clip"]), "modality": "image"}, build=lambda c: None)  # type: ignore[arg-type, return-value]
    txt_enc = HFClipEncoder(path=str(folders["clip"]), modality="text")
    assert img_enc.__dict__["_shared_model"] is txt_enc.__dict__["_shared_model"]  # one load for both
    assert (img_enc.output_dim, img_enc.token_dim, txt_enc.output_dim) == (8, 16, 8)

    ref = CLIPModel.from_pretrained(str(folders["clip"]), local_files_only=True).eval()
    images = [_image(0), _image(1, (64, 48))]
    out = img_enc.encode(images)
    pixels = CLIPImageProcessorPil.from_pretrained(str(folders["clip"]))(
        images=[i.pixels for i in images], return_tensors="pt"
    )["pixel_values"]
    with torch.no_grad():
        expected = torch.nn.functional.normalize(ref.get_image_features(pixel_values=pixels).pooler_output, dim=-1)
    torch.testing.assert_close(out.pooled, expected)
    assert out.tokens is not None and out.tokens.shape == (2, 17, 16)

    texts = ["a cat", "a photo of the dog"]
    t = txt_enc.encode(texts)
    assert t.token_mask is not None and t.token_mask.sum(1).tolist() == [4, 7]
    alone = txt_enc.encode(["a cat"])
    torch.testing.assert_close(t.pooled[0], alone.pooled[0], rtol=1e-5, atol=1e-6)  # padding is masked
    ids = torch.tensor([[1, 4, 5, 2]])
    with torch.no_grad():
        ref_text = torch.nn.functional.normalize(ref.get_text_features(input_ids=ids).pooler_output, dim=-1)
    torch.testing.assert_close(alone.pooled, ref_text)


def test_siglip_uses_default_processor_and_max_length_text(folders: dict[str, Path]) -> None:
    from transformers import SiglipModel

    img_enc = HFClipEncoder(path=str(folders["siglip"]), modality="image", kind="siglip")
    assert type(img_enc.processor).__name__ == "SiglipImageProcessorPil"
    txt_enc = HFClipEncoder(path=str(folders["siglip"]), modality="text")
    ref = SiglipModel.from_pretrained(str(folders["siglip"]), local_files_only=True).eval()
    out = txt_enc.encode(["a cat"])
    assert out.tokens is not None and out.tokens.shape == (1, 16, 16)  # padded to max_position_embeddings
    ids = torch.tensor([[1, 4, 5, 2] + [0] * 12])
    with torch.no_grad():
        expected = torch.nn.functional.normalize(ref.get_text_features(input_ids=ids).pooler_output, dim=-1)
    torch.testing.assert_close(out.pooled, expected)
    im = img_enc.encode([_image()])
    assert im.pooled.shape == (1, 16) and torch.allclose(im.pooled.norm(dim=-1), torch.ones(1))


def test_hf_clip_errors_are_typed(folders: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"config\.json"):
        HFClipEncoder(path=str(tmp_path / "nowhere"), modality="image")
    with pytest.raises(ConfigError, match="path"):
        HFClipEncoder(modality="image")
    with pytest.raises(ConfigError, match="modality"):
        HFClipEncoder(path=str(folders["clip"]), modality="audio")
    with pytest.raises(ConfigError, match="model_type"):
        HFClipEncoder(path=str(folders["clip"]), modality="image", kind="siglip")
    with pytest.raises(ConfigError, match="whisper"):
        HFClipEncoder(path=str(folders["whisper"]), modality="image")
    enc = HFClipEncoder(path=str(folders["clip"]), modality="image")
    with pytest.raises(InputError, match="uint8"):
        enc.encode([ImageData(np.zeros((8, 8), np.uint8))])
    with pytest.raises(InputError, match="str"):
        HFClipEncoder(path=str(folders["clip"]), modality="text").encode([3])


def test_config_roundtrip_keeps_fingerprint(folders: dict[str, Path]) -> None:
    enc = HFClipEncoder(path=str(folders["clip"]), modality="text")
    again = HFClipEncoder.from_config(dict(enc.params), build=lambda c: None)  # type: ignore[arg-type, return-value]
    assert again.fingerprint() == enc.fingerprint()
    assert HFClipEncoder(path=str(folders["clip"]), modality="image").fingerprint() != enc.fingerprint()
    audio = HFAudioEncoder(path=str(folders["whisper"]))
    assert HFAudioEncoder.from_config(dict(audio.params), build=lambda c: None).fingerprint() == audio.fingerprint()  # type: ignore[arg-type, return-value]


def test_whisper_encoder_masks_padding_frames(folders: dict[str, Path]) -> None:
    from transformers import WhisperFeatureExtractor, WhisperModel

    enc = ENCODERS.get("hf_audio")(path=str(folders["whisper"]))
    assert (enc.output_dim, enc.token_dim) == (16, 16)
    out = enc.encode([_audio(1.0), _audio(2.5, 1)])
    assert out.token_mask is not None and out.token_mask.sum(1).tolist() == [50, 125]  # 50 frames per second
    assert out.tokens is not None and out.tokens.shape == (2, 1500, 16)
    torch.testing.assert_close(out.pooled[1], out.tokens[1, :125].mean(0))
    alone = enc.encode([_audio(1.0)])
    torch.testing.assert_close(out.pooled[0], alone.pooled[0])
    ref = WhisperModel.from_pretrained(str(folders["whisper"]), local_files_only=True).eval()
    feats = WhisperFeatureExtractor.from_pretrained(str(folders["whisper"]))(
        _audio(1.0).waveform, sampling_rate=16000, return_tensors="pt"
    )
    with torch.no_grad():
        hidden = ref.get_encoder()(feats["input_features"]).last_hidden_state
    torch.testing.assert_close(alone.pooled[0], hidden[0, :50].mean(0))


def test_wav2vec2_runs_unmasked_models_per_clip(folders: dict[str, Path]) -> None:
    enc = HFAudioEncoder(path=str(folders["wav2vec2"]), max_seconds=2.0)
    clips = [_audio(0.5), _audio(3.0, 1)]  # the second is cut to max_seconds
    out = enc.encode(clips)
    lengths = enc.net._get_feat_extract_output_lengths(torch.tensor([8000, 32000])).tolist()
    assert out.token_mask is not None and out.token_mask.sum(1).tolist() == lengths
    assert out.tokens is not None and out.tokens.shape[1] == lengths[1]
    for i, clip in enumerate(clips):
        torch.testing.assert_close(out.pooled[i], enc.encode([clip]).pooled[0])


def test_ast_pools_with_its_own_head_and_rejects_bad_audio(folders: dict[str, Path]) -> None:
    enc = HFAudioEncoder(path=str(folders["ast"]))
    out = enc.encode([_audio(0.5), _audio(1.5, 1)])
    assert out.pooled.shape == (2, 16) and out.token_mask is None
    assert not torch.allclose(out.pooled[0], out.pooled[1])
    with pytest.raises(InputError, match="16 kHz"):
        enc.encode([AudioData(np.zeros(800, np.float32), sample_rate=8000)])
    with pytest.raises(InputError, match="AudioData"):
        enc.encode([_image()])
    with pytest.raises(ConfigError, match="clip"):
        HFAudioEncoder(path=str(folders["clip"]))


def test_clip_meta_network_and_declared_arch(folders: dict[str, Path]) -> None:
    """`omnibind plan` sizes the tower on the meta device from `arch` alone or from the folder's config,
    with the built encoder's parameters and widths; a declared `arch` is checked against the folder."""
    cls = ENCODERS.get("hf_clip")
    built = HFClipEncoder(path=str(folders["clip"]), modality="image")
    arch = {"model_type": "clip", "projection_dim": 8, "vision_config": VISION, "text_config": TEXT}
    for params in ({"path": "/nowhere", "modality": "image", "arch": arch}, {"path": str(folders["clip"])}):
        sized = cls.meta_network(params, build=lambda c: None)  # type: ignore[arg-type, return-value]
        assert all(p.is_meta for p in sized.network.parameters())
        assert sum(p.numel() for p in sized.network.parameters()) == sum(p.numel() for p in built.parameters())
        assert sized.dims == built.feature_dims()
    HFClipEncoder(path=str(folders["clip"]), modality="image", arch=arch)  # the right description loads
    wrong = {**arch, "vision_config": {**VISION, "num_hidden_layers": 24}}
    with pytest.raises(ConfigError, match="vision_config.num_hidden_layers: declared 24, loaded 1"):
        HFClipEncoder(path=str(folders["clip"]), modality="image", arch=wrong)
    assert "arch" not in built.params  # configs without arch keep their fingerprints
