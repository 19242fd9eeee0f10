"""Pilots: a shortened recipe (the acoustic phase alone, or with a few joint steps), scored by
greedy transcripts of evaluation sets in PyTorch: the encoder's CTC transcript, and after
joint steps the decoder's answer, which is what the F32 bundle answers.

A recipe change (batch budget, schedule, stem width, a training loss) shows in a pilot of 2500 + 1000
steps: 18-19 min on two AVX-512 cores with BF16 (17 min training, 1-1.5 min scoring two sets), about
40-60 min in FP32 on AVX2-only ones, where the whole recipe takes 81 min and ~3.7 h. It is a filter, not the verdict: a change
that wins here ships only after the full recipe and `python -m train report` confirm it.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from pathlib import Path

from train.greedy import greedy_scores
from train.recipe import RecipeConfig, machine, prepare, train_loop
from train.resume import snapshot_path


def _line(name: str, scores: dict) -> str:
    def shown(value: float | None, unit: str) -> str:
        return "n/a" if value is None else f"{value} {unit}"

    c = scores["ctc"]
    parts = [f"ctc CER en {shown(c['en'], '%')} all {shown(c['all'], '%')}"]
    if "decoder" in scores:
        d = scores["decoder"]
        parts.append(f"decoder CER en {shown(d['en'], '%')} all {shown(d['all'], '%')}, language "
                     f"{shown(d['language'], '%')}, timestamp MAE {shown(d['timestamp_mae_s'], 's')}")
    return f"{name}: " + "; ".join(parts)


def run_pilot(cfg: RecipeConfig, ctc_steps: int, steps: int, cache: Path, sets: dict[str, Path], log=print) -> dict:
    """Train `ctc_steps` acoustic and `steps` joint steps of `cfg` (resumable like the recipe)
    and score them."""
    cfg = replace(cfg, train=replace(cfg.train, ctc_steps=ctc_steps, steps=steps), evalset=None)
    p = prepare(cfg, cache, log)
    snapshot = snapshot_path(cfg, cache)
    history, resumed = train_loop(p.model, p.examples, p.store, cfg.train, cfg.seed, log, snapshot, p.precision)
    t0 = time.time()
    scores = {name: greedy_scores(p.model, p.examples, p.tokenizer, d, decoder=steps > 0) for name, d in sets.items()}
    for name, by in scores.items():
        log(_line(name, by))
    log(f"scored in {time.time() - t0:.0f} s")
    snapshot.unlink(missing_ok=True)
    return dict(recipe=json.loads(json.dumps(asdict(cfg), default=str)), ctc_steps=ctc_steps, steps=steps,
                train_seconds=history[-1]["seconds"] if history else 0.0, resumed_at=resumed,
                machine=machine(cfg.threads), scores=scores, history=history)
