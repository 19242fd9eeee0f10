"""The physical limit: decode reads every weight once per token, so memory bandwidth caps it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from runtime.manifest import load_manifest

COPY_BYTES = 512 * 1024 * 1024


def memory_bandwidth_gb_s(threads: int, repeats: int = 3) -> float:
    """Read+write bytes per second of a large multi-threaded copy (the best of a few)."""
    n = COPY_BYTES // 4 // threads * threads
    src, dst = np.ones(n, dtype=np.float32), np.empty(n, dtype=np.float32)
    parts = np.array_split(np.arange(n), threads)
    bounds = [(p[0], p[-1] + 1) for p in parts]

    def copy(a: int, b: int) -> None:
        np.copyto(dst[a:b], src[a:b])  # numpy releases the GIL for large copies

    best = float("inf")
    for _ in range(repeats):
        workers = [threading.Thread(target=copy, args=b) for b in bounds]
        t0 = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        best = min(best, time.perf_counter() - t0)
    return 2 * src.nbytes / best / 1e9


def bytes_per_token(gguf_path: Path) -> int:
    """Every tensor but the token-embedding table (one row of it is read per token)."""
    import gguf

    return sum(int(t.n_bytes) for t in gguf.GGUFReader(str(gguf_path)).tensors if t.name != "token_embd.weight")


def run(bundle: Path, decoder_rows: list[dict], threads: int) -> dict:
    bw = memory_bandwidth_gb_s(threads)
    m = load_manifest(bundle, verify=False)
    rows = []
    for d in decoder_rows:
        per_token = bytes_per_token(bundle / m.decoders[d["gguf"]].file)
        ceiling = bw * 1e9 / per_token
        rows.append({"gguf": d["gguf"], "bytes_per_token": per_token, "ceiling_tok_s": round(ceiling, 2),
                     "ours_decode_tok_s": d["ours_decode_tok_s"],
                     "percent_of_ceiling": round(100 * d["ours_decode_tok_s"] / ceiling, 1)})
    return {"memory_bandwidth_gb_s": round(bw, 2), "threads": threads, "decoders": rows}
