"""The audio side as one ONNX graph: fixed 400-frame chunks in, packed decoder rows out."""

from __future__ import annotations

import hashlib
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from export.modeling import AudioTower
from runtime.chunks import CHUNK_FRAMES, stem_out_len
from runtime.manifest import ENCODER_INPUTS, ENCODER_OUTPUT

OPSET = 18
EXTERNAL_DATA_BYTES = 1_800_000_000  # protobuf's 2 GB limit, with headroom for the graph itself


class ChunkGraph(nn.Module):
    """mel [chunks, n_mels, 400], frames [chunks], stem_frames [chunks] -> rows [chunks, 50, W]."""

    def __init__(self, tower: AudioTower):
        super().__init__()
        self.tower = tower

    def forward(self, mel: torch.Tensor, frames: torch.Tensor, stem_frames: torch.Tensor) -> torch.Tensor:
        top, taps = self.tower.audio_encoder.encode_chunks(mel, frames, stem_frames)
        return self.tower.pack(top, taps)


@dataclass(frozen=True)
class EncoderFile:
    path: Path
    precision: str
    external_data: str | None


def export_encoder(tower: AudioTower, n_mels: int, out_dir: Path, precision: str) -> EncoderFile:
    """Write encoder-<precision>.onnx (FP32 traced; FP16 converted from it with FP32 I/O)."""
    import onnx

    graph = ChunkGraph(tower.float().eval())
    example = (torch.zeros(2, n_mels, CHUNK_FRAMES), torch.tensor([CHUNK_FRAMES, 123]),
               torch.tensor([CHUNK_FRAMES, CHUNK_FRAMES]))
    chunks = torch.export.Dim("chunks", min=1, max=4096)
    with warnings.catch_warnings(), _quiet_torch_export():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            graph, example, input_names=list(ENCODER_INPUTS), output_names=[ENCODER_OUTPUT],
            dynamic_shapes={"mel": {0: chunks}, "frames": {0: chunks}, "stem_frames": {0: chunks}},
            opset_version=OPSET, dynamo=True, optimize=True, verbose=False,
        )
    model = program.model_proto
    if precision == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        model = convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=True)
    elif precision != "fp32":
        raise ValueError(f"encoder precision {precision!r}: choose fp32 or fp16")
    path = out_dir / f"encoder-{precision}.onnx"
    external = None
    if model.ByteSize() > EXTERNAL_DATA_BYTES:
        external = path.name + ".data"
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=external, size_threshold=1024)
    else:
        onnx.save_model(model, str(path))
    return EncoderFile(path=path, precision=precision, external_data=external)


def tokens_per_chunk() -> int:
    return stem_out_len(CHUNK_FRAMES)


class _quiet_torch_export:
    """torch.onnx's exporter logs each pass at INFO; keep it to warnings."""

    def __enter__(self):
        self._levels = {n: logging.getLogger(n).level for n in ("torch.onnx", "torch.export", "onnxscript")}
        for n in self._levels:
            logging.getLogger(n).setLevel(logging.ERROR)

    def __exit__(self, *exc):
        for n, level in self._levels.items():
            logging.getLogger(n).setLevel(level)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
