"""The audio side as one ONNX graph: fixed 400-frame chunks in, packed decoder rows out (or, for a
windowed family, whole zero-padded windows in, their rows out)."""

from __future__ import annotations

import gc
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from torch import nn

from export import encoder_precisions as precisions
from export.modeling import AudioTower
from runtime.child import run_in_child
from runtime.manifest import ENCODER_INPUTS, ENCODER_OUTPUT, WINDOW_INPUTS

OPSET = 18
EXTERNAL_DATA_BYTES = 1_800_000_000  # the traced graph's weights outside past protobuf's 2 GB limit
ENCODER_PRECISIONS = ("fp32", "fp16", "int8")


class ChunkGraph(nn.Module):
    """mel [chunks, n_mels, chunk frames], frames [chunks], stem_frames [chunks] -> rows [chunks, tokens, W]."""

    def __init__(self, tower: AudioTower):
        super().__init__()
        self.tower = tower

    def forward(self, mel: torch.Tensor, frames: torch.Tensor, stem_frames: torch.Tensor) -> torch.Tensor:
        top, taps = self.tower.audio_encoder.encode_chunks(mel, frames, stem_frames)
        return self.tower.pack(top, taps)


class WindowGraph(nn.Module):
    """mel [windows, n_mels, window frames] -> rows [windows, tokens, hidden]; modules named tower.* as in
    ChunkGraph, which is how the precisions pick MatMuls by module."""

    def __init__(self, tower: nn.Module):
        super().__init__()
        self.tower = tower

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.tower(mel)


@dataclass(frozen=True)
class EncoderFile:
    path: Path
    precision: str
    external_data: str
    providers: list[str]
    weight_bits: int | None = None  # integer variants only


def trace(tower: nn.Module, n_mels: int, path: Path) -> Path:
    """The FP32 graph as traced, standard ONNX ops only; weights outside when past the limit."""
    chunks = torch.export.Dim("chunks", min=1, max=4096)
    if isinstance(tower, AudioTower):
        graph = ChunkGraph(tower.float().eval())
        size = tower.audio_encoder.cfg.chunk_frames
        example = (torch.zeros(2, n_mels, size), torch.tensor([size, 123]), torch.tensor([size, size]))
        inputs = ENCODER_INPUTS
        # Chunks of any multiple of 8 frames up to a full one: a short clip (or a session's tail)
        # costs its own length, not a whole chunk's (runtime.encoder.Encoder.run_chunks)
        shapes = {"mel": {0: chunks, 2: 8 * torch.export.Dim("eighths", min=1, max=size // 8)},
                  "frames": {0: chunks}, "stem_frames": {0: chunks}}
    else:  # a windowed family's tower takes whole windows
        graph = WindowGraph(tower.float().eval())
        example = (torch.zeros(2, n_mels, tower.config.audio.window_frames),)
        inputs = WINDOW_INPUTS
        shapes = {"mel": {0: chunks}}
    with warnings.catch_warnings(), _quiet_torch_export():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            graph, example, input_names=list(inputs), output_names=[ENCODER_OUTPUT],
            dynamic_shapes=shapes,
            opset_version=OPSET, dynamo=True, optimize=True, verbose=False,
        )
    n_bytes = sum(p.numel() * 4 for p in tower.parameters())
    if n_bytes > EXTERNAL_DATA_BYTES:
        onnx.save_model(program.model_proto, str(path), save_as_external_data=True, location=path.name + ".data")
    else:
        onnx.save_model(program.model_proto, str(path))
    return path


def export_encoders(tower: nn.Module, n_mels: int, out_dir: Path, wanted: tuple[str, ...],
                    work_dir: Path) -> list[EncoderFile]:
    """Trace once into `work_dir`, then write encoder-<precision>.onnx for each wanted precision.

    The tower is dropped once traced, and each conversion runs in its own process: the real
    encoder is 3.2 GB in FP32, and their peaks stacked in one process exceed 24 GB."""
    bad = [p for p in wanted if p not in ENCODER_PRECISIONS]
    if bad:
        raise ValueError(f"encoder precision(s) {bad}: choose from {', '.join(ENCODER_PRECISIONS)}")
    cfg = tower.audio_encoder.cfg if isinstance(tower, AudioTower) else tower.config.audio
    raw = trace(tower, n_mels, work_dir / "encoder-traced.onnx")
    del tower
    gc.collect()
    big = raw.with_name(raw.name + ".data").exists()
    out = []
    for precision in wanted:
        path = out_dir / f"encoder-{precision}.onnx"
        external = run_in_child(_convert, raw, path, precision, cfg.encoder_attention_heads, cfg.d_model, big)
        out.append(EncoderFile(path, precision, external, precisions.PROVIDERS[precision],
                               precisions.WEIGHT_BITS.get(precision)))
    return out


def _convert(raw: Path, path: Path, precision: str, heads: int, d_model: int, big: bool) -> str:
    """One precision from the traced graph, saved with page-aligned external weights; returns their file."""
    if precision == "int8":
        staging = raw.with_name(f"staging-{path.name}")
        model = precisions.int8(raw, staging, external=big)
    else:
        model = precisions.fused_fp32(raw, heads, d_model) if precision == "fp32" else precisions.fp16(raw)
    return precisions.save(model, path)


class _quiet_torch_export:
    """torch.onnx's exporter logs each pass at INFO; keep it to errors."""

    def __enter__(self):
        self._levels = {n: logging.getLogger(n).level for n in ("torch.onnx", "torch.export", "onnxscript")}
        for n in self._levels:
            logging.getLogger(n).setLevel(logging.ERROR)

    def __exit__(self, *exc):
        for n, level in self._levels.items():
            logging.getLogger(n).setLevel(level)
