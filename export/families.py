"""The model families this exporter reads, told apart by config.json's model_type.

MOSS-Music is MOSS-Audio's architecture under its own name (OpenMOSS/MOSS-Music, src/: the
same encoder, adapter, DeepStack mergers, processor and prompt; only its class names and the
question its app asks by default differ), so it takes the same path through export and
runtime. MOSS-Transcribe-Diarize (Whisper encoder per 30 s window, merged rows at the input
only, a stock Qwen3 with tied head) has its own (export/diarize/). Any other model_type is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from runtime.errors import CheckpointError
from runtime.manifest import FAMILIES


@dataclass(frozen=True)
class Family:
    name: str  # the manifest's model.family
    model_type: str  # config.json
    architecture: str  # upstream's model class, written into synthetic checkpoints
    default_question: str  # what upstream asks when the user gives no question
    # the audio placeholder and the span's start and end tokens, by name
    audio_tokens: tuple[str, str, str] = ("<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>")


MOSS_AUDIO = Family("moss-audio", "moss_audio", "MossAudioModel", "Transcribe the audio.")
# OpenMOSS/MOSS-Music app.py's DEFAULT_QUESTION: describe the style and tempo, key and harmony,
# instrumentation, structure and overall mood of the music.
MOSS_MUSIC = Family("moss-music", "moss_music", "MossMusicModel",
                    "请从风格与速度、调性与和声、乐器编配、结构安排以及整体情绪几个方面描述这段音乐。")
# OpenMOSS/MOSS-Transcribe-Diarize inference_utils.py DEFAULT_PROMPT: transcribe, each segment opening
# with its start time and speaker label ([S01], [S02], ...) and closing with its end time.
MOSS_TRANSCRIBE_DIARIZE = Family(
    "moss-transcribe-diarize", "moss_transcribe_diarize", "MossTranscribeDiarizeForConditionalGeneration",
    "请将音频转写为文本，每一段需以起始时间戳和说话人编号（[S01]、[S02]、[S03]…）开头，正文为对应的语音内容，"
    "并在段末标注结束时间戳，以清晰标明该段语音范围。",
    ("<|audio_pad|>", "<|audio_start|>", "<|audio_end|>"))
BY_TYPE = {f.model_type: f for f in (MOSS_AUDIO, MOSS_MUSIC, MOSS_TRANSCRIBE_DIARIZE)}
BY_NAME = {f.name: f for f in BY_TYPE.values()}
assert tuple(BY_NAME) == FAMILIES, "the runtime reads exactly the families the exporter writes"


def family_of(raw: Mapping[str, Any]) -> Family:
    """The family config.json declares, or an error naming the families this exporter supports."""
    model_type = raw.get("model_type")
    if model_type in BY_TYPE:
        return BY_TYPE[model_type]
    supported = ", ".join(f"{f.name} (model_type {f.model_type!r})" for f in BY_TYPE.values())
    what = f"model_type {model_type!r}" if model_type is not None else "no model_type"
    raise CheckpointError(f"config.json has {what}: not a model family this exporter knows; it supports {supported}")
