"""Checkpoint -> bundle: encoder ONNX variants, decoder GGUF variants, manifest.json.

Everything is written into a temporary folder that is renamed into place at the end, so
an interrupted export never leaves a folder that loads.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
from dataclasses import dataclass
from pathlib import Path

from export.atomic import atomic_dir
from export.checkpoint import Checkpoint
from export.decoder_gguf import DIRECT_TYPES, write_decoder_gguf
from export.encoder_onnx import ENCODER_PRECISIONS, OPSET, export_encoders
from export.progress import progress

EXPECTED_TOKENS = 32  # greedy tokens of the reference recorded in expected.npz
from export.modeling import load_tower
from quant.expected import write_expected
from quant.imatrix import collect_imatrix
from quant.gguf import QUANT_EMBEDDING_TYPE, QUANT_OUTPUT_TYPE, check_quant_type, quantize_gguf
from runtime import DEMO_AUDIO
from runtime.errors import OptionsError
from runtime.manifest import (ENCODER_INPUTS, ENCODER_OUTPUT, MANIFEST, Manifest, MelInfo, ModelInfo,
                              PartInfo, PromptInfo, file_digest)
from runtime.prompt import MARKER_EVERY_TOKENS, SYSTEM_PROMPT, TRANSCRIBE_QUESTION
from runtime.sampling import GenerationOptions


@dataclass(frozen=True)
class ExportOptions:
    encoder: tuple[str, ...] = ("fp32",)
    decoder: tuple[str, ...] = ("f16",)
    imatrix: bool = True  # importance matrix from audio prompts for quantized decoder types
    calibration: tuple[Path, ...] = (DEMO_AUDIO,)  # audio the imatrix is computed on
    keep_intermediate: bool = False  # keep the F16/F32 GGUF quantized types were made from
    expected: bool = True  # ship the reference's outputs on the bundled clip, for device checks
    embedding_type: str | None = QUANT_EMBEDDING_TYPE
    output_type: str | None = QUANT_OUTPUT_TYPE

    @classmethod
    def parse(cls, encoder: str, decoder: str, **flags) -> "ExportOptions":
        enc = tuple(x.strip().lower() for x in encoder.split(",") if x.strip())
        dec = tuple(x.strip().lower() for x in decoder.split(",") if x.strip())
        bad = [e for e in enc if e not in ENCODER_PRECISIONS]
        if bad or not enc:
            raise OptionsError(f"--encoder {encoder!r}: choose from {', '.join(ENCODER_PRECISIONS)}")
        if not dec:
            raise OptionsError("--decoder needs at least one type, e.g. f16 or q4_k_m")
        for d in dec:
            if d not in DIRECT_TYPES:
                check_quant_type(d)
        return cls(encoder=enc, decoder=dec, **flags)

    @property
    def quant_source(self) -> str:
        """The GGUF quantized types are made from: f32 when asked for, else f16."""
        return "f32" if "f32" in self.decoder else "f16"


def export_bundle(checkpoint: str | Path, out: Path, options: ExportOptions = ExportOptions(),
                  *, revision: str | None = None) -> Manifest:
    ckpt = Checkpoint.open(checkpoint, revision=revision)
    cfg = ckpt.config
    with atomic_dir(Path(out)) as tmp:
        encoders, decoders = {}, {}
        work = tmp / ".work"
        work.mkdir()
        for f in export_encoders(load_tower(ckpt), cfg.audio.num_mel_bins, tmp, options.encoder, work):
            encoders[f.precision] = PartInfo(
                file=f.path.name, precision=f.precision, external_data=f.external_data,
                details={"opset": OPSET, "inputs": list(ENCODER_INPUTS), "output": ENCODER_OUTPUT,
                         "providers": f.providers})
        quantized = [d for d in options.decoder if d not in DIRECT_TYPES]
        source = options.quant_source
        written = list(dict.fromkeys([d for d in options.decoder if d in DIRECT_TYPES]
                                     + ([source] if quantized else [])))
        for ftype in written:
            write_decoder_gguf(ckpt, tmp / f"decoder-{ftype}.gguf", ftype)
        reference = _reference(ckpt) if (quantized and options.imatrix) or options.expected else None
        imatrix = collect_imatrix(reference, list(options.calibration)) if quantized and options.imatrix else None
        if options.expected:
            write_expected(reference, tmp, [DEMO_AUDIO], TRANSCRIBE_QUESTION, EXPECTED_TOKENS)
        del reference
        for qtype in progress(quantized, total=len(quantized), desc="quantize"):
            quantize_gguf(tmp / f"decoder-{source}.gguf", tmp / f"decoder-{qtype}.gguf", qtype,
                          imatrix=imatrix.values if imatrix else None,
                          embedding_type=options.embedding_type, output_type=options.output_type)
        listed = list(options.decoder) + ([source] if quantized and options.keep_intermediate else [])
        for ftype in written:
            if ftype not in listed:
                (tmp / f"decoder-{ftype}.gguf").unlink()
        for d in dict.fromkeys(listed):
            details = {"arch": "qwen3vl", "made_from": "checkpoint"}
            if d in quantized:
                details.update(made_from=source, token_embd=options.embedding_type or "llama.cpp default",
                               output=options.output_type or "llama.cpp default",
                               imatrix=({"clips": imatrix.clips, "positions": imatrix.tokens} if imatrix else None))
            decoders[d] = PartInfo(file=f"decoder-{d}.gguf", precision=d, details=details)
        shutil.rmtree(work)
        files = {p.name: file_digest(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        manifest = Manifest(
            model=ModelInfo(hidden_size=cfg.text.hidden_size, n_deepstack=cfg.n_deepstack, row_width=cfg.row_width,
                            vocab_size=cfg.text.vocab_size, context_length=cfg.text.max_position_embeddings,
                            source=str(checkpoint)),
            tokens=ckpt.token_ids,
            mel=MelInfo(n_mels=cfg.audio.num_mel_bins, chunk_frames=cfg.audio.chunk_frames),
            prompt=PromptInfo(system=SYSTEM_PROMPT, time_markers=ckpt.time_markers,
                              marker_every_tokens=MARKER_EVERY_TOKENS),
            generation=_generation_defaults(ckpt.folder),
            encoders=encoders, decoders=decoders, files=files,
        )
        (tmp / MANIFEST).write_text(manifest.to_json())
    return manifest


def _reference(ckpt: Checkpoint):
    """The PyTorch reference for the imatrix and the expected outputs (bf16 past 3B parameters: RAM)."""
    import torch

    from export.reference import MossAudioReference

    n_params = sum(int(np.prod(s)) for s in ckpt.config.expected_tensors().values())
    return MossAudioReference(ckpt, dtype=torch.float32 if n_params < 3e9 else torch.bfloat16)


def _generation_defaults(folder: Path) -> dict:
    """Upstream's sampling settings from generation_config.json, else GenerationOptions' own."""
    path = folder / "generation_config.json"
    shipped = json.loads(path.read_text()) if path.is_file() else {}
    defaults = GenerationOptions()
    keys = ("max_new_tokens", "temperature", "top_k", "top_p", "repetition_penalty")
    return {k: shipped.get(k, getattr(defaults, k)) for k in keys}
