"""manifest.json: the one contract between export and runtime. Every key is defined here.

The loader checks the schema version, that every listed file is there with its sha256,
and names the bad file when not.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from runtime.errors import BundleError
from runtime.prompt import TokenIds

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
ENCODER_INPUTS = ("mel", "frames", "stem_frames")
ENCODER_OUTPUT = "rows"


@dataclass(frozen=True)
class ModelInfo:
    hidden_size: int
    n_deepstack: int
    row_width: int  # hidden_size * (1 + n_deepstack): one packed audio row
    vocab_size: int
    context_length: int
    source: str  # the checkpoint it came from


@dataclass(frozen=True)
class MelInfo:
    sample_rate: int = 16000
    n_fft: int = 400
    hop_length: int = 160
    n_mels: int = 128
    chunk_frames: int = 400


@dataclass(frozen=True)
class PromptInfo:
    system: str
    time_markers: bool
    marker_every_tokens: int = 25


@dataclass(frozen=True)
class PartInfo:
    """One encoder or decoder variant: its file and how it was made."""

    file: str
    precision: str
    external_data: str | None = None
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class FileInfo:
    sha256: str
    bytes: int


@dataclass(frozen=True)
class Manifest:
    model: ModelInfo
    tokens: TokenIds
    mel: MelInfo
    prompt: PromptInfo
    generation: dict
    encoders: dict[str, PartInfo]
    decoders: dict[str, PartInfo]
    files: dict[str, FileInfo]
    drift: dict = field(default_factory=dict)
    engines: dict = field(default_factory=dict)  # TensorRT engines by GPU: file, gpu, tensorrt version, ...
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> str:
        d = asdict(self)
        d["tokens"] = self.tokens.to_dict()
        return json.dumps(d, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str = MANIFEST) -> "Manifest":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise BundleError(f"{where} is not valid JSON: {e}; re-export the bundle") from None
        version = d.get("schema_version")
        if not isinstance(version, int):
            raise BundleError(f"{where} has no schema_version; it was not written by python -m export")
        if version > SCHEMA_VERSION:
            raise BundleError(f"{where} uses schema {version}, newer than this runtime reads ({SCHEMA_VERSION}): "
                              "upgrade moss-audio-edge")
        try:
            return cls(
                model=ModelInfo(**d["model"]), tokens=TokenIds.from_dict(d["tokens"]), mel=MelInfo(**d["mel"]),
                prompt=PromptInfo(**d["prompt"]), generation=d["generation"],
                encoders={k: PartInfo(**v) for k, v in d["encoders"].items()},
                decoders={k: PartInfo(**v) for k, v in d["decoders"].items()},
                files={k: FileInfo(**v) for k, v in d["files"].items()}, drift=d.get("drift", {}),
                engines=d.get("engines", {}), schema_version=version,
            )
        except (KeyError, TypeError) as e:
            raise BundleError(f"{where} is missing or has a malformed entry ({e}); re-export the bundle") from None


def file_digest(path: Path) -> FileInfo:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return FileInfo(sha256=h.hexdigest(), bytes=path.stat().st_size)


def load_manifest(bundle: Path, *, verify: bool = True, only: set[str] | None = None) -> Manifest:
    """Read and check a bundle's manifest; `only` limits the sha256 check to the files in use."""
    bundle = Path(bundle)
    path = bundle / MANIFEST
    if not bundle.is_dir():
        raise BundleError(f"bundle folder not found: {bundle}")
    if not path.is_file():
        raise BundleError(f"{bundle} has no {MANIFEST}: it is not a bundle, or its export did not finish")
    manifest = Manifest.from_json(path.read_text(), str(path))
    for name, info in manifest.files.items():
        file = bundle / name
        if not file.is_file():
            raise BundleError(f"bundle file missing: {file}; re-export the bundle or restore the file")
        if file.stat().st_size != info.bytes:
            raise BundleError(f"{file} has {file.stat().st_size} bytes, the manifest says {info.bytes}: "
                              "the file is truncated or replaced")
        if verify and (only is None or name in only) and file_digest(file).sha256 != info.sha256:
            raise BundleError(f"sha256 of {file} does not match the manifest: the file is corrupt or replaced")
    return manifest


def record_drift(bundle: Path, report: dict) -> None:
    """Store drift figures in manifest.json."""
    update_manifest(bundle, lambda data: data.__setitem__("drift", report))


def update_manifest(bundle: Path, change) -> None:
    """Apply `change` to the manifest's JSON, written beside it, then renamed over it."""
    path = Path(bundle) / MANIFEST
    data = json.loads(path.read_text())
    change(data)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    tmp.replace(path)
