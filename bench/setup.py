"""The checkpoint and bundle a benchmark runs on, built once and cached in the work folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

QUICK_DECODERS = ("f16", "q8_0", "q4_k_m")


@dataclass(frozen=True)
class BenchSpec:
    size: str  # synthetic checkpoint size
    clip_seconds: tuple[float, ...]  # encoder lengths
    e2e_seconds: float
    new_tokens: int
    prompt_tokens: int  # decoder prefill length
    decode_tokens: int
    batch_clips: int  # the batch section's clip set: how many, how long
    batch_seconds: float
    vocab_rows: int | None = None  # the checkpoint's vocabulary rows when not the size's own


QUICK = BenchSpec("tiny", (2.0, 5.0), 5.0, 16, 128, 32, 8, 2.0)
FULL = BenchSpec("4b", (5.0, 30.0, 120.0), 30.0, 64, 512, 64, 6, 10.0)
# The start-up table's rows; tiny with the real vocabulary shows whether loading grows with it
STARTUP_SHAPES = {"tiny": QUICK, "tiny-151936": BenchSpec("tiny", (), 0, 0, 0, 0, 0, 0.0, vocab_rows=151936),
                  "small": BenchSpec("small", (), 0, 0, 0, 0, 0, 0.0), "4b": FULL}


def prepare(spec: BenchSpec, work: Path) -> tuple[Path, Path]:
    """Checkpoint and bundle (encoder fp32+int8, decoder f16/q8_0/q4_k_m), reused when present.

    Speed does not depend on weight values, so no importance matrix and no expected outputs."""
    from export.bundle import ExportOptions, export_bundle
    from export.synth import write_checkpoint

    name = spec.size + (f"-{spec.vocab_rows}" if spec.vocab_rows else "")
    ckpt, bundle = work / f"checkpoint-{name}", work / f"bundle-{name}"
    if not (ckpt / "config.json").is_file():
        rows = {"language_config": {"vocab_size": spec.vocab_rows}} if spec.vocab_rows else None
        write_checkpoint(ckpt, spec.size, seed=0, text_only_head=True, config_overrides=rows)
    if not (bundle / "manifest.json").is_file():
        export_bundle(ckpt, bundle, ExportOptions(encoder=("fp32", "int8"), decoder=QUICK_DECODERS,
                                                  imatrix=False, expected=False))
    return ckpt, bundle
