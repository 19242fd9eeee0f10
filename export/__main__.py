"""python -m export: turn a checkpoint into a bundle, make synthetic checkpoints, run the reference.

  python -m export CHECKPOINT --out BUNDLE [--encoder fp32,fp16] [--decoder f32,f16,q8_0]
  python -m export synth --size tiny|small|4b|8b --out DIR [--seed S]
  python -m export reference CHECKPOINT AUDIO "question" [--max-new-tokens N] [--temperature T] [--json]
  python -m export demo [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from runtime.cli_common import add_generation_args, generation_options, run_guarded

COMMANDS = ("synth", "reference", "demo")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = argv[0] if argv and argv[0] in COMMANDS else "bundle"
    args = _parser(command).parse_args(argv[1:] if command != "bundle" else argv)
    handler = {"synth": _synth, "reference": _reference, "demo": _demo, "bundle": _bundle}[command]
    return run_guarded(lambda: handler(args), args.verbose)


def _parser(command: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m export{'' if command == 'bundle' else ' ' + command}",
                                description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--verbose", action="store_true", help="tracebacks and library logs")
    if command == "synth":
        from export.synth import SIZES

        p.add_argument("--size", choices=sorted(SIZES), required=True)
        p.add_argument("--out", type=Path, required=True)
        p.add_argument("--seed", type=int, default=0)
    elif command == "reference":
        p.add_argument("checkpoint")
        p.add_argument("audio", type=Path)
        p.add_argument("question", nargs="?", default=None)
        add_generation_args(p)
        p.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default="float32")
        p.add_argument("--device", default="cpu", help="cpu or cuda")
        p.add_argument("--json", action="store_true", help="print prompt ids, token ids and text as JSON")
    elif command == "demo":
        p.add_argument("--work", type=Path, default=Path("work/demo"), help="where the checkpoint and bundle go")
    else:
        p.add_argument("checkpoint", help="local checkpoint folder or hub id")
        p.add_argument("--out", type=Path, required=True, help="bundle folder to write")
        p.add_argument("--encoder", default="fp32", help="comma list of fp32, fp16, int8")
        p.add_argument("--decoder", default="f16", help="comma list of f32, f16, bf16, q8_0, q4_k_m, ...")
        p.add_argument("--revision", default=None, help="hub revision when CHECKPOINT is a hub id")
        p.add_argument("--calibration", type=Path, nargs="+", help="audio for the quantization importance matrix "
                       "(default: the bundled speech clip; give real audio of your domain)")
        p.add_argument("--no-imatrix", action="store_true", help="quantize without an importance matrix")
        p.add_argument("--no-expected", action="store_true",
                       help="do not ship the reference's outputs on the bundled clip (device checks need them)")
        p.add_argument("--keep-intermediate", action="store_true",
                       help="keep the F16/F32 GGUF the quantized types are made from")
    return p


def _synth(args: argparse.Namespace) -> int:
    from export.synth import write_checkpoint

    write_checkpoint(args.out, args.size, seed=args.seed)
    print(f"wrote {args.size} checkpoint to {args.out}")
    return 0


def _reference(args: argparse.Namespace) -> int:
    import torch

    from export.checkpoint import Checkpoint
    from export.reference import MossAudioReference
    from runtime.prompt import TRANSCRIBE_QUESTION

    ckpt = Checkpoint.open(args.checkpoint)
    model = MossAudioReference(ckpt, dtype=getattr(torch, args.dtype), device=args.device)
    prompt, rows = model.prepare([args.audio], args.question or TRANSCRIBE_QUESTION)
    options = generation_options(args)
    tokens = model.generate(prompt, rows, options)
    text = ckpt.decode(tokens)
    if args.json:
        print(json.dumps({"prompt_token_ids": prompt.ids.tolist(), "token_ids": tokens, "text": text}))
    else:
        print(text)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from export.demo import run_demo

    return run_demo(args.work)


def _bundle(args: argparse.Namespace) -> int:
    from export.bundle import ExportOptions, export_bundle

    flags = dict(imatrix=not args.no_imatrix, keep_intermediate=args.keep_intermediate, expected=not args.no_expected)
    if args.calibration:
        flags["calibration"] = tuple(args.calibration)
    options = ExportOptions.parse(encoder=args.encoder, decoder=args.decoder, **flags)
    manifest = export_bundle(args.checkpoint, args.out, options, revision=args.revision)
    print(f"wrote bundle {args.out}: " + ", ".join(sorted(manifest.files)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
