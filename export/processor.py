"""What a checkpoint's processor defines, as the manifest records it: the audio front end and
chunking, the prompt template and time markers, the generation defaults.

MOSS-Audio's processor (and MOSS-Music's, its copy) hard-codes its chat template and system text; the mel settings and the
time-marker switch come from processor_config.json, the sampling defaults from
generation_config.json. Read here once, written into the manifest, never assumed by the runtime.
"""

from __future__ import annotations

import json
from pathlib import Path

from export.config import ModelConfig
from export.families import MOSS_AUDIO, Family
from runtime.chunks import stem_out_len
from runtime.errors import CheckpointError
from runtime.manifest import AudioInfo, GenerationDefaults, PromptInfo
from runtime.sampling import GenerationOptions

# Upstream's default conversation (processing_moss_audio.py): the audio, then the question.
TEMPLATE = ("<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{audio}\n{question}<|im_end|>\n"
            "<|im_start|>assistant\n")
SYSTEM = "You are a helpful assistant."
TRANSCRIBE_QUESTION = MOSS_AUDIO.default_question
MARKER_EVERY_SECONDS = 2  # upstream's time_marker_every_seconds
LOG_RANGE = 8.0  # Whisper's floor: the clip's maximum minus 8 (log10)


def read_json(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path.name} is not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise CheckpointError(f"{path.name} must hold a JSON object")
    return data


def audio_info(folder: Path, config: ModelConfig) -> AudioInfo:
    mel = read_json(folder / "processor_config.json").get("mel_config", {})
    n_mels = int(mel.get("mel_dim", config.audio.num_mel_bins))
    if n_mels != config.audio.num_mel_bins:
        raise CheckpointError(f"processor_config.json mel_dim {n_mels} differs from config.json num_mel_bins "
                              f"{config.audio.num_mel_bins}")
    chunk = config.audio.chunk_frames
    return AudioInfo(sample_rate=int(mel.get("mel_sr", 16000)), n_fft=int(mel.get("mel_n_fft", 400)),
                     hop_length=int(mel.get("mel_hop_length", 160)), n_mels=n_mels, log_range=LOG_RANGE,
                     mel_dtype="bfloat16", chunk_frames=chunk, chunk_tokens=stem_out_len(chunk))


def prompt_info(folder: Path, special_texts: list[str], thinking: bool, family: Family = MOSS_AUDIO) -> PromptInfo:
    processor = read_json(folder / "processor_config.json")
    used = tuple(sorted(t for t in special_texts if t in TEMPLATE))
    return PromptInfo(template=TEMPLATE, system=SYSTEM, default_question=family.default_question, special_texts=used,
                      time_markers=bool(processor.get("enable_time_marker", True)),
                      marker_every_seconds=int(processor.get("time_marker_every_seconds", MARKER_EVERY_SECONDS)),
                      thinking=thinking)


def generation_defaults(folder: Path) -> GenerationDefaults:
    """Upstream's sampling settings from generation_config.json, else GenerationOptions' own."""
    shipped = read_json(folder / "generation_config.json")
    d = GenerationOptions()
    return GenerationDefaults(
        max_new_tokens=int(shipped.get("max_new_tokens", d.max_new_tokens)),
        temperature=float(shipped.get("temperature", d.temperature)), top_k=int(shipped.get("top_k", d.top_k)),
        top_p=float(shipped.get("top_p", d.top_p)),
        repetition_penalty=float(shipped.get("repetition_penalty", d.repetition_penalty)),
        do_sample=bool(shipped.get("do_sample", d.do_sample)))


def is_thinking(folder: Path, source: str) -> bool:
    """Upstream names its thinking variants so (MOSS-Audio-4B-Thinking); nothing in their files differs."""
    return "thinking" in f"{source} {folder.name}".lower()
