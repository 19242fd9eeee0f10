"""A thin layer over llama-cpp-python's low-level API: model, context, batches, vocabulary.

Batches are built as structs over numpy buffers we own, never through llama_batch_init:
embedding batches need 4 positions per token (qwen3vl's M-RoPE), more than it allocates,
and swapping its `pos` pointer invites a double free.
"""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path

import numpy as np

from runtime.errors import BundleError, OptionsError, PromptError

_LOG_CALLBACK = None  # keep the ctypes callback alive for the process
KV_TYPES = ("f32", "f16", "q8_0")  # llama.cpp's KV cache element types
FLASH_ATTN = {"auto": -1, "off": 0, "on": 1}  # llama_flash_attn_type


def set_verbose(verbose: bool) -> None:
    """llama.cpp logs to stderr only when asked (--verbose); otherwise it is silent."""
    import llama_cpp as lc

    global _LOG_CALLBACK

    def forward(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
        if verbose:
            sys.stderr.write(text.decode("utf-8", errors="replace"))

    _LOG_CALLBACK = lc.llama_log_callback(forward)
    lc.llama_log_set(_LOG_CALLBACK, ctypes.c_void_p(0))


class LlamaModel:
    def __init__(self, path: Path, *, n_gpu_layers: int = 0, vocab_only: bool = False, repack: bool = True,
                 verbose: bool = False):
        import llama_cpp as lc

        set_verbose(verbose)
        lc.llama_backend_init()
        params = lc.llama_model_default_params()
        params.n_gpu_layers = n_gpu_layers
        params.vocab_only = vocab_only
        params.use_extra_bufts = repack  # CPU repacking of quant types: faster decoding, slower prefill, a private copy
        self._free = lc.llama_model_free  # bound now: __del__ may run while the interpreter exits
        self.ptr = lc.llama_model_load_from_file(str(path).encode(), params)
        if not self.ptr:
            raise BundleError(f"llama.cpp could not load {path.name}; it is not a valid GGUF (run with --verbose)")
        self.vocab = lc.llama_model_get_vocab(self.ptr)
        self.n_vocab = lc.llama_vocab_n_tokens(self.vocab)
        self.n_embd = lc.llama_model_n_embd(self.ptr)
        self.n_embd_inp = lc.llama_model_n_embd_inp(self.ptr)
        self.n_ctx_train = lc.llama_model_n_ctx_train(self.ptr)
        self.arch = self.meta("general.architecture")

    def meta(self, key: str) -> str | None:
        import llama_cpp as lc

        buf = ctypes.create_string_buffer(256)
        n = lc.llama_model_meta_val_str(self.ptr, key.encode(), buf, len(buf))
        return buf.value.decode() if n >= 0 else None

    def tokenize(self, text: str, special: bool = True) -> list[int]:
        """No BOS; with `special`, control tokens written in `text` are parsed (template text),
        without, they stay text (a user's words)."""
        import llama_cpp as lc

        data = text.encode("utf-8")
        cap = len(data) + 8
        out = (lc.llama_token * cap)()
        n = lc.llama_tokenize(self.vocab, data, len(data), out, cap, False, special)
        if n < 0:
            cap = -n
            out = (lc.llama_token * cap)()
            n = lc.llama_tokenize(self.vocab, data, len(data), out, cap, False, special)
        return list(out[:n])

    def piece(self, token: int) -> bytes:
        """A token's bytes; control tokens render as nothing."""
        import llama_cpp as lc

        buf = ctypes.create_string_buffer(64)
        n = lc.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = lc.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
        return buf.raw[:n]

    def close(self) -> None:
        if self.ptr:
            self._free(self.ptr)
            self.ptr = None

    __del__ = close


class LlamaContext:
    """One sequence's KV cache; decode() takes token or embedding batches."""

    def __init__(self, model: LlamaModel, *, n_ctx: int, n_batch: int, n_threads: int, kv_type: str = "f16",
                 flash_attn: str = "auto"):
        import llama_cpp as lc

        from gguf import GGMLQuantizationType

        if kv_type not in KV_TYPES:
            raise OptionsError(f"kv_type {kv_type!r}: choose one of {', '.join(KV_TYPES)}")
        if flash_attn not in FLASH_ATTN:
            raise OptionsError(f"flash_attn {flash_attn!r}: choose one of {', '.join(FLASH_ATTN)}")
        self.model, self.n_batch = model, n_batch
        params = lc.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = params.n_ubatch = n_batch
        params.n_threads = params.n_threads_batch = n_threads
        params.type_k = params.type_v = int(GGMLQuantizationType[kv_type.upper()])
        params.flash_attn_type = FLASH_ATTN[flash_attn]
        params.no_perf = True
        self._free = lc.llama_free
        self.ptr = lc.llama_init_from_model(model.ptr, params)
        if not self.ptr:
            raise BundleError(f"llama.cpp could not create a context of {n_ctx} tokens (out of memory?)")
        self.n_ctx = lc.llama_n_ctx(self.ptr)
        self._seq = (ctypes.c_int32 * 1)(0)
        seq_ptr = ctypes.cast(self._seq, ctypes.POINTER(ctypes.c_int32))
        self._seq_ids = (ctypes.POINTER(ctypes.c_int32) * n_batch)(*([seq_ptr] * n_batch))
        self._n_seq = np.ones(n_batch, dtype=np.int32)

    def clear(self) -> None:
        import llama_cpp as lc

        lc.llama_memory_clear(lc.llama_get_memory(self.ptr), True)

    def truncate(self, position: int) -> None:
        """Forget positions from `position` on: the cache then holds exactly [0, position)."""
        import llama_cpp as lc

        if not lc.llama_memory_seq_rm(lc.llama_get_memory(self.ptr), 0, position, -1):
            raise RuntimeError(f"llama.cpp could not cut its cache back to position {position}")

    def decode(self, start: int, *, tokens: np.ndarray | None = None, embd: np.ndarray | None = None,
               logits: str = "last", copy: bool = True) -> np.ndarray | None:
        """Decode one batch at positions start.. ; returns logits [n_out, vocab] or None.

        `logits` is "last", "all" or "none". With copy=False and one output row the result is a
        view of llama.cpp's buffer, valid until the next decode (the generation loop's case).
        """
        import llama_cpp as lc

        n = len(tokens) if tokens is not None else len(embd)
        if n > self.n_batch:
            raise ValueError(f"batch of {n} exceeds n_batch {self.n_batch}")
        if start + n > self.n_ctx:
            raise PromptError(f"the prompt needs {start + n} positions; the context holds {self.n_ctx}")
        want = np.zeros(n, dtype=np.int8)
        if logits == "all":
            want[:] = 1
        elif logits == "last":
            want[-1] = 1
        pos = np.arange(start, start + n, dtype=np.int32)
        if embd is not None:
            embd = np.ascontiguousarray(embd, dtype=np.float32)
            if self.model.arch == "qwen3vl":
                pos = np.tile(pos, 4)  # M-RoPE, section-major: pos[j * n + i], all four sections equal
        tok = None if tokens is None else np.ascontiguousarray(tokens, dtype=np.int32)
        batch = lc.llama_batch(
            n_tokens=n,
            token=None if tok is None else tok.ctypes.data_as(ctypes.POINTER(lc.llama_token)),
            embd=None if embd is None else embd.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
            pos=pos.ctypes.data_as(ctypes.POINTER(lc.llama_pos)),
            n_seq_id=self._n_seq.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)),
            seq_id=ctypes.cast(self._seq_ids, ctypes.POINTER(ctypes.POINTER(lc.llama_seq_id))),
            logits=want.ctypes.data_as(ctypes.POINTER(ctypes.c_int8)),
        )
        rc = lc.llama_decode(self.ptr, batch)
        if rc != 0:
            raise RuntimeError(f"llama_decode failed with code {rc} at positions {start}..{start + n - 1}")
        if logits == "none":
            return None
        n_out = int(want.sum())
        vocab = self.model.n_vocab
        first = n - n_out
        rows = [np.ctypeslib.as_array(lc.llama_get_logits_ith(self.ptr, first + i), shape=(vocab,)) for i in range(n_out)]
        if not copy and n_out == 1:
            return rows[0][None]
        return np.stack([r.copy() for r in rows])

    def close(self) -> None:
        if self.ptr:
            self._free(self.ptr)
            self.ptr = None

    __del__ = close
