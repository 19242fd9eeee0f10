"""Pilots: a shortened recipe (the acoustic phase alone, or with a few joint steps), scored by
greedy transcripts of evaluation sets in PyTorch: the encoder's CTC transcript, and after
joint steps the decoder's answer, which is what the F32 bundle answers.

A recipe change (batch budget, schedule, stem width, a training loss) shows in ~40-60 min on two
cores, where the whole recipe takes 80 min to 2.8 h. It is a filter, not the verdict: a change
that wins here ships only after the full recipe and `python -m train report` confirm it.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import soundfile as sf
import torch

from runtime.chunks import audio_token_count
from train.batches import Examples
from train.features import FRONT_END, as_float, mel_bf16
from train.model import TrainableMossAudio
from train.recipe import RecipeConfig, machine, prepare, train_loop
from train.resume import snapshot_path
from train.score import summarize


def transcription_cer(model: TrainableMossAudio, examples: Examples, tokenizer: Path, eval_dir: Path, *,
                      decoder: bool) -> dict:
    """Corpus CER (en, all; percent) over the set's transcription clips of the encoder's greedy CTC
    transcript, and with `decoder` of the decoder's greedy answer, aggregated as `train score` does."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer / "tokenizer.json"))
    answered: dict[str, list[dict]] = {"ctc": [], "decoder": []} if decoder else {"ctc": []}
    lines = (eval_dir / "eval.jsonl").read_text().splitlines()
    for item in (json.loads(line) for line in lines if line.strip()):
        if item["task"] != "transcribe":
            continue
        samples, _ = sf.read(eval_dir / item["audio"], dtype="float32")
        mel = as_float(mel_bf16(samples))
        answered["ctc"].append(dict(item, prediction=model.ctc_text(mel, examples.alphabet)))
        if decoder:
            prompt = examples.prompt(audio_token_count(mel.shape[1], FRONT_END.chunk_frames), "transcribe")
            ids = model.greedy(mel, prompt.ids.tolist(), prompt.audio_rows.tolist(), examples.im_end)
            answered["decoder"].append(dict(item, prediction=tok.decode(ids)))
    scores = {name: summarize(items) for name, items in answered.items()}
    return {name: {key: round(100 * s[f"cer_{key}"], 2) if f"cer_{key}" in s else None for key in ("en", "all")}
            for name, s in scores.items()}


def run_pilot(cfg: RecipeConfig, ctc_steps: int, steps: int, cache: Path, sets: dict[str, Path], log=print) -> dict:
    """Train `ctc_steps` acoustic and `steps` joint steps of `cfg` (resumable like the recipe)
    and score them."""
    cfg = replace(cfg, train=replace(cfg.train, ctc_steps=ctc_steps, steps=steps), evalset=None)
    p = prepare(cfg, cache, log)
    snapshot = snapshot_path(cfg, cache)
    history, resumed = train_loop(p.model, p.examples, p.store, cfg.train, cfg.seed, log, snapshot)
    t0 = time.time()
    cer = {name: transcription_cer(p.model, p.examples, p.tokenizer, d, decoder=steps > 0) for name, d in sets.items()}
    for name, by in cer.items():
        log(f"{name}: " + ", ".join(f"{k} CER en {v['en']} % all {v['all']} %" for k, v in by.items()))
    log(f"scored in {time.time() - t0:.0f} s")
    snapshot.unlink(missing_ok=True)
    return dict(recipe=json.loads(json.dumps(asdict(cfg), default=str)), ctc_steps=ctc_steps, steps=steps,
                train_seconds=history[-1]["seconds"] if history else 0.0, resumed_at=resumed,
                machine=machine(cfg.threads), cer=cer, history=history)
