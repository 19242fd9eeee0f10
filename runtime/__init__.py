"""Torch-free runtime: Pipeline.load(bundle).ask(audio, question) streams the answer."""

from __future__ import annotations

from pathlib import Path

DEMO_AUDIO = Path(__file__).parent / "data" / "demo.flac"  # espeak-ng, kept out of the tiny model's training
DEMO_TEXT = "The quick brown fox jumps over the lazy dog."  # what DEMO_AUDIO says

__all__ = ["Pipeline", "Result", "Stream", "Piece", "Segment", "GenerationOptions", "DEMO_AUDIO", "DEMO_TEXT"]
_LAZY = {"Pipeline": "runtime.pipeline", "Result": "runtime.answer", "Stream": "runtime.answer",
         "Piece": "runtime.answer", "Segment": "runtime.segments", "GenerationOptions": "runtime.sampling"}


def __getattr__(name: str):
    """Import the heavy parts (onnxruntime, llama.cpp) only when used."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'runtime' has no attribute {name!r}")
