"""One loaded pipeline answering items one at a time: the same code in a local worker process
and in a Ray actor, so both modes write the same records.

A failure of one input (unreadable audio, too long without --window, ...) becomes that input's
`error` and the worker goes on; only a bundle that does not load stops the batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from runtime.batch.inputs import Item


@dataclass(frozen=True)
class LoadSpec:
    """How every worker opens the bundle (the bundle path must be the same on every node)."""

    bundle: str
    device: str = "auto"
    encoder: str | None = None
    decoder: str | None = None
    threads: int | None = None
    n_gpu_layers: int | None = None
    context: int | None = None
    verbose: bool = False
    prepack: bool | None = None  # None: the device profile's
    repack: bool | None = None
    arena: bool | None = None


@dataclass(frozen=True)
class AskSpec:
    """What every input is asked and how: the question (an item's own wins), windows, sampling."""

    question: str | None = None
    window: str | None = None
    loop_guard: bool = True
    options: dict = field(default_factory=dict)  # generation overrides over the bundle's defaults

    def __post_init__(self) -> None:
        """A bad option would fail every input alike: refuse it before any worker starts."""
        from runtime.longform import window_size
        from runtime.prompt import normalize_question
        from runtime.sampling import GenerationOptions

        if self.question is not None:
            normalize_question(self.question)
        if self.window is not None:
            window_size(self.window, float("inf"))
        GenerationOptions.from_kwargs(**self.options)


class Transcriber:
    """Loads the bundle once (sha256 verified on this machine) and answers items."""

    def __init__(self, load: LoadSpec, ask: AskSpec):
        from runtime.pipeline import Pipeline

        self.pipe = Pipeline.load(Path(load.bundle), load.device, encoder=load.encoder, decoder=load.decoder,
                                  threads=load.threads, n_gpu_layers=load.n_gpu_layers, context=load.context,
                                  prepack=load.prepack, repack=load.repack, arena=load.arena, verify=True,
                                  verbose=load.verbose)
        self.ask = ask
        self.variant = {"encoder": self.pipe.encoder_name, "decoder": self.pipe.decoder_name}

    def record(self, item: Item) -> dict:
        """The item's record: the answer, or `error` with a one-line message."""
        from runtime.longform import source_duration_s

        question = item.question or self.ask.question or self.pipe.manifest.prompt.default_question
        record = {"id": item.id, "path": item.path, "question": question, "text": None, "reasoning": None,
                  "finish_reason": None, "audio_s": None, "variant": self.variant, "timings": {}, "error": None}
        t0 = time.perf_counter()
        try:
            record["audio_s"] = round(source_duration_s(item.path, self.pipe.manifest.audio.sample_rate), 3)
            result = self.pipe.generate(item.path, question, window=self.ask.window, loop_guard=self.ask.loop_guard,
                                        **self.ask.options)
            record.update(text=result.text, reasoning=result.reasoning, finish_reason=result.finish_reason)
            record["timings"] = {**result.timings.to_dict(), "total_s": round(time.perf_counter() - t0, 4)}
        except Exception as e:  # one bad input never stops the batch: it is recorded and the rest go on
            record["error"] = one_line(e)
            record["timings"] = {"total_s": round(time.perf_counter() - t0, 4)}
        return record


def one_line(error: Exception) -> str:
    """Our errors say what to do in one line; anything else is named by its type."""
    from runtime.errors import MossError

    text = " ".join(str(error).split())
    return text if isinstance(error, MossError) and text else f"{type(error).__name__}: {text}"
