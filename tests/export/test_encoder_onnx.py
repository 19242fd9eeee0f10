"""The ONNX encoder graph against the PyTorch reference at chunk edges."""

import numpy as np
import pytest

from runtime.encoder import Encoder
from runtime.mel import log_mel
from tests.conftest import clip

SECONDS = [0.5, 4.0, 4.01, 9.3]  # one chunk, exactly one, one plus a frame, several


def compare(reference, encoder, seconds):
    x = clip(seconds, seed=int(seconds * 100))
    expected = reference.audio_rows(x).numpy()
    got = encoder.rows(log_mel(x))
    assert got.shape == expected.shape
    cos = float((expected * got).sum() / np.linalg.norm(expected) / np.linalg.norm(got))
    rel = float(np.abs(expected - got).max() / np.abs(expected).max())
    return cos, rel


@pytest.mark.parametrize("seconds", SECONDS)
def test_fp32_graph(tiny_reference, tiny_bundle, seconds):
    cos, rel = compare(tiny_reference, Encoder(tiny_bundle / "encoder-fp32.onnx", batch_chunks=2), seconds)
    # Measured: cosine >= 0.9999998, max relative error <= 8.4e-7.
    assert cos >= 0.99999 and rel <= 1e-5


@pytest.mark.parametrize("seconds", SECONDS)
def test_fp16_graph(tiny_reference, tiny_bundle, seconds):
    cos, rel = compare(tiny_reference, Encoder(tiny_bundle / "encoder-fp16.onnx"), seconds)
    # Measured: cosine >= 0.9999995, max relative error <= 1.1e-3.
    assert cos >= 0.999 and rel <= 5e-3


@pytest.mark.parametrize("seconds", SECONDS)
def test_int8_graph(tiny_reference, tiny_bundle, seconds):
    cos, rel = compare(tiny_reference, Encoder(tiny_bundle / "encoder-int8.onnx"), seconds)
    # Measured on this checkpoint: cosine 0.9975 (9.3 s) .. 0.9991; `small`: 0.99944 (quant/encoder.py).
    assert cos >= 0.995


@pytest.mark.parametrize("seconds", [0.5, 9.3])
def test_unseen_configuration(odd_reference, odd_bundle, seconds):
    """Odd widths, 2 DeepStack taps, output_dim != d_model (out_proj on every tap)."""
    cos, rel = compare(odd_reference, Encoder(odd_bundle / "encoder-fp32.onnx"), seconds)
    assert cos >= 0.99999 and rel <= 2e-3


def test_graph_interface(tiny_bundle, tiny_reference):
    enc = Encoder(tiny_bundle / "encoder-fp32.onnx")
    inputs = {i.name: (i.shape, i.type) for i in enc.backend.session.get_inputs()}
    assert inputs == {"mel": (["chunks", 128, 400], "tensor(float)"), "frames": (["chunks"], "tensor(int64)"),
                      "stem_frames": (["chunks"], "tensor(int64)")}
    assert enc.width == tiny_reference.config.row_width
    # batching chunks differently must not change the rows
    mel = log_mel(clip(13.0))
    np.testing.assert_allclose(Encoder(tiny_bundle / "encoder-fp32.onnx", batch_chunks=1).rows(mel),
                               Encoder(tiny_bundle / "encoder-fp32.onnx", batch_chunks=8).rows(mel), atol=1e-5)


def test_large_graphs_use_external_data(tiny_reference, tmp_path, monkeypatch):
    import export.encoder_onnx as eo

    monkeypatch.setattr(eo, "EXTERNAL_DATA_BYTES", 0)
    (tmp_path / "work").mkdir()
    files = eo.export_encoders(tiny_reference.tower, 128, tmp_path, ("fp32", "fp16", "int8"), tmp_path / "work")
    for f in files:
        assert f.external_data == f"encoder-{f.precision}.onnx.data", f
        assert (tmp_path / f.external_data).stat().st_size > 50_000
        cos, _ = compare(tiny_reference, Encoder(f.path), 4.01)
        assert cos >= {"fp32": 0.99999, "fp16": 0.999, "int8": 0.99}[f.precision]
