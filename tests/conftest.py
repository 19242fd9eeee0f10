"""Shared synthetic checkpoints, bundles and clips; built once per test session."""

from __future__ import annotations

import numpy as np
import pytest

from export.processor import LOG_RANGE, SYSTEM, TEMPLATE, TRANSCRIBE_QUESTION
from export.synth import SynthSize
from runtime.manifest import AudioInfo, PromptInfo

SAMPLE_RATE = 16_000
# The released model's front end and prompt, as the manifest records them (export/processor.py).
AUDIO = AudioInfo(sample_rate=SAMPLE_RATE, n_fft=400, hop_length=160, n_mels=128, log_range=LOG_RANGE,
                  mel_dtype="bfloat16", chunk_frames=400, chunk_tokens=50)
PROMPT = PromptInfo(template=TEMPLATE, system=SYSTEM, default_question=TRANSCRIBE_QUESTION,
                    special_texts=("<|im_end|>", "<|im_start|>"))

# A configuration unlike every shipped size: odd widths, 3-head attention in both towers,
# output_dim != d_model (so out_proj exists), two DeepStack taps of three encoder layers.
ODD_OVERRIDES = {
    "audio_config": dict(d_model=36, encoder_layers=3, encoder_attention_heads=3, encoder_ffn_dim=70,
                         downsample_hidden_size=6, output_dim=40, deepstack_encoder_layer_indexes=[0, 2]),
    "language_config": dict(vocab_size=360, hidden_size=48, intermediate_size=88, num_hidden_layers=3,
                            num_attention_heads=3, num_key_value_heads=1, head_dim=16),
    "adapter_hidden_size": 56,
}


# MOSS-Transcribe-Diarize of a shape no test uses (odd widths, 3 and 5 heads, one KV head, head_dim
# 8), with a chat template of its own: a system turn, and a line break after the audio.
DIARIZE_ODD = SynthSize(
    audio=dict(num_mel_bins=80, d_model=48, encoder_layers=3, encoder_attention_heads=3, encoder_ffn_dim=72),
    text=dict(vocab_size=360, hidden_size=40, intermediate_size=88, num_hidden_layers=3, num_attention_heads=5,
              num_key_value_heads=1, head_dim=8, max_position_embeddings=8192),
    adapter_hidden_size=0)
DIARIZE_ODD_TEMPLATE = (
    "{% for message in messages %}{% if loop.first %}<|im_start|>system\nYou write who said what, and when."
    "<|im_end|>\n{% endif %}<|im_start|>{{ message.role }}\n{% for item in message.content %}"
    "{% if item.type == 'audio' %}<|audio_start|><|audio_pad|><|audio_end|>\n{% else %}{{ item.text }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def clip(seconds: float, seed: int = 0) -> np.ndarray:
    """Noise plus a gliding tone: deterministic, not silent, 16 kHz float32."""
    n = int(round(seconds * SAMPLE_RATE))
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SAMPLE_RATE
    tone = 0.3 * np.sin(2 * np.pi * (220 + 180 * t) * t)
    return (tone + 0.05 * rng.standard_normal(n)).astype(np.float32)


def _export(tmp_path_factory, ckpt, name: str, encoder: tuple[str, ...], decoder: tuple[str, ...]):
    from export.bundle import ExportOptions, export_bundle

    out = tmp_path_factory.mktemp("bundle") / name
    export_bundle(ckpt, out, ExportOptions(encoder=encoder, decoder=decoder))
    return out


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory):
    from export.synth import write_checkpoint

    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", "tiny", seed=0)


@pytest.fixture(scope="session")
def odd_ckpt(tmp_path_factory):
    from export.synth import write_checkpoint

    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "odd", "tiny", seed=7, config_overrides=ODD_OVERRIDES)


@pytest.fixture(scope="session")
def tiny_reference(tiny_ckpt):
    from export.checkpoint import Checkpoint
    from export.reference import MossAudioReference

    return MossAudioReference(Checkpoint.open(tiny_ckpt))


@pytest.fixture(scope="session")
def odd_reference(odd_ckpt):
    from export.checkpoint import Checkpoint
    from export.reference import MossAudioReference

    return MossAudioReference(Checkpoint.open(odd_ckpt))


