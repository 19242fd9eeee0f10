"""Pipeline.load(bundle).ask(audio, question): the one entry most users need.

A Pipeline is safe to share between threads: answers are produced one at a time (one
llama.cpp context per pipeline). A stream holds the pipeline while it is open; one that the
same thread leaves open is cancelled when that thread asks again. Load one pipeline per
worker for parallel requests.
"""

from __future__ import annotations

import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Hashable, Iterator, Sequence, Union

import numpy as np

from runtime.answer import Piece, Result, Stream, ThinkSplitter, Window
from runtime.audio import AudioInput, load_audio, require_frames
from runtime.chunks import clip_tokens
from runtime.decoder import Decoder, DecoderOptions
from runtime.encoder import Encoder, OrtBackend
from runtime.errors import AudioError, BundleError, OptionsError, PromptError
from runtime.longform import MAX_WINDOW_S, is_auto, iter_windows, join_seam, join_windows, source_duration_s, window_size
from runtime.loopguard import LoopGuard
from runtime.manifest import Manifest, load_manifest
from runtime.placement.plan import Plan, affordable_context, grown_context, make_plan
from runtime.prompt import MarkerRule, Prompt, audio_span_ids, build_prompt, with_hotwords
from runtime.rowcache import RowCache, audio_key
from runtime.sampling import GenerationOptions
from runtime.segments import shift_timestamps

Audio = Union[AudioInput, Sequence[AudioInput]]


