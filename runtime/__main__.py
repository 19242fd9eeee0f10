"""python -m runtime BUNDLE AUDIO ["question"]: stream the answer to the terminal.

The default question asks for a transcription. Timings go to stderr unless --quiet.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from runtime.cli_common import add_generation_args, generation_options, run_guarded
from runtime.errors import OptionsError
from runtime.prompt import TRANSCRIBE_QUESTION


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m runtime", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", type=Path)
    p.add_argument("audio", nargs="+", help="one or more audio files; the last may be the question")
    add_generation_args(p)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--encoder", help="encoder variant in the bundle (default: best for the device)")
    p.add_argument("--decoder", help="decoder variant in the bundle, e.g. q4_k_m (default: smallest)")
    p.add_argument("--threads", type=int)
    p.add_argument("--n-gpu-layers", type=int, help="decoder layers on the GPU (-1: all)")
    p.add_argument("--reasoning", action="store_true", help="also stream a thinking model's <think> part")
    p.add_argument("--window", help="'auto' or seconds: answer audio longer than the context window by window")
    p.add_argument("--json", action="store_true", help="print the whole result as JSON at the end")
    p.add_argument("--quiet", action="store_true", help="no timing line on stderr")
    p.add_argument("--verbose", action="store_true", help="library logs and tracebacks")
    args = p.parse_args(argv)
    return run_guarded(lambda: _run(args), args.verbose)


def _run(args: argparse.Namespace) -> int:
    from runtime.pipeline import Pipeline

    audio, question = _split_question(args.audio)
    options = generation_options(args)
    pipe = Pipeline.load(args.bundle, args.device, encoder=args.encoder, decoder=args.decoder, threads=args.threads,
                         n_gpu_layers=args.n_gpu_layers, verbose=args.verbose)
    if not args.quiet:
        for note in pipe.notes:
            print(f"note: {note}", file=sys.stderr)
    if args.json:
        result = pipe.generate(audio, question, window=_window(args.window), **options.__dict__)
        print(json.dumps(result.to_dict(), ensure_ascii=False))
        return 0
    stream = pipe.ask(audio, question, reasoning=args.reasoning, window=_window(args.window), **options.__dict__)
    for piece in stream:
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    if not args.quiet:
        t = stream.result.timings
        print(f"[{len(stream.result.prompt_token_ids)} prompt tokens, encode {t.encode_s:.2f} s, "
              f"prefill {t.prefill_tok_s:.1f} tok/s, decode {t.decode_tok_s:.1f} tok/s, "
              f"stop: {stream.result.stop_reason}]", file=sys.stderr)
    return 0


def _window(value: str | None) -> str | float | None:
    if value is None or value == "auto":
        return value
    try:
        return float(value)
    except ValueError:
        raise OptionsError(f"--window {value!r}: give 'auto' or a number of seconds") from None


def _split_question(items: list[str]) -> tuple[list[str], str]:
    """The last positional is the question unless it names an existing file."""
    if len(items) > 1 and not _is_file(items[-1]):
        return items[:-1], items[-1]
    return items, TRANSCRIBE_QUESTION


def _is_file(text: str) -> bool:
    try:
        return Path(text).is_file()
    except OSError:  # a question too long to be a path
        return False


if __name__ == "__main__":
    sys.exit(main())
