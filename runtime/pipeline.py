"""Pipeline.load(bundle).ask(audio, question): the one entry most users need.

A Pipeline is safe to share between threads: calls are serialized by a lock (one llama.cpp
context per pipeline); load one pipeline per worker for parallel requests.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Iterator, Sequence, Union

import numpy as np

from runtime.answer import Result, Stream, ThinkSplitter
from runtime.audio import SAMPLE_RATE, AudioInput, load_audio
from runtime.chunks import audio_token_count
from runtime.decoder import Decoder, DecoderOptions
from runtime.encoder import Encoder, pick_providers
from runtime.errors import BundleError, PromptError
from runtime.longform import MAX_WINDOW_S, iter_windows, join_seam, shift_timestamps, source_duration_s
from runtime.manifest import Manifest, load_manifest
from runtime.mel import log_mel, n_frames
from runtime.prompt import (TOKENS_PER_SECOND, TRANSCRIBE_QUESTION, Prompt, audio_span_ids, build_prompt,
                            chat_texts)
from runtime.sampling import GenerationOptions

Audio = Union[AudioInput, Sequence[AudioInput]]
# Preference when the caller names no variant: smallest decoder that keeps quality, fp32
# encoder on CPU (fp16 only pays on a GPU).
DECODER_PREFERENCE = ("q4_k_m", "q5_k_m", "q6_k", "q8_0", "iq4_xs", "f16", "bf16", "f32")
ENCODER_PREFERENCE = {"cpu": ("fp32", "fp16"), "cuda": ("fp16", "fp32")}


class Pipeline:
    def __init__(self, bundle: Path, manifest: Manifest, encoder: Encoder, decoder: Decoder, device: str,
                 variants: tuple[str, str], notes: list[str]):
        self.bundle, self.manifest, self.encoder, self.decoder, self.device = bundle, manifest, encoder, decoder, device
        self.encoder_name, self.decoder_name = variants
        self.notes = notes  # one line each: why a GPU was not used, and the like
        self._lock = threading.Lock()

    @classmethod
    def load(cls, bundle: str | Path, device: str = "auto", *, encoder: str | None = None,
             decoder: str | None = None, threads: int | None = None, n_gpu_layers: int | None = None,
             n_batch: int = 512, kv_type: str = "f16", flash_attn: str = "auto", verify: bool = True,
             verbose: bool = False) -> "Pipeline":
        """Open a bundle. `encoder`/`decoder` name variants in the manifest (default: the best present)."""
        from devices.plan import plan

        bundle = Path(bundle)
        manifest = load_manifest(bundle, verify=False)
        chosen = plan(bundle, manifest, device, encoder=encoder, decoder=decoder)
        device = chosen.device
        if device == "cuda":
            pick_providers("cuda")  # an explicit cuda request without CUDA is an error, not a fallback
        enc = pick_variant(manifest.encoders, chosen.encoder, ENCODER_PREFERENCE[device], "encoder")
        dec = pick_variant(manifest.decoders, chosen.decoder, DECODER_PREFERENCE, "decoder")
        used = {manifest.encoders[enc].file, manifest.decoders[dec].file}
        if manifest.encoders[enc].external_data:
            used.add(manifest.encoders[enc].external_data)
        manifest = load_manifest(bundle, verify=verify, only=used)
        encoder_stage = Encoder(bundle / manifest.encoders[enc].file, device, threads=threads, verbose=verbose,
                                backend=_engine_backend(bundle, manifest, chosen) if device == "cuda" else None)
        if encoder_stage.width != manifest.model.row_width:
            raise BundleError(f"{manifest.encoders[enc].file} makes rows of {encoder_stage.width}, the manifest says "
                              f"{manifest.model.row_width}: the encoder is from a different model")
        layers = n_gpu_layers if n_gpu_layers is not None else chosen.n_gpu_layers
        options = DecoderOptions(n_threads=threads, n_gpu_layers=layers, n_batch=n_batch, kv_type=kv_type,
                                 flash_attn=flash_attn, verbose=verbose)
        decoder_stage = Decoder(bundle / manifest.decoders[dec].file, manifest.tokens, manifest.model.row_width, options)
        return cls(bundle, manifest, encoder_stage, decoder_stage, device, (enc, dec), chosen.notes)

    # --- stages ------------------------------------------------------------------------------
    def encode_audio(self, audio: AudioInput) -> np.ndarray:
        """Packed rows [n_audio_tokens, hidden * (1 + k)] float32 for one clip (path or 16 kHz array)."""
        samples = load_audio(audio)
        return self.encoder.rows(log_mel(samples, self.manifest.mel.n_mels))

    def prompt(self, token_counts: Sequence[int], question: str) -> Prompt:
        return build_prompt(self.decoder.tokenize, self.manifest.tokens, token_counts, question,
                            time_markers=self.manifest.prompt.time_markers, system=self.manifest.prompt.system)

    def options(self, **overrides) -> GenerationOptions:
        """The bundle's shipped generation defaults with the caller's overrides, validated."""
        return GenerationOptions.from_kwargs(**{**self.manifest.generation, **overrides})

    def max_audio_seconds(self, question: str = TRANSCRIBE_QUESTION, max_new_tokens: int | None = None) -> float:
        """The longest single clip whose prompt and answer fit the context."""
        budget = self._audio_budget(question, max_new_tokens or self.options().max_new_tokens)
        lo, hi = 0, budget  # largest n audio tokens whose span (with markers) fits the budget
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if len(audio_span_ids(mid, self.manifest.tokens, self.manifest.prompt.time_markers)) <= budget:
                lo = mid
            else:
                hi = mid - 1
        return lo / TOKENS_PER_SECOND

    def _audio_budget(self, question: str, max_new_tokens: int, n_clips: int = 1) -> int:
        text = sum(len(self.decoder.tokenize(t)) for t in chat_texts(question, n_clips, self.manifest.prompt.system) if t)
        return self.decoder.context_limit - text - 2 * n_clips - max_new_tokens

    def _check_fits(self, clips: list[AudioInput], question: str, options: GenerationOptions) -> None:
        seconds = [source_duration_s(c) for c in clips]
        counts = [audio_token_count(n_frames(int(s * SAMPLE_RATE))) for s in seconds]
        spans = sum(len(audio_span_ids(n, self.manifest.tokens, self.manifest.prompt.time_markers)) for n in counts)
        budget = self._audio_budget(question, options.max_new_tokens, len(clips))
        if spans > budget:
            if budget <= 0:
                raise PromptError(f"the question and max_new_tokens={options.max_new_tokens} already fill the "
                                  f"context ({self.decoder.context_limit} tokens): shorten the question or lower "
                                  "max_new_tokens")
            fits = self.max_audio_seconds(question, options.max_new_tokens)
            raise PromptError(f"{sum(seconds):.1f} s of audio needs {spans} prompt positions; with this question and "
                              f"max_new_tokens={options.max_new_tokens} the context ({self.decoder.context_limit}) "
                              f"fits about {fits:.1f} s. Pass window='auto' (CLI: --window auto) to process it in "
                              "windows, or lower max_new_tokens")

    # --- answers -----------------------------------------------------------------------------
    def ask(self, audio: Audio, question: str = TRANSCRIBE_QUESTION, *, reasoning: bool = False,
            window: str | float | None = None, **options) -> "Stream":
        """Iterate it for the answer's text as it is generated (the <think> part too when
        reasoning=True); its .result has token ids and timings once the iteration ends.

        window='auto' (or seconds) answers long audio window by window; the text of each
        window then arrives when it is complete, timestamps shifted, seams de-duplicated."""
        result = Result("", "", [], [], "")
        opts = self.options(**options)
        if window is not None:
            return Stream(self._windowed(audio, question, window, opts, result, reasoning), result)
        parts = self._stream(audio, question, opts, result)
        return Stream((text for kind, text in parts if kind == "answer" or reasoning), result)

    def generate(self, audio: Audio, question: str = TRANSCRIBE_QUESTION, *,
                 window: str | float | None = None, **options) -> Result:
        opts = self.options(**options)
        result = Result("", "", [], [], "")
        if window is not None:
            result.text = "".join(self._windowed(audio, question, window, opts, result, False)).strip()
            return result
        parts = {"answer": [], "reasoning": []}
        for kind, text in self._stream(audio, question, opts, result):
            parts[kind].append(text)
        result.text, result.reasoning = "".join(parts["answer"]).strip(), "".join(parts["reasoning"]).strip()
        return result

    def _windowed(self, audio: Audio, question: str, window: str | float, options: GenerationOptions,
                  result: Result, reasoning: bool) -> Iterator[str]:
        clips = _as_clips(audio)
        if len(clips) != 1:
            raise PromptError("window= takes one clip; ask about several clips without windows")
        fits = self.max_audio_seconds(question, options.max_new_tokens)
        size = min(MAX_WINDOW_S, fits) if window == "auto" else float(window)
        if size > fits:
            raise PromptError(f"windows of {size:.1f} s do not fit: the context fits about {fits:.1f} s with this "
                              f"question and max_new_tokens={options.max_new_tokens}")
        previous = ""
        for w in iter_windows(clips[0], size):
            part = Result("", "", [], [], "")
            pieces = [t for kind, t in self._stream(w.samples, question, options, part) if kind == "answer" or reasoning]
            text = join_seam(previous, shift_timestamps("".join(pieces).strip(), w.start_s))
            previous = text
            result.windows.append({"start_s": round(w.start_s, 3), "duration_s": round(w.duration_s, 3), "text": text})
            result.token_ids += part.token_ids
            result.prompt_token_ids, result.stop_reason = part.prompt_token_ids, part.stop_reason
            for name in ("encode_s", "prefill_s", "prefill_tokens", "decode_s", "decode_tokens"):
                setattr(result.timings, name, getattr(result.timings, name) + getattr(part.timings, name))
            if text:
                yield (" " if w.index else "") + text

    def _stream(self, audio: Audio, question: str, options: GenerationOptions,
                result: Result) -> Iterator[tuple[str, str]]:
        clips = _as_clips(audio)
        self._check_fits(clips, question, options)
        with self._lock:
            t0 = time.perf_counter()
            samples = [load_audio(c) for c in clips]
            rows = [self.encoder.rows(log_mel(s, self.manifest.mel.n_mels)) for s in samples]
            counts = [audio_token_count(n_frames(s.size), self.manifest.mel.chunk_frames) for s in samples]
            prompt = self.prompt(counts, question)
            timings = result.timings
            timings.encode_s = time.perf_counter() - t0
            result.prompt_token_ids = prompt.ids.tolist()
            t1 = time.perf_counter()
            first = True
            splitter = ThinkSplitter(self.manifest.tokens.think_start, self.manifest.tokens.think_end)
            eos = set(self.manifest.tokens.eos)
            for token in self.decoder.generate(prompt, np.concatenate(rows), options):
                now = time.perf_counter()
                if first:
                    timings.prefill_s, timings.prefill_tokens, first = now - t1, len(prompt), False
                    t2 = now
                else:
                    timings.decode_s, timings.decode_tokens = now - t2, len(result.token_ids)
                result.token_ids.append(token)
                if token in eos:
                    result.stop_reason = "eos"
                    break
                yield from splitter.feed(token, self.decoder.model.piece(token))
            else:
                result.stop_reason = ("max_new_tokens" if len(result.token_ids) >= options.max_new_tokens
                                      else "context")
            yield from splitter.flush()


def _as_clips(audio: Audio) -> list[AudioInput]:
    if isinstance(audio, (str, Path, np.ndarray)):
        return [audio]
    clips = list(audio)
    if not clips:
        raise ValueError("no audio given")
    return clips


def _engine_backend(bundle: Path, manifest: Manifest, chosen):
    """A TensorRT engine built on this GPU model with this TensorRT, else None (onnxruntime)."""
    from devices.tensorrt import matching_engine

    engine = matching_engine(bundle, manifest.engines, chosen.machine.model)
    if engine is None:
        return None
    try:
        from runtime.trt import TensorRTBackend

        return TensorRTBackend(bundle / engine["file"], manifest.mel.n_mels, manifest.model.row_width,
                               engine["max_chunks"])
    except Exception as e:  # a broken engine or CUDA runtime: say so and use onnxruntime
        chosen.notes.append(f"TensorRT engine {engine['file']} not used ({e}); onnxruntime instead")
        return None


def pick_variant(variants: dict, wanted: str | None, preference: Sequence[str], what: str) -> str:
    if wanted is not None:
        if wanted not in variants:
            raise BundleError(f"the bundle has no {what} {wanted!r}; it has {', '.join(sorted(variants))}")
        return wanted
    for name in list(preference) + sorted(variants):
        if name in variants:
            return name
    raise BundleError(f"the bundle lists no {what}; re-export it")
