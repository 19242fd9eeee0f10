"""What MOSS-Transcribe-Diarize's processor defines, as the manifest records it.

The front end is transformers' WhisperFeatureExtractor (preprocessor_config.json): 30 s windows,
each zero-padded before its log-mel, float32. The prompt is the checkpoint's own chat template,
rendered once here with an audio item and a text item as upstream's inference_utils builds the
conversation; the audio item's `<|audio_start|><|audio_pad|><|audio_end|>` becomes the {audio}
slot. Time markers follow processor_config.json (time_marker_every_seconds; 5 in the release).
"""

from __future__ import annotations

from pathlib import Path

from export.diarize.config import DiarizeConfig
from export.processor import LOG_RANGE, read_json
from runtime.errors import CheckpointError
from runtime.manifest import AudioInfo, PromptInfo

QUESTION_SLOT = "\x00question\x00"  # stands for the question while the template renders
MARKER_EVERY_SECONDS = 2  # upstream processor's default when processor_config.json does not say


def audio_info(folder: Path, config: DiarizeConfig) -> AudioInfo:
    fe = read_json(folder / "preprocessor_config.json")
    if not fe:
        raise CheckpointError(f"{folder} has no preprocessor_config.json: the Whisper front end is undefined")
    n_mels, hop = int(fe.get("feature_size", 80)), int(fe.get("hop_length", 160))
    frames = config.audio.window_frames
    problems = []
    if n_mels != config.audio.num_mel_bins:
        problems.append(f"feature_size {n_mels} differs from config.json num_mel_bins {config.audio.num_mel_bins}")
    if int(fe.get("nb_max_frames", frames)) != frames or int(fe.get("n_samples", frames * hop)) != frames * hop:
        problems.append(f"its window ({fe.get('n_samples')} samples, {fe.get('nb_max_frames')} frames) is not the "
                        f"{frames} frames the encoder takes")
    processor = read_json(folder / "processor_config.json")
    merge = int(processor.get("audio_merge_size", config.audio_merge_size))
    if merge != config.audio_merge_size:
        problems.append(f"processor_config.json audio_merge_size {merge} differs from config.json's")
    if problems:
        raise CheckpointError("preprocessor_config.json: " + "; ".join(problems))
    info = AudioInfo(sample_rate=int(fe.get("sampling_rate", 16000)), n_fft=int(fe.get("n_fft", 400)),
                     hop_length=hop, n_mels=n_mels, log_range=LOG_RANGE, mel_dtype="float32", chunk_frames=frames,
                     chunk_tokens=config.window_tokens, window_samples=frames * hop)
    stated = float(processor.get("audio_tokens_per_second", info.tokens_per_second))
    if stated != info.tokens_per_second:
        raise CheckpointError(f"processor_config.json audio_tokens_per_second {stated} is not the "
                              f"{info.tokens_per_second} rows per second the encoder gives")
    return info


def chat_template(folder: Path) -> str:
    path = folder / "chat_template.jinja"
    if path.is_file():
        return path.read_text()
    for name in ("chat_template.json", "tokenizer_config.json", "processor_config.json"):
        template = read_json(folder / name).get("chat_template")
        if isinstance(template, str):
            return template
    raise CheckpointError(f"{folder} has no chat template (chat_template.jinja, or chat_template in "
                          "tokenizer_config.json): the prompt is undefined")


def _raise(message: str):
    raise CheckpointError(f"the chat template refuses the conversation: {message}")


def prompt_info(folder: Path, config: DiarizeConfig, special_texts: list[str]) -> PromptInfo:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    audio, start, end = config.family.audio_tokens
    messages = [{"role": "user", "content": [{"type": "audio", "audio": "clip"},
                                             {"type": "text", "text": QUESTION_SLOT}]}]
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,  # as transformers renders templates
                                        extensions=["jinja2.ext.loopcontrols"])
    env.globals["raise_exception"] = _raise
    try:
        text = env.from_string(chat_template(folder)).render(messages=messages, add_generation_prompt=True)
    except Exception as e:  # jinja2's TemplateError and whatever the template itself raises
        raise CheckpointError(f"the chat template does not render a conversation with audio: {e}") from None
    span = start + audio + end
    if text.count(span) != 1 or text.count(QUESTION_SLOT) != 1:
        raise CheckpointError(f"the chat template renders an audio item as something other than {span!r} once, "
                              "before the question; this exporter cannot place the audio")
    template = text.replace(span, "{audio}").replace(QUESTION_SLOT, "{question}")
    processor = read_json(folder / "processor_config.json")
    return PromptInfo(template=template, system="", default_question=config.family.default_question,
                      special_texts=tuple(sorted(t for t in special_texts if t in template)),
                      time_markers=bool(processor.get("enable_time_marker", True)),
                      marker_every_seconds=int(processor.get("time_marker_every_seconds", MARKER_EVERY_SECONDS)))
