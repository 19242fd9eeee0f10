"""A MOSS-Audio checkpoint: a local HF folder or a hub id, validated before anything uses it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from export import processor
from export.config import ModelConfig
from export.diarize import processor as diarize_processor
from export.diarize.config import DiarizeConfig
from export.families import MOSS_TRANSCRIBE_DIARIZE, family_of
from export.tokens import encode, read_token_ids, special_texts
from runtime.errors import CheckpointError
from runtime.manifest import AudioInfo, GenerationDefaults, PromptInfo, TokenIds
from runtime.prompt import MarkerRule


@dataclass
class Checkpoint:
    """Lazy access to the weights (one tensor at a time) plus the parsed config and token ids."""

    folder: Path
    config: ModelConfig
    weight_files: dict[str, Path]  # tensor name -> file
    source: str = ""  # as the user named it: a folder or a hub id

    @classmethod
    def open(cls, source: str | Path, *, revision: str | None = None) -> "Checkpoint":
        folder = _resolve(source, revision)
        config_path = folder / "config.json"
        if not config_path.is_file():
            raise CheckpointError(f"{folder} has no config.json; point at a MOSS-Audio checkpoint folder")
        try:
            raw = json.loads(config_path.read_text())
        except json.JSONDecodeError as e:
            raise CheckpointError(f"{config_path} is not valid JSON: {e}") from e
        ckpt = cls(folder=folder, config=read_config(raw), weight_files=_index_weights(folder),
                   source=str(source))
        ckpt.validate()
        return ckpt

    def validate(self) -> None:
        """Every expected tensor present with its shape, nothing unexpected; all problems at once."""
        expected = self.config.expected_tensors()
        shapes = self._stored_shapes()
        missing = sorted(set(expected) - set(shapes))
        extra = sorted(set(shapes) - set(expected))
        wrong = sorted(n for n in set(expected) & set(shapes) if tuple(shapes[n]) != expected[n])
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing tensor(s): {_listing(missing)}")
        if wrong:
            problems.append("misshapen tensor(s): " + _listing(
                [f"{n} is {tuple(shapes[n])}, config says {expected[n]}" for n in wrong]))
        if extra:
            problems.append(f"{len(extra)} tensor(s) this config does not define: {_listing(extra)}")
        if problems:
            raise CheckpointError(f"checkpoint {self.folder} does not match its config.json: " + "; ".join(problems))

    def _stored_shapes(self) -> dict[str, list[int]]:
        from safetensors import safe_open

        shapes: dict[str, list[int]] = {}
        for file in sorted(set(self.weight_files.values())):
            with safe_open(str(file), framework="pt") as f:
                for name in f.keys():
                    shapes[name] = f.get_slice(name).get_shape()
        return shapes

    def tensor(self, name: str) -> Any:
        """One weight as a torch tensor in its stored dtype."""
        from safetensors import safe_open

        if name not in self.weight_files:
            raise CheckpointError(f"checkpoint has no tensor {name}")
        with safe_open(str(self.weight_files[name]), framework="pt") as f:
            return f.get_tensor(name)

    @cached_property
    def tokenizer(self) -> Any:
        """The checkpoint's own tokenizer (tokenizers.Tokenizer from tokenizer.json)."""
        from tokenizers import Tokenizer

        path = self.folder / "tokenizer.json"
        if not path.is_file():
            raise CheckpointError(f"{self.folder} has no tokenizer.json; the prompt cannot be tokenized")
        return Tokenizer.from_file(str(path))

    @cached_property
    def token_ids(self) -> TokenIds:
        return read_token_ids(self.folder, self.tokenizer, self.config.family.audio_tokens)

    @cached_property
    def audio_info(self) -> AudioInfo:
        if isinstance(self.config, DiarizeConfig):
            return diarize_processor.audio_info(self.folder, self.config)
        return processor.audio_info(self.folder, self.config)

    @cached_property
    def prompt_info(self) -> PromptInfo:
        if isinstance(self.config, DiarizeConfig):
            return diarize_processor.prompt_info(self.folder, self.config, special_texts(self.tokenizer))
        return processor.prompt_info(self.folder, special_texts(self.tokenizer),
                                     processor.is_thinking(self.folder, self.source), self.config.family)

    @cached_property
    def generation(self) -> GenerationDefaults:
        return processor.generation_defaults(self.folder)

    @property
    def markers(self) -> MarkerRule | None:
        return MarkerRule.of(self.prompt_info, self.audio_info)

    def tokenize(self, text: str, special: bool = True) -> list[int]:
        return encode(self.tokenizer, text, special)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)


def read_config(raw: dict) -> ModelConfig | DiarizeConfig:
    """config.json parsed by its family's rules (family_of refuses the families we do not know)."""
    if family_of(raw) is MOSS_TRANSCRIBE_DIARIZE:
        return DiarizeConfig.from_dict(raw)
    return ModelConfig.from_dict(raw)


def _resolve(source: str | Path, revision: str | None) -> Path:
    path = Path(source).expanduser()
    if path.exists():
        if not path.is_dir():
            raise CheckpointError(f"{path} is a file; give the checkpoint folder")
        return path.resolve()
    text = str(source)
    if text.count("/") != 1 or text.startswith((".", "/", "~")):
        raise CheckpointError(f"{source} is neither a local folder nor a hub id like OpenMOSS-Team/MOSS-Audio-4B-Instruct")
    try:
        from huggingface_hub import snapshot_download
    except ImportError as e:
        raise CheckpointError("downloading from the hub needs huggingface_hub: pip install '.[export]'") from e
    try:
        return Path(snapshot_download(text, revision=revision, allow_patterns=[
            "*.json", "*.safetensors", "*.txt", "*.model", "*.jinja"]))
    except Exception as e:  # network, auth, missing repo: all end the same way for the user
        raise CheckpointError(f"could not download {text} from the hub: {e}") from e


def _index_weights(folder: Path) -> dict[str, Path]:
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text()).get("weight_map", {})
        missing_files = sorted({f for f in weight_map.values() if not (folder / f).is_file()})
        if missing_files:
            raise CheckpointError(f"{index.name} names shard(s) that are not there: {_listing(missing_files)}")
        return {name: folder / f for name, f in weight_map.items()}
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise CheckpointError(f"{folder} holds no *.safetensors weights")
    from safetensors import safe_open

    out: dict[str, Path] = {}
    for file in files:
        try:
            with safe_open(str(file), framework="pt") as f:
                out.update({name: file for name in f.keys()})
        except Exception as e:  # safetensors raises several types for a corrupt header
            raise CheckpointError(f"{file.name} is not a readable safetensors file: {e}") from e
    return out


def _listing(items: list[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
