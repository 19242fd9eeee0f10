"""manifest.json: the one contract between export and runtime. Every key is defined here.

Everything the runtime needs to know about a model (audio front end, chunking, prompt
template, time markers, token ids, generation defaults, which files hold which part) is
read from it, never from constants that happen to agree. The loader checks the schema
version, that every file it names is a plain name inside the bundle and listed with its
sha256, and names the bad file when not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from runtime.errors import BundleError
from runtime.filehash import sha256_of, verified_sha256
from runtime.typed import SchemaError, from_json, to_json

SCHEMA_VERSION = 2
MANIFEST = "manifest.json"
ENCODER_INPUTS = ("mel", "frames", "stem_frames")
WINDOW_INPUTS = ("mel",)  # a windowed family's encoder: whole zero-padded windows, no lengths
ENCODER_OUTPUT = "rows"
REEXPORT = "re-export it with `python -m export CHECKPOINT --out BUNDLE`"
# Model families this runtime runs; MOSS-Music is MOSS-Audio's architecture under its own name.
FAMILIES = ("moss-audio", "moss-music", "moss-transcribe-diarize")
# Families that answer a whole recording in one prompt (speaker labels must hold across it), so their
# context is the model's own, not a device profile's: MOSS-Audio windows long audio instead.
ONE_PASS_FAMILIES = ("moss-transcribe-diarize",)


@dataclass(frozen=True)
class TokenIds:
    """Ids the prompt and the stop rule need; read from the checkpoint's own files at export."""

    audio: int
    audio_start: int
    audio_end: int
    eos: tuple[int, ...]
    digits: tuple[int, ...]  # ids of "0".."9", for time markers
    think_start: int | None = None
    think_end: int | None = None

    def __post_init__(self) -> None:
        if len(self.digits) != 10:
            raise ValueError(f"digits must hold the ids of 0..9, got {len(self.digits)}")
        if not self.eos:
            raise ValueError("eos must hold at least one id")


@dataclass(frozen=True)
class ModelInfo:
    family: str  # one of FAMILIES
    hidden_size: int
    n_deepstack: int
    row_width: int  # hidden_size * (1 + n_deepstack): one packed audio row
    n_layers: int
    n_kv_heads: int
    head_dim: int
    vocab_size: int
    context_length: int  # positions the decoder was trained for
    source: str  # the checkpoint it came from

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"model family {self.family!r} is not one this runtime runs ({', '.join(FAMILIES)}); "
                             "a newer moss-audio-edge may")

    @property
    def one_pass(self) -> bool:
        """Whether it answers a whole recording in one prompt (ONE_PASS_FAMILIES)."""
        return self.family in ONE_PASS_FAMILIES


@dataclass(frozen=True)
class AudioInfo:
    """The front end and the encoder's chunking, as the checkpoint's processor defines them."""

    sample_rate: int
    n_fft: int
    hop_length: int
    n_mels: int
    log_range: float  # log10 units kept below the clip's maximum (Whisper: 8)
    mel_dtype: str  # "bfloat16": upstream rounds the log-mel before the encoder; "float32" keeps it
    chunk_frames: int  # mel frames encoded independently
    chunk_tokens: int  # audio tokens one full chunk gives
    # 0: one log-mel over the whole clip, floored at its maximum, cut into chunks (MOSS-Audio). Else
    # the clip is cut into windows of this many samples, each zero-padded to it before its own
    # log-mel and floor, and a window of n samples keeps (n - 1) // samples_per_token + 1 rows
    # (Whisper's 30 s windows, MOSS-Transcribe-Diarize).
    window_samples: int = 0

    def __post_init__(self) -> None:
        if self.mel_dtype not in ("bfloat16", "float32"):
            raise ValueError(f"mel_dtype {self.mel_dtype!r} is neither bfloat16 nor float32")
        if self.window_samples and self.window_samples != self.chunk_frames * self.hop_length:
            raise ValueError(f"window_samples {self.window_samples} is not chunk_frames x hop_length "
                             f"({self.chunk_frames} x {self.hop_length})")

    @property
    def samples_per_token(self) -> int:
        return self.hop_length * self.chunk_frames // self.chunk_tokens

    @property
    def tokens_per_second(self) -> float:
        return self.sample_rate / self.hop_length * self.chunk_tokens / self.chunk_frames


