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
    with pytest.raises(TypeError, match="temprature"):
        GenerationOptions.from_kwargs(temprature=0.5)
