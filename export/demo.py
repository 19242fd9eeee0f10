"""The README's main job on the embedded default: export the trained tiny model shipped in
models/, transcribe two clips it never trained on and score each, and check the F32 bundle token
for token against the PyTorch reference.

The two clips show what the model is: the first English clip of its own evaluation set (a held-out
sentence of the kind it trained on, in a voice variant it never heard) and the runtime's bundled
clip, a pangram spoken well below the slowest rate in its training (about 80 against 130 words a
minute), which it gets wrong."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from export.bundle import ExportOptions, export_bundle
from export.checkpoint import Checkpoint
from quant.evalset import load_evalset
from quant.metrics import cer
from runtime import DEMO_AUDIO, DEMO_TEXT
from runtime.errors import OptionsError
from runtime.pipeline import Pipeline

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "models" / "moss-audio-tiny"
GREEDY_TOKENS = 24


def run_demo(work: Path, model: Path = DEFAULT_MODEL) -> int:
    if not (model / "config.json").is_file():
        raise OptionsError(f"no model at {model}: run the demo from a clone of the repository (models/ holds the "
                           "trained tiny model) or pass --model with a MOSS-Audio checkpoint folder")
    bundle_dir = work / f"bundle-{model.name}"
    t0 = time.perf_counter()
    export_bundle(model, bundle_dir, ExportOptions(encoder=("fp32",), decoder=("f32", "q8_0")))
    print(f"exported {model} to {bundle_dir} in {time.perf_counter() - t0:.1f} s")

    with Pipeline.load(bundle_dir, device="auto", decoder="q8_0") as pipe:
        question = pipe.manifest.prompt.default_question
        for audio, text, what in demo_clips(model):
            print(f"\n{audio.name} ({what}): {question}\n> ", end="")
            with pipe.ask(audio, question, temperature=0.0) as stream:
                for piece in stream:
                    sys.stdout.write(piece)
                    sys.stdout.flush()
                result = stream.result
            t = result.timings
            print(f"\n[q8_0 decoder, greedy; encode {t.encode_s:.2f} s, prefill {t.prefill_tok_s:.0f} tok/s, "
                  f"decode {t.decode_tok_s:.0f} tok/s]")
            print(f"reference: {text}\nCER {cer(text, result.text):.1%}")
    return _check_against_reference(model, bundle_dir, question)


def demo_clips(model: Path) -> list[tuple[Path, str, str]]:
    """(audio, what it says, what it is). The evaluation clip is the set's first English transcription
    item, by position, never by how well the model does on it."""
    clips = []
    if (model / "eval").is_dir():
        first = next((i for i in load_evalset(model / "eval") if i.task == "transcribe" and i.language == "English"),
                     None)
        if first:
            clips.append((first.audio, first.answer, "held out of training, the first English clip of the model's "
                                                     "evaluation set"))
    return clips + [(DEMO_AUDIO, DEMO_TEXT, "the bundled clip: held out, and spoken far slower than any training "
                                            "clip")]


def _check_against_reference(model: Path, bundle_dir: Path, question: str) -> int:
    """Greedy tokens of the F32 bundle vs the PyTorch reference on the same clip."""
    from export.reference import MossAudioReference
    from runtime.sampling import GenerationOptions

    greedy = GenerationOptions(max_new_tokens=GREEDY_TOKENS, temperature=0.0)
    ref = MossAudioReference(Checkpoint.open(model))
    prompt, rows = ref.prepare([DEMO_AUDIO], question)
    expected = ref.generate(prompt, rows, greedy)
    with Pipeline.load(bundle_dir, device="cpu", decoder="f32", kv_type="f32", flash_attn="off") as ours:
        got = ours.generate(DEMO_AUDIO, question, **greedy.__dict__)
    same_prompt = got.prompt_token_ids == prompt.ids.tolist()
    matched = sum(a == b for a, b in zip(got.token_ids, expected))
    print(f"\nF32 bundle vs PyTorch reference, greedy: prompt ids {'identical' if same_prompt else 'DIFFER'}, "
          f"{matched}/{len(expected)} tokens match")
    return 0 if same_prompt and got.token_ids == expected else 1
