"""Answer while the audio is still arriving: each finished chunk is encoded and prefilled as it
completes, so a question waits only for the open tail.

Exactly what asking about the whole clip at once gives (shared/DESIGN.md, "Incremental audio"):
* a mel frame is computed once its centred window has arrived; the open frames at ask time;
* the log-mel floor is the clip's maximum minus the range: a chunk is encoded again when a
  new floor changes its mel (it held values under the larger of the two floors), and its row
  keys change with it, so the decoder's cache is cut back to the first changed row;
* full chunks are never padded; the tail is zero-padded to a full chunk before the conv stem
  when earlier chunks exist (upstream's batch padding), and seen unpadded when it is alone;
* time-marker digits sit at absolute token indices, so the prompt up to the last full chunk
  (its trailing marker included) does not change while audio is added.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np

from runtime.answer import Piece, Result, Stream
from runtime.audio import load_audio
from runtime.errors import AudioError, PromptError
from runtime.loopguard import LoopGuard
from runtime.mel import final_frames, finish, log_power, n_frames
from runtime.prompt import Prompt

_IDS = itertools.count()


@dataclass
class _Chunk:
    """One full chunk as encoded: its rows, the floor it was encoded under, its smallest power."""

    rows: np.ndarray
    floor: float
    min_power: float
    version: int = 0

    def valid_under(self, floor: float) -> bool:
        """max(p, own floor) == max(p, floor) for every p of the chunk."""
        return floor == self.floor or self.min_power >= max(floor, self.floor)


@dataclass
class _Audio:
    """The samples so far and the log power of their final frames."""

    blocks: list[np.ndarray] = field(default_factory=list)
    n: int = 0
    power: np.ndarray | None = None  # [n_mels, final frames]
    clip_max: float = -np.inf  # over the final frames

    @property
    def frames(self) -> int:
        return 0 if self.power is None else self.power.shape[1]

    def samples(self) -> np.ndarray:
        if len(self.blocks) > 1:
            self.blocks = [np.concatenate(self.blocks)]
        return self.blocks[0] if self.blocks else np.zeros(0, dtype=np.float32)


class Session:
    """s = pipe.session(); s.feed(block) as audio arrives; s.ask(question) any number of times.

    Blocks are samples at the model's rate (16 kHz mono float32), or at `sample_rate` (then
    resampled as one stream, which holds back a few ms until more audio comes). Close it (or
    use `with`) when done."""

    def __init__(self, pipeline, sample_rate: int | None = None):
        self.pipe = pipeline
        self.id = next(_IDS)
        self.audio = _Audio()
        self.chunks: list[_Chunk] = []
        self.closed = False
        self._lock = threading.Lock()  # taken after the pipeline's turn, never before it
        rate = pipeline.manifest.audio.sample_rate
        self._resampler = None
        if sample_rate and sample_rate != rate:
            import soxr

            self._resampler = soxr.ResampleStream(sample_rate, rate, 1, dtype="float32", quality="HQ")

    # --- audio in -------------------------------------------------------------------------------
    def feed(self, samples: np.ndarray) -> None:
        """Add audio; every chunk it completes is encoded and prefilled before this returns."""
        self._check_open()
        a = self.pipe.manifest.audio
        if np.asarray(samples).size == 0:
            return
        block = load_audio(samples, a.sample_rate)
        if self._resampler is not None:
            block = self._resampler.resample_chunk(block)
        with self._lock:
            self.audio.blocks.append(block)
            self.audio.n += block.size
            self._extend_power()
            full = self.audio.frames // a.chunk_frames
            floor = self.audio.clip_max - a.log_range
            due = full > len(self.chunks) or not all(c.valid_under(floor) for c in self.chunks)
        if due:
            with self.pipe._turn(None), self._lock:
                self._encode(self.audio.power, self.audio.frames // a.chunk_frames, self.audio.clip_max)
                self._prefill_audio()

    def _extend_power(self) -> None:
        a, audio = self.pipe.manifest.audio, self.audio
        final = final_frames(audio.n, a)
        if final > audio.frames:
            cols = log_power(audio.samples(), a, audio.frames, final)
            audio.power = cols if audio.power is None else np.concatenate([audio.power, cols], axis=1)
            audio.clip_max = max(audio.clip_max, float(cols.max()))

    def _encode(self, power: np.ndarray, full: int, clip_max: float) -> None:
        """Keep chunks [0, full) encoded from `power` under the floor of `clip_max`."""
        a = self.pipe.manifest.audio
        floor, size = clip_max - a.log_range, a.chunk_frames
        for i in range(full):
            if i < len(self.chunks) and self.chunks[i].valid_under(floor):
                continue
            cols = power[:, i * size : (i + 1) * size]
            rows = self.pipe.encoder.run_chunks(finish(cols, clip_max, a), [size], size)
            version = self.chunks[i].version + 1 if i < len(self.chunks) else 0
            chunk = _Chunk(rows, floor, float(cols.min()), version)
            self.chunks[i : i + 1] = [chunk]

    def _row_keys(self, chunks: list[_Chunk], tail: int) -> list:
        keys = [("session", self.id, i, c.version, r) for i, c in enumerate(chunks) for r in range(len(c.rows))]
        return keys + [("tail", self.id, self.audio.n, r) for r in range(tail)]

    def _prefill_audio(self) -> None:
        """Prefill the prompt up to the end of the last full chunk (its marker included)."""
        if not self.chunks:
            return
        pipe = self.pipe
        prompt = pipe.prompt([len(self.chunks) * pipe.manifest.audio.chunk_tokens], pipe.manifest.prompt.default_question)
        end = int(np.flatnonzero(prompt.ids == pipe.manifest.tokens.audio_end)[0])
        head = Prompt(ids=prompt.ids[:end], audio_rows=prompt.audio_rows[:end])
        pipe.decoder.reserve(pipe.decoder.context_limit)  # the session's whole context, once
        rows = np.concatenate([c.rows for c in self.chunks])
        pipe.decoder.prefill(head, rows, row_keys=self._row_keys(self.chunks, 0))

    # --- questions ------------------------------------------------------------------------------
    def ask(self, question: str | None = None, *, reasoning: bool = False, loop_guard: bool | LoopGuard = False,
            hotwords: Sequence[str] = (), **options) -> Stream:
        """The answer about all audio fed so far, streamed; the audio stays for the next question."""
        self._check_open()
        pipe = self.pipe
        if self.audio.n < pipe.manifest.audio.hop_length:
            raise AudioError("the session holds less than one mel frame of audio; feed more before asking")
        question = pipe._question(question, hotwords)
        opts = pipe.options(**options)
        pipe._check_fits([self.audio.n / pipe.manifest.audio.sample_rate], question, opts)
        from runtime.pipeline import Guard

        guard = Guard(LoopGuard() if loop_guard is True else (loop_guard or None), threading.Event())
        result = Result()
        return pipe._open(self._answer(question, opts, result, guard), result, reasoning, guard.cancelled)

    def generate(self, question: str | None = None, *, loop_guard: bool | LoopGuard = False,
                 hotwords: Sequence[str] = (), **options) -> Result:
        with self.ask(question, loop_guard=loop_guard, hotwords=hotwords, **options) as stream:
            for _ in stream:
                pass
        return stream.result

    def _answer(self, question: str, options, result: Result, guard) -> Iterator[Piece]:
        pipe, a = self.pipe, self.pipe.manifest.audio
        t0 = time.perf_counter()
        with self._lock:
            frames = n_frames(self.audio.n, a)
            open_power = log_power(self.audio.samples(), a, self.audio.frames, frames)
            power = open_power if self.audio.power is None else np.concatenate([self.audio.power, open_power], axis=1)
            clip_max = float(power.max())
            full = frames // a.chunk_frames
            self._encode(power, min(full, len(self.chunks)), clip_max)  # kept chunks, under this floor
            kept = list(self.chunks)
            self._encode(power, full, clip_max)  # chunks that end in open frames: this answer only
            chunks, self.chunks = self.chunks, kept
            tail = frames - full * a.chunk_frames
            parts = [c.rows for c in chunks]
            if tail:
                stem = a.chunk_frames if full else tail  # a lone chunk is seen unpadded (upstream's batch padding)
                parts.append(pipe.encoder.run_chunks(finish(power[:, full * a.chunk_frames :], clip_max, a), [tail],
                                                     stem))
            rows = np.concatenate(parts)
            keys = self._row_keys(kept, rows.shape[0] - sum(len(c.rows) for c in kept))
        prompt = pipe.prompt([rows.shape[0]], question)
        result.timings.encode_s = time.perf_counter() - t0
        result.prompt_token_ids = prompt.ids.tolist()
        yield from pipe._decode(prompt, rows, options, result, guard, keys)

    # --- lifetime ---------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self.closed:
            raise PromptError("this session is closed; open another with pipe.session()")

    def close(self) -> None:
        self.closed = True
        self.chunks, self.audio = [], _Audio()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
