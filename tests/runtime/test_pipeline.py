"""End to end: the bundle through Pipeline against the PyTorch reference."""

import itertools
import threading

import numpy as np
import pytest

import dataclasses

from runtime.answer import ThinkSplitter
from runtime.decoder import prompt_runs
from runtime.errors import OptionsError
from runtime.manifest import update_manifest
from runtime.pipeline import Pipeline
from runtime.sampling import GenerationOptions
from tests.conftest import clip
from tests.independent_reference import IndependentMossAudio

GREEDY = dict(temperature=0.0, max_new_tokens=32)
QUESTION = "What is said?"


def reference_tokens(reference, audio, question=QUESTION, n=32):
    prompt, rows = reference.prepare(audio, question)
    return prompt, reference.generate(prompt, rows, GenerationOptions(max_new_tokens=n, temperature=0))


@pytest.mark.parametrize("seconds,markers", [(1.5, 0), (5.0, 2), (21.0, 10)])
def test_f32_bundle_greedy_equals_reference(exact_pipeline, tiny_reference, seconds, markers):
    x = clip(seconds, seed=4)
    prompt, expected = reference_tokens(tiny_reference, [x])
    result = exact_pipeline.generate(x, QUESTION, **GREEDY)
    assert result.prompt_token_ids == prompt.ids.tolist()
    digits = np.isin(prompt.ids, tiny_reference.ckpt.token_ids.digits) & (np.cumsum(prompt.audio_rows >= 0) > 0)
    assert int(digits.sum()) >= markers  # no marker, one-digit and two-digit markers
    assert result.token_ids == expected
    assert result.finish_reason == ("stop" if len(expected) < 32 else "length")


def test_prompt_split_over_many_batches(tiny_bundle, tiny_reference):
    """n_batch 16: the audio span spans several embedding batches, then token batches follow."""
    pipe = Pipeline.load(tiny_bundle, device="cpu", decoder="f32", n_batch=16, kv_type="f32", flash_attn="off")
    x = clip(5.0, seed=8)
    prompt, expected = reference_tokens(tiny_reference, [x])
    runs = prompt_runs(prompt, tiny_reference.ckpt.token_ids.digits)
    assert [r.embedded for r in runs] == [False, True, False]
    assert runs[1].stop - runs[1].start > 16
    assert pipe.generate(x, QUESTION, **GREEDY).token_ids == expected


def test_f16_decoder_top1_agreement(tiny_bundle, tiny_reference):
    """Teacher-forced over prompt + reference continuation; measured 100% on this checkpoint."""
    pipe = Pipeline.load(tiny_bundle, device="cpu", decoder="f16")
    x = clip(6.0, seed=9)
    prompt, expected = reference_tokens(tiny_reference, [x])
    ref_logits = tiny_reference.logits(prompt, tiny_reference.prepare([x], QUESTION)[1], expected[:-1]).numpy()
    rows = pipe.encode_audio(x)
    ours = pipe.decoder.prefill(prompt, rows, logits="all", reserve=len(expected))
    ours = np.concatenate([ours] + [pipe.decoder.step(t, len(prompt) + i, logits="last")[None]
                                    for i, t in enumerate(expected[:-1])])
    agreement = float(np.mean(ours.argmax(1) == ref_logits.argmax(1)))
    assert agreement >= 0.98


def test_several_clips_in_one_prompt(exact_pipeline, tiny_reference):
    a, b = clip(2.0, seed=1), clip(3.3, seed=2)
    prompt, expected = reference_tokens(tiny_reference, [a, b], "Which clip is louder?")
    result = exact_pipeline.generate([a, b], "Which clip is louder?", **GREEDY)
    assert result.prompt_token_ids == prompt.ids.tolist()
    assert result.token_ids == expected


def test_unseen_configuration_matches_independent_implementation(odd_bundle, odd_ckpt):
    pipe = Pipeline.load(odd_bundle, device="cpu", decoder="f32", kv_type="f32", flash_attn="off")
    ind = IndependentMossAudio(odd_ckpt)
    x = clip(4.5, seed=12)
    rows = ind.rows(x)
    ids = ind.prompt_ids(rows.shape[0], QUESTION)
    result = pipe.generate(x, QUESTION, temperature=0, max_new_tokens=24)
    assert result.prompt_token_ids == ids
    assert result.token_ids == ind.greedy(ids, rows, 24)