@pytest.fixture(scope="session")
def tiny_bundle(tiny_ckpt, tmp_path_factory):
    return _export(tmp_path_factory, tiny_ckpt, "tiny", encoder=("fp32", "fp16", "int8"),
                   decoder=("f32", "f16", "q8_0"))


@pytest.fixture
def tampered_bundle(tiny_bundle, tmp_path):
    """A copy of tiny_bundle whose q8_0 decoder has one byte flipped: same size, so only the
    sha256 check can tell."""
    import shutil

    out = tmp_path / "tampered"
    shutil.copytree(tiny_bundle, out)
    gguf = out / "decoder-q8_0.gguf"
    data = bytearray(gguf.read_bytes())
    data[-1] ^= 0xFF
    gguf.write_bytes(bytes(data))
    return out


@pytest.fixture(scope="session")
def odd_bundle(odd_ckpt, tmp_path_factory):
    return _export(tmp_path_factory, odd_ckpt, "odd", encoder=("fp32",), decoder=("f32",))


@pytest.fixture(scope="session")
def exact_pipeline(tiny_bundle):
    """F32 decoder with f32 KV and flash attention off: the bit-faithful configuration."""
    from runtime.pipeline import Pipeline

    return Pipeline.load(tiny_bundle, device="cpu", encoder="fp32", decoder="f32", kv_type="f32", flash_attn="off")


@pytest.fixture(scope="session")
def diarize_ckpt(tmp_path_factory):
    """A tiny MOSS-Transcribe-Diarize: Whisper windows of 30 s, tied head, markers every 5 s."""
    from export.diarize.synth import write_diarize_checkpoint

    return write_diarize_checkpoint(tmp_path_factory.mktemp("ckpt") / "diarize", "tiny", seed=1)


@pytest.fixture(scope="session")
def diarize_bundle(diarize_ckpt, tmp_path_factory):
    return _export(tmp_path_factory, diarize_ckpt, "diarize", encoder=("fp32", "fp16", "int8"), decoder=("f32", "q8_0"))


@pytest.fixture(scope="session")
def small_ckpt(tmp_path_factory):
    """Every LLM matrix width a multiple of 256: llama.cpp K-quants apply."""
    from export.synth import write_checkpoint

    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "small", "small", seed=0)


@pytest.fixture(scope="session")
def small_bundle(small_ckpt, tmp_path_factory):
    return _export(tmp_path_factory, small_ckpt, "small", encoder=("fp32", "int8"),
                   decoder=("f16", "q8_0", "q4_k_m"))


@pytest.fixture(scope="session")
def small_drift(small_bundle, small_ckpt, tmp_path_factory):
    """One `python -m export drift --json` run (the PyTorch reference), shared by the quant tests."""
    import json
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("drift") / "drift.json"
    run = subprocess.run([sys.executable, "-m", "export", "drift", str(small_bundle), "--checkpoint", str(small_ckpt),
                          "--json", str(out), "--check"], capture_output=True, text=True)
    assert out.is_file(), run.stderr[-3000:]
    return run, json.loads(out.read_text())


ENGINES = ("onnxruntime", "llama_cpp", "ray", "fastapi", "uvicorn")
_CLI_PROBE = ("import sys, runpy\nsys.argv = ['runtime'] + sys.argv[1:]\nrc = 0\n"
              "try:\n    runpy.run_module('runtime', run_name='__main__')\nexcept SystemExit as e:\n    rc = e.code or 0\n"
              "sys.stdout.flush()\nsys.stderr.write(f'|rc={rc}|loaded=' + ','.join(m for m in %r if m in sys.modules))\n")


def cli_probe(*argv: str):
    """`python -m runtime ARGV` in a fresh interpreter: (exit code, heavy modules it imported, the run)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _CLI_PROBE % (ENGINES,), *argv], capture_output=True, text=True,
                         timeout=120)
    rc, loaded = out.stderr.rsplit("|rc=", 1)[1].split("|loaded=")
    return int(rc), [m for m in loaded.strip().split(",") if m], out
