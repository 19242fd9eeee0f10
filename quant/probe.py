"""What one bundle variant produces, run in a fresh process so its peak memory is its own.

Torch-free: the variant is loaded the way an app loads it (Pipeline.load with the plan for
`device`), so on a GPU machine it is the CUDA/TensorRT path that is measured.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from runtime.prompt import Prompt
from runtime.sampling import GenerationOptions


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM belongs to the new address space of a spawned child;
    ru_maxrss would carry its parent's peak across fork+exec)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import psutil

    info = psutil.Process().memory_info()
    return getattr(info, "peak_wset", info.rss) / 2**20


def _pipeline(bundle: Path, device: str, encoder: str | None, decoder: str | None):
    from runtime.pipeline import Pipeline

    return Pipeline.load(bundle, device=device, encoder=encoder, decoder=decoder, verify=False)


def encoder_rows(bundle: Path, variant: str, clips: list[np.ndarray], device: str = "cpu") -> dict:
    pipe = _pipeline(bundle, device, variant, None)
    rows = [pipe.encode_audio(c) for c in clips]
    return {"rows": rows, "providers": pipe.encoder.providers, "peak_rss_mb": peak_rss_mb()}


def decoder_outputs(bundle: Path, variant: str, prompts: list[Prompt], rows: list[np.ndarray],
                    continuations: list[list[int]], n_greedy: int, device: str = "cpu") -> dict:
    """Teacher-forced logits at the last prompt position and each continuation step, and a greedy continuation."""
    dec = _pipeline(bundle, device, None, variant).decoder
    logits, greedy = [], []
    for prompt, r, cont in zip(prompts, rows, continuations):
        last = dec.prefill(prompt, r, reserve=len(cont))
        steps = [dec.step(t, len(prompt) + i) for i, t in enumerate(cont[:-1])]
        logits.append(np.concatenate([last[-1:]] + [s[None] for s in steps]).astype(np.float32))
        greedy.append(list(dec.generate(prompt, r, GenerationOptions(max_new_tokens=n_greedy, temperature=0))))
    return {"logits": logits, "greedy": greedy, "peak_rss_mb": peak_rss_mb()}


def eval_answers(bundle: Path, encoder: str, decoder: str, items: list, device: str = "cpu") -> dict:
    """Greedy answers of one encoder + decoder pairing on an evaluation set (quant.evalset)."""
    from quant.evalset import answer_all

    answers, durations = answer_all(_pipeline(bundle, device, encoder, decoder), items)
    return {"answers": answers, "durations": durations, "peak_rss_mb": peak_rss_mb()}
