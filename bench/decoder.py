"""Decoder: our embedding-injected prefill vs llama.cpp's token prefill of the same length, and
our generation loop vs llama.cpp's bare greedy loop, on the same GGUF."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from runtime.decoder import Decoder, DecoderOptions
from runtime.manifest import load_manifest
from runtime.prompt import Prompt
from runtime.sampling import GenerationOptions


def audio_prompt(manifest, n_tokens: int) -> tuple[Prompt, np.ndarray]:
    """n_tokens positions, all audio rows except the two span ends (random rows: speed only)."""
    t = manifest.tokens
    ids = np.array([t.audio_start] + [t.audio] * (n_tokens - 2) + [t.audio_end], dtype=np.int64)
    rows = np.where(ids == t.audio, np.cumsum(ids == t.audio) - 1, -1)
    data = np.random.default_rng(0).standard_normal((n_tokens - 2, manifest.model.row_width)).astype(np.float32)
    return Prompt(ids=ids, audio_rows=rows), data * 0.5


def llama_sampler(options: GenerationOptions):
    """llama.cpp's own sampler for the same settings: greedy, or top-k, temperature and a seeded draw."""
    import llama_cpp as lc

    if options.greedy:
        return lc.llama_sampler_init_greedy()
    chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
    lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_top_k(options.top_k))
    lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_temp(options.temperature))
    lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_dist(options.seed))
    return chain


def bare_llama_decode(dec: Decoder, first: int, n: int, options: GenerationOptions) -> float:
    """llama.cpp's minimal loop (as its `simple` example): llama_batch_get_one, llama_decode,
    its sampler in C; no logits copied out."""
    import llama_cpp as lc

    sampler = llama_sampler(options)
    token = (lc.llama_token * 1)(first)
    t0 = time.perf_counter()
    for _ in range(n):
        if lc.llama_decode(dec.ctx.ptr, lc.llama_batch_get_one(token, 1)) != 0:
            raise RuntimeError("llama_decode failed in the bare loop")
        token[0] = lc.llama_sampler_sample(sampler, dec.ctx.ptr, -1)
    elapsed = time.perf_counter() - t0
    lc.llama_sampler_free(sampler)
    return elapsed


def run(bundle: Path, prompt_tokens: int, decode_tokens: int, threads: int) -> list[dict]:
    m = load_manifest(bundle, verify=False)
    out = []
    for name in m.decoders:
        dec = Decoder(bundle / m.decoders[name].file, m.tokens, m.model.row_width, m.model.context_length,
                      DecoderOptions(n_threads=threads, n_batch=512))
        prompt, rows = audio_prompt(m, prompt_tokens)
        warm_prompt, warm_rows = audio_prompt(m, 16)
        dec.prefill(warm_prompt, warm_rows, reserve=prompt_tokens + decode_tokens + 8)  # warm both paths, size
        dec.ctx.clear()
        dec.ctx.decode(0, tokens=np.arange(16), logits="last")
        t0 = time.perf_counter()
        dec.prefill(prompt, rows, reserve=decode_tokens + 8)
        ours_prefill = time.perf_counter() - t0
        text = np.random.default_rng(1).integers(0, 256, prompt_tokens)  # byte tokens: ordinary text ids
        ctx, _ = dec._context_for(prompt_tokens + decode_tokens + 8)
        dec.forget()
        t0 = time.perf_counter()
        for s in range(0, prompt_tokens, ctx.n_batch):
            ctx.decode(s, tokens=text[s : s + ctx.n_batch], logits="last" if s + ctx.n_batch >= prompt_tokens else "none")
        token_prefill = time.perf_counter() - t0
        dec.forget()
        row = {"gguf": name, "bytes": (bundle / m.decoders[name].file).stat().st_size, "prefill_tokens": prompt_tokens,
               "ours_prefill_tok_s": round(prompt_tokens / ours_prefill, 2),
               "llama_token_prefill_tok_s": round(prompt_tokens / token_prefill, 2),
               "prefill_ratio": round(token_prefill / ours_prefill, 3)}
        for label, options in (("greedy", GenerationOptions(max_new_tokens=decode_tokens, temperature=0)),
                               ("sampled", GenerationOptions(max_new_tokens=decode_tokens))):  # upstream's defaults
            ours, bare, produced = _decode_speeds(dec, prompt, rows, options)
            row.update({f"{label}_tokens": produced, f"ours_{label}_tok_s": round(ours, 2),
                        f"llama_{label}_tok_s": round(bare, 2), f"{label}_ratio": round(ours / bare, 3)})
        out.append(row)
        dec.close()
    return out



def _decode_speeds(dec: Decoder, prompt: Prompt, rows: np.ndarray, options: GenerationOptions) -> tuple[float, float, int]:
    """(ours, llama.cpp's bare loop) tokens/s after the same prompt, the same number of tokens."""
    t_first, first, produced = 0.0, None, 0
    for token in dec.generate(prompt, rows, options, stop_ids=()):  # EOS ignored: the same length for all
        if first is None:
            first, t_first = token, time.perf_counter()
        produced += 1
    ours = (time.perf_counter() - t_first) / max(1, produced - 1)
    dec.prefill(prompt, rows, reserve=options.max_new_tokens + 8)
    bare = bare_llama_decode(dec, first, produced - 1, options) / max(1, produced - 1)
    dec.forget()
    return 1 / ours, 1 / bare, produced - 1
