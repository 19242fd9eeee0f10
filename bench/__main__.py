"""python -m bench [--quick] [--json OUT] [--work DIR]

Builds (and caches in --work) a synthetic checkpoint and its bundle — `4b`-shaped, or `tiny`
with --quick — and measures in one run on this machine: the encoder against the PyTorch
reference, the decoder against llama.cpp alone, end to end against the reference pipeline, and
decode speed against the memory-bandwidth ceiling. Prints tables; writes JSON with sections
encoder, decoder, end_to_end, limit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from runtime.cli_common import run_guarded


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny model, seconds: keeps the scripts from rotting")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--work", type=Path, default=Path("work/bench"), help="cache for the checkpoint and bundle")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    return run_guarded(lambda: _run(args), args.verbose)


def _run(args: argparse.Namespace) -> int:
    from bench import decoder, encoder, end_to_end, limit
    from bench.setup import FULL, QUICK, prepare

    spec = QUICK if args.quick else FULL
    t0 = time.perf_counter()
    ckpt, bundle = prepare(spec, args.work)
    setup_s = time.perf_counter() - t0
    results = {"machine": {"cpu": platform.processor() or platform.machine(), "threads": args.threads,
                           "model": spec.size, "setup_s": round(setup_s, 1)}}
    results["encoder"] = encoder.run(ckpt, bundle, spec.clip_seconds, args.threads)
    _table("Encoder: ONNX vs PyTorch reference (CPU)", results["encoder"])
    results["decoder"] = decoder.run(bundle, spec.prompt_tokens, spec.decode_tokens, args.threads)
    _table("Decoder: our embedding prefill and generation loop vs llama.cpp alone, same GGUF", results["decoder"])
    results["end_to_end"] = end_to_end.run(ckpt, bundle, spec.e2e_seconds, spec.new_tokens, args.threads)
    _table(f"End to end: {spec.e2e_seconds:.0f} s clip, {spec.new_tokens} new tokens", results["end_to_end"])
    results["limit"] = limit.run(bundle, results["decoder"], args.threads)
    lim = results["limit"]
    print(f"\nMemory read bandwidth: {lim['read_bandwidth_gb_s']} GB/s measured ({args.threads} threads); ceiling "
          f"{lim['ceiling_bandwidth_gb_s']} GB/s (the larger of that and the best decode's own)")
    _table("Decode vs the bandwidth ceiling (bytes read per token)", results["limit"]["decoders"])
    results["machine"]["total_s"] = round(time.perf_counter() - t0, 1)
    print(f"\ntotal {results['machine']['total_s']} s (setup {setup_s:.1f} s)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def _table(title: str, rows: list[dict]) -> None:
    keys = list(rows[0])
    cells = [keys] + [[str(r.get(k, "")) for k in keys] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(keys))]
    print(f"\n{title}")
    for i, c in enumerate(cells):
        print("  ".join(x.rjust(w) for x, w in zip(c, widths)))
        if i == 0:
            print("  ".join("-" * w for w in widths))


if __name__ == "__main__":
    sys.exit(main())
