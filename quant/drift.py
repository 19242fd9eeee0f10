"""Accuracy drift of every variant in a bundle against the PyTorch reference, on the same audio.

Encoder variants: cosine and max relative error of the packed rows, and the greedy answer of
the most precise decoder fed with them. Decoder variants (fed the reference's rows, so the
decoder's own drift is isolated): mean and p99 KL divergence of next-token distributions and
top-1 agreement over the prompt and a teacher-forced reference continuation, and the greedy
continuation. Both: greedy match length, CER against the reference transcript, file size,
peak resident memory of a process running the variant.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from quant import probe
from runtime.audio import load_audio
from runtime.manifest import load_manifest
from runtime.prompt import Prompt, TRANSCRIBE_QUESTION
from runtime.sampling import GenerationOptions

GREEDY_TOKENS = 32
# The most precise variant of each kind, used to pair with the other kind.
PRECISION_ORDER = ("f32", "f16", "bf16", "q8_0", "q6_k", "q5_k_m", "q5_k_s", "q4_k_m", "q4_k_s", "iq4_xs",
                   "iq4_nl", "q4_0", "q3_k_m", "q2_k")


@dataclass
class Case:
    """One clip through the reference."""

    name: str
    samples: np.ndarray
    prompt: Prompt
    rows: np.ndarray  # reference packed rows, float32
    continuation: list[int]  # reference greedy tokens
    logits: np.ndarray  # reference logits over prompt + continuation[:-1]
    text: str


def reference_cases(checkpoint: Path, audio: Sequence[Path], question: str, n_tokens: int) -> list[Case]:
    from export.checkpoint import Checkpoint
    from export.reference import MossAudioReference

    ref = MossAudioReference(Checkpoint.open(checkpoint))
    cases = []
    for path in audio:
        samples = load_audio(path)
        prompt, rows = ref.prepare([samples], question)
        cont = ref.generate(prompt, rows, GenerationOptions(max_new_tokens=n_tokens, temperature=0))
        logits = ref.logits(prompt, rows, cont[:-1]).numpy()
        cases.append(Case(Path(path).name, samples, prompt, rows.numpy(), cont, logits, ref.ckpt.decode(cont)))
    return cases, ref.ckpt.decode


def measure(bundle: Path, checkpoint: Path, audio: Sequence[Path], *, question: str = TRANSCRIBE_QUESTION,
            n_tokens: int = GREEDY_TOKENS) -> dict:
    bundle = Path(bundle)
    manifest = load_manifest(bundle)
    cases, decode = reference_cases(checkpoint, audio, question, n_tokens)
    best_decoder = _most_precise(manifest.decoders)
    variants: dict[str, dict] = {}
    for name, part in manifest.encoders.items():
        out = _in_child(probe.encoder_rows, bundle, name, [c.samples for c in cases])
        dec = _in_child(probe.decoder_outputs, bundle, best_decoder, [c.prompt for c in cases], out["rows"],
                        [c.continuation for c in cases], n_tokens)
        variants[f"encoder:{name}"] = {
            "kind": "encoder", "file": part.file, "bytes": _bytes(bundle, part),
            "peak_rss_mb": round(out["peak_rss_mb"], 1), "paired_with": f"decoder:{best_decoder}",
            **_encoder_metrics(cases, out["rows"]), **_greedy_metrics(cases, dec["greedy"], decode),
        }
    for name, part in manifest.decoders.items():
        out = _in_child(probe.decoder_outputs, bundle, name, [c.prompt for c in cases], [c.rows for c in cases],
                        [c.continuation for c in cases], n_tokens)
        variants[f"decoder:{name}"] = {
            "kind": "decoder", "file": part.file, "bytes": _bytes(bundle, part),
            "peak_rss_mb": round(out["peak_rss_mb"], 1),
            **_decoder_metrics(cases, out["logits"]), **_greedy_metrics(cases, out["greedy"], decode),
        }
    return {
        "reference": {"checkpoint": str(checkpoint), "dtype": "float32", "device": "cpu", "question": question,
                      "audio": [c.name for c in cases], "greedy_tokens": n_tokens,
                      "positions": int(sum(len(c.logits) for c in cases))},
        "variants": variants,
    }


def _encoder_metrics(cases: list[Case], rows: list[np.ndarray]) -> dict:
    ref = np.concatenate([c.rows for c in cases]).astype(np.float64)
    got = np.concatenate(rows).astype(np.float64)
    cos = float((ref * got).sum() / np.linalg.norm(ref) / np.linalg.norm(got))
    return {"cosine": round(cos, 8), "max_rel_error": float(np.abs(ref - got).max() / np.abs(ref).max())}


def _decoder_metrics(cases: list[Case], logits: list[np.ndarray]) -> dict:
    kl, top1 = [], []
    for case, got in zip(cases, logits):
        p = _log_softmax(case.logits.astype(np.float64))
        q = _log_softmax(got.astype(np.float64))
        kl.append((np.exp(p) * (p - q)).sum(-1))
        top1.append(case.logits.argmax(-1) == got.argmax(-1))
    kl_all = np.concatenate(kl)
    return {"kl_mean": float(kl_all.mean()), "kl_p99": float(np.percentile(kl_all, 99)),
            "top1": float(np.concatenate(top1).mean())}


def _greedy_metrics(cases: list[Case], greedy: list[list[int]], decode) -> dict:
    import jiwer

    matched, total, cers = 0, 0, []
    for case, got in zip(cases, greedy):
        same = 0
        for a, b in zip(case.continuation, got):
            if a != b:
                break
            same += 1
        matched, total = matched + same, total + len(case.continuation)
        hyp = decode(got)
        cers.append(jiwer.cer(case.text, hyp) if case.text.strip() else float(bool(hyp.strip())))
    return {"greedy_match": matched / total, "cer": float(np.mean(cers))}


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _most_precise(parts: dict) -> str:
    return min(parts, key=lambda n: PRECISION_ORDER.index(n) if n in PRECISION_ORDER else len(PRECISION_ORDER))


def _bytes(bundle: Path, part) -> int:
    files = [part.file] + ([part.external_data] if part.external_data else [])
    return sum((bundle / f).stat().st_size for f in files)


def _in_child(fn, *args):
    """Run in a fresh spawned process: its peak RSS is the variant's alone, torch never loaded."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()
