"""Torch-free runtime: Pipeline.load(bundle).ask(audio, question) streams the answer."""

from __future__ import annotations

from pathlib import Path

DEMO_AUDIO = Path(__file__).parent / "data" / "demo.flac"  # espeak-ng: "The quick brown fox ..."

__all__ = ["Pipeline", "Result", "Stream", "GenerationOptions", "DEMO_AUDIO"]


def __getattr__(name: str):
    """Import the heavy parts (onnxruntime, llama.cpp) only when used."""
    if name == "Pipeline":
        from runtime.pipeline import Pipeline

        return Pipeline
    if name in ("Result", "Stream"):
        from runtime import answer

        return getattr(answer, name)
    if name == "GenerationOptions":
        from runtime.sampling import GenerationOptions

        return GenerationOptions
    raise AttributeError(f"module 'runtime' has no attribute {name!r}")
