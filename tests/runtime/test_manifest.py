"""Bundles that are incomplete, corrupt, newer, or from another model are refused by name."""

import json
import shutil

import pytest

from runtime.errors import BundleError
from runtime.manifest import SCHEMA_VERSION, Manifest, load_manifest
from runtime.pipeline import Pipeline


@pytest.fixture
def bundle_copy(tiny_bundle, tmp_path):
    out = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, out)
    return out


def test_manifest_round_trip(tiny_bundle):
    m = load_manifest(tiny_bundle)
    assert m.schema_version == SCHEMA_VERSION
    assert set(m.encoders) == {"fp32", "fp16", "int8"} and set(m.decoders) == {"f32", "f16", "q8_0"}
    assert set(m.files) == {p.name for p in tiny_bundle.iterdir() if p.name != "manifest.json"}
    assert m.model.row_width == m.model.hidden_size * (1 + m.model.n_deepstack)
    assert Manifest.from_json(m.to_json()) == m


def test_the_manifest_carries_every_fact_the_runtime_uses(tiny_bundle):
    m = load_manifest(tiny_bundle)
    assert (m.audio.sample_rate, m.audio.n_fft, m.audio.hop_length, m.audio.n_mels) == (16000, 400, 160, 128)
    assert (m.audio.chunk_frames, m.audio.chunk_tokens, m.audio.tokens_per_second) == (400, 50, 12.5)
    assert m.audio.mel_dtype == "bfloat16" and m.audio.log_range == 8.0
    assert "{audio}" in m.prompt.template and "{question}" in m.prompt.template
    assert m.prompt.default_question == "Transcribe the audio." and m.prompt.marker_every_seconds == 2
    assert m.prompt.thinking is False and m.model.context_length == 8192
    assert (m.expected.reference_dtype, m.expected.reference_device) == ("float32", "cpu")
    assert m.tokens.think_start is not None


def test_unchanged_files_are_not_hashed_again_but_changed_ones_are(bundle_copy, monkeypatch, tmp_path):
    import os

    import runtime.filehash as fh

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    hashed = []
    real = fh.sha256_of
    monkeypatch.setattr(fh, "sha256_of", lambda p: hashed.append(p.name) or real(p))
    load_manifest(bundle_copy)
    assert "decoder-f16.gguf" in hashed
    hashed.clear()
    load_manifest(bundle_copy)
    assert hashed == []
    path = bundle_copy / "decoder-f16.gguf"
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same mtime: only ctime tells
    with pytest.raises(BundleError, match="sha256 of .*decoder-f16.gguf does not match"):
        load_manifest(bundle_copy)


def test_missing_file(bundle_copy):
    (bundle_copy / "decoder-f16.gguf").unlink()
    with pytest.raises(BundleError, match="bundle file missing: .*decoder-f16.gguf"):
        Pipeline.load(bundle_copy, device="cpu")


def test_sha256_mismatch_names_the_file(bundle_copy):
    path = bundle_copy / "decoder-q8_0.gguf"
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="sha256 of .*decoder-q8_0.gguf does not match"):
        Pipeline.load(bundle_copy, device="cpu", decoder="q8_0")
    Pipeline.load(bundle_copy, device="cpu", decoder="f16")  # only the files in use are hashed


def test_truncated_file(bundle_copy):
    path = bundle_copy / "encoder-fp32.onnx"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(BundleError, match="truncated or replaced"):
        load_manifest(bundle_copy)


def test_newer_schema(bundle_copy):
    m = json.loads((bundle_copy / "manifest.json").read_text())
    m["schema_version"] = SCHEMA_VERSION + 1
    (bundle_copy / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError, match=f"schema {SCHEMA_VERSION + 1}, newer than this runtime reads"):
        load_manifest(bundle_copy)


def test_a_family_this_runtime_does_not_run(bundle_copy):
    m = json.loads((bundle_copy / "manifest.json").read_text())
    m["model"]["family"] = "qwen2-audio"
    (bundle_copy / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError, match="family 'qwen2-audio' is not one this runtime runs "
                                          r"\(moss-audio, moss-music, moss-transcribe-diarize\)"):
        load_manifest(bundle_copy)


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="has no manifest.json"):
        load_manifest(tmp_path)


def test_parts_from_another_model(bundle_copy, odd_bundle):
    """Swap in the other model's files and fix the hashes: the shapes still give them away."""
    for name, other in (("decoder-f16.gguf", "decoder-f32.gguf"), ("encoder-fp32.onnx", "encoder-fp32.onnx")):
        shutil.copy(odd_bundle / other, bundle_copy / name)
    from runtime.manifest import file_digest

    m = json.loads((bundle_copy / "manifest.json").read_text())
    for name in ("decoder-f16.gguf", "encoder-fp32.onnx"):
        m["files"][name] = file_digest(bundle_copy / name).__dict__
    (bundle_copy / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError, match="encoder is from a different model"):
        Pipeline.load(bundle_copy, device="cpu", encoder="fp32", decoder="f16")
    with pytest.raises(BundleError, match="decoder is from a different model"):
        Pipeline.load(bundle_copy, device="cpu", encoder="fp16", decoder="f16")


def test_unknown_variant(tiny_bundle):
    with pytest.raises(BundleError, match="no decoder 'q4_k_m'; it has f16, f32, q8_0"):
        Pipeline.load(tiny_bundle, device="cpu", decoder="q4_k_m")
