"""The model card says how the shipped model was trained: the guided-attention and time-probe
terms appear when, and only when, the recipe used them; the task mix and the training precision are the recipe's."""

from dataclasses import asdict, replace

from train.card import _ctc_line, _phases, _precision, _specaug, _tasks, _word_clips
from train.data import DataConfig
from train.recipe import TrainConfig


def _train(**changes) -> dict:
    return asdict(replace(TrainConfig(), **changes))


def test_the_objective_names_the_guide_only_when_it_was_on():
    info = {"ctc_steps": 5000, "steps": 4500}
    plain = _phases(info, _train(guide_weight=0.0, time_weight=0.0))
    guided = _phases(info, _train(guide_weight=1.0, guide_layers=(1, 2, 3), guide_width=3.0, time_weight=0.0))
    assert "guided" not in plain and plain.endswith("character CTC.")
    assert "1.0 × guided attention: head 0 of decoder layers 1, 2, 3" in guided
    assert "Gaussian of 3.0 rows" in guided and guided.endswith("the time it names.")
    assert "guided" not in _phases(info, {k: v for k, v in _train().items() if not k.startswith("guide")})


def test_the_objective_names_the_time_probe_only_when_it_was_on():
    info = {"ctc_steps": 6000, "steps": 6000}
    probed = _phases(info, _train(time_weight=0.5, time_layer=2))
    assert "0.5 × a time probe: a linear head on the input of decoder layer 2" in probed
    assert probed.endswith("find when it is.")
    assert "time probe" not in _phases(info, _train(time_weight=0.0))
    older = {k: v for k, v in _train().items() if not k.startswith("time")}  # a recipe from before it
    assert "time probe" not in _phases(info, older)


def test_the_card_names_the_task_mix_and_precision_of_the_run():
    from train.batches import TaskMix

    info = {"recipe": {"tasks": asdict(TaskMix(single_en=(0.85, 0.15, 0.0)))}, "precision": "bf16"}
    assert "transcribe/language/timestamps 85/15/0 % for English single sentences" in _tasks(info)
    assert "BF16 under `torch.autocast`" in _precision(info)
    older = {"recipe": {}}  # a run from before both were recorded: the old default mix, FP32
    assert "mostly timestamps" in _tasks(older) and _precision(older) == "; FP32 throughout"


def test_the_card_counts_word_clips_only_for_recipes_that_had_them():
    data = asdict(DataConfig(words={"en": 300, "de": 20}, wide={}))
    assert _word_clips(data) == ", clips of one to three common words (300 en, 20 de),"
    assert _word_clips({k: v for k, v in data.items() if k != "words"}) == ""
    wide = ", clips of two to seven words (half from wordfreq's top 12,000 past the common ones; 3000 en),"
    assert _word_clips(asdict(DataConfig(words={"de": 0}, wide={"en": 3000}))) == wide  # a zero count is no clips
    assert _word_clips(asdict(DataConfig(words={"de": 20}, wide={"en": 3000}))) == (
        ", clips of one to three common words (20 de)" + wide)


def test_the_card_names_specaugment_and_the_ctc_score_as_the_run_had_them():
    assert _specaug(_train(specaug=0.0)) == "no SpecAugment"
    assert "on 50% of the clips" in _specaug(_train(specaug=0.5))
    assert "on 80% of the clips" in _specaug({})  # a run from before the setting: 0.8, as then
    assert _ctc_line({}) == "" and _ctc_line({"ctc_cer": None}) == ""
    assert "English 12.5 %, all 14.0 %" in _ctc_line({"ctc_cer": {"en": 12.5, "all": 14.0}})
