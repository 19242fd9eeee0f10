"""Accuracy drift of every variant in a bundle against the reference, on the same audio.

Encoder variants: cosine and max relative error of the packed rows, and the greedy answer of
the most precise decoder fed with them. Decoder variants (fed the reference's rows, so the
decoder's own drift is isolated): KL and top-1 at the positions whose predictions are used,
and the greedy continuation. Both: greedy match length, CER against the reference's answer,
file size, peak resident memory of a process running the variant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from quant import probe
from quant.cases import Case
from quant.evalset import EvalItem, score
from quant.metrics import decoder_metrics, encoder_metrics, greedy_metrics
from runtime.child import run_in_child
from runtime.manifest import DriftReference, DriftReport, VariantDrift, load_manifest
from runtime.variants import by_precision, most_precise


def measure(bundle: Path, cases: Sequence[Case], decode: Callable[[list[int]], str], *, source: dict,
            device: str = "cpu", only: set[str] | None = None, evalset: Sequence[EvalItem] = ()) -> DriftReport:
    """Every variant of the bundle (or those named in `only`, as "decoder:q8_0") against `cases`,
    and with `evalset` against the truth too. `source` describes the reference: kind, source,
    dtype, device."""
    bundle = Path(bundle)
    manifest = load_manifest(bundle)
    best_decoder, best_encoder = most_precise(manifest.decoders), most_precise(manifest.encoders)
    n_tokens = max(len(c.continuation) for c in cases)
    prompts, continuations = [c.prompt for c in cases], [c.continuation for c in cases]
    variants: dict[str, VariantDrift] = {}
    scored: dict[tuple[str, str], dict] = {}  # the best pairing is scored once, not for both its parts

    def truth(encoder: str, decoder: str) -> dict:
        if (encoder, decoder) not in scored:
            scored[encoder, decoder] = _truth(bundle, encoder, decoder, evalset, device)
        return scored[encoder, decoder]

    for name in by_precision(manifest.encoders):
        if only and f"encoder:{name}" not in only:
            continue
        out = run_in_child(probe.encoder_rows, bundle, name, [c.samples for c in cases], device)
        dec = run_in_child(probe.decoder_outputs, bundle, best_decoder, prompts, out["rows"], continuations, n_tokens,
                           device)
        variants[f"encoder:{name}"] = VariantDrift(
            kind="encoder", file=manifest.encoders[name].file, bytes=manifest.part_bytes("encoder", name),
            peak_rss_mb=round(out["peak_rss_mb"], 1), paired_with=f"decoder:{best_decoder}",
            **encoder_metrics([c.rows for c in cases], out["rows"]), **greedy_metrics(cases, dec["greedy"], decode),
            **truth(name, best_decoder))
    for name in by_precision(manifest.decoders):
        if only and f"decoder:{name}" not in only:
            continue
        out = run_in_child(probe.decoder_outputs, bundle, name, prompts, [c.rows for c in cases], continuations,
                           n_tokens, device)
        variants[f"decoder:{name}"] = VariantDrift(
            kind="decoder", file=manifest.decoders[name].file, bytes=manifest.part_bytes("decoder", name),
            peak_rss_mb=round(out["peak_rss_mb"], 1),
            **decoder_metrics(cases, out["logits"]), **greedy_metrics(cases, out["greedy"], decode),
            **truth(best_encoder, name))
    reference = DriftReference(audio=tuple(c.name for c in cases), greedy_tokens=n_tokens,
                               positions=int(sum(len(c.ref_tokens) for c in cases)),
                               tokens_per_position=int(cases[0].ref_tokens.shape[1]), **source)
    return DriftReport(reference=reference, variants=variants)


def _truth(bundle: Path, encoder: str, decoder: str, evalset: Sequence[EvalItem], device: str) -> dict:
    """Scores on the evaluation set of one pairing (nothing when no set is given)."""
    if not evalset:
        return {}
    out = run_in_child(probe.eval_answers, bundle, encoder, decoder, list(evalset), device)
    s = score(evalset, out["answers"], out["durations"])
    return {"eval_cer": s.cer, "eval_wer": s.wer, "language_accuracy": s.language_accuracy,
            "timestamp_mae_s": s.timestamp_mae_s}


def gguf_text(bundle: Path) -> Callable[[list[int]], str]:
    """Token ids to text through the bundle's own GGUF vocabulary (no tokenizer files needed)."""
    from runtime.llama import LlamaModel

    m = load_manifest(bundle, verify=False)
    model = LlamaModel(Path(bundle) / m.decoders[most_precise(m.decoders)].file, vocab_only=True)
    return lambda ids: b"".join(model.piece(int(t)) for t in ids).decode("utf-8", errors="replace")

