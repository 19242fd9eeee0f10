import numpy as np
import pytest

from runtime.errors import OptionsError
from runtime.sampling import GenerationOptions, Sampler

LOGITS = np.array([1.0, 3.0, 2.9, -1.0, 0.5])


def test_greedy_and_top_k_1_take_the_argmax():
    assert Sampler(GenerationOptions(temperature=0))(LOGITS) == 1
    assert all(Sampler(GenerationOptions(top_k=1, seed=s))(LOGITS) == 1 for s in range(20))


def test_seed_reproduces_and_varies():
    draw = lambda seed: [Sampler(GenerationOptions(seed=seed))(LOGITS) for _ in range(1)][0]
    runs = [[Sampler(GenerationOptions(seed=s))(LOGITS) for _ in range(3)] for s in (1, 1)]
    assert runs[0] == runs[1]
    assert len({draw(s) for s in range(40)}) > 1


def test_top_p_keeps_the_smallest_set_reaching_p():
    # softmax(LOGITS): token 1 has 0.40 of the mass; top_p=0.3 keeps token 1 alone
    picks = {Sampler(GenerationOptions(top_p=0.3, seed=s))(LOGITS) for s in range(50)}
    assert picks == {1}
    picks = {Sampler(GenerationOptions(top_p=0.7, top_k=0, seed=s))(LOGITS) for s in range(200)}
    assert picks == {1, 2}


def test_repetition_penalty_pushes_down_seen_tokens():
    greedy = GenerationOptions(temperature=0, repetition_penalty=2.0)
    assert Sampler(greedy)(LOGITS, history=[1]) == 2


@pytest.mark.parametrize("kwargs", [dict(temperature=-1), dict(top_p=0), dict(top_p=1.5), dict(top_k=-1),
                                    dict(max_new_tokens=0), dict(repetition_penalty=0)])
def test_out_of_range_options_raise(kwargs):
    with pytest.raises(OptionsError):
        GenerationOptions(**kwargs)


def test_unknown_option_names_raise():
    with pytest.raises(OptionsError, match="temprature"):
        GenerationOptions.from_kwargs(temprature=0.5)


@pytest.mark.parametrize("kwargs", [dict(temperature=float("nan")), dict(temperature=float("inf")),
                                    dict(repetition_penalty=float("nan")), dict(top_p=float("nan")),
                                    dict(seed=-1), dict(max_new_tokens=2.5), dict(top_k="5"), dict(do_sample="no")])
def test_non_finite_negative_and_mistyped_values_are_refused(kwargs):
    with pytest.raises(OptionsError):
        GenerationOptions(**kwargs)


def test_do_sample_false_is_greedy():
    assert Sampler(GenerationOptions(do_sample=False, temperature=1.0))(LOGITS) == 1
    assert GenerationOptions(do_sample=False).greedy and GenerationOptions(temperature=0).greedy


@pytest.mark.parametrize("options", [dict(temperature=0.7, top_k=50, top_p=1.0),
                                     dict(temperature=1.3, top_k=20, top_p=0.8, repetition_penalty=1.3),
                                     dict(temperature=1.0, top_k=0, top_p=0.9)])
def test_the_distribution_is_hf_generates(options):
    """Against transformers' own logits processors over the full vocabulary."""
    torch = pytest.importorskip("torch")
    tf = pytest.importorskip("transformers")
    logits = np.random.default_rng(1).normal(0, 3, 5000).astype(np.float32)
    history = [3, 17, 17, 4000]
    o = GenerationOptions(**options)
    processors = tf.LogitsProcessorList(
        ([tf.RepetitionPenaltyLogitsProcessor(o.repetition_penalty)] if o.repetition_penalty != 1.0 else [])
        + [tf.TemperatureLogitsWarper(o.temperature)] + ([tf.TopKLogitsWarper(o.top_k)] if o.top_k else [])
        + ([tf.TopPLogitsWarper(o.top_p)] if o.top_p < 1 else []))
    scores = processors(torch.tensor([history]), torch.from_numpy(logits)[None].clone())
    expected = torch.softmax(scores[0].double(), -1).numpy()
    candidates, probs = Sampler(o).distribution(logits, history)
    ours = np.zeros_like(expected)
    ours[candidates] = probs
    np.testing.assert_allclose(ours, expected, atol=1e-6)
