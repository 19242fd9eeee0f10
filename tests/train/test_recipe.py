"""The real recipe, shrunk: loss finite and falling, the folder loads, exports, and the
training model computes what the PyTorch reference computes from the written weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.train.conftest import small_recipe


def test_loss_is_finite_and_falls(trained):
    _, info = trained
    acoustic = [h for h in info["history"] if h["phase"] == "acoustic"]
    joint = [h for h in info["history"] if h["phase"] == "joint"]
    assert acoustic[-1]["step"] == 10 and joint[-1]["step"] == 50 and all("ce" not in h for h in acoustic)
    ce = [h["ce"] for h in joint]
    assert all(np.isfinite(ce)) and all(np.isfinite([h["ctc"] for h in info["history"]]))
    assert ce[-1] < 0.7 * ce[0], ce


def test_run_scores_the_encoders_ctc_on_the_heldout_set(trained):
    """The CTC head is not shipped, so its CER is taken before it is dropped."""
    _, info = trained
    assert set(info["ctc_cer"]) == {"en", "all"}
    assert all(isinstance(v, float) and v >= 0 for v in info["ctc_cer"].values()), info["ctc_cer"]


def test_acoustic_phase_trains_the_audio_side_only(trained):
    """CTC-only steps move the stem, encoder and adapter and leave the decoder as initialized."""
    from export.checkpoint import Checkpoint
    from train.recipe import TrainConfig, lr_at

    cfg = TrainConfig(ctc_steps=4, steps=10, warmup=2, lr=1.0)
    assert [lr_at(s, cfg) for s in range(6)] == [0.5, 1.0, 1.0, 1.0, 0.5, 1.0]  # each phase warms up

    folder, _ = trained
    _, examples = _examples(folder, Checkpoint.open(folder))
    model = _untrained(folder, len(examples.alphabet))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.ctc_only(examples.batch([0, 1], np.random.default_rng(0)))["ctc"].backward()
    opt.step()
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert any(n.startswith("tower.audio_encoder.") for n in moved)
    assert any(n.startswith("tower.audio_adapter.") for n in moved)
    assert not any(n.startswith(("language_model.", "lm_head.", "tower.deepstack_")) for n in moved), moved


def test_folder_loads_and_exports(trained, tmp_path):
    from export.bundle import ExportOptions, export_bundle
    from export.checkpoint import Checkpoint

    folder, _ = trained
    ckpt = Checkpoint.open(folder)
    assert ckpt.token_ids.audio_start != ckpt.token_ids.audio
    for name in ("config.json", "model.safetensors", "tokenizer.json", "vocab.json", "merges.txt",
                 "tokenizer_config.json", "processor_config.json", "generation_config.json", "eval/eval.jsonl"):
        assert (folder / name).is_file(), name
    manifest = export_bundle(folder, tmp_path / "bundle", ExportOptions(encoder=("fp32",), decoder=("f32",),
                                                                          expected=False, imatrix=False))
    assert "f32" in manifest.decoders


def test_training_model_matches_reference(trained):
    """Same weights, same prompt: the batched training forward equals MossAudioReference's logits."""
    from export.checkpoint import Checkpoint
    from export.reference import MossAudioReference

    folder, _ = trained
    ckpt = Checkpoint.open(folder)
    ref = MossAudioReference(ckpt)
    model = _untrained(folder, 8)
    missing = model.load_state_dict(_state(ckpt), strict=False)
    assert set(missing.missing_keys) == {"ctc_head.weight", "ctc_head.bias"}
    model.eval()

    store, examples = _examples(folder, ckpt, specaug=None)
    picks = [0, len(store) - 1]  # a single sentence and a multi-sentence clip, batched together
    batch = examples.batch(picks, np.random.default_rng(0), tasks=["transcribe", "timestamps"])
    with torch.no_grad():
        rows = model.audio_rows(batch.mels)
        for b, i in enumerate(picks):
            n = int((batch.audio_rows[b] >= 0).sum())
            want = ref.tower(store.mel(i))
            # measured: max abs 2.4e-6 (rows up to 3.9); ~10x for other CPUs' kernels and batch padding
            torch.testing.assert_close(rows[b], want, rtol=0, atol=3e-5)
            prompt = examples.prompt(n, ["transcribe", "timestamps"][b])
            real = batch.labels[b] != -100
            last = int(torch.nonzero(real)[-1]) + 1
            cont = batch.ids[b, len(prompt.ids) : last].tolist()
            expected = ref.logits(prompt, want, cont)
            got = _train_logits(model, batch, b, last)
            # measured: max abs 1.7e-6 (logits up to 7.1); ~10x as above
            torch.testing.assert_close(got, expected, rtol=0, atol=3e-5)


