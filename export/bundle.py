"""Checkpoint -> bundle: encoder ONNX variants, decoder GGUF variants, manifest.json.

Everything is written into a temporary folder that is renamed into place at the end, so
an interrupted export never leaves a folder that loads.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from export.atomic import atomic_dir
from export.checkpoint import Checkpoint
from export.decoder_gguf import DIRECT_TYPES, write_decoder_gguf, write_digit_rows
from export.encoder_onnx import ENCODER_PRECISIONS, OPSET, export_encoders
from export.gguf_quant import QUANT_EMBEDDING_TYPE, QUANT_OUTPUT_TYPE, check_quant_type, quantize_gguf
from export.imatrix import collect_imatrix
from export.modeling import load_tower
from export.progress import progress
from export.reference_cases import reference_expected
from quant.cases import TOP_K
from quant.expected import EXPECTED, write_expected
from runtime import DEMO_AUDIO
from runtime.errors import OptionsError
from runtime.manifest import (SCHEMA_VERSION, DecoderPart, EncoderPart, ExpectedInfo, ImatrixInfo, Manifest,
                              ModelInfo, file_digest, write_manifest)

EXPECTED_TOKENS = 32  # greedy tokens of the reference recorded in expected.npz


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
        work = tmp / ".work"
        work.mkdir()
        encoders = {f.precision: EncoderPart(file=f.path.name, precision=f.precision, opset=OPSET,
                                             providers=tuple(f.providers), external_data=f.external_data,
                                             weight_bits=f.weight_bits)
                    for f in export_encoders(load_tower(ckpt), ckpt.audio_info.n_mels, tmp, options.encoder, work)}
        quantized = [d for d in options.decoder if d not in DIRECT_TYPES]
        source = options.quant_source
        written = list(dict.fromkeys([d for d in options.decoder if d in DIRECT_TYPES]
                                     + ([source] if quantized else [])))
        for ftype in written:
            write_decoder_gguf(ckpt, tmp / f"decoder-{ftype}.gguf", ftype)
        reference = _reference(ckpt) if (quantized and options.imatrix) or options.expected else None
        imatrix = collect_imatrix(reference, list(options.calibration)) if quantized and options.imatrix else None
        expected = None
        if options.expected:
            question = ckpt.prompt_info.default_question
            made = reference_expected(reference, [DEMO_AUDIO], question, EXPECTED_TOKENS)
            write_expected(made, tmp / EXPECTED)
            expected = ExpectedInfo(file=EXPECTED, question=question, greedy_tokens=EXPECTED_TOKENS, top_k=TOP_K,
                                    reference_dtype=made.reference_dtype, reference_device=made.reference_device)
        del reference
        for qtype in progress(quantized, total=len(quantized), desc="quantize"):
            quantize_gguf(tmp / f"decoder-{source}.gguf", tmp / f"decoder-{qtype}.gguf", qtype,
                          imatrix=imatrix.values if imatrix else None,
                          embedding_type=options.embedding_type, output_type=options.output_type)
        listed = list(options.decoder) + ([source] if quantized and options.keep_intermediate else [])
        for ftype in written:
            if ftype not in listed:
                (tmp / f"decoder-{ftype}.gguf").unlink()
        decoders = {}
        for d in dict.fromkeys(listed):
            rows = write_digit_rows(tmp / f"decoder-{d}.gguf", ckpt.token_ids.digits, tmp / f"decoder-{d}.digits.npy")
            common = dict(file=f"decoder-{d}.gguf", precision=d, arch=cfg.arch, digit_rows=rows.name)
            if d in quantized:
                decoders[d] = DecoderPart(
                    **common, made_from=source, token_embd=options.embedding_type, output=options.output_type,
                    imatrix=ImatrixInfo(clips=imatrix.clips, positions=imatrix.tokens) if imatrix else None)
            else:
                decoders[d] = DecoderPart(**common, made_from="checkpoint")
        shutil.rmtree(work)
        files = {p.name: file_digest(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        t = cfg.text
        manifest = Manifest(
            schema_version=SCHEMA_VERSION,
            model=ModelInfo(family=cfg.family.name, hidden_size=t.hidden_size, n_deepstack=cfg.n_deepstack,
                            row_width=cfg.row_width, n_layers=t.num_hidden_layers, n_kv_heads=t.num_key_value_heads,
                            head_dim=t.head_dim, vocab_size=t.vocab_size, context_length=t.max_position_embeddings,
                            source=str(checkpoint)),
            tokens=ckpt.token_ids, audio=ckpt.audio_info, prompt=ckpt.prompt_info, generation=ckpt.generation,
            encoders=encoders, decoders=decoders, files=files, expected=expected)
        write_manifest(tmp, manifest)
    return manifest


def _reference(ckpt: Checkpoint):
    """The PyTorch reference for the imatrix and the expected outputs (bf16 past 3B parameters: RAM)."""
    import torch

    from export.reference import MossAudioReference

    n_params = sum(int(np.prod(s)) for s in ckpt.config.expected_tensors().values())
    return MossAudioReference(ckpt, dtype=torch.float32 if n_params < 3e9 else torch.bfloat16)