@dataclass(frozen=True)
class PromptInfo:
    """The chat template with {system}, {audio} and {question} slots, and the time-marker rule."""

    template: str
    system: str
    default_question: str
    special_texts: tuple[str, ...]  # control tokens' text: where the question's plain-text run ends
    clip_separator: str = ""
    time_markers: bool = True
    marker_every_seconds: int = 2
    thinking: bool = False  # the model writes <think>...</think> before its answer

    def __post_init__(self) -> None:
        for slot in ("{audio}", "{question}"):
            if self.template.count(slot) != 1:
                raise ValueError(f"template must hold {slot} exactly once")
        if self.template.index("{audio}") > self.template.index("{question}"):
            raise ValueError("template must put {audio} before {question}")


@dataclass(frozen=True)
class GenerationDefaults:
    """The checkpoint's generation_config.json."""

    max_new_tokens: int
    temperature: float
    top_k: int
    top_p: float
    repetition_penalty: float
    do_sample: bool


@dataclass(frozen=True)
class EncoderPart:
    file: str
    precision: str
    opset: int
    providers: tuple[str, ...]  # execution providers it was built to run well on
    external_data: str | None = None
    # int8: the bits its integer weights use (7: onnxruntime's reduce_range). None for float variants,
    # and for INT8 encoders exported before 2026-12-03, whose weights use all 8.
    weight_bits: int | None = None


@dataclass(frozen=True)
class ImatrixInfo:
    clips: int
    positions: int


@dataclass(frozen=True)
class DecoderPart:
    file: str
    precision: str
    arch: str
    made_from: str  # "checkpoint", or the GGUF type it was quantized from
    digit_rows: str | None = None  # .npy: the embedding rows of "0".."9" for time markers, as this GGUF has them
    token_embd: str | None = None  # quantized types: token_embd's type override (None: llama.cpp's choice)
    output: str | None = None
    imatrix: ImatrixInfo | None = None


@dataclass(frozen=True)
class EngineInfo:
    """A TensorRT engine built on one GPU model with one TensorRT version."""

    file: str
    gpu: str
    compute_capability: str | None
    tensorrt: str
    precision: str
    built_from: str
    max_chunks: int


@dataclass(frozen=True)
class ExpectedInfo:
    """expected.npz: the reference's outputs on the bundled clip, for torch-free device checks."""

    file: str
    question: str
    greedy_tokens: int
    top_k: int
    reference_dtype: str
    reference_device: str


@dataclass(frozen=True)
class VariantDrift:
    """One variant measured against the reference; a metric not measured is None."""

    kind: str  # "encoder" or "decoder"
    file: str
    bytes: int
    peak_rss_mb: float
    paired_with: str | None = None
    cosine: float | None = None
    max_rel_error: float | None = None
    kl_mean: float | None = None
    kl_p99: float | None = None
    top1: float | None = None
    greedy_match: float | None = None
    cer: float | None = None  # of the greedy answer against the reference's answer
    eval_cer: float | None = None  # on an evaluation set: English transcripts against the truth
    eval_wer: float | None = None
    language_accuracy: float | None = None
    timestamp_mae_s: float | None = None  # sentence boundaries against the true ones


@dataclass(frozen=True)
class DriftReference:
    kind: str
    source: str
    dtype: str
    device: str
    audio: tuple[str, ...]
    greedy_tokens: int
    positions: int  # positions whose next-token distribution is compared
    tokens_per_position: int  # the reference's top tokens kept per position (KL over that set)


@dataclass(frozen=True)
class DriftReport:
    reference: DriftReference
    variants: dict[str, VariantDrift]


@dataclass(frozen=True)
class FileInfo:
    sha256: str
    bytes: int


