"""The physical limit: decode reads every weight once per token, so memory bandwidth caps it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from runtime.manifest import load_manifest

COPY_BYTES = 512 * 1024 * 1024


def memory_bandwidth_gb_s(threads: int, repeats: int = 3) -> float:
    """Read bandwidth: the best of a few multi-threaded max-reductions over 512 MB (decode only
    reads weights; a copy would also pay for writes)."""
    n = COPY_BYTES // 4 // threads * threads
    src = np.ones(n, dtype=np.float32)
    step = n // threads
    best = float("inf")
    for _ in range(repeats):
        workers = [threading.Thread(target=np.maximum.reduce, args=(src[i * step:(i + 1) * step],))
                   for i in range(threads)]  # numpy releases the GIL inside the reduction
        t0 = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        best = min(best, time.perf_counter() - t0)
    return src.nbytes / best / 1e9


def bytes_per_token(gguf_path: Path) -> int:
    """Every tensor but the token-embedding table (one row of it is read per token)."""
    import gguf

    return sum(int(t.n_bytes) for t in gguf.GGUFReader(str(gguf_path)).tensors if t.name != "token_embd.weight")


def run(bundle: Path, decoder_rows: list[dict], threads: int) -> dict:
    """The ceiling is the larger of the measured read bandwidth and the best bandwidth a decode
    was seen to reach (numpy's reduction is a lower bound on what the memory system gives)."""
    measured = memory_bandwidth_gb_s(threads)
    m = load_manifest(bundle, verify=False)
    per_token = {d["gguf"]: bytes_per_token(bundle / m.decoders[d["gguf"]].file) for d in decoder_rows}
    effective = {d["gguf"]: d["ours_greedy_tok_s"] * per_token[d["gguf"]] / 1e9 for d in decoder_rows}
    ceiling_bw = max([measured, *effective.values()])
    rows = []
    for d in decoder_rows:
        ceiling = ceiling_bw * 1e9 / per_token[d["gguf"]]
        rows.append({"gguf": d["gguf"], "bytes_per_token": per_token[d["gguf"]],
                     "effective_gb_s": round(effective[d["gguf"]], 2), "ceiling_tok_s": round(ceiling, 2),
                     "ours_greedy_tok_s": d["ours_greedy_tok_s"],
                     "percent_of_ceiling": round(100 * d["ours_greedy_tok_s"] / ceiling, 1)})
    return {"read_bandwidth_gb_s": round(measured, 2), "ceiling_bandwidth_gb_s": round(ceiling_bw, 2),
            "threads": threads, "decoders": rows}