class Pipeline:
    def __init__(self, bundle: Path, manifest: Manifest, encoder: Encoder, decoder: Decoder, plan: Plan,
                 notes: list[str]):
        self.bundle, self.manifest, self.encoder, self.decoder, self.plan = bundle, manifest, encoder, decoder, plan
        self.notes = notes  # one line each: why a GPU or an engine was not used, and the like
        self.row_cache = RowCache()
        self._lock = threading.Lock()
        self._holder: tuple[int, weakref.ref] | None = None

    @classmethod
    def load(cls, bundle: str | Path, device: str = "auto", *, encoder: str | None = None,
             decoder: str | None = None, threads: int | None = None, n_gpu_layers: int | None = None,
             context: int | None = None, n_batch: int = 512, kv_type: str = "f16", flash_attn: str = "auto",
             prepack: bool | None = None, repack: bool | None = None, arena: bool | None = None,
             verify: bool = True, verbose: bool = False) -> "Pipeline":
        """Open a bundle. `encoder`/`decoder` name variants in the manifest (default: the plan's
        choice for this machine); `context` caps the decoder positions (default: the device profile's, or
        the model's own for a family that takes a whole recording in one pass);
        `prepack`/`repack` trade private weight copies (faster matmuls) for shared, quickly loaded
        weights, `arena` a higher memory peak for faster encoding (default: the profile's choice; see
        the README's knobs)."""
        bundle = Path(bundle)
        manifest = load_manifest(bundle, verify=False)
        plan = make_plan(bundle, manifest, device, encoder=encoder, decoder=decoder, n_gpu_layers=n_gpu_layers,
                         context=context, kv_type=kv_type, prepack=prepack, repack=repack, arena=arena)
        enc, dec = manifest.encoders[plan.encoder], manifest.decoders[plan.decoder]
        used = {dec.file, enc.file} | {f for f in (enc.external_data, dec.digit_rows) if f}
        used |= {plan.engine.file} if plan.engine else set()
        manifest = load_manifest(bundle, verify=verify, only=used)
        notes = list(plan.notes)
        options = DecoderOptions(n_threads=threads, n_gpu_layers=plan.n_gpu_layers, n_batch=n_batch, kv_type=kv_type,
                                 flash_attn=flash_attn, repack=plan.repack, verbose=verbose)
        digits = np.load(bundle / dec.digit_rows) if dec.digit_rows else None
        with ThreadPoolExecutor(1) as side:  # llama.cpp and onnxruntime load in native code, side by side
            decoding = side.submit(Decoder, bundle / dec.file, manifest.tokens, manifest.model.row_width, plan.context,
                                   options, digits, dec.arch, partial(grown_context, manifest, plan))
            try:
                backend = _engine_backend(bundle, plan, notes, verbose) or OrtBackend(
                    bundle / enc.file, plan.device, threads, verbose, plan.prepack, plan.arena)
                encoder_stage = Encoder(backend, manifest.audio)
                if encoder_stage.width != manifest.model.row_width:
                    raise BundleError(f"{enc.file} makes rows of {encoder_stage.width}, the manifest says "
                                      f"{manifest.model.row_width}: the encoder is from a different model")
            except BaseException:
                if decoding.exception() is None:
                    decoding.result().close()
                raise
            decoder_stage = decoding.result()
        return cls(bundle, manifest, encoder_stage, decoder_stage, plan, notes)

    @property
    def encoder_name(self) -> str:
        return self.plan.encoder

    @property
    def decoder_name(self) -> str:
        return self.plan.decoder

    def close(self) -> None:
        """Free the decoder's model and context now (they also go with the object)."""
        with self._turn(None):
            self.decoder.close()

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- stages ------------------------------------------------------------------------------
    def samples(self, audio: AudioInput, sample_rate: int | None = None) -> np.ndarray:
        """One clip at the model's rate, mono float32; at least one mel frame long."""
        rate = self.manifest.audio.sample_rate
        return require_frames(load_audio(audio, rate, sample_rate=sample_rate), self.manifest.audio.hop_length, rate,
                              str(audio) if isinstance(audio, (str, Path)) else "the audio")

    def encode_audio(self, audio: AudioInput) -> np.ndarray:
        """Packed rows [n_audio_tokens, hidden * (1 + k)] float32 for one clip (path or array at the model's rate)."""
        return self.encoder.encode(self.samples(audio))

    def token_count(self, n_samples: int) -> int:
        return clip_tokens(n_samples, self.manifest.audio)

    @property
    def markers(self) -> MarkerRule | None:
        return MarkerRule.of(self.manifest.prompt, self.manifest.audio)

    def prompt(self, token_counts: Sequence[int], question: str) -> Prompt:
        return build_prompt(self.decoder.tokenize, self.manifest.tokens, token_counts, question, self.manifest.prompt,
                            self.markers)

    def options(self, **overrides) -> GenerationOptions:
        """The bundle's generation defaults with the caller's overrides, validated. A bundle that
        does not sample (do_sample false) is greedy unless the caller asks for a temperature."""
        defaults = dict(self.manifest.generation.__dict__)
        if "temperature" in overrides and "do_sample" not in overrides:
            defaults["do_sample"] = True
        return GenerationOptions.from_kwargs(**{**defaults, **overrides})

    def max_audio_seconds(self, question: str | None = None, max_new_tokens: int | None = None) -> float:
        """The longest single clip whose prompt and answer fit the context."""
        budget = self._audio_budget(self._question(question), max_new_tokens or self.options().max_new_tokens)
        lo, hi = 0, max(0, budget)  # largest n audio tokens whose span (with markers) fits the budget
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if len(audio_span_ids(mid, self.manifest.tokens, self.markers)) <= budget:
                lo = mid
            else:
                hi = mid - 1
        return lo / self.manifest.audio.tokens_per_second

    def _question(self, question: str | None, hotwords: Sequence[str] = ()) -> str:
        return with_hotwords(self.manifest.prompt.default_question if question is None else question, hotwords)

    def _audio_budget(self, question: str, max_new_tokens: int, n_clips: int = 1, positions: int | None = None) -> int:
        ids = self.prompt([1] * n_clips, question)
        text = len(ids) - n_clips * (1 + 2)  # the template and question without the clips' spans
        return (self._positions() if positions is None else positions) - text - 2 * n_clips - max_new_tokens

    def _held(self) -> int:
        """Positions usable without reading free memory: what the load-time check counted, or the
        context already allocated."""
        return min(self.decoder.context_limit, max(self.plan.load_context, self.decoder.allocated))

    def _positions(self) -> int:
        """Positions a prompt and its answer may use now: the plan's context, within the memory
        free for its KV cache (which matters only past the load-time check, for a one-pass family)."""
        return min(self.decoder.context_limit, affordable_context(self.manifest, self.plan, self.decoder.allocated))

    def _check_fits(self, seconds: Sequence[float], question: str, options: GenerationOptions) -> None:
        rate = self.manifest.audio.sample_rate
        counts = [self.token_count(int(s * rate)) for s in seconds]
        spans = sum(len(audio_span_ids(n, self.manifest.tokens, self.markers)) for n in counts)
        if spans <= self._audio_budget(question, options.max_new_tokens, len(seconds), self._held()):
            return  # the usual case, and no memory reading for it
        budget = self._audio_budget(question, options.max_new_tokens, len(seconds))
        if spans <= budget:
            return
        limit = self._positions()
        context = f"the context ({limit})" if limit == self.decoder.context_limit else \
            f"the context the memory free now allows ({limit} of the planned {self.decoder.context_limit})"
        if budget <= 0:
            raise PromptError(f"the question and max_new_tokens={options.max_new_tokens} already fill {context}: "
                              "shorten the question or lower max_new_tokens")
        fits = self.max_audio_seconds(question, options.max_new_tokens)
        raise PromptError(f"{sum(seconds):.1f} s of audio needs {spans} prompt positions; with this question and "
                          f"max_new_tokens={options.max_new_tokens} {context} fits about {fits:.1f} s. "
                          "Pass window='auto' (CLI: --window auto) to process it in windows, or lower max_new_tokens")

    # --- answers -----------------------------------------------------------------------------
    def ask(self, audio: Audio, question: str | None = None, *, reasoning: bool = False,
            window: str | float | None = None, loop_guard: bool | LoopGuard = False, hotwords: Sequence[str] = (),
            **options) -> Stream:
        """Iterate it for the answer's text as it is generated (typed pieces; the <think> part
        too when reasoning=True); its .result has the whole answer, token ids and timings once
        the iteration ends. Close it (or use `with`) to stop early.

        window='auto' (or seconds) answers long audio window by window; the text of each
        window then arrives when it is complete, timestamps shifted, seams de-duplicated. For a
        one-pass family (Transcribe-Diarize) 'auto' is one pass when the recording fits the context
        and memory, else the longest windows that do, and result.notes says speaker labels restart.
        loop_guard stops a generation that repeats itself (finish_reason "loop"). hotwords are
        appended to the question as a hint (names, terms the audio may hold)."""
        question = self._question(question, hotwords)
        opts = self.options(**options)
        guard = Guard(LoopGuard() if loop_guard is True else (loop_guard or None), threading.Event())
        clips = _as_clips(audio)
        result = Result()
        rate = self.manifest.audio.sample_rate
        if window is not None and len(clips) != 1:
            raise PromptError("window= takes one clip; ask about several clips without windows")
        one_pass = self.manifest.model.one_pass
        fits = self.max_audio_seconds(question, opts.max_new_tokens) if window is not None else 0.0
        if window is not None and one_pass and is_auto(window) and source_duration_s(clips[0], rate) <= fits:
            window = None
        if window is not None:
            size = window_size(window, fits, longest_s=fits if one_pass else MAX_WINDOW_S)
            if one_pass:
                result.notes.append(f"answered in windows of {size:.0f} s (one pass fits {fits:.0f} s here): "
                                    "speaker labels restart in each window")
            body = self._windowed(clips[0], size, question, opts, result, guard)
        else:
            self._check_fits([source_duration_s(c, rate) for c in clips], question, opts)
            samples = [self.samples(c) for c in clips]
            body = self._answer(samples, question, opts, result, guard)
        return self._open(body, result, reasoning, guard.cancelled)

    def session(self, sample_rate: int | None = None) -> "Session":
        """Audio fed as it arrives (s.feed(block)), asked about any number of times (s.ask(q)):
        each finished chunk is encoded and prefilled while later audio is still coming."""
        from runtime.session import Session

        if self.manifest.audio.window_samples:
            raise OptionsError(f"this bundle's model ({self.manifest.model.family}) encodes whole "
                               f"{self.manifest.audio.window_samples / self.manifest.audio.sample_rate:g} s windows; "
                               "answering while audio arrives is not built for it yet: pass the whole clip to ask()")
        return Session(self, sample_rate)

    def generate(self, audio: Audio, question: str | None = None, *, window: str | float | None = None,
                 loop_guard: bool | LoopGuard = False, hotwords: Sequence[str] = (), **options) -> Result:
        """The whole answer at once: text, reasoning, token ids, segments, timings."""
        with self.ask(audio, question, window=window, loop_guard=loop_guard, hotwords=hotwords, **options) as stream:
            for _ in stream:
                pass
        return stream.result

    def _open(self, body: Iterator[Piece], result: Result, reasoning: bool, cancelled: threading.Event) -> Stream:
        stream = Stream(None, result, reasoning=reasoning, cancelled=cancelled)

        def run() -> Iterator[Piece]:
            with self._turn(stream):
                try:
                    yield from body
                except GeneratorExit:
                    result.finish_reason = "cancelled"
                    body.close()
                    raise

        stream._pieces = run()
        return stream

    @contextmanager
    def _turn(self, stream: Stream | None) -> Iterator[None]:
        """One answer at a time. A stream this same thread left open would wait on itself
        forever: it is cancelled instead."""
        me = threading.get_ident()
        holder = self._holder
        if holder is not None and holder[0] == me:
            stale = holder[1]()
            if stale is not None:
                stale.close()
        with self._lock:
            self._holder = (me, weakref.ref(stream)) if stream is not None else None
            try:
                yield
            finally:
                self._holder = None

    def _windowed(self, audio: AudioInput, size: float, question: str, options: GenerationOptions, result: Result,
                  guard: Guard) -> Iterator[Piece]:
        rate, hop = self.manifest.audio.sample_rate, self.manifest.audio.hop_length
        joined = ""
        for w in iter_windows(audio, size, rate, min_samples=hop):
            if guard.cancelled.is_set():
                result.finish_reason = "cancelled"
                return
            part = Result()
            samples = require_frames(w.samples, hop, rate, f"the audio at {w.start_s:.1f} s")
            pieces = [p for p in self._answer([samples], question, options, part, guard)]
            text = "".join(p for p in pieces if p.kind == "answer").strip()
            reasoning = "".join(p for p in pieces if p.kind == "reasoning").strip()
            text = join_seam(result.windows[-1].text if result.windows else "", shift_timestamps(text, w.start_s))
            result.windows.append(Window(w.start_s, w.duration_s, text))
            result.token_ids += part.token_ids
            result.prompt_token_ids, result.finish_reason = part.prompt_token_ids, part.finish_reason
            result.timings.add(part.timings)
            if reasoning:
                yield Piece(reasoning + "\n", "reasoning")
            if text:
                before, joined = joined, join_windows(joined, text)
                yield Piece(joined[len(before):], "answer")

    def _answer(self, samples: list[np.ndarray], question: str, options: GenerationOptions, result: Result,
                guard: Guard) -> Iterator[Piece]:
        t0 = time.perf_counter()
        keys = [audio_key(s) for s in samples]
        rows = [self._rows(s, key) for s, key in zip(samples, keys)]
        prompt = self.prompt([self.token_count(s.size) for s in samples], question)
        timings = result.timings
        timings.encode_s = time.perf_counter() - t0
        result.prompt_token_ids = prompt.ids.tolist()
        row_keys = [(key, i) for key, r in zip(keys, rows) for i in range(len(r))]
        yield from self._decode(prompt, np.concatenate(rows), options, result, guard, row_keys)

    def _rows(self, samples: np.ndarray, key: str) -> np.ndarray:
        """Encoded rows of one clip, from the cache when this audio was encoded before."""
        rows = self.row_cache.get(key)
        if rows is None:
            rows = self.encoder.encode(samples)
            self.row_cache.put(key, rows)
        return rows

    def _decode(self, prompt: Prompt, rows: np.ndarray, options: GenerationOptions, result: Result,
                guard: Guard, row_keys: Sequence[Hashable] | None = None) -> Iterator[Piece]:
        """Generate after `prompt`, recording ids, timings and why it stopped."""
        tokens = self.manifest.tokens
        timings = result.timings
        splitter = ThinkSplitter(tokens.think_start, tokens.think_end, prompt.opens_in_reasoning)
        eos = set(tokens.eos)
        t1 = time.perf_counter()
        result.finish_reason = "length"
        for i, token in enumerate(self.decoder.generate(prompt, rows, options, row_keys=row_keys)):
            now = time.perf_counter()
            if i == 0:
                timings.prefill_s, timings.prefill_tokens, t2 = now - t1, len(prompt), now
            else:
                timings.decode_s, timings.decode_tokens = now - t2, i
            result.token_ids.append(token)
            if token in eos:
                result.finish_reason = "stop"
                break
            yield from splitter.feed(token, self.decoder.model.piece(token))
            stop = guard.stop(result.token_ids)
            if stop:
                result.finish_reason = stop
                break
        yield from splitter.flush()