@dataclass(frozen=True)
class Manifest:
    schema_version: int
    model: ModelInfo
    tokens: TokenIds
    audio: AudioInfo
    prompt: PromptInfo
    generation: GenerationDefaults
    encoders: dict[str, EncoderPart]
    decoders: dict[str, DecoderPart]
    files: dict[str, FileInfo]
    expected: ExpectedInfo | None = None
    engines: dict[str, EngineInfo] = field(default_factory=dict)
    drift: DriftReport | None = None

    def to_json(self) -> str:
        return json.dumps(to_json(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, data: bytes | str, where: str = MANIFEST) -> "Manifest":
        try:
            d = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise BundleError(f"{where} is not valid JSON ({e}); {REEXPORT}") from None
        if not isinstance(d, dict):
            raise BundleError(f"{where} holds a {type(d).__name__}, not a manifest object; {REEXPORT}")
        version = d.get("schema_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise BundleError(f"{where} has no schema_version; it was not written by python -m export")
        if version > SCHEMA_VERSION:
            raise BundleError(f"{where} uses schema {version}, newer than this runtime reads ({SCHEMA_VERSION}): "
                              "upgrade moss-audio-edge")
        if version < SCHEMA_VERSION:
            raise BundleError(f"{where} uses schema {version}, older than this runtime reads ({SCHEMA_VERSION}): "
                              f"{REEXPORT}")
        try:
            return from_json(cls, d, "manifest")
        except SchemaError as e:
            raise BundleError(f"{where} is malformed: {e}; {REEXPORT}") from None

    def part_bytes(self, kind: str, name: str) -> int:
        """Bytes of one encoder or decoder variant's files, as listed."""
        part = (self.encoders if kind == "encoder" else self.decoders)[name]
        files = [part.file] + ([part.external_data] if isinstance(part, EncoderPart) and part.external_data else [])
        return sum(self.files[f].bytes for f in files)

    def named_files(self) -> list[str]:
        """Every file a part of the manifest points at."""
        names = [e.file for e in self.encoders.values()] + [e.external_data for e in self.encoders.values()]
        names += [d.file for d in self.decoders.values()] + [d.digit_rows for d in self.decoders.values()]
        names += [e.file for e in self.engines.values()]
        names += [self.expected.file] if self.expected else []
        return [n for n in names if n is not None]


def file_digest(path: Path) -> FileInfo:
    return FileInfo(sha256=sha256_of(path), bytes=Path(path).stat().st_size)


def is_plain_name(name: str) -> bool:
    """A file name that can only mean a file directly inside the bundle folder."""
    return bool(name) and name not in (".", "..") and not any(c in name for c in "/\\\0") and ":" not in name[:2]


def load_manifest(bundle: Path, *, verify: bool = True, only: set[str] | None = None) -> Manifest:
    """Read and check a bundle's manifest; `only` limits the sha256 check to the files in use.

    Sizes are always checked; a sha256 is recomputed only when the file changed since it was
    last verified (runtime.filehash keeps that record)."""
    bundle = Path(bundle)
    path = bundle / MANIFEST
    if not bundle.is_dir():
        raise BundleError(f"bundle folder not found: {bundle}")
    if not path.is_file():
        raise BundleError(f"{bundle} has no {MANIFEST}: it is not a bundle, or its export did not finish")
    manifest = Manifest.from_json(path.read_bytes(), str(path))
    for name in list(manifest.files) + manifest.named_files():
        if not is_plain_name(name):
            raise BundleError(f"{path} names the file {name!r}, which is not inside the bundle folder: the manifest "
                              "is corrupt or hostile; refusing to load it")
        if name not in manifest.files:
            raise BundleError(f"{path} uses {name!r} but lists no sha256 for it: {REEXPORT}")
    for name, info in manifest.files.items():
        file = bundle / name
        if not file.is_file():
            raise BundleError(f"bundle file missing: {file}; re-export the bundle or restore the file")
        if file.stat().st_size != info.bytes:
            raise BundleError(f"{file} does not have the {info.bytes} bytes the manifest lists: the file is "
                              "truncated or replaced")
        if verify and (only is None or name in only) and verified_sha256(file) != info.sha256:
            raise BundleError(f"sha256 of {file} does not match the manifest: the file is corrupt or replaced")
    return manifest


def write_manifest(bundle: Path, manifest: Manifest) -> None:
    from runtime.atomic import write_text_atomic

    write_text_atomic(Path(bundle) / MANIFEST, manifest.to_json())


def update_manifest(bundle: Path, change) -> Manifest:
    """Read, apply `change(manifest) -> manifest`, write through a unique temporary name (files unchecked:
    a change may be what makes them agree again)."""
    path = Path(bundle) / MANIFEST
    manifest = change(Manifest.from_json(path.read_bytes(), str(path)))
    write_manifest(bundle, manifest)
    return manifest

