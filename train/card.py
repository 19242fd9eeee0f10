"""The model card (README.md) from the recipe's train_info.json and the report's scores."""

from __future__ import annotations

import json
from pathlib import Path

from train.tasks import LANGUAGE_QUESTION, TIMESTAMP_QUESTION
from train.texts import WIDE_VOCABULARY
from train.voices import EVAL_BASES, EVAL_VARIANTS, PITCH, SPEED, TRAIN_BASES, TRAIN_VARIANTS


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.2f} %"


def _time_line(info: dict) -> str:
    build, data, train, total = (info.get("data_build_seconds"), info["data_seconds"], info["train_seconds"],
                                 info["total_seconds"])
    where = f"on {info['machine']}, shared with another engineer's test and benchmark runs"
    if info.get("resumed_at"):  # train/resume.py: the last run's machine; earlier ones may have been others
        steps = ", ".join(str(r["step"]) for r in info["resumed_at"])
        where += (f" (the machine of the last run: training stopped and resumed from its snapshot at step {steps}, "
                  "which on the same machine and torch gives the weights of an uninterrupted run)")
    if build and data < 0.5 * build:  # features came from the cache
        return (f"{(total - data + build) / 60:.1f} min counting the feature build ({build / 60:.1f} min, made once "
                f"by an earlier run of the same command and config, read from the cache by this one) and training "
                f"{train / 60:.1f} min, {where}.")
    return f"{total / 60:.1f} min end to end (data synthesis and features {data / 60:.1f} min, training {train / 60:.1f} min) {where}."


def _targets(s: dict, info: dict) -> str:
    """The issue's targets against the F32 bundle's scores, said plainly."""
    checks = [("CER on the English transcription clips", s.get("cer_en"), 0.05, "≤ 5 %", True),
              ("language-identification accuracy", s.get("language_accuracy"), 0.95, "≥ 95 %", False),
              ("timestamp mean absolute error", s.get("timestamp_mae_s"), 0.3, "≤ 0.3 s", True)]
    lines = ["**Against the targets** (F32 bundle, shipped set):", ""]
    for name, value, target, words, lower in checks:
        if value is None:
            continue
        met = value <= target if lower else value >= target
        shown = f"{value:.3f} s" if "timestamp" in name else f"{100 * value:.1f} %"
        lines.append(f"* {name}: {shown} (target {words}) — {'met' if met else 'missed'}")
    lines += ["", f"This model saw {_step_count(info)} ({info['train_seconds'] / 60:.0f} min of training on two shared cores)."]
    return "\n".join(lines)


def _phases(info: dict, tr: dict) -> str:
    joint = (f"cross-entropy on the answer tokens and the closing `<|im_end|>`, plus {tr['ctc_weight']} × character "
             "CTC")
    if tr.get("guide_weight"):  # train/guide.py; recipes from before it have no such field
        joint += (f", plus {tr['guide_weight']} × guided attention: head 0 of decoder layers "
                  f"{', '.join(map(str, tr['guide_layers']))} is pulled toward the audio row where each answer token is "
                  f"spoken (a Gaussian of {tr['guide_width']} rows around it), found by forced-aligning the transcript "
                  "to the same step's CTC outputs; a timestamp token toward the time it names")
    if tr.get("time_weight"):  # train/timeprobe.py; recipes from before it have no such field
        joint += (f", plus {tr['time_weight']} × a time probe: a linear head on the input of decoder layer "
                  f"{tr['time_layer']} reads every audio row's time (whole seconds, tenths, hundredths of its "
                  "centre), so that the layers reading a row find when it is")
    joint += "."
    if not info.get("ctc_steps"):
        return joint[0].upper() + joint[1:]
    return (f"two phases. Acoustic ({info['ctc_steps']} steps): character CTC alone, through the conv stem, encoder "
            f"and adapter (no decoder: a third of a joint step's time). Joint ({info['steps']} steps): {joint}")


def _tasks(info: dict) -> str:
    """The task mix (transcribe, language, timestamps) the recipe drew from; recipes from before it
    was a recipe field used the old default, which the card then names only in words."""
    mix = info["recipe"].get("tasks")
    if not mix:
        return "single sentences transcription/language, multi-sentence clips mostly timestamps"
    return (f"transcribe/language/timestamps {_percent(mix['single_en'])} % for English single sentences, "
            f"{_percent(mix['single_other'])} % for other languages, {_percent(mix['multi'])} % for multi-sentence clips")


def _word_clips(data: dict) -> str:
    """The one-to-three-word and wide-vocabulary clips, where the recipe had them (older train_info
    files lack their counts)."""
    kinds = [("clips of one to three common words", "", data.get("words") or {}),
             ("clips of two to seven words", f"half from wordfreq's top {WIDE_VOCABULARY:,} past the common ones; ",
              data.get("wide") or {})]
    parts = []
    for what, detail, counts in kinds:
        shown = ", ".join(f"{n} {lang}" for lang, n in counts.items() if n)
        if shown:
            parts.append(f", {what} ({detail}{shown})")
    return "".join(parts) + ("," if parts else "")


