"""Everything the model card reports: export every variant, score each on the evaluation
sets, and check the F32 bundle against the PyTorch reference on the demo clip."""

from __future__ import annotations

import json
from pathlib import Path

from train.score import format_scores, score_bundle

ENCODERS = ("fp32", "fp16", "int8")
DECODERS = ("f32", "f16", "q8_0", "q4_k_m")
DEMO_TOKENS = 64


def variants() -> list[tuple[str, str]]:
    """Each encoder with the f32 decoder, each decoder with the fp32 encoder."""
    return [(e, "f32") for e in ENCODERS] + [("fp32", d) for d in DECODERS if d != "f32"]


def export_all(model: Path, bundle: Path) -> None:
    from export.bundle import ExportOptions, export_bundle

    export_bundle(model, bundle, ExportOptions(encoder=ENCODERS, decoder=DECODERS))


def demo_check(model: Path, bundle: Path) -> dict:
    """Greedy tokens of the F32 bundle (KV f32, flash attention off) vs MossAudioReference."""
    from export.checkpoint import Checkpoint
    from export.reference import MossAudioReference
    from runtime import DEMO_AUDIO
    from runtime.pipeline import Pipeline
    from export.processor import TRANSCRIBE_QUESTION
    from runtime.sampling import GenerationOptions

    greedy = GenerationOptions(max_new_tokens=DEMO_TOKENS, temperature=0.0)
    ckpt = Checkpoint.open(model)
    ref = MossAudioReference(ckpt)
    prompt, rows = ref.prepare([DEMO_AUDIO], TRANSCRIBE_QUESTION)
    expected = ref.generate(prompt, rows, greedy)
    got = Pipeline.load(bundle, device="cpu", decoder="f32", kv_type="f32", flash_attn="off").generate(
        DEMO_AUDIO, TRANSCRIBE_QUESTION, **greedy.__dict__)
    return dict(prompt_ids_equal=got.prompt_token_ids == prompt.ids.tolist(), tokens=len(expected),
                tokens_equal=got.token_ids == expected, reference_text=ckpt.decode(expected), bundle_text=got.text)


def score_sets(bundle: Path, sets: dict[str, tuple[Path, list[tuple[str, str]]]], log=print) -> dict:
    """{set name: (folder, variants to score)} -> {set name: [score_bundle result per variant]}."""
    out: dict = {}
    for name, (folder, chosen) in sets.items():
        out[name] = []
        for enc, dec in chosen:
            result = score_bundle(bundle, folder, encoder=enc, decoder=dec)
            log(f"[{name}] {format_scores(result['summary'])}")
            out[name].append(result)
    return out


def write_report(path: Path, demo: dict, scores: dict) -> None:
    path.write_text(json.dumps(dict(demo=demo, scores={k: [r["summary"] for r in v] for k, v in scores.items()}),
                               indent=1, ensure_ascii=False))
