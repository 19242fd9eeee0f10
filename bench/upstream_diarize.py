"""Upstream's side of `python -m bench.upstream --family moss-transcribe-diarize`.

OpenMOSS/MOSS-Transcribe-Diarize (transformers >= 5.6, so this interpreter's): its
MossTranscribeDiarizeForConditionalGeneration.from_pretrained and its processor built from the
checkpoint's WhisperFeatureExtractor, tokenizer, chat template and processor_config.json, the
conversation as its inference_utils.build_transcription_messages makes it (the audio, then the
question), the prompt as its prepare_inputs renders and processes it, forward for the last-position
logits and generate (greedy, as generate_transcription asks) for the answer. A hook reads the VQ
adaptor's output: the rows that replace the audio placeholders.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def diarize_side(spec: dict, variant: str) -> int:
    import torch
    import transformers
    from transformers import AutoTokenizer, WhisperFeatureExtractor

    from bench.upstream import import_upstream

    src = Path(spec["src"])
    modeling, processing = import_upstream(src, spec["model_type"], package=src.name)
    ckpt = Path(spec["checkpoint"])
    model, info = getattr(modeling, spec["architecture"]).from_pretrained(str(ckpt), dtype=torch.float32,
                                                                          output_loading_info=True)
    bad = {k: v for k, v in info.items() if v}
    if bad:
        raise RuntimeError(f"upstream's model did not take the checkpoint's weights by name: {bad}")
    model.eval()
    settings = {k: v for k, v in json.loads((ckpt / "processor_config.json").read_text()).items()
                if k != "processor_class"}
    processor = processing.MossTranscribeDiarizeProcessor(
        feature_extractor=WhisperFeatureExtractor.from_pretrained(str(ckpt)),
        tokenizer=AutoTokenizer.from_pretrained(str(ckpt)),
        chat_template=(ckpt / "chat_template.jinja").read_text(), **settings)
    clips = np.load(spec["clips"])
    out: dict[str, np.ndarray] = {}
    for s in spec["seconds"]:
        messages = [{"role": "user", "content": [{"type": "audio", "audio": "clip"},
                                                 {"type": "text", "text": spec["question"].strip()}]}]
        text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        inputs = processor(text=text, audio=[clips[str(s)]], return_tensors="pt")
        out[f"{s}/ids"] = inputs["input_ids"][0].numpy()
        out[f"{s}/mel"] = inputs["input_features"].numpy()
        rows: list = []
        hook = model.model.vq_adaptor.register_forward_hook(lambda _m, _i, o: rows.append(o))
        with torch.no_grad():
            logits = model(**inputs).logits[0, -1]
        hook.remove()
        config = model.generation_config
        config.max_new_tokens, config.do_sample = spec["tokens"], False
        with torch.inference_mode():
            gen = model.generate(**inputs, generation_config=config)
        out[f"{variant}/{s}/logits"] = logits.numpy()
        out[f"{variant}/{s}/rows"] = torch.cat([r[0] for r in rows]).numpy()
        out[f"{variant}/{s}/greedy"] = gen[0, inputs["input_ids"].shape[1]:].numpy()
    meta = dict(upstream=dict(transformers=transformers.__version__, torch=torch.__version__, python=sys.executable,
                              chunked=True, encoder="Whisper per 30 s window, zero-padded before the feature extractor",
                              model_class=spec["architecture"]),
                variants=[variant], errors={})
    np.savez(spec["out"], meta=np.asarray(json.dumps(meta)), **out)
    return 0