def test_stream_equals_generate_and_reports_timings(tiny_bundle):
    pipe = Pipeline.load(tiny_bundle, device="cpu", decoder="q8_0")
    x = clip(3.0, seed=6)
    stream = pipe.ask(x, QUESTION, temperature=0.7, seed=3, max_new_tokens=20)
    streamed = "".join(stream)
    result = pipe.generate(x, QUESTION, temperature=0.7, seed=3, max_new_tokens=20)
    assert streamed.strip() == result.text
    assert stream.result.token_ids == result.token_ids
    t = result.timings
    assert t.encode_s > 0 and t.prefill_tok_s > 0 and (t.decode_tok_s > 0 or len(result.token_ids) < 2)


def test_defaults_come_from_the_bundle(tiny_bundle, tmp_path):
    import shutil

    bundle = tmp_path / "b"
    shutil.copytree(tiny_bundle, bundle)
    shipped = dict(max_new_tokens=77, temperature=0.6, top_k=20, top_p=0.9, repetition_penalty=1.1, do_sample=False)
    update_manifest(bundle, lambda m: dataclasses.replace(
        m, generation=dataclasses.replace(m.generation, **shipped)))
    pipe = Pipeline.load(bundle, device="cpu", decoder="f16")
    assert pipe.options() == GenerationOptions(**shipped)
    assert pipe.options().greedy  # do_sample false: greedy, as HF generate is
    assert not pipe.options(temperature=0.8).greedy  # asking for a temperature asks for sampling
    with pytest.raises(OptionsError, match="temprature"):
        pipe.generate(clip(1.0), QUESTION, temprature=0)


def test_shared_between_threads(tiny_bundle):
    """Calls are serialized: 4 threads x 5 requests give the single-threaded answers."""
    pipe = Pipeline.load(tiny_bundle, device="cpu", decoder="q8_0")
    clips = [clip(1.0 + i * 0.7, seed=i) for i in range(5)]
    expected = [pipe.generate(c, QUESTION, temperature=0, max_new_tokens=8).token_ids for c in clips]
    got: dict = {}

    def worker(t):
        for i, c in enumerate(clips):
            got[(t, i)] = pipe.generate(c, QUESTION, temperature=0, max_new_tokens=8).token_ids

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert all(got[(t, i)] == expected[i] for t in range(4) for i in range(5))


def test_think_splitter_separates_reasoning():
    s = ThinkSplitter(start=1, end=2)
    pieces = list(s.feed(1, b"<think>"))
    pieces += list(s.feed(5, b"let me hear"))
    pieces += list(s.feed(2, b"</think>"))
    pieces += list(s.feed(6, b"\n\n"))
    pieces += list(s.feed(7, b"A dog \xe2"))
    pieces += list(s.feed(8, b"\x80\x94 barking"))
    pieces += list(s.flush())
    assert [(p.kind, p) for p in pieces if p.kind == "reasoning"] == [("reasoning", "let me hear")]
    assert "".join(p for p in pieces if p.kind == "answer") == "A dog \u2014 barking"


def scripted(pipe, monkeypatch, tokens):
    """The decoder answers with these tokens whatever it is asked (the plumbing around it is real)."""
    monkeypatch.setattr(pipe.decoder, "generate", lambda prompt, rows, options, **_: iter(tokens))


def test_reasoning_goes_to_reasoning_not_text(tiny_bundle, monkeypatch):
    pipe = Pipeline.load(tiny_bundle, device="cpu", decoder="q8_0")
    ids = pipe.manifest.tokens
    word = pipe.decoder.tokenize("dog", False)
    scripted(pipe, monkeypatch, [ids.think_start, *word, ids.think_end, *word, ids.eos[0]])
    stream = pipe.ask(clip(1.0), QUESTION, reasoning=True)
    pieces = list(stream)
    assert [kind for kind, _ in itertools.groupby(p.kind for p in pieces)] == ["reasoning", "answer"]
    assert stream.result.text == "dog" and stream.result.reasoning == "dog"
    assert stream.result.finish_reason == "stop"
    hidden = pipe.generate(clip(1.0), QUESTION)
    assert hidden.text == "dog" and hidden.reasoning == "dog"


