"""python -m runtime batch BUNDLE INPUT... --out results.jsonl [--workers N] [--ray [ADDRESS]]

Answers every input (audio files, folders searched recursively, or .jsonl/.csv manifests with
a `path` column and optional `id`, `question`) with one bundle, one JSON line per input in
--out, appended as each finishes. Run the same command again to resume: ids that already have
a record are skipped (failed ones too, unless --retry-failed).

Exit status: 0 every input answered, 1 some inputs failed (see their `error`), 2 a mistake in
the command or the bundle, 130 interrupted (finished records are kept; re-run to resume).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from runtime.cli import Parser, add_generation_args, add_load_args, generation_overrides, run_guarded, say

LOCAL = "local"  # --ray with no address: a Ray started on this machine for this run


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m runtime batch", description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", type=Path)
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="audio files, folders, .jsonl/.csv manifests")
    p.add_argument("--out", type=Path, required=True, help="results JSONL: appended to, and resumed from")
    p.add_argument("-q", "--question", help="asked of every input without its own (default: the bundle's, a "
                                            "transcription)")
    p.add_argument("--workers", type=int, default=1, help="local processes (or Ray actors) each holding the bundle")
    p.add_argument("--ray", nargs="?", const=LOCAL, metavar="ADDRESS",
                   help="run on Ray: no value starts one here; 'auto' joins the cluster of this node; HOST:PORT a "
                        "cluster's head (place --ray after the inputs, or give it a value)")
    p.add_argument("--ray-cpus", type=float, help="CPUs per Ray actor (default: the cluster's split between actors)")
    p.add_argument("--ray-gpus", type=float, help="GPUs per Ray actor (default: 1 when the cluster has GPUs)")
    p.add_argument("--window", help="'auto' or seconds: answer audio longer than the context window by window")
    p.add_argument("--retry-failed", action="store_true", help="run inputs whose earlier record is an error again")
    p.add_argument("--json-summary", type=Path, help="also write the summary here as JSON")
    add_generation_args(p)
    add_load_args(p, threads_help="threads per worker (default: the cores split between workers)")
    p.add_argument("--no-loop-guard", action="store_true", help="let a generation that repeats itself run on")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no notes (the summary still)")
    p.add_argument("--verbose", action="store_true", help="library logs and tracebacks")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run_guarded(lambda: _run(args), args.verbose)


def _run(args: argparse.Namespace) -> int:
    from runtime.atomic import write_text_atomic
    from runtime.batch.inputs import collect
    from runtime.batch.job import BatchJob, run_batch
    from runtime.batch.ray_runner import RaySpec
    from runtime.batch.worker import AskSpec, LoadSpec

    load = LoadSpec(str(args.bundle.resolve()), args.device, args.encoder, args.decoder, args.threads,
                    args.n_gpu_layers, args.context, args.verbose, args.prepack, args.repack, args.arena)
    ask = AskSpec(args.question, args.window, not args.no_loop_guard, generation_overrides(args))
    ray = None if args.ray is None else RaySpec(None if args.ray == LOCAL else args.ray, args.ray_cpus, args.ray_gpus)
    job = BatchJob(args.out, load, ask, args.workers, ray, args.retry_failed)
    items = collect(args.inputs)
    summary = run_batch(job, items, note=(lambda line: None) if args.quiet else (lambda line: say(f"note: {line}")),
                        show_progress=False if args.quiet else None)
    say(summary.line())
    if args.json_summary:
        write_text_atomic(args.json_summary, json.dumps(summary.to_dict(), indent=2) + "\n")
    if summary.interrupted:
        say(f"interrupted: run the same command again to resume from {args.out}")
        return 130
    return 1 if summary.failures or summary.skipped_failures else 0


if __name__ == "__main__":
    sys.exit(main())
