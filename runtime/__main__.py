"""python -m runtime BUNDLE AUDIO... [-q QUESTION]: stream the answer to the terminal.
python -m runtime serve BUNDLE ...: an OpenAI-compatible HTTP server (see serve --help).

The default question is the bundle's (a transcription). Timings go to stderr unless --quiet.
Parsing and --help import neither onnxruntime nor llama.cpp: mistakes come back at once.
Subcommands: python -m runtime batch --help (many files, locally or on Ray).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

from runtime.cli import Parser, add_generation_args, add_load_args, generation_overrides, load_options, run_guarded
from runtime.errors import OptionsError

# python -m runtime NAME ARGS...: that module's main(ARGS); anything else is the ask form.
SUBCOMMANDS = {"serve": "runtime.serve.cli", "batch": "runtime.batch.cli"}


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m runtime", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", type=Path)
    p.add_argument("audio", nargs="+", type=Path, help="one or more audio files, or - to read audio from stdin "
                   "as it arrives (arecord ... | python -m runtime BUNDLE - --stream-input)")
    p.add_argument("-q", "--question", help="what to ask (default: the bundle's, a transcription)")
    p.add_argument("--hotwords", help="comma-separated names or terms the audio may hold, appended to the question "
                   "as a hint")
    add_generation_args(p)
    add_load_args(p)
    p.add_argument("--reasoning", action="store_true", help="also stream a thinking model's <think> part")
    p.add_argument("--window", help="'auto' or seconds: answer audio longer than the context window by window")
    p.add_argument("--no-loop-guard", action="store_true", help="let a generation that repeats itself run on")
    p.add_argument("--stream-input", action="store_true", help="with -: encode and prefill stdin's audio while it "
                   "arrives, answer at its end")
    p.add_argument("--input-rate", type=int, help="raw PCM on stdin: sample rate (default: the model's)")
    p.add_argument("--input-format", default="s16le", choices=["s16le", "s32le", "f32le", "u8"],
                   help="raw PCM on stdin: sample format (a WAV header overrides)")
    p.add_argument("--input-channels", type=int, default=1, help="raw PCM on stdin: channels")
    p.add_argument("--json", action="store_true", help="print the whole result as JSON at the end")
    p.add_argument("--quiet", action="store_true", help="no timing line on stderr")
    p.add_argument("--verbose", action="store_true", help="library logs and tracebacks")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUBCOMMANDS:  # a bundle folder of that name: write ./serve
        import importlib

        return importlib.import_module(SUBCOMMANDS[argv[0]]).main(argv[1:])
    args = parser().parse_args(argv)
    return run_guarded(lambda: _run(args), args.verbose)


def _run(args: argparse.Namespace) -> int:
    from runtime.longform import window_size
    from runtime.pipeline import Pipeline
    from runtime.prompt import normalize_question

    if args.question is not None:
        normalize_question(args.question)
    if args.window is not None:
        window_size(args.window, float("inf"))  # a bad value is refused before anything loads
    streaming = [str(a) for a in args.audio] == ["-"]
    if args.stream_input and not streaming:
        raise OptionsError("--stream-input reads stdin: give - as the only audio")
    overrides = generation_overrides(args)
    pipe = Pipeline.load(args.bundle, verbose=args.verbose, **load_options(args))
    if not args.quiet:
        for note in pipe.notes:
            print(f"note: {note}", file=sys.stderr)
    hotwords = args.hotwords.split(",") if args.hotwords else []
    ask = dict(loop_guard=not args.no_loop_guard, hotwords=hotwords, **overrides)
    if streaming:
        if args.window is not None:
            raise OptionsError("--window works on files; stdin is answered as one clip")
        session = _fed_session(pipe, args)
        started = time.perf_counter()
        stream = session.ask(args.question, reasoning=args.reasoning, **ask)
    else:
        started = time.perf_counter()
        stream = pipe.ask(args.audio, args.question, reasoning=args.reasoning, window=args.window, **ask)
    with stream:
        first = None
        for piece in stream:
            first = first or time.perf_counter()
            if not args.json:
                sys.stdout.write(piece)
                sys.stdout.flush()
    r = stream.result
    if not args.quiet:
        for note in r.notes:
            print(f"note: {note}", file=sys.stderr)
    if args.json:
        print(json.dumps(r.to_dict(), ensure_ascii=False))
        return 0
    sys.stdout.write("\n")
    if not args.quiet:
        t = r.timings
        waited = f", first token {first - started:.2f} s after the {'end of input' if streaming else 'call'}" if first else ""
        print(f"[{len(r.prompt_token_ids)} prompt tokens, encode {t.encode_s:.2f} s, prefill {t.prefill_tok_s:.1f} "
              f"tok/s, decode {t.decode_tok_s:.1f} tok/s{waited}, finish: {r.finish_reason}]", file=sys.stderr)
    return 0


def _fed_session(pipe, args: argparse.Namespace):
    """A session fed from stdin until it closes."""
    from runtime.pcm_stream import FORMATS, PcmFormat, pcm_blocks

    rate = args.input_rate or pipe.manifest.audio.sample_rate
    raw = PcmFormat(rate, args.input_channels, FORMATS[args.input_format])
    fmt, blocks = pcm_blocks(sys.stdin.buffer, raw)
    session = pipe.session(sample_rate=fmt.rate)
    for block in blocks:
        session.feed(block)
    return session


if __name__ == "__main__":
    sys.exit(main())
