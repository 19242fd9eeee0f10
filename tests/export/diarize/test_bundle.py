"""MOSS-Transcribe-Diarize through export and runtime: the F32 bundle against the PyTorch reference
on clips of one, two and three 30 s windows, and the encoder against transformers' own Whisper."""

import dataclasses

import numpy as np
import pytest

import runtime.placement.plan as plan_mod
from runtime.errors import OptionsError, PromptError
from runtime.manifest import load_manifest
from runtime.placement.plan import kv_gb
from runtime.pipeline import Pipeline
from runtime.sampling import GenerationOptions
from tests.conftest import clip


@pytest.fixture(scope="module")
def reference(diarize_ckpt):
    from export.checkpoint import Checkpoint
    from export.reference import MossAudioReference

    return MossAudioReference(Checkpoint.open(diarize_ckpt))


@pytest.fixture(scope="module")
def pipe(diarize_bundle):
    return Pipeline.load(diarize_bundle, device="cpu", decoder="f32", kv_type="f32", flash_attn="off")


def test_the_manifest_says_how_this_family_runs(diarize_bundle):
    m = load_manifest(diarize_bundle)
    assert m.model.family == "moss-transcribe-diarize" and m.model.n_deepstack == 0
    assert {d.arch for d in m.decoders.values()} == {"qwen3"}
    a = m.audio
    assert (a.n_mels, a.mel_dtype, a.window_samples, a.chunk_frames, a.chunk_tokens) == (80, "float32", 480000, 3000, 375)
    assert a.tokens_per_second == 12.5 and m.prompt.marker_every_seconds == 5
    assert m.prompt.template == "<|im_start|>user\n{audio}{question}<|im_end|>\n<|im_start|>assistant\n"
    assert m.prompt.default_question.startswith("请将音频转写为文本")


# 7 s: one window, marker "5"; 33 s: two windows, markers 5..30; 65 s: three, markers 5..65 (digits counted)
@pytest.mark.parametrize("seconds,digits", [(7.0, 1), (33.0, 11), (65.0, 25)])
def test_f32_bundle_greedy_equals_reference(pipe, reference, seconds, digits):
    x = clip(seconds, seed=3)
    prompt, rows = reference.prepare([x], reference.ckpt.prompt_info.default_question)
    expected = reference.generate(prompt, rows, GenerationOptions(max_new_tokens=24, temperature=0))
    ids, tokens = prompt.ids.tolist(), reference.ckpt.token_ids
    span = ids[ids.index(tokens.audio_start) + 1 : ids.index(tokens.audio_end)]
    assert sum(t in tokens.digits for t in span) == digits
    assert span.index(tokens.digits[5]) == 62  # upstream: a marker every int(12.5 * 5) rows, 0.8 % behind time
    ours = pipe.encode_audio(x)
    assert ours.shape == tuple(rows.shape)
    # measured 1.5e-6 to 1.9e-6 relative (ONNX FP32 against PyTorch FP32, 7/33/65 s)
    assert np.abs(ours - rows.numpy()).max() <= 1e-5 * np.abs(rows.numpy()).max()
    result = pipe.generate(x, temperature=0, max_new_tokens=24)
    assert result.prompt_token_ids == prompt.ids.tolist()
    assert result.token_ids == expected


