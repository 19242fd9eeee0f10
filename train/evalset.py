"""Evaluation sets: FLAC clips plus eval.jsonl, from held-out texts and unseen voice
combinations (the shipped set), or from anyone's own sentences and voices."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from export.atomic import atomic_dir
from train.augment import AugmentConfig, augment
from train.speech import SAMPLE_RATE, require_espeak, synthesize
from train.tasks import QUESTIONS, Segment, answer, compose
from train.texts import LANGUAGES, Sentence, normalize, sentences
from train.voices import Voice, random_voice

EVAL_AUGMENT = AugmentConfig(noise_prob=0.3, snr_db=(20.0, 40.0), reverb_prob=0.2, rt60_s=(0.1, 0.3))


@dataclass(frozen=True)
class EvalSetConfig:
    seed: int = 1234
    transcribe: dict = None  # per language; default below
    language: int = 5  # clips per language
    timestamps: dict = None
    augment: AugmentConfig = EVAL_AUGMENT

    def counts(self) -> tuple[dict, dict]:
        return (self.transcribe or {"en": 48, "de": 3, "fr": 3, "es": 3, "it": 3},
                self.timestamps or {"en": 17, "de": 2, "fr": 2, "es": 2, "it": 2})


@dataclass(frozen=True)
class EvalItem:
    id: str
    task: str
    lang: str
    texts: tuple[str, ...]
    voice: Voice
    seed: int


def heldout_items(cfg: EvalSetConfig) -> list[EvalItem]:
    """Texts from the held-out side of the split, each clip an eval-only voice variant."""
    transcribe, stamps = cfg.counts()
    r = random.Random(cfg.seed)
    items: list[EvalItem] = []
    for lang in LANGUAGES:
        n_multi = stamps.get(lang, 0)
        sizes = [r.randint(2, 4) for _ in range(n_multi)]
        pool = sentences(cfg.seed, lang, transcribe.get(lang, 0) + cfg.language, heldout=True)
        shorts = sentences(cfg.seed, lang, sum(sizes), heldout=True, short=True,
                           exclude={normalize(s.text) for s in pool})
        for k, s in enumerate(pool):
            task = "transcribe" if k < transcribe.get(lang, 0) else "language"
            items.append(EvalItem(f"{task}-{lang}-{k:03d}", task, lang, (s.text,),
                                  random_voice(r, lang, heldout=True), r.randrange(1 << 30)))
        at = 0
        for k, n in enumerate(sizes):
            items.append(EvalItem(f"timestamps-{lang}-{k:03d}", "timestamps", lang,
                                  tuple(s.text for s in shorts[at : at + n]), random_voice(r, lang, heldout=True),
                                  r.randrange(1 << 30)))
            at += n
    return items


def custom_items(lines: list[Sentence], voices: list[Voice], seed: int = 0, timestamp_group: int = 3) -> list[EvalItem]:
    """Each sentence as a transcription clip and a language clip; consecutive sentences of one
    language in groups of `timestamp_group` as timestamp clips. Voices rotate per language."""
    r = random.Random(seed)
    by_lang: dict[str, list[Voice]] = {}
    for lang in dict.fromkeys(s.lang for s in lines):  # first-seen order: a set's would change with the hash seed
        by_lang[lang] = [v for v in voices if v.name.split("-")[0] == lang]
        if not by_lang[lang]:
            raise ValueError(f"no voice given for language {lang!r}: add one, e.g. --voices {lang}+m3:160:50")
    items: list[EvalItem] = []
    turn = {lang: 0 for lang in by_lang}

    def voice(lang: str) -> Voice:
        turn[lang] += 1
        return by_lang[lang][(turn[lang] - 1) % len(by_lang[lang])]

    for k, s in enumerate(lines):
        for task in ("transcribe", "language"):
            items.append(EvalItem(f"{task}-{s.lang}-{k:03d}", task, s.lang, (s.text,), voice(s.lang), r.randrange(1 << 30)))
    for lang in by_lang:
        group = [s.text for s in lines if s.lang == lang]
        for k in range(0, len(group) - 1, timestamp_group):
            texts = tuple(group[k : k + timestamp_group])
            if len(texts) >= 2:
                items.append(EvalItem(f"timestamps-{lang}-{k:03d}", "timestamps", lang, texts, voice(lang),
                                      r.randrange(1 << 30)))
    return items


def training_items(meta: list[dict], n: int) -> list[EvalItem]:
    """Transcription clips of `n` of the recipe's own single-sentence training clips, evenly spread
    over them (so every kind of text and language is in), each with the voice it was trained in:
    a model that does as badly on these as on held-out clips underfits rather than overfits."""
    singles = [k for k, m in enumerate(meta) if len(m["segments"]) == 1]
    if not 0 < n <= len(singles):
        raise ValueError(f"asked for {n} training clips; the data has {len(singles)} single-sentence ones")
    picks = np.linspace(0, len(singles) - 1, n).round().astype(int)
    return [EvalItem(f"transcribe-{meta[k]['lang']}-{k:05d}", "transcribe", meta[k]["lang"], (meta[k]["segments"][0]["text"],),
                     Voice(**meta[k]["voice"]), k)
            for k in (singles[i] for i in picks)]


def write_evalset(out: Path, items: list[EvalItem], aug: AugmentConfig | None = EVAL_AUGMENT) -> Path:
    """Synthesize every item to FLAC (16 kHz mono, 16 bit) and write eval.jsonl, atomically."""
    import soundfile as sf

    require_espeak()
    with atomic_dir(out) as tmp:
        (tmp / "audio").mkdir()
        lines = []
        for item in items:
            rng = np.random.default_rng(item.seed)
            samples, segments = compose([(t, synthesize(t, item.voice)) for t in item.texts], rng)
            if aug is not None:
                samples = augment(samples, rng, aug)
            rel = f"audio/{item.id}.flac"
            sf.write(str(tmp / rel), samples, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
            line = dict(id=item.id, audio=rel, task=item.task, question=QUESTIONS[item.task],
                        answer=answer(item.task, item.lang, segments), language=LANGUAGES[item.lang],
                        voice=item.voice.to_dict(), seconds=round(samples.size / SAMPLE_RATE, 3))
            if item.task == "timestamps":
                line["segments"] = [s.to_dict() for s in segments]
            lines.append(json.dumps(line, ensure_ascii=False))
        (tmp / "eval.jsonl").write_text("\n".join(lines) + "\n")
    return out


def build_heldout_evalset(out: Path, cfg: EvalSetConfig = EvalSetConfig()) -> Path:
    return write_evalset(out, heldout_items(cfg), cfg.augment)


def read_sentences(path: Path) -> list[Sentence]:
    """One sentence per line, optionally 'xx<TAB>text' with a language code (default en)."""
    out = []
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        lang, sep, text = raw.partition("\t")
        if not sep:
            lang, text = "en", raw
        if lang not in LANGUAGES:
            raise ValueError(f"{path}: language {lang!r} is not one of {', '.join(LANGUAGES)}")
        out.append(Sentence(lang, text.strip()))
    if not out:
        raise ValueError(f"{path} holds no sentences")
    return out


def read_evalset(folder: Path) -> list[dict]:
    path = Path(folder) / "eval.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: build a set with python -m train evalset")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


__all__ = ["EvalItem", "EvalSetConfig", "Segment", "build_heldout_evalset", "custom_items", "heldout_items",
           "read_evalset", "read_sentences", "training_items", "write_evalset"]
