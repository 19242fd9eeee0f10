"""What one bundle variant produces, run in a fresh process so its peak memory is its own.

Torch-free: these functions use only the runtime, as a device would.
"""

from __future__ import annotations

import resource
from pathlib import Path

import numpy as np

from runtime.decoder import Decoder, DecoderOptions
from runtime.encoder import Encoder
from runtime.manifest import load_manifest
from runtime.mel import log_mel
from runtime.prompt import Prompt
from runtime.sampling import GenerationOptions


def peak_rss_mb() -> float:
    """This process's peak resident memory. Linux carries ru_maxrss across fork+exec (a spawned
    child would report its parent's peak), so VmHWM, which belongs to the new address space,
    is read where it exists."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def encoder_rows(bundle: Path, variant: str, clips: list[np.ndarray]) -> dict:
    m = load_manifest(bundle, verify=False)
    enc = Encoder(bundle / m.encoders[variant].file, "cpu")
    rows = [enc.rows(log_mel(c, m.mel.n_mels)) for c in clips]
    return {"rows": rows, "peak_rss_mb": peak_rss_mb()}


def decoder_outputs(bundle: Path, variant: str, prompts: list[Prompt], rows: list[np.ndarray],
                    continuations: list[list[int]], n_greedy: int) -> dict:
    """Teacher-forced logits over prompt + continuation[:-1], and a greedy continuation."""
    m = load_manifest(bundle, verify=False)
    dec = Decoder(bundle / m.decoders[variant].file, m.tokens, m.model.row_width, DecoderOptions())
    logits, greedy = [], []
    for prompt, r, cont in zip(prompts, rows, continuations):
        forced = dec.prefill(prompt, r, logits="all", reserve=len(cont))
        steps = [dec.step(t, len(prompt) + i) for i, t in enumerate(cont[:-1])]
        logits.append(np.concatenate([forced] + [s[None] for s in steps]).astype(np.float32))
        greedy.append(list(dec.generate(prompt, r, GenerationOptions(max_new_tokens=n_greedy, temperature=0))))
    return {"logits": logits, "greedy": greedy, "peak_rss_mb": peak_rss_mb()}