def test_encoder_equals_transformers_whisper(pipe, diarize_ckpt):
    """An independent encoder: transformers' WhisperEncoder with the checkpoint's weights, then the
    merge of four frames and the adaptor written out here, on upstream's own features."""
    import json

    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    from export.checkpoint import Checkpoint

    ckpt = Checkpoint.open(diarize_ckpt)
    raw = json.loads((diarize_ckpt / "config.json").read_text())
    whisper = WhisperEncoder(WhisperConfig(**raw["audio_config"])).eval()
    state = {n: ckpt.tensor("model.whisper_encoder." + n).float() for n in whisper.state_dict()}
    whisper.load_state_dict(state)
    x = clip(33.0, seed=8)
    windows = [x[:480000], x[480000:]]
    mel = WhisperFeatureExtractor.from_pretrained(diarize_ckpt)(windows, sampling_rate=16000, padding="max_length",
                                                                 return_tensors="pt")["input_features"]
    w = {n: ckpt.tensor("model.vq_adaptor.layers." + n).float() for n in
         ("0.weight", "0.bias", "2.weight", "2.bias", "3.weight", "3.bias")}
    with torch.no_grad():
        frames = whisper(mel).last_hidden_state
        keep = [(len(win) - 1) // 1280 + 1 for win in windows]
        merged = torch.cat([frames[i, : n * 4].reshape(n, -1) for i, n in enumerate(keep)])
        h = torch.nn.functional.silu(merged @ w["0.weight"].T + w["0.bias"]) @ w["2.weight"].T + w["2.bias"]
        expected = torch.nn.functional.layer_norm(h, h.shape[-1:], w["3.weight"], w["3.bias"],
                                                  eps=raw["text_config"]["rms_norm_eps"]).numpy()
    ours = pipe.encode_audio(x)
    assert ours.shape == expected.shape == (sum(keep), 64)
    # measured 1.4e-6 relative (our NumPy float64 mel against transformers' float32 STFT, ONNX against torch)
    assert np.abs(ours - expected).max() <= 1e-5 * np.abs(expected).max()


def test_quantized_decoder_runs_and_sessions_are_refused_clearly(diarize_bundle):
    pipe = Pipeline.load(diarize_bundle, device="cpu", decoder="q8_0")
    x = clip(4.0, seed=2)
    result = pipe.generate(x, "Transcribe the audio.", temperature=0, max_new_tokens=8, hotwords=["MOSS"])
    hinted = pipe.prompt([pipe.token_count(x.size)], "Transcribe the audio. Hotwords: MOSS")
    assert result.token_ids and result.prompt_token_ids == hinted.ids.tolist()
    with pytest.raises(OptionsError, match="encodes whole 30 s windows; answering while audio arrives"):
        pipe.session()


def test_the_loop_guard_stops_generation_on_silence(pipe):
    """Silence is where such models loop ("no endless output on silence"); random weights loop everywhere."""
    result = pipe.generate(np.zeros(5 * 16000, dtype=np.float32), temperature=0, max_new_tokens=200, loop_guard=True)
    assert result.finish_reason == "loop" and len(result.token_ids) < 200


def test_reduced_precision_encoders(diarize_bundle, pipe):
    """Measured on this checkpoint, 33 s: fp16 max relative error 1.1e-3, int8 cosine 0.99987 (7-bit weights, AVX2)."""
    x = clip(33.0, seed=2)
    fp32 = pipe.encode_audio(x)
    for encoder, check in (("fp16", lambda r: np.abs(r - fp32).max() <= 5e-3 * np.abs(fp32).max()),
                           ("int8", lambda r: (r * fp32).sum() / np.linalg.norm(r) / np.linalg.norm(fp32) >= 0.9995)):
        rows = Pipeline.load(diarize_bundle, device="cpu", encoder=encoder, decoder="q8_0").encode_audio(x)
        assert rows.shape == fp32.shape and check(rows), encoder


def test_a_recording_longer_than_the_profiles_context_runs_in_one_pass(pipe, diarize_bundle, monkeypatch):
    """The context grows past what the load-time check counted (here a profile of 256 positions)
    when memory allows, with the same tokens; and refuses, saying why, when it does not."""
    real_profile, real_detect = plan_mod.best_profile, plan_mod.detect
    monkeypatch.setattr(plan_mod, "best_profile", lambda m: dataclasses.replace(real_profile(m), context_tokens=256))
    x = clip(33.0, seed=5)  # 413 audio rows and markers: past 256
    opts = dict(device="cpu", decoder="f32", kv_type="f32", flash_attn="off")
    with Pipeline.load(diarize_bundle, **opts) as small, Pipeline.load(diarize_bundle, **opts) as tight:
        assert (small.plan.load_context, small.decoder.context_limit) == (256, 8192)
        grown = small.generate(x, temperature=0, max_new_tokens=12)
        assert len(grown.prompt_token_ids) > 256
        assert grown.token_ids == pipe.generate(x, temperature=0, max_new_tokens=12).token_ids
        monkeypatch.setattr(plan_mod, "detect", lambda: pytest.fail("free memory read for a prompt within 256"))
        short = tight.generate(clip(3.0, seed=5), "Who speaks?", temperature=0, max_new_tokens=4)  # 61 positions
        assert len(short.prompt_token_ids) < 256
        monkeypatch.setattr(plan_mod, "detect", lambda: dataclasses.replace(real_detect(), free_gb=1e-9, ram_free_gb=1e-9))
        with pytest.raises(PromptError, match=r"the context the memory free now allows \(256 of the planned 8192\)"):
            tight.generate(x, temperature=0, max_new_tokens=12)


def test_auto_is_one_pass_when_it_fits_else_the_longest_windows_that_do(pipe, diarize_bundle, monkeypatch):
    real_profile, real_detect = plan_mod.best_profile, plan_mod.detect
    monkeypatch.setattr(plan_mod, "best_profile", lambda m: dataclasses.replace(real_profile(m), context_tokens=256))
    x = clip(65.0, seed=5)  # 813 audio rows, 25 marker digits
    opts = dict(device="cpu", decoder="f32", kv_type="f32", flash_attn="off")
    with Pipeline.load(diarize_bundle, **opts) as roomy, Pipeline.load(diarize_bundle, **opts) as tight:
        whole = roomy.generate(x, temperature=0, max_new_tokens=8, window="auto")
        assert not whole.windows and not whole.notes
        assert whole.token_ids == pipe.generate(x, temperature=0, max_new_tokens=8).token_ids
        per = kv_gb(tight.manifest, 1, "f32")
        monkeypatch.setattr(plan_mod, "detect",
                            lambda: dataclasses.replace(real_detect(), free_gb=per * 500, ram_free_gb=per * 500))
        fits = tight.max_audio_seconds(None, 8)
        assert 10 < fits < 40  # 500 positions less the question's
        split = tight.generate(x, temperature=0, max_new_tokens=8, window="auto")
        assert len(split.windows) == -(-(65.0 - 2.0) // (fits - 2.0))  # windows overlap by 2 s
        assert split.notes == [f"answered in windows of {fits:.0f} s (one pass fits {fits:.0f} s here): "
                               "speaker labels restart in each window"]
