"""GGUF quant types through llama.cpp's own quantizer (llama_model_quantize)."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from runtime.errors import OptionsError

# Our lower-case names -> llama.cpp's LLAMA_FTYPE_MOSTLY_* suffix.
QUANT_TYPES = {
    "q8_0": "Q8_0", "q6_k": "Q6_K", "q5_k_m": "Q5_K_M", "q5_k_s": "Q5_K_S", "q4_k_m": "Q4_K_M",
    "q4_k_s": "Q4_K_S", "q4_0": "Q4_0", "q3_k_m": "Q3_K_M", "q2_k": "Q2_K", "iq4_xs": "IQ4_XS",
    "iq4_nl": "IQ4_NL",
}


def check_quant_type(name: str) -> str:
    if name not in QUANT_TYPES:
        raise OptionsError(f"unknown GGUF type {name!r}: choose f32, f16, bf16 or one of {', '.join(QUANT_TYPES)}")
    return name


def quantize_gguf(src: Path, dst: Path, qtype: str, *, threads: int | None = None, verbose: bool = False) -> Path:
    """Quantize an F32/F16/BF16 GGUF. Rows not divisible by a K-quant's 256 fall back as llama.cpp decides."""
    import llama_cpp as lc

    from runtime.llama import set_verbose

    set_verbose(verbose)

    params = lc.llama_model_quantize_default_params()
    params.ftype = getattr(lc, f"LLAMA_FTYPE_MOSTLY_{QUANT_TYPES[check_quant_type(qtype)]}")
    params.nthread = threads or os.cpu_count() or 1
    rc = lc.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    if rc != 0:
        raise RuntimeError(f"llama_model_quantize to {qtype} failed with code {rc}")
    return dst
