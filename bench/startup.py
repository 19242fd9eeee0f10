"""Start-up and footprint: load time, the first answer after load, peak RSS, and the summed PSS
of one and of two processes answering from the same bundle (weights shared through the page
cache show up as PSS split between them). Each run in fresh processes; page cache warm (the
files are read once before the timed runs)."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time
from pathlib import Path

from bench.encoder import synthetic_clip

# CrispASR on the same 2 cores and 4B-shape weights (issue 18's measurement): the peer to beat.
CRISPASR_4B = {"load_s": 0.08, "peak_rss_mb": 3.9 * 1024}


def _pss_mb() -> float:
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _answer(bundle: str, decoder: str, threads: int, barrier, results, knobs: dict, seconds: float,
            new_tokens: int) -> None:
    from quant.probe import peak_rss_mb
    from runtime.pipeline import Pipeline

    t0 = time.perf_counter()
    pipe = Pipeline.load(bundle, device="cpu", decoder=decoder, threads=threads, **knobs)
    load = time.perf_counter() - t0
    t0 = time.perf_counter()
    timings = pipe.generate(synthetic_clip(seconds, seed=1), temperature=0, max_new_tokens=new_tokens).timings
    first = time.perf_counter() - t0
    m = pipe.manifest
    files = m.part_bytes("encoder", pipe.encoder_name) + m.part_bytes("decoder", pipe.decoder_name)
    barrier.wait()  # every process loaded and answered: now the shared pages are counted once
    results.put({"load_s": load, "first_answer_s": first, "peak_rss_mb": peak_rss_mb(), "pss_mb": _pss_mb(),
                 "files_mb": files / 2**20, "encode_s": timings.encode_s, "prefill_tok_s": timings.prefill_tok_s,
                 "decode_tok_s": timings.decode_tok_s})
    barrier.wait()


def processes(bundle: Path, decoder: str, threads: int, n: int, knobs: dict | None = None, seconds: float = 5.0,
              new_tokens: int = 8) -> list[dict]:
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(n), context.Queue()
    workers = [context.Process(target=_answer, args=(str(bundle), decoder, threads, barrier, results, knobs or {},
                                                     seconds, new_tokens))
               for _ in range(n)]
    for w in workers:
        w.start()
    out = [results.get(timeout=1800) for _ in workers]
    for w in workers:
        w.join()
    return out


def cli_first_token_s(bundle: Path, decoder: str, clip: Path) -> float:
    """From starting `python -m runtime BUNDLE clip` to its first printed byte of answer."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "runtime", str(bundle), str(clip), "--decoder", decoder,
                             "--temperature", "0", "--max-new-tokens", "8", "--quiet"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    proc.stdout.read(1)
    first = time.perf_counter() - t0
    proc.communicate()
    return first


def warm_page_cache(bundle: Path) -> None:
    """Read every file once: start-up is measured with the bundle in the page cache, as a machine that
    loaded it before has it."""
    for f in bundle.iterdir():
        with open(f, "rb") as fh:
            while fh.read(1 << 24):
                pass


def run(shapes: dict[str, Path], decoder: str, threads: int, work: Path) -> list[dict]:
    import soundfile as sf

    clip = work / "startup-clip.wav"
    sf.write(clip, synthetic_clip(5.0, seed=1), 16000)
    rows = []
    for shape, bundle in shapes.items():
        warm_page_cache(bundle)
        one = processes(bundle, decoder, threads, 1)[0]
        two = processes(bundle, decoder, max(1, threads // 2), 2)
        files_mb = one["files_mb"]
        rows.append({"shape": shape, "decoder": decoder, "load_s": round(one["load_s"], 3),
                     "first_answer_s": round(one["first_answer_s"], 3),
                     "cli_first_token_s": round(cli_first_token_s(bundle, decoder, clip), 3),
                     "peak_rss_mb": round(one["peak_rss_mb"]), "files_mb": round(files_mb),
                     "rss_over_files": round(one["peak_rss_mb"] / files_mb, 3),
                     "pss_two_mb": round(sum(p["pss_mb"] for p in two)),
                     "pss_two_over_rss_one": round(sum(p["pss_mb"] for p in two) / one["peak_rss_mb"], 3)})
    return rows


KNOBS = ("prepack", "repack", "arena")  # Pipeline.load's memory and start-up knobs, as the Plan names them


def knobs(bundle: Path, decoder: str, threads: int, seconds: float, new_tokens: int) -> list[dict]:
    """What each start-up and memory knob costs and buys: the device profile's settings, then each knob
    flipped alone; loaded and asked (the end-to-end clip) in fresh processes, alone and as two on the
    bundle. `start_to_answer_s` is load plus the whole answer: what one CLI call waits."""
    from runtime.manifest import load_manifest
    from runtime.placement.plan import make_plan

    plan = make_plan(bundle, load_manifest(bundle, verify=False), "cpu", decoder=decoder)
    chosen = {k: getattr(plan, k) for k in KNOBS}
    flips = [(f"{k} {'off' if v else 'on'}", {**chosen, k: not v}) for k, v in chosen.items()]
    warm_page_cache(bundle)
    rows = []
    for name, knob in [("profile", chosen)] + flips:
        one = processes(bundle, decoder, threads, 1, knob, seconds, new_tokens)[0]
        two = processes(bundle, decoder, max(1, threads // 2), 2, knob, seconds, new_tokens)
        rows.append({"setting": name, **knob, "load_s": round(one["load_s"], 3),
                     "encode_s": round(one["encode_s"], 3), "prefill_tok_s": round(one["prefill_tok_s"], 1),
                     "decode_tok_s": round(one["decode_tok_s"], 2),
                     "start_to_answer_s": round(one["load_s"] + one["first_answer_s"], 2),
                     "peak_rss_mb": round(one["peak_rss_mb"]),
                     "rss_over_files": round(one["peak_rss_mb"] / one["files_mb"], 3),
                     "pss_two_over_rss_one": round(sum(p["pss_mb"] for p in two) / one["peak_rss_mb"], 3)})
    return rows