@dataclass(frozen=True)
class Guard:
    """Why a generation stops early: a loop (when guarded), or a cancel() from any thread."""

    loop: LoopGuard | None
    cancelled: threading.Event

    def stop(self, tokens: list[int]) -> str | None:
        if self.cancelled.is_set():
            return "cancelled"
        return "loop" if self.loop and self.loop.looping(tokens) else None


def _as_clips(audio: Audio) -> list[AudioInput]:
    if isinstance(audio, (str, Path, np.ndarray, np.generic)):
        return [audio]
    if isinstance(audio, (list, tuple)) and audio and all(isinstance(x, (int, float, np.number)) for x in audio):
        return [np.asarray(audio, dtype=np.float32)]  # a plain list of samples is one clip
    try:
        clips = list(audio)
    except TypeError:
        raise AudioError(f"audio must be a path, an array of samples, or a list of those; got "
                         f"{type(audio).__name__}") from None
    if not clips:
        raise AudioError("no audio given: pass a path or an array of samples")
    return clips


def _engine_backend(bundle: Path, plan: Plan, notes: list[str], verbose: bool):
    """The plan's TensorRT engine as the encoder backend, else None (onnxruntime)."""
    if plan.engine is None:
        return None
    try:
        from runtime.trt import TensorRTBackend

        return TensorRTBackend(bundle / plan.engine.file, verbose)
    except Exception as e:  # a broken engine or CUDA runtime: say so and use onnxruntime
        notes.append(f"TensorRT engine {plan.engine.file} not used ({e}); onnxruntime instead")
        return None

