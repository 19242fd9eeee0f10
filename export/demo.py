"""The README's main job on the embedded default: synthesize a tiny checkpoint, export it,
ask about the bundled clip, and check the answer against the PyTorch reference."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from export.bundle import ExportOptions, export_bundle
from export.checkpoint import Checkpoint
from export.synth import write_checkpoint
from runtime import DEMO_AUDIO
from runtime.pipeline import Pipeline

QUESTION = "Transcribe the audio."
GREEDY_TOKENS = 24


def run_demo(work: Path) -> int:
    ckpt_dir, bundle_dir = work / "checkpoint-tiny", work / "bundle-tiny"
    t0 = time.perf_counter()
    if not (ckpt_dir / "config.json").is_file():
        write_checkpoint(ckpt_dir, "tiny", seed=0)
        print(f"synthesized a tiny MOSS-Audio checkpoint (random weights) in {ckpt_dir}")
    export_bundle(ckpt_dir, bundle_dir, ExportOptions(encoder=("fp32",), decoder=("f32", "q8_0")))
    print(f"exported {bundle_dir} in {time.perf_counter() - t0:.1f} s")

    pipe = Pipeline.load(bundle_dir, device="auto", decoder="q8_0")
    print(f"\n{DEMO_AUDIO.name}: {QUESTION}\n> ", end="")
    stream = pipe.ask(DEMO_AUDIO, QUESTION, max_new_tokens=32)
    for piece in stream:
        sys.stdout.write(piece)
        sys.stdout.flush()
    t = stream.result.timings
    print(f"\n[q8_0 decoder, sampled; encode {t.encode_s:.2f} s, prefill {t.prefill_tok_s:.0f} tok/s, "
          f"decode {t.decode_tok_s:.0f} tok/s] (random weights: the words are noise, the plumbing is real)")
    return _check_against_reference(ckpt_dir, bundle_dir)


def _check_against_reference(ckpt_dir: Path, bundle_dir: Path) -> int:
    """Greedy tokens of the F32 bundle vs the PyTorch reference on the same clip."""
    from export.reference import MossAudioReference
    from runtime.sampling import GenerationOptions

    greedy = GenerationOptions(max_new_tokens=GREEDY_TOKENS, temperature=0.0)
    ref = MossAudioReference(Checkpoint.open(ckpt_dir))
    prompt, rows = ref.prepare([DEMO_AUDIO], QUESTION)
    expected = ref.generate(prompt, rows, greedy)
    ours = Pipeline.load(bundle_dir, device="cpu", decoder="f32", kv_type="f32", flash_attn="off")
    got = ours.generate(DEMO_AUDIO, QUESTION, **greedy.__dict__)
    same_prompt = got.prompt_token_ids == prompt.ids.tolist()
    matched = sum(a == b for a, b in zip(got.token_ids, expected))
    print(f"\nF32 bundle vs PyTorch reference, greedy: prompt ids {'identical' if same_prompt else 'DIFFER'}, "
          f"{matched}/{len(expected)} tokens match")
    return 0 if same_prompt and got.token_ids == expected else 1
