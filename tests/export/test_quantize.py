import gguf

from export.decoder_gguf import decoder_tensors, gguf_name
from export.imatrix import collect_imatrix
from runtime.manifest import load_manifest
from tests.conftest import clip


def test_imatrix_covers_every_decoder_matmul(small_ckpt):
    from export.checkpoint import Checkpoint
    from export.reference import MossAudioReference

    ckpt = Checkpoint.open(small_ckpt)
    im = collect_imatrix(MossAudioReference(ckpt), [clip(2.0)], continuation=4)
    matmuls = {gguf_name(n) for n in decoder_tensors(ckpt) if n.endswith("proj.weight") or n == "lm_head.weight"}
    assert set(im.values) == matmuls
    shapes = ckpt.config.expected_tensors()
    assert all(im.values[gguf_name(n)].shape == (shapes[n][1],) for n in decoder_tensors(ckpt) if gguf_name(n) in im.values)
    assert all((v > 0).all() for v in im.values.values())
    assert im.tokens > 25  # prompt with audio + continuation


def test_quantized_decoders_record_how_they_were_made(small_bundle):
    m = load_manifest(small_bundle)
    part = m.decoders["q4_k_m"]
    assert part.made_from == "f16" and part.token_embd == "q8_0"
    assert part.imatrix.clips == 1 and part.imatrix.positions > 50
    r = gguf.GGUFReader(str(small_bundle / "decoder-q4_k_m.gguf"))
    types = {t.name: t.tensor_type for t in r.tensors}
    assert types["token_embd.weight"] == gguf.GGMLQuantizationType.Q8_0
    assert types["blk.0.ffn_up.weight"] == gguf.GGMLQuantizationType.Q4_K  # 256-wide rows: no fallback
