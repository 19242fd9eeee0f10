"""Which bundle variant to use when the caller names none, and which is the most precise."""

from __future__ import annotations

from typing import Iterable, Sequence

from runtime.errors import BundleError

# Most precise first: the reference side of a comparison, and the order tables are printed in.
PRECISION_ORDER = ("f32", "fp32", "f16", "fp16", "bf16", "q8_0", "int8", "q6_k", "q5_k_m", "q5_k_s", "q4_k_m",
                   "q4_k_s", "iq4_xs", "iq4_nl", "q4_0", "q3_k_m", "q2_k")
# Default choice: the smallest decoder that keeps quality; fp16 encoders only pay on a GPU.
DECODER_PREFERENCE = ("q4_k_m", "q5_k_m", "q6_k", "q8_0", "iq4_xs", "f16", "bf16", "f32")
ENCODER_PREFERENCE = {"cpu": ("fp32", "int8", "fp16"), "cuda": ("fp16", "fp32", "int8")}


def pick_variant(available: Iterable[str], wanted: str | None, preference: Sequence[str], what: str) -> str:
    available = sorted(available)
    if wanted is not None:
        if wanted not in available:
            raise BundleError(f"the bundle has no {what} {wanted!r}; it has {', '.join(available)}")
        return wanted
    for name in list(preference) + available:
        if name in available:
            return name
    raise BundleError(f"the bundle lists no {what}; re-export it")


def most_precise(available: Iterable[str]) -> str:
    names = list(available)
    return min(names, key=lambda n: PRECISION_ORDER.index(n) if n in PRECISION_ORDER else len(PRECISION_ORDER))


def by_precision(names: Iterable[str]) -> list[str]:
    return sorted(names, key=lambda n: (PRECISION_ORDER.index(n) if n in PRECISION_ORDER else len(PRECISION_ORDER), n))
