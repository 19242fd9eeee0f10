"""Memory arithmetic: what a model size at given precisions needs, written out term by term."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from runtime.placement.detect import GB

ENCODER_BYTES_PER_PARAM = {"fp32": 4.0, "fp16": 2.0, "int8": 2.0}  # int8: half the params (FFN) at 1 B, rest fp32
KV_BYTES = {"f32": 4, "f16": 2, "q8_0": 34 / 32}  # per K or V element in llama.cpp's cache


@lru_cache(maxsize=1)
def model_data() -> dict:
    return json.loads(Path(__file__).with_name("models.json").read_text())


def kv_cache_gb(layers: int, kv_heads: int, head_dim: int, context: int, kv_type: str = "f16") -> float:
    """K and V for every layer and position."""
    return 2 * layers * kv_heads * head_dim * KV_BYTES[kv_type] * context / GB


def overheads_gb() -> float:
    return sum(model_data()["overheads_gb"].values())


@dataclass(frozen=True)
class Budget:
    """GB per term; `total` is what must fit in the device's usable memory."""

    decoder_weights: float
    kv_cache: float
    encoder_weights: float
    overheads: float

    @property
    def total(self) -> float:
        return round(self.decoder_weights + self.kv_cache + self.encoder_weights + self.overheads, 2)

    def explain(self, size: str, encoder: str, quant: str, context: int) -> str:
        return (f"{size} {quant}: decoder {self.decoder_weights:.2f} GB + KV f16 {context} tokens "
                f"{self.kv_cache:.2f} GB + encoder {encoder} {self.encoder_weights:.2f} GB + runtime and "
                f"buffers {self.overheads:.2f} GB = {self.total:.2f} GB")


def budget(size: str, encoder: str, quant: str, context: int | None = None) -> Budget:
    data = model_data()
    m, bpw = data["models"][size], data["bits_per_weight"]
    context = context or data["context_tokens"]
    whole = quant in ("f32", "f16", "bf16", "q8_0")
    embd_bpw = bpw[quant] if whole else bpw["q8_0"]  # export/gguf_quant.py keeps token_embd at Q8_0
    out_bpw = bpw[quant] if whole else bpw["q6_k"]  # llama.cpp's head for K and IQ types
    decoder = (m["decoder_layer_params"] * bpw[quant] + m["embedding_params"] * embd_bpw
               + m["output_params"] * out_bpw) / 8
    enc = m["encoder_params"] * ENCODER_BYTES_PER_PARAM[encoder]
    return Budget(decoder_weights=round(decoder / GB, 2),
                  kv_cache=round(kv_cache_gb(m["layers"], m["kv_heads"], m["head_dim"], context), 2),
                  encoder_weights=round(enc / GB, 2), overheads=round(overheads_gb(), 2))
