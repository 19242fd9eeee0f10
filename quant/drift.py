"""Accuracy drift of every variant in a bundle against the reference, on the same audio.

Encoder variants: cosine and max relative error of the packed rows, and the greedy answer of
the most precise decoder fed with them. Decoder variants (fed the reference's rows, so the
decoder's own drift is isolated): mean and p99 KL divergence of next-token distributions and
top-1 agreement over the prompt and a teacher-forced reference continuation, and the greedy
continuation. Both: greedy match length, CER against the reference transcript, file size,
peak resident memory of a process running the variant.

The reference is either the PyTorch model run now (full next-token distributions) or the
expected outputs a bundle carries (the top tokens of each distribution, quant/expected.py);
KL is taken over the reference's token set, renormalized: exact when that set is the vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from quant import probe
from quant.child import run_in_child
from runtime.audio import load_audio
from runtime.manifest import load_manifest
from runtime.prompt import TRANSCRIBE_QUESTION, Prompt
from runtime.sampling import GenerationOptions

GREEDY_TOKENS = 32
PRECISION_ORDER = ("f32", "f16", "bf16", "q8_0", "q6_k", "q5_k_m", "q5_k_s", "q4_k_m", "q4_k_s", "iq4_xs",
                   "iq4_nl", "q4_0", "q3_k_m", "q2_k")


@dataclass
class Case:
    """One clip as the reference saw it."""

    name: str
    samples: np.ndarray
    prompt: Prompt
    rows: np.ndarray  # reference packed rows, float32
    continuation: list[int]  # reference greedy tokens
    ref_tokens: np.ndarray  # [positions, k] token ids per position, most likely first
    ref_logprobs: np.ndarray  # [positions, k] their log-probabilities


def reference_cases(checkpoint: Path, audio: Sequence[Path], question: str = TRANSCRIBE_QUESTION,
                    n_tokens: int = GREEDY_TOKENS, reference=None) -> list[Case]:
    """Run the PyTorch reference (or the one given) on each clip; full distributions kept."""
    if reference is None:
        from export.checkpoint import Checkpoint
        from export.reference import MossAudioReference

        reference = MossAudioReference(Checkpoint.open(checkpoint))
    cases = []
    for clip in audio:
        samples = load_audio(clip) if isinstance(clip, (str, Path)) else clip
        prompt, rows = reference.prepare([samples], question)
        cont = reference.generate(prompt, rows, GenerationOptions(max_new_tokens=n_tokens, temperature=0))
        logp = log_softmax(reference.logits(prompt, rows, cont[:-1]).numpy().astype(np.float64))
        order = np.argsort(-logp, axis=-1, kind="stable")
        cases.append(Case(Path(str(clip)).name if isinstance(clip, (str, Path)) else "array", samples, prompt,
                          rows.numpy(), cont, order, np.take_along_axis(logp, order, -1)))
    return cases


def measure(bundle: Path, cases: list[Case], decode: Callable[[list[int]], str], *, source: dict,
            only: set[str] | None = None) -> dict:
    """Every variant of the bundle (or those named in `only`, as "decoder:q8_0") against `cases`."""
    bundle = Path(bundle)
    manifest = load_manifest(bundle)
    best_decoder = most_precise(manifest.decoders)
    n_tokens = max(len(c.continuation) for c in cases)
    variants: dict[str, dict] = {}
    for name, part in manifest.encoders.items():
        if only and f"encoder:{name}" not in only:
            continue
        out = run_in_child(probe.encoder_rows, bundle, name, [c.samples for c in cases])
        dec = run_in_child(probe.decoder_outputs, bundle, best_decoder, [c.prompt for c in cases], out["rows"],
                        [c.continuation for c in cases], n_tokens)
        variants[f"encoder:{name}"] = {
            "kind": "encoder", "file": part.file, "bytes": _bytes(bundle, part),
            "peak_rss_mb": round(out["peak_rss_mb"], 1), "paired_with": f"decoder:{best_decoder}",
            **encoder_metrics([c.rows for c in cases], out["rows"]), **greedy_metrics(cases, dec["greedy"], decode),
        }
    for name, part in manifest.decoders.items():
        if only and f"decoder:{name}" not in only:
            continue
        out = run_in_child(probe.decoder_outputs, bundle, name, [c.prompt for c in cases], [c.rows for c in cases],
                        [c.continuation for c in cases], n_tokens)
        variants[f"decoder:{name}"] = {
            "kind": "decoder", "file": part.file, "bytes": _bytes(bundle, part),
            "peak_rss_mb": round(out["peak_rss_mb"], 1),
            **decoder_metrics(cases, out["logits"]), **greedy_metrics(cases, out["greedy"], decode),
        }
    positions = int(sum(len(c.ref_tokens) for c in cases))
    return {"reference": {**source, "audio": [c.name for c in cases], "greedy_tokens": n_tokens,
                          "positions": positions, "tokens_per_position": int(cases[0].ref_tokens.shape[1])},
            "variants": variants}


def encoder_metrics(expected: list[np.ndarray], got: list[np.ndarray]) -> dict:
    ref = np.concatenate(expected).astype(np.float64)
    out = np.concatenate(got).astype(np.float64)
    cos = float((ref * out).sum() / np.linalg.norm(ref) / np.linalg.norm(out))
    return {"cosine": round(cos, 8), "max_rel_error": float(np.abs(ref - out).max() / np.abs(ref).max())}


def decoder_metrics(cases: list[Case], logits: list[np.ndarray]) -> dict:
    kl, top1 = [], []
    for case, got in zip(cases, logits):
        q_all = log_softmax(got.astype(np.float64))
        q = log_softmax(np.take_along_axis(q_all, case.ref_tokens, -1))  # renormalized over the reference's set
        p = log_softmax(case.ref_logprobs)
        kl.append((np.exp(p) * (p - q)).sum(-1))
        top1.append(case.ref_tokens[:, 0] == got.argmax(-1))
    kl_all = np.concatenate(kl)
    return {"kl_mean": float(kl_all.mean()), "kl_p99": float(np.percentile(kl_all, 99)),
            "top1": float(np.concatenate(top1).mean())}


def greedy_metrics(cases: list[Case], greedy: list[list[int]], decode: Callable[[list[int]], str]) -> dict:
    import jiwer

    matched, total, cers = 0, 0, []
    for case, got in zip(cases, greedy):
        same = 0
        for a, b in zip(case.continuation, got):
            if a != b:
                break
            same += 1
        matched, total = matched + same, total + len(case.continuation)
        ref_text, hyp = decode(case.continuation), decode(got)
        cers.append(jiwer.cer(ref_text, hyp) if ref_text.strip() else float(bool(hyp.strip())))
    return {"greedy_match": matched / total, "cer": float(np.mean(cers))}


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def most_precise(parts: dict) -> str:
    return min(parts, key=lambda n: PRECISION_ORDER.index(n) if n in PRECISION_ORDER else len(PRECISION_ORDER))


def _bytes(bundle: Path, part) -> int:
    files = [part.file] + ([part.external_data] if part.external_data else [])
    return sum((bundle / f).stat().st_size for f in files)