def test_a_template_that_prefills_think_routes_the_first_tokens_to_reasoning(tiny_bundle, tmp_path, monkeypatch):
    import shutil

    bundle = tmp_path / "b"
    shutil.copytree(tiny_bundle, bundle)
    update_manifest(bundle, lambda m: dataclasses.replace(
        m, prompt=dataclasses.replace(m.prompt, template=m.prompt.template + "<think>\n")))
    pipe = Pipeline.load(bundle, device="cpu", decoder="q8_0")
    ids = pipe.manifest.tokens
    word = pipe.decoder.tokenize("dog", False)
    scripted(pipe, monkeypatch, [*word, ids.think_end, *word, ids.eos[0]])
    result = pipe.generate(clip(1.0), QUESTION)
    assert result.reasoning == "dog" and result.text == "dog"


def test_an_abandoned_stream_does_not_deadlock_the_next_call(tiny_bundle):
    pipe = Pipeline.load(tiny_bundle, device="cpu", decoder="q8_0")
    stream = pipe.ask(clip(2.0), QUESTION, temperature=0, max_new_tokens=20)
    next(iter(stream))  # read one piece, then walk away
    result = pipe.generate(clip(2.0), QUESTION, temperature=0, max_new_tokens=4)  # same thread: must not hang
    assert len(result.token_ids) <= 4
    assert stream.result.finish_reason == "cancelled"
    with pipe.ask(clip(1.0), QUESTION, max_new_tokens=20) as s:
        next(iter(s))
    assert s.result.finish_reason == "cancelled"
    with Pipeline.load(tiny_bundle, device="cpu", decoder="q8_0") as other:
        assert other.generate(clip(1.0), QUESTION, max_new_tokens=2).token_ids


def test_cancel_from_another_thread_stops_at_the_next_token(tiny_bundle, monkeypatch):
    """A server thread cancels while a worker thread iterates (a client went away)."""
    pipe = Pipeline.load(tiny_bundle, device="cpu", decoder="q8_0")
    word = pipe.decoder.tokenize(" hello", False)
    started, release = threading.Event(), threading.Event()

    def slow(prompt, rows, options, **_):
        for i in range(1000):
            if i == 3:
                started.set()
                release.wait(10)
            yield word[0]

    monkeypatch.setattr(pipe.decoder, "generate", slow)
    stream = pipe.ask(clip(1.0), QUESTION)
    reader = threading.Thread(target=lambda: list(stream))
    reader.start()
    assert started.wait(10)
    stream.cancel()
    release.set()
    reader.join(10)
    assert not reader.is_alive()
    assert stream.result.finish_reason == "cancelled" and len(stream.result.token_ids) == 4


def test_loop_guard_stops_a_repeating_answer(tiny_bundle, monkeypatch):
    pipe = Pipeline.load(tiny_bundle, device="cpu", decoder="q8_0")
    word = pipe.decoder.tokenize(" thank you.", False)
    scripted(pipe, monkeypatch, word * 100)
    guarded = pipe.generate(clip(1.0), QUESTION, loop_guard=True)
    assert guarded.finish_reason == "loop" and len(guarded.token_ids) < 40
    scripted(pipe, monkeypatch, word * 100)
    unguarded = pipe.generate(clip(1.0), QUESTION)  # off by default: upstream's output, whole
    assert unguarded.finish_reason == "length" and len(unguarded.token_ids) == 100 * len(word)


def test_python_api_mistakes_get_our_errors(tiny_bundle):
    from runtime.errors import AudioError

    pipe = Pipeline.load(tiny_bundle, device="cpu", decoder="q8_0")
    result = pipe.generate(list(clip(0.5).astype(float)), QUESTION, max_new_tokens=2)  # a plain list of samples
    assert result.token_ids
    for bad, error in [(np.float32(0.3), AudioError), ([], AudioError), (object(), AudioError)]:
        with pytest.raises(error):
            pipe.generate(bad, QUESTION, max_new_tokens=2)
    for window in ("AUTO", "Auto"):
        assert pipe.generate(clip(5.0), QUESTION, window=window, max_new_tokens=2).windows
    for window in ("nan", float("nan"), "soon", -4):
        with pytest.raises(OptionsError):
            pipe.generate(clip(5.0), QUESTION, window=window, max_new_tokens=2)


def test_the_arena_knob_reaches_onnxruntime_and_changes_no_rows(tiny_bundle):
    rows = {}
    for arena in (True, False):
        with Pipeline.load(tiny_bundle, device="cpu", arena=arena) as pipe:
            assert pipe.encoder.backend.session.get_session_options().enable_cpu_mem_arena is arena
            rows[arena] = pipe.encode_audio(clip(9.3))
    np.testing.assert_array_equal(rows[True], rows[False])