def test_bf16_autocast_losses_match_fp32_and_train(trained):
    """TrainConfig.autocast: the written model's joint losses under BF16 autocast are FP32 tensors
    close to the FP32 ones, and a step under it moves the weights."""
    from export.checkpoint import Checkpoint
    from train.recipe import precision

    folder, info = trained
    assert info["precision"] == precision("auto") and precision("fp32") == "fp32" and precision("bf16") == "bf16"
    with pytest.raises(ValueError, match="choose auto, bf16 or fp32"):
        precision("fp16")
    ckpt = Checkpoint.open(folder)
    store, examples = _examples(folder, ckpt, specaug=None)
    model = _untrained(folder, len(examples.alphabet), guide_layers=(0, 1))
    model.load_state_dict(_state(ckpt), strict=False)
    batch = examples.batch(list(range(4)), np.random.default_rng(0), tasks=["transcribe", "language", "transcribe", "transcribe"])
    with torch.no_grad():
        fp32 = model(batch)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = model(batch)
    # measured on this small trained model (AVX-512 EPYC, this file's order and alone): CE 6.8e-5 and
    # CTC 1.7e-4 relative at most, bounded at ~6x; the guide's targets come from a forced alignment
    # (a best path) of the CTC outputs, which BF16 rounding can move by a row: 1.7 %, bounded at 5 %
    for k, rel in (("ce", 1e-3), ("ctc", 1e-3), ("guide", 0.05)):
        assert bf16[k].dtype == torch.float32 and torch.isfinite(bf16[k])
        assert abs(float(bf16[k]) - float(fp32[k])) <= rel * abs(float(fp32[k])), (k, float(bf16[k]), float(fp32[k]))
    before = model.lm_head.weight.detach().clone()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(batch)
    (out["ce"] + out["ctc"] + out["guide"]).backward()
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    assert model.lm_head.weight.dtype == torch.float32 and not torch.equal(model.lm_head.weight, before)


def _state(ckpt) -> dict:
    """The checkpoint's tensors under the training model's names."""
    return {("tower." + n if n.startswith(("audio_", "deepstack_")) else n): ckpt.tensor(n).float()
            for n in ckpt.weight_files}


def _examples(folder, ckpt, **kwargs):
    """The small recipe's cached clips as training examples, prompts from the written checkpoint."""
    from train.batches import Examples, PromptSpec, alphabet
    from train.data import build_store

    store = build_store(small_recipe().data, folder.parent / "cache")
    vocab = ckpt.tokenizer.get_vocab(with_added_tokens=True)
    return store, Examples(store, PromptSpec.of_checkpoint(ckpt), vocab["<|im_end|>"], vocab["<|endoftext|>"],
                           alphabet(store), **kwargs)


def _untrained(folder, ctc_chars: int, **kwargs):
    """A freshly initialized training model of the written folder's config."""
    from export.config import ModelConfig
    from train.model import TrainableMossAudio

    return TrainableMossAudio(ModelConfig.from_dict(json.loads((folder / "config.json").read_text())), ctc_chars, **kwargs)


def _train_logits(model, batch, b, last):
    """All-position logits of row b from the training forward's decoder path."""
    captured = {}
    handle = model.language_model.norm.register_forward_hook(lambda m, i, o: captured.setdefault("h", o))
    try:
        model(batch)
    finally:
        handle.remove()
    return model.lm_head(captured["h"][b, :last]).float()


def test_answer_noise_changes_only_the_answer_tokens_the_decoder_reads(trained):
    """Joint-phase batches (noisy) replace a share of the answer inputs by ordinary tokens; the
    prompt, the targets and every batch without noise stay as they were."""
    from export.checkpoint import Checkpoint
    from train.model import IGNORE
    from train.recipe import ordinary_tokens

    folder, _ = trained
    ckpt = Checkpoint.open(folder)
    ordinary = ordinary_tokens(folder)
    im_end = ckpt.tokenizer.get_vocab(with_added_tokens=True)["<|im_end|>"]
    assert 0 < ordinary <= min(im_end, ckpt.token_ids.audio)  # the special tokens come after
    store, clean = _examples(folder, ckpt, specaug=None)
    _, noisy = _examples(folder, ckpt, specaug=None, answer_noise=0.5, ordinary=ordinary)
    every = list(range(len(store)))
    tasks = ["transcribe"] * len(every)
    a = clean.batch(every, np.random.default_rng(1), tasks)
    assert torch.equal(noisy.batch(every, np.random.default_rng(1), tasks).ids, a.ids)  # not noisy: the same
    b = noisy.batch(every, np.random.default_rng(1), tasks, noisy=True)
    assert torch.equal(b.labels, a.labels) and torch.equal(b.audio_rows, a.audio_rows)
    answer = torch.zeros_like(a.labels, dtype=torch.bool)
    answer[:, 1:] = a.labels[:, :-1] != IGNORE  # inputs that are answer tokens: the previous position predicts them
    answer &= a.ids != im_end
    changed = b.ids != a.ids
    assert not (changed & ~answer).any()  # prompt, audio, <|im_end|> and padding untouched
    assert (b.ids[changed] < ordinary).all()
    share = changed.sum().item() / answer.sum().item()
    # 0.5 drawn, less the draws that hit the token already there (1 in `ordinary`): measured 0.526 over
    # this set's 546 answer tokens (binomial sd 0.021); 0.42-0.58 is 3.7 sd either side of 0.5
    assert 0.42 < share < 0.58, share
    with pytest.raises(ValueError, match="ordinary tokens"):
        _examples(folder, ckpt, answer_noise=0.1)


@pytest.mark.parametrize("setting", ["train.specaug=1.5", "train.answer_noise=-0.1"])
def test_a_share_outside_0_to_1_fails_before_any_data_is_built(setting, tmp_path):
    from train.recipe import RecipeConfig, override, prepare

    with pytest.raises(ValueError, match="from 0 to 1"):
        prepare(override(RecipeConfig(), [setting]), tmp_path / "cache", log=lambda m: None)
    assert not (tmp_path / "cache").exists()
