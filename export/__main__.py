"""python -m export: turn a checkpoint into a bundle, and the tools around it.

  python -m export CHECKPOINT --out BUNDLE [--encoder fp32,fp16] [--decoder f32,f16,q8_0]
  python -m export synth --size tiny|small|4b|8b|0.9b --out DIR [--seed S] [--family F]
  python -m export reference CHECKPOINT AUDIO [-q QUESTION] [--max-new-tokens N] [--temperature T] [--json]
  python -m export expected CHECKPOINT --out FILE.npz [--audio A.wav ...]   reference outputs for drift checks
  python -m export drift BUNDLE --checkpoint CKPT [--audio A.wav ...] [--check]   against the PyTorch reference
  python -m export demo [--work DIR] [--model FOLDER]    export the trained tiny model, transcribe two held-out clips
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from runtime.cli import Parser, add_generation_args, generation_overrides, run_guarded

COMMANDS = ("bundle", "synth", "reference", "expected", "drift", "demo")


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)

    b = sub.add_parser("bundle", help="checkpoint -> bundle (the default command)")
    b.add_argument("checkpoint", help="local checkpoint folder or hub id")
    b.add_argument("--out", type=Path, required=True, help="bundle folder to write")
    b.add_argument("--encoder", default="fp32", help="comma list of fp32, fp16, int8")
    b.add_argument("--decoder", default="f16", help="comma list of f32, f16, bf16, q8_0, q4_k_m, ...")
    b.add_argument("--revision", default=None, help="hub revision when CHECKPOINT is a hub id")
    b.add_argument("--calibration", type=Path, nargs="+", help="audio for the quantization importance matrix "
                   "(default: the bundled speech clip; give real audio of your domain)")
    b.add_argument("--no-imatrix", action="store_true", help="quantize without an importance matrix")
    b.add_argument("--no-expected", action="store_true",
                   help="do not ship the reference's outputs on the bundled clip (device checks need them)")
    b.add_argument("--keep-intermediate", action="store_true",
                   help="keep the F16/F32 GGUF the quantized types are made from")

    s = sub.add_parser("synth", help="a synthetic checkpoint with random weights")
    from export.diarize.synth import SIZES as DIARIZE_SIZES
    from export.synth import SIZES

    s.add_argument("--size", choices=sorted(set(SIZES) | set(DIARIZE_SIZES)), required=True,
                   help=f"MOSS-Audio/-Music: {', '.join(SIZES)}; MOSS-Transcribe-Diarize: {', '.join(DIARIZE_SIZES)}")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--seed", type=int, default=0)
    from export.families import BY_NAME

    s.add_argument("--family", choices=sorted(BY_NAME), default="moss-audio",
                   help="the model_type and class names config.json declares")

    r = sub.add_parser("reference", help="answer with the PyTorch reference")
    r.add_argument("checkpoint")
    r.add_argument("audio", type=Path)
    r.add_argument("-q", "--question", default=None)
    add_generation_args(r)
    _reference_args(r)
    r.add_argument("--json", action="store_true", help="print prompt ids, token ids and text as JSON")

    e = sub.add_parser("expected", help="the reference's outputs on clips, for `python -m quant drift --expected`")
    e.add_argument("checkpoint")
    e.add_argument("--out", type=Path, required=True)
    _case_args(e)

    d = sub.add_parser("drift", help="every variant of a bundle against the PyTorch reference")
    d.add_argument("bundle", type=Path)
    d.add_argument("--checkpoint", required=True, help="the checkpoint the bundle was exported from")
    _case_args(d)
    from quant.cli import add_report_args

    add_report_args(d)

    m = sub.add_parser("demo", help="the README's main job on the embedded default model")
    m.add_argument("--work", type=Path, default=Path("work/demo"), help="where the bundle goes")
    m.add_argument("--model", type=Path, default=None, help="checkpoint folder (default: models/moss-audio-tiny)")
    for command in sub.choices.values():
        command.add_argument("--verbose", action="store_true", help="tracebacks and library logs")
    return p


def _reference_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default="float32")
    p.add_argument("--device", default="cpu", help="cpu or cuda")


def _case_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--audio", type=Path, nargs="+", help="clips to measure on (default: the bundled speech clip)")
    p.add_argument("-q", "--question", default=None, help="default: the checkpoint's (a transcription)")
    p.add_argument("--tokens", type=int, default=32, help="greedy tokens per clip")
    _reference_args(p)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in COMMANDS and argv[0] not in ("-h", "--help"):
        argv.insert(0, "bundle")  # `python -m export CHECKPOINT --out BUNDLE`
    args = parser().parse_args(argv)
    return run_guarded(lambda: HANDLERS[args.command](args), args.verbose)


def _bundle(args: argparse.Namespace) -> int:
    from export.bundle import ExportOptions, export_bundle

    flags = dict(imatrix=not args.no_imatrix, keep_intermediate=args.keep_intermediate, expected=not args.no_expected)
    if args.calibration:
        flags["calibration"] = tuple(args.calibration)
    options = ExportOptions.parse(encoder=args.encoder, decoder=args.decoder, **flags)
    manifest = export_bundle(args.checkpoint, args.out, options, revision=args.revision)
    print(f"wrote bundle {args.out}: " + ", ".join(sorted(manifest.files)))
    return 0


def _synth(args: argparse.Namespace) -> int:
    from export.diarize.synth import SIZES as DIARIZE_SIZES
    from export.diarize.synth import write_diarize_checkpoint
    from export.families import BY_NAME, MOSS_TRANSCRIBE_DIARIZE
    from runtime.errors import OptionsError
    from export.synth import SIZES, write_checkpoint

    family = BY_NAME[args.family]
    sizes = DIARIZE_SIZES if family is MOSS_TRANSCRIBE_DIARIZE else SIZES
    if args.size not in sizes:
        raise OptionsError(f"--size {args.size} is not a {args.family} size; choose from {', '.join(sizes)}")
    if family is MOSS_TRANSCRIBE_DIARIZE:
        write_diarize_checkpoint(args.out, args.size, seed=args.seed)
    else:
        write_checkpoint(args.out, args.size, seed=args.seed, family=family)
    print(f"wrote {args.size} {args.family} checkpoint to {args.out}")
    return 0


def _reference_model(args: argparse.Namespace):
    import torch

    from export.checkpoint import Checkpoint
    from export.reference import MossAudioReference

    return MossAudioReference(Checkpoint.open(args.checkpoint), dtype=getattr(torch, args.dtype), device=args.device)


def _reference(args: argparse.Namespace) -> int:
    from runtime.sampling import GenerationOptions

    model = _reference_model(args)
    ckpt = model.ckpt
    prompt, rows = model.prepare([args.audio], args.question or ckpt.prompt_info.default_question)
    options = GenerationOptions.from_kwargs(**{**ckpt.generation.__dict__, **generation_overrides(args)})
    tokens = model.generate(prompt, rows, options)
    text = ckpt.decode(tokens)
    if args.json:
        print(json.dumps({"prompt_token_ids": prompt.ids.tolist(), "token_ids": tokens, "text": text}))
    else:
        print(text)
    return 0


def _expected_of(args: argparse.Namespace):
    from export.reference_cases import reference_expected
    from runtime import DEMO_AUDIO

    model = _reference_model(args)
    question = args.question or model.ckpt.prompt_info.default_question
    return reference_expected(model, args.audio or [DEMO_AUDIO], question, args.tokens)


def _expected(args: argparse.Namespace) -> int:
    from quant.expected import write_expected

    made = _expected_of(args)
    write_expected(made, args.out)
    print(f"wrote {args.out}: {len(made.cases)} clip(s), {made.reference_dtype} reference on {made.reference_device}")
    return 0


def _drift(args: argparse.Namespace) -> int:
    from quant.cli import evalset_of, publish
    from quant.drift import gguf_text, measure

    made = _expected_of(args)
    source = {"kind": "pytorch reference", "source": str(args.checkpoint), "dtype": made.reference_dtype,
              "device": made.reference_device}
    report = measure(args.bundle, made.cases, gguf_text(args.bundle), source=source, evalset=evalset_of(args))
    return publish(args, args.bundle, report)


def _demo(args: argparse.Namespace) -> int:
    from export.demo import DEFAULT_MODEL, run_demo

    return run_demo(args.work, args.model or DEFAULT_MODEL)


HANDLERS = {"bundle": _bundle, "synth": _synth, "reference": _reference, "expected": _expected, "drift": _drift,
            "demo": _demo}

if __name__ == "__main__":
    sys.exit(main())
