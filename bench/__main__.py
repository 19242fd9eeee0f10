"""python -m bench [--quick] [--json OUT] [--work DIR]

Builds (and caches in --work) a synthetic checkpoint and its bundle — `4b`-shaped, or `tiny`
with --quick — and measures in one run on this machine: the encoder against the PyTorch
reference, the decoder against llama.cpp alone, end to end against the reference pipeline,
start-up and memory, answering while the audio arrives, decode speed against the memory-bandwidth
ceiling, batch throughput (1 vs 2 local workers, Ray with 2 actors), and the HTTP server against
the in-process pipeline. Prints tables; writes JSON with a section for each.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from runtime.cli import Parser, run_guarded


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny model, seconds: keeps the scripts from rotting")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--work", type=Path, default=Path("work/bench"), help="cache for the checkpoint and bundle")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    return run_guarded(lambda: _run(args), args.verbose)


def _run(args: argparse.Namespace) -> int:
    from bench import batch, decoder, encoder, end_to_end, incremental, limit, server, startup
    from bench.setup import FULL, QUICK, STARTUP_SHAPES, prepare

    spec = QUICK if args.quick else FULL
    t0 = time.perf_counter()
    ckpt, bundle = prepare(spec, args.work)
    setup_s = time.perf_counter() - t0
    results = {"machine": {**_cpu(), "threads": args.threads,
                           "model": spec.size, "setup_s": round(setup_s, 1)}}
    results["encoder"] = encoder.run(ckpt, bundle, spec.clip_seconds, args.threads)
    _table("Encoder: ONNX vs PyTorch reference (CPU)", results["encoder"])
    results["decoder"] = decoder.run(bundle, spec.prompt_tokens, spec.decode_tokens, args.threads)
    _table("Decoder: our embedding prefill and generation loop vs llama.cpp alone, same GGUF", results["decoder"])
    results["end_to_end"] = end_to_end.run(ckpt, bundle, spec.e2e_seconds, spec.new_tokens, args.threads)
    _table(f"End to end: {spec.e2e_seconds:.0f} s clip, {spec.new_tokens} new tokens", results["end_to_end"])
    names = ("tiny", "tiny-151936") if args.quick else tuple(STARTUP_SHAPES)
    shapes = {n: bundle if STARTUP_SHAPES[n] == spec else prepare(STARTUP_SHAPES[n], args.work)[1] for n in names}
    results["startup"] = startup.run(shapes, "q4_k_m", args.threads, args.work)
    _table("Start-up: load, first answer, memory (PSS of two processes on one bundle); CrispASR 4B: load "
           f"{startup.CRISPASR_4B['load_s']} s, peak {startup.CRISPASR_4B['peak_rss_mb']:.0f} MB", results["startup"])
    results["knobs"] = startup.knobs(bundle, "q4_k_m", args.threads, spec.e2e_seconds, spec.new_tokens)
    _table(f"Start-up knobs on the {spec.size} shape (encoder fp32, decoder q4_k_m, {spec.e2e_seconds:.0f} s clip, "
           f"{spec.new_tokens} new tokens): the profile's choice, then onnxruntime pre-packing, llama.cpp "
           "repacking and onnxruntime's memory arena each flipped", results["knobs"])
    results["incremental"] = incremental.run(bundle, "q4_k_m", spec.e2e_seconds, args.threads)
    _table(f"Answer while the audio arrives: {spec.e2e_seconds:.0f} s clip fed in 20 ms blocks, q4_k_m",
           results["incremental"])
    results["limit"] = limit.run(bundle, results["decoder"], args.threads)
    lim = results["limit"]
    print(f"\nMemory read bandwidth: {lim['read_bandwidth_gb_s']} GB/s measured ({args.threads} threads); ceiling "
          f"{lim['ceiling_bandwidth_gb_s']} GB/s (the larger of that and the best decode's own)")
    _table("Decode vs the bandwidth ceiling (bytes read per token)", results["limit"]["decoders"])
    results["batch"] = batch.run(bundle, args.work, spec.batch_clips, spec.batch_seconds, spec.new_tokens,
                                 args.threads)
    _table(f"Batch: {spec.batch_clips} clips of {spec.batch_seconds:g} s, {spec.new_tokens} new tokens (wall time "
           "includes start-up; steady leaves it out)", results["batch"])
    results["server"] = server.run(bundle, spec.e2e_seconds, spec.new_tokens, args.threads)
    _table(f"Server: streamed chat over HTTP vs the in-process pipeline ({spec.e2e_seconds:.0f} s clip, "
           f"{spec.new_tokens} new tokens)", results["server"])
    results["machine"]["total_s"] = round(time.perf_counter() - t0, 1)
    print(f"\ntotal {results['machine']['total_s']} s (setup {setup_s:.1f} s)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def _cpu() -> dict:
    """Every figure names the CPU and the ISA flags that decide its speed (BF16/VNNI change PyTorch's)."""
    from runtime.placement.detect import cpu_summary

    name, isa = cpu_summary()
    return {"cpu": name, "isa": list(isa)}


def _table(title: str, rows: list[dict]) -> None:
    from quant.report import format_table

    keys = list(dict.fromkeys(k for r in rows for k in r))  # rows may add columns (ratios on the second)
    print(f"\n{title}\n" + format_table(keys, [[r.get(k, "") for k in keys] for r in rows], left=0))


if __name__ == "__main__":
    sys.exit(main())
