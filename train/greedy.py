"""Greedy transcripts of an evaluation set in PyTorch, before export: the encoder's through the
training-only CTC head, and the decoder's answers (which are the F32 bundle's). Pilots score with it,
and a full run scores its CTC head with it before the head is dropped."""

from __future__ import annotations

import json
from pathlib import Path

import soundfile as sf

from runtime.chunks import audio_token_count
from train.batches import Examples
from train.features import FRONT_END, as_float, mel_bf16
from train.model import TrainableMossAudio
from train.score import summarize
from train.tasks import QUESTIONS


def greedy_scores(model: TrainableMossAudio, examples: Examples, tokenizer: Path, eval_dir: Path, *,
                  decoder: bool) -> dict:
    """Scores in percent (timestamp error in seconds), aggregated as `train score` does: the CER
    (en, all) of the encoder's greedy CTC transcripts of the set's transcription clips, and with
    `decoder` the decoder's greedy answers to every clip under its own question: CER, language
    accuracy and timestamp error, the three that issue 13's targets name."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer / "tokenizer.json"))
    ctc, answers = [], []
    lines = (eval_dir / "eval.jsonl").read_text().splitlines()
    for item in (json.loads(line) for line in lines if line.strip()):
        if item["task"] != "transcribe" and not decoder:
            continue
        if item["question"] != QUESTIONS[item["task"]]:
            raise ValueError(f"{eval_dir}: item {item.get('id')} asks {item['question']!r}; a pilot asks the recipe's "
                             f"question for {item['task']!r}; score other wordings with `train score` on a bundle")
        samples, _ = sf.read(eval_dir / item["audio"], dtype="float32")
        mel = as_float(mel_bf16(samples))
        if item["task"] == "transcribe":
            ctc.append(dict(item, prediction=model.ctc_text(mel, examples.alphabet)))
        if decoder:
            prompt = examples.prompt(audio_token_count(mel.shape[1], FRONT_END.chunk_frames), item["task"])
            ids = model.greedy(mel, prompt.ids.tolist(), prompt.audio_rows.tolist(), examples.im_end)
            answers.append(dict(item, prediction=tok.decode(ids)))
    out = {"ctc": _cer(summarize(ctc))}
    if decoder:
        s = summarize(answers)
        out["decoder"] = dict(_cer(s), language=_percent(s.get("language_accuracy")),
                              timestamp_mae_s=round(s["timestamp_mae_s"], 3) if "timestamp_mae_s" in s else None)
    return out


def _cer(summary: dict) -> dict:
    return {key: _percent(summary.get(f"cer_{key}")) for key in ("en", "all")}


def _percent(fraction: float | None) -> float | None:
    return None if fraction is None else round(100 * fraction, 2)
