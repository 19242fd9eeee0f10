"""Token ids read from a checkpoint's own files, never assumed for an unknown tokenizer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from export.processor import read_json
from runtime.errors import CheckpointError
from runtime.manifest import TokenIds

# MOSS-Audio's hub tokenizer lacks its audio tokens (the family's names, export/families.py), so
# their ids come from processor_config.json (audio_token_id / audio_start_id / audio_end_id).
IM_START, IM_END, END_OF_TEXT = "<|im_start|>", "<|im_end|>", "<|endoftext|>"
THINK_START, THINK_END = "<think>", "</think>"


def read_token_ids(folder: Path, tokenizer: Any, audio_tokens: tuple[str, str, str]) -> TokenIds:
    """Collect every id the prompt and the stop rule need.

    `tokenizer` is a `tokenizers.Tokenizer` loaded from the checkpoint's tokenizer.json;
    `audio_tokens` the family's placeholder, span start and span end names.
    """
    processor = read_json(folder / "processor_config.json")
    generation = read_json(folder / "generation_config.json")
    by_name = tokenizer.get_vocab(with_added_tokens=True)

    def named(name: str, key: str | None = None) -> int:
        if key and key in processor:
            return int(processor[key])
        if name in by_name:
            return int(by_name[name])
        where = f"processor_config.json '{key}' or " if key else ""
        raise CheckpointError(f"the checkpoint defines no id for {name}: add {where}the token to tokenizer.json")

    digits = []
    for d in "0123456789":
        ids = tokenizer.encode(d, add_special_tokens=False).ids
        if len(ids) != 1:
            raise CheckpointError(f"digit {d!r} is not one token ({ids}); time markers need single-digit tokens")
        digits.append(ids[0])

    eos = generation.get("eos_token_id", [])
    eos_ids = [eos] if isinstance(eos, int) else list(eos)
    for name in (IM_END, END_OF_TEXT):
        if name in by_name and by_name[name] not in eos_ids:
            eos_ids.append(by_name[name])
    if not eos_ids:
        raise CheckpointError("no EOS id: generation_config.json has no eos_token_id and the tokenizer no <|im_end|>")

    audio, start, end = audio_tokens
    return TokenIds(
        audio=named(audio, "audio_token_id"),
        audio_start=named(start, "audio_start_id"),
        audio_end=named(end, "audio_end_id"),
        eos=tuple(int(e) for e in eos_ids),
        digits=tuple(digits),
        think_start=by_name.get(THINK_START),
        think_end=by_name.get(THINK_END),
    )


def encode(tokenizer: Any, text: str, special: bool = True) -> list[int]:
    """Upstream's tokenizer.encode(text, add_special_tokens=False); without `special`, control
    tokens written in the text stay text (a user's words)."""
    return _encoding(tokenizer, text, special).ids


def token_spans(tokenizer: Any, text: str) -> list[tuple[int, int]]:
    """The character span of each token encode(tokenizer, text, False) gives."""
    return _encoding(tokenizer, text, False).offsets


def _encoding(tokenizer: Any, text: str, special: bool) -> Any:
    tokenizer.encode_special_tokens = not special
    try:
        return tokenizer.encode(text, add_special_tokens=False)
    finally:
        tokenizer.encode_special_tokens = False


def special_texts(tokenizer: Any) -> list[str]:
    """The text of every control token (added tokens marked special)."""
    return [t.content for t in tokenizer.get_added_tokens_decoder().values() if t.special]
