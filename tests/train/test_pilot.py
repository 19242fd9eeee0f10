"""Pilots: greedy CTC decoding, the CER of CTC and decoder transcripts, recipe overrides, and a
pilot run end to end."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest
import torch

from tests.train.conftest import small_model, small_recipe


@pytest.mark.parametrize("pattern, per_token", [
    (("a", "blank", "b"), "ab"),  # the upsampled outputs are read in time order
    (("a", "a", "blank"), "a"),  # repeats collapse, a blank separates them
    (("b", "a", "a"), None),  # no blank: 'a' of one token and 'b' of the next stay apart, 'a a' merges
])
def test_ctc_text_reads_the_upsampled_outputs_in_order(pattern, per_token):
    alphabet = {"a": 0, "b": 1}
    model = small_model(len(alphabet)).eval()
    ids = {"a": 0, "b": 1, "blank": 2}
    with torch.no_grad():  # every token emits the same three outputs, whatever the audio
        model.ctc_head.weight.zero_()
        model.ctc_head.bias.fill_(-10.0)
        for k, name in enumerate(pattern):
            model.ctc_head.bias[k * 3 + ids[name]] = 10.0
    mel = torch.randn(128, 240)  # 30 audio tokens
    text = model.ctc_text(mel, alphabet)
    assert text == (per_token * 30 if per_token else "ba" * 30)


def test_greedy_scores_every_task_as_train_score_does(trained, tmp_path, monkeypatch):
    from types import SimpleNamespace

    import numpy as np
    import soundfile as sf
    from tokenizers import Tokenizer
    from train.model import TrainableMossAudio
    from train.greedy import greedy_scores
    from train.tasks import QUESTIONS

    folder, _ = trained
    items = [dict(task="transcribe", language="English", answer="one two"),
             dict(task="transcribe", language="German", answer="eins"),
             dict(task="language", language="English", answer="English"),
             dict(task="language", language="German", answer="German"),
             dict(task="timestamps", language="English", answer="[0.00]one[0.50]", seconds=0.1,
                  segments=[dict(start=0.0, end=0.5, text="one")])]
    (tmp_path / "audio").mkdir()
    for k, item in enumerate(items):
        item["audio"], item["question"] = f"audio/{k}.flac", QUESTIONS[item["task"]]
        sf.write(tmp_path / item["audio"], np.zeros(1600, np.float32), 16000)
    (tmp_path / "eval.jsonl").write_text("\n".join(json.dumps(i) for i in items) + "\n")
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    ctc = iter(["one too", "eins"])  # 1 edit in 7 English characters, none in German
    # English: none; German: 1; one language of two right; boundaries off by 0.1 and 0.0 s
    dec = iter(["one two", "ein", "English", "French", "[0.10]one[0.50]"])
    asked = []
    monkeypatch.setattr(TrainableMossAudio, "ctc_text", lambda self, mel, alphabet: next(ctc))
    monkeypatch.setattr(TrainableMossAudio, "greedy", lambda self, mel, ids, rows, stop: tok.encode(next(dec)).ids)
    examples = SimpleNamespace(alphabet={}, im_end=0, prompt=lambda n, task: asked.append(task) or SimpleNamespace(
        ids=np.zeros(1), audio_rows=np.zeros(1)))
    got = greedy_scores(small_model(4), examples, folder, tmp_path, decoder=True)
    assert got == {"ctc": {"en": round(100 / 7, 2), "all": round(100 / 11, 2)},
                   "decoder": {"en": 0.0, "all": round(100 / 11, 2), "language": 50.0, "timestamp_mae_s": 0.05}}
    assert asked == [i["task"] for i in items]  # each clip under its own question
    ctc = iter(["one too", "eins"])
    assert greedy_scores(small_model(4), examples, folder, tmp_path, decoder=False) == {"ctc": got["ctc"]}
    ctc, dec = iter(["one too", "eins"]), iter(["one two", "ein"])
    items[2]["question"] = "Which language?"  # a wording the recipe never asks
    (tmp_path / "eval.jsonl").write_text("\n".join(json.dumps(i) for i in items) + "\n")
    with pytest.raises(ValueError, match="Which language"):
        greedy_scores(small_model(4), examples, folder, tmp_path, decoder=True)


def test_override_changes_the_named_fields_and_rejects_unknown_ones():
    from train.recipe import RecipeConfig, override

    cfg = override(RecipeConfig(), ["train.budget_frames=2400", "audio.downsample_hidden_size=64",
                                    "train.betas=[0.9, 0.99]", "seed=2"])
    assert (cfg.train.budget_frames, cfg.audio["downsample_hidden_size"], cfg.train.betas, cfg.seed) == (2400, 64, (0.9, 0.99), 2)
    assert RecipeConfig().train.budget_frames != 2400  # the default is untouched
    for bad in ("train.budget=1", "optim.lr=1", "train.lr"):
        with pytest.raises(ValueError, match="SECTION.NAME=VALUE"):
            override(RecipeConfig(), [bad])
    for bad, want in (("train.steps=abc", "expected int"), ("train.guide_layers=1", "expected tuple"),
                      ("train.lr=true", "expected float")):
        with pytest.raises(ValueError, match=want):
            override(RecipeConfig(), [bad])
    assert override(RecipeConfig(), ["train.lr=1"]).train.lr == 1.0 and override(RecipeConfig(), ["data.seed=4"]).data.seed == 4
    assert override(RecipeConfig(), ["tasks.single_en=[0.7, 0.3, 0]"]).tasks.single_en == (0.7, 0.3, 0.0)


def test_cli_says_what_a_bad_assignment_is():
    from train.__main__ import main

    with pytest.raises(SystemExit, match="known: ctc_steps"):
        main(["pilot", "--set", "train.nope=3"])


def test_pilot_trains_the_acoustic_phase_and_scores_it(trained, tmp_path):
    from train.pilot import run_pilot
    from train.resume import snapshot_path

    folder, info = trained
    cache = tmp_path / "cache"
    shutil.copytree(folder.parent / "cache", cache)
    cfg = small_recipe()
    result = run_pilot(cfg, 10, 4, cache, {"small": folder / "eval"}, log=lambda m: None)
    # the same 10 acoustic steps as the recipe's (same seed and batches): the same losses
    acoustic = [h["ctc"] for h in result["history"] if h["phase"] == "acoustic"]
    assert acoustic == [h["ctc"] for h in info["history"] if h["phase"] == "acoustic"]
    assert result["history"][-1]["step"] == 14 and result["history"][-1]["phase"] == "joint"
    scores = result["scores"]["small"]
    assert set(scores) == {"ctc", "decoder"} and set(scores["ctc"]) == {"en", "all"} and scores["ctc"]["en"] > 0
    assert set(scores["decoder"]) == {"en", "all", "language", "timestamp_mae_s"} and scores["decoder"]["en"] > 0
    assert 0 <= scores["decoder"]["language"] <= 100 and scores["decoder"]["timestamp_mae_s"] >= 0
    assert not snapshot_path(replace(cfg, train=replace(cfg.train, ctc_steps=10, steps=4), evalset=None), cache).exists()
