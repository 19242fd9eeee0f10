"""The tokenizer folder: a byte-level BPE trained on the training text (Qwen2 format, with
Qwen's chat and audio special tokens) plus the processor and generation configs that name
the special ids, as export/synth.py writes them for synthetic checkpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from export.synth import QWEN_ADDED, special_ids, write_tokenizer
from train.features import FRONT_END

TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json",
                   "processor_config.json", "generation_config.json")


def vocab_rows(base: int, multiple: int = 64) -> int:
    """Embedding rows: BPE + added tokens + audio_bos/eos, rounded up."""
    need = base + len(QWEN_ADDED) + 2
    return -(-need // multiple) * multiple


def make_tokenizer(folder: Path, corpus: Iterable[str], bpe_size: int) -> int:
    """Write every tokenizer-side file into `folder`; returns the embedding rows needed."""
    folder.mkdir(parents=True, exist_ok=True)
    texts = list(corpus)
    base = write_tokenizer(folder, 1 << 30, texts, bpe_size)
    rows = vocab_rows(base)
    ids = special_ids(base)
    (folder / "processor_config.json").write_text(json.dumps(dict(
        processor_class="MossAudioProcessor", audio_token_id=ids["<|AUDIO|>"],
        audio_start_id=ids["<|audio_bos|>"], audio_end_id=ids["<|audio_eos|>"], enable_time_marker=True,
        mel_config=dict(mel_dim=FRONT_END.n_mels, mel_sr=FRONT_END.sample_rate, mel_hop_length=FRONT_END.hop_length,
                        mel_n_fft=FRONT_END.n_fft)), indent=2))
    (folder / "generation_config.json").write_text(json.dumps(dict(
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]], pad_token_id=ids["<|endoftext|>"],
        do_sample=False, temperature=0.0, top_p=1.0, top_k=50, max_new_tokens=256), indent=2))
    return rows
