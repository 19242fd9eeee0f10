"""The numbers every report uses, defined once: encoder closeness, next-token KL and top-1,
greedy agreement, and character/word error rates."""

from __future__ import annotations

import re
from typing import Callable, Sequence

import numpy as np

from quant.cases import Case


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def encoder_metrics(expected: Sequence[np.ndarray], got: Sequence[np.ndarray]) -> dict:
    ref = np.concatenate(expected).astype(np.float64)
    out = np.concatenate(got).astype(np.float64)
    cos = float((ref * out).sum() / np.linalg.norm(ref) / np.linalg.norm(out))
    return {"cosine": cos, "max_rel_error": float(np.abs(ref - out).max() / np.abs(ref).max())}


def decoder_metrics(cases: Sequence[Case], logits: Sequence[np.ndarray]) -> dict:
    """KL(reference || variant) over the reference's top tokens, both renormalized over that set,
    and top-1 agreement, at the positions whose predictions are used: the last prompt position
    and each step of the reference's continuation. `logits[i]` are the variant's at those positions."""
    kl, top1 = [], []
    for case, got in zip(cases, logits):
        if got.shape[0] != case.ref_tokens.shape[0]:
            raise ValueError(f"{case.name}: {got.shape[0]} positions measured, the reference has "
                             f"{case.ref_tokens.shape[0]}")
        q = log_softmax(np.take_along_axis(log_softmax(got.astype(np.float64)), case.ref_tokens, -1))
        p = log_softmax(case.ref_logprobs.astype(np.float64))
        kl.append((np.exp(p) * (p - q)).sum(-1))
        top1.append(case.ref_tokens[:, 0] == got.argmax(-1))
    kl_all = np.concatenate(kl)
    return {"kl_mean": float(kl_all.mean()), "kl_p99": float(np.percentile(kl_all, 99)),
            "top1": float(np.concatenate(top1).mean())}


def greedy_metrics(cases: Sequence[Case], greedy: Sequence[Sequence[int]], decode: Callable[[list[int]], str]) -> dict:
    """How far the variant's greedy answer follows the reference's, in tokens and in characters."""
    matched, total, cers = 0, 0, []
    for case, got in zip(cases, greedy):
        same = 0
        for a, b in zip(case.continuation, got):
            if a != b:
                break
            same += 1
        matched, total = matched + same, total + len(case.continuation)
        cers.append(cer(decode(case.continuation), decode(list(got)), normalize=False))
    return {"greedy_match": matched / total, "cer": float(np.mean(cers))}


def normalize_text(text: str) -> str:
    """Lower case, punctuation dropped, spaces collapsed: what a transcript's words are."""
    return " ".join(re.sub(r"[^\w\s']|_", " ", text.lower()).replace(" '", " ").split())


def edits(ref: Sequence, hyp: Sequence) -> int:
    """Levenshtein distance between two strings or two word lists."""
    from rapidfuzz.distance import Levenshtein

    return Levenshtein.distance(ref, hyp)


def cer(reference: str, hypothesis: str, *, normalize: bool = True) -> float:
    """Character edits over the reference's length (an empty reference: 0 if the hypothesis is empty too, else 1)."""
    if normalize:
        reference, hypothesis = normalize_text(reference), normalize_text(hypothesis)
    if not reference:
        return float(bool(hypothesis))
    return edits(reference, hypothesis) / len(reference)


def wer(reference: str, hypothesis: str) -> float:
    ref, hyp = normalize_text(reference).split(), normalize_text(hypothesis).split()
    if not ref:
        return float(bool(hyp))
    return edits(ref, hyp) / len(ref)