def _percent(mix: list[float]) -> str:
    return "/".join(str(round(100 * p)) for p in mix)


def _precision(info: dict) -> str:
    if info.get("precision") == "bf16":
        return "; matmuls and convolutions in BF16 under `torch.autocast` (weights, optimizer state and losses FP32)"
    return "; FP32 throughout"


def _specaug(train: dict) -> str:
    share = train.get("specaug", 0.8)  # runs before the setting existed masked 0.8 of the clips
    return f"SpecAugment masks on {share:.0%} of the clips' features during training" if share else "no SpecAugment"


def _ctc_line(info: dict) -> str:
    ctc = info.get("ctc_cer")
    if not ctc:
        return ""
    return (f"\n  The training-only CTC head's greedy CER on the held-out set: English {ctc['en']} %, all "
            f"{ctc['all']} % (beside the decoder's scores below, it says whether the encoder or the decoder limits).")


def _step_count(info: dict) -> str:
    if info.get("ctc_steps"):
        return f"{info['ctc_steps']} + {info['steps']} steps"
    return f"{info['steps']} steps"


def score_table(rows: list[dict]) -> str:
    head = ("| encoder | decoder | CER en | WER en | CER all | language acc. | timestamp MAE | segments right "
            "| timestamp text CER | time |\n|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for s in rows:
        mae = s.get("timestamp_mae_s")
        lines.append(f"| {s['encoder']} | {s['decoder']} | {_pct(s.get('cer_en'))} | {_pct(s.get('wer_en'))} | "
                     f"{_pct(s.get('cer_all'))} | {_pct(s.get('language_accuracy'))} | "
                     f"{'–' if mae is None else f'{mae:.3f} s'} | {_pct(s.get('timestamp_segment_count_accuracy'))} | "
                     f"{_pct(s.get('timestamp_text_cer'))} | {s['seconds']:.0f} s |")
    return "\n".join(lines)


def render(model: Path, report: dict, notes: dict) -> str:
    info = json.loads((model / "train_info.json").read_text())
    cfg = json.loads((model / "config.json").read_text())
    rec = info["recipe"]
    a, t = cfg["audio_config"], cfg["language_config"]
    size = (model / "model.safetensors").stat().st_size
    eval_lines = (model / "eval" / "eval.jsonl").read_text().splitlines()
    demo = report["demo"]
    tr = rec["train"]
    sets = report["scores"]
    second = sets.get("second")
    return f"""---
license: apache-2.0
language: [en, de, fr, es, it]
tags: [moss-audio, speech-recognition, tiny, espeak-ng]
---

# moss-audio-tiny

A {info['parameters'] / 1e6:.2f} M-parameter model with exactly MOSS-Audio's architecture and checkpoint
layout (conv stem, Whisper encoder layers, DeepStack taps through their mergers into the first
LLM layers, GatedMLP adapter, Qwen3 decoder with q/k norm and GQA, untied `lm_head`, time
markers on), trained from scratch on espeak-ng speech so that the demo, the drift gates and the
device check have a model whose answers can be right or wrong. It is a test instrument, not a
speech recognizer for real voices: it has only ever heard espeak-ng.

Weights: `model.safetensors`, {size / 1e6:.2f} MB, **bfloat16** (float32 while training, rounded once
when written). Tokenizer: byte-level BPE in Qwen2 format trained on the training text
({cfg['language_config']['vocab_size']} embedding rows: {rec['bpe_size']} BPE entries asked for, then Qwen's added tokens and
`<|audio_bos|>`/`<|audio_eos|>`).

| part | setting |
|---|---|
| encoder | d_model {a['d_model']}, {a['encoder_layers']} layers, {a['encoder_attention_heads']} heads, FFN {a['encoder_ffn_dim']}, conv stem {a['downsample_hidden_size']} channels |
| DeepStack | taps after encoder layers {a['deepstack_encoder_layer_indexes']} → LLM layers 0..{len(a['deepstack_encoder_layer_indexes']) - 1} |
| adapter / mergers | GatedMLP {a['output_dim']} → {cfg['adapter_hidden_size']} → {t['hidden_size']} |
| decoder | Qwen3, hidden {t['hidden_size']}, {t['num_hidden_layers']} layers, {t['num_attention_heads']} heads / {t['num_key_value_heads']} KV heads, head_dim {t['head_dim']}, MLP {t['intermediate_size']} |

## Tasks and prompts

Upstream's prompt (`runtime.prompt.build_prompt`: system "You are a helpful assistant.", the
audio span with time markers, then the question); greedy decoding (`generation_config.json`).

* `Transcribe the audio.` → the sentence(s) as written (casing, punctuation, digits for numbers and times).
* `{LANGUAGE_QUESTION}` → `English`, `German`, `French`, `Spanish` or `Italian`.
* `{TIMESTAMP_QUESTION}` →
  `[0.12]first sentence[1.85][2.40]second sentence[4.02]` (speech onset and offset of each sentence, two decimals).

## Training

* **Data**: {info['clips']} clips, {info['hours']:.1f} h at 16 kHz, synthesized with espeak-ng by the recipe:
  single sentences (English {rec['data']['single']['en']}, and {rec['data']['single']['de']} each in German, French,
  Spanish, Italian){_word_clips(rec['data'])} and clips of {rec['data']['sentences_per_multi'][0]}–{rec['data']['sentences_per_multi'][1]} sentences joined with
  0.3–1.0 s pauses (English {rec['data']['multi']['en']}, {rec['data']['multi']['de']} per other language) whose sentence
  boundaries are the energy-trimmed speech onsets and offsets. Texts: English templates (people, objects, places,
  times), numbers, dates and clock times, and sequences of common words from `wordfreq`; short German, French,
  Spanish and Italian template sentences and common-word sequences. One sentence in eight (by a hash of its
  normalized text) is reserved for evaluation and never trained on; the demo sentence is excluded.
* **Voices**: bases {', '.join(sorted({b for v in TRAIN_BASES.values() for b in v}))}; variants
  {', '.join(v or '(none)' for v in TRAIN_VARIANTS)}; speed {SPEED[0]}–{SPEED[1]} wpm, pitch {PITCH[0]}–{PITCH[1]}.
  Augmentation: gain, white or low-passed noise (SNR 12–40 dB, p 0.6), synthetic room reverb (p 0.3);
  {_specaug(tr)}.
* **Features**: `runtime.mel.log_mel`, rounded to bfloat16 as upstream's processor does, computed once and cached.
* **Objective**: {_phases(info, tr)} Character CTC sits on the
  adapter output ({tr['ctc_upsample']} outputs per audio token from a linear head used in training only, not in the checkpoint;
  variance-preserving init of the conv stem). Tasks per clip: {_tasks(info)}; the first {int(100 * tr['curriculum'])} % of joint steps see
  single sentences only.
* **Optimization**: AdamW (lr {tr['lr']}, betas {tr['betas']}, weight decay {tr['weight_decay']}), {tr['warmup']} warm-up steps
  per phase, then {'constant lr in the acoustic phase and ' if info.get('ctc_steps') else ''}cosine decay to {tr['min_lr_ratio']} × lr, gradient clip {tr['clip_norm']}{_precision(info)}; length-bucketed batches of up to
  {tr['budget_frames'] / 100:.0f} s of padded audio ({tr['max_batch']} clips at most); **{_step_count(info)}**, seed {info['seed']}.
* **Time**: {_time_line(info)}
  Final training losses: CE {info['history'][-1]['ce']}, CTC {info['history'][-1]['ctc']}.{_ctc_line(info)}

## Scores

Measured through the exported bundle (`export_bundle(..., ExportOptions(encoder=("fp32","fp16","int8"),
decoder=("f32","f16","q8_0","q4_k_m")))`), `runtime.pipeline.Pipeline` on CPU, greedy, KV cache f32,
flash attention off. CER/WER: corpus-level after lower-casing, replacing punctuation with spaces and
collapsing spaces. Timestamp MAE: predicted `[a]text[b]` segments paired with the true ones in order;
a missing or extra segment counts each of its two boundaries as an error of the clip's duration
(`train/score.py`).

**Shipped evaluation set** (`eval/`, {len(eval_lines)} clips: held-out texts, eval-only voice variants
{', '.join(EVAL_VARIANTS)} on bases {', '.join(sorted({b for v in EVAL_BASES.values() for b in v}))}, light noise/reverb):

{score_table(sets['shipped'])}
{'' if second is None else f'''
**Second set** (hand-written sentences, `train/sets/second_set.txt`, voices {notes.get('second_voices', '')}):

{score_table(second)}
'''}
{_targets(sets['shipped'][0], info)}

**F32 bundle vs PyTorch reference** (demo clip, greedy, {demo['tokens']} tokens): prompt ids
{'identical' if demo['prompt_ids_equal'] else 'DIFFERENT'}, tokens {'identical' if demo['tokens_equal'] else 'DIFFERENT'}.
The demo clip's sentence was never trained on; the model says: "{demo['bundle_text']}".

## Reproduce

```
apt-get install -y espeak-ng
pip install torch==2.13.0 && pip install -e ".[export,train,test]"
python -m train run --seed {info['seed']}                  # writes models/moss-audio-tiny (weights, tokenizer, eval/)
python -m train report --bundle bundles/moss-audio-tiny  # exports all variants, scores, rewrites this card
```
"""
