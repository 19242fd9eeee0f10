"""Guided-attention targets: the forced alignment is CTC's best path, answers know which transcript
character or time each character comes from, and a training batch's anchors land on its tokens."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from train.align import Anchors, ctc_first_frames, token_anchors
from train.tasks import Segment, anchored_answer, answer, transcript


def _best_path_first_frames(log_probs: np.ndarray, target: list[int], blank: int) -> list[int]:
    """By enumeration: the first frame of each target symbol on the best path that collapses to it."""
    best, first = -np.inf, None
    frames, classes = log_probs.shape
    for path in itertools.product(range(classes), repeat=frames):
        symbols, starts = [], []
        for t, c in enumerate(path):
            if c != blank and (t == 0 or c != path[t - 1]):
                symbols.append(c)
                starts.append(t)
        if symbols != target:
            continue
        score = sum(log_probs[t, c] for t, c in enumerate(path))
        if score > best:
            best, first = score, starts
    return first


@pytest.mark.parametrize("target", [[0, 1], [0, 0], [1, 0, 1], [1]])
@pytest.mark.parametrize("seed", range(4))
def test_forced_alignment_is_the_best_ctc_path(target, seed):
    rng = np.random.default_rng(seed)
    log_probs = np.log(rng.dirichlet(np.ones(3), size=7))  # 7 frames, symbols 0 and 1, blank 2
    assert ctc_first_frames(log_probs, target, blank=2).tolist() == _best_path_first_frames(log_probs, target, 2)


def test_forced_alignment_needs_enough_frames():
    log_probs = np.log(np.full((2, 3), 1 / 3))
    assert ctc_first_frames(log_probs, [0, 0], blank=2).tolist() == [-1, -1]  # a repeat needs a blank between
    assert ctc_first_frames(log_probs, [0, 1], blank=2).tolist() == [0, 1]


def test_anchored_answers_point_into_the_transcript_and_name_their_times():
    segments = [Segment(0.25, 1.5, "One two."), Segment(2.0, 3.75, "Three.")]
    said = transcript(segments)
    for task in ("transcribe", "timestamps", "language"):
        anchored = anchored_answer(task, "en", segments)
        assert anchored.text == answer(task, "en", segments)
        sourced = [i for i in range(len(anchored.text)) if anchored.source[i] >= 0]
        assert all(anchored.text[i] == said[anchored.source[i]] for i in sourced)
        assert len(sourced) == {"transcribe": len(said), "timestamps": len(said) - 1, "language": 0}[task]
    stamps = anchored_answer("timestamps", "en", segments)
    assert stamps.text.startswith("[0.25]One two.[1.50][2.00]Three.")
    assert stamps.time[:6].tolist() == [0.25] * 6 and stamps.time[14:20].tolist() == [1.5] * 6
    assert np.isnan(stamps.time[6:14]).all()


def test_tokens_are_placed_by_their_first_letter_or_their_time():
    segments = [Segment(0.5, 1.0, "Hi yo."), Segment(2.0, 2.5, "Ok.")]
    stamps = anchored_answer("timestamps", "en", segments)  # "[0.50]Hi yo.[1.00][2.00]Ok.[2.50]"
    spans = [(0, 6), (6, 8), (8, 11), (11, 12), (12, 17), (17, 24), (24, 26), (26, 33)]
    # the transcript "Hi yo. Ok." as CTC symbols, with "." dropped from CTC's alphabet
    kept = np.array([c != "." for c in transcript(segments)])
    symbol_of_char = np.where(kept, np.cumsum(kept) - 1, -1)
    anchors = token_anchors(stamps, spans, symbol_of_char, rows_per_second=12.5)
    # "[0.50]" is a time; "Hi" starts at symbol 0; " yo" at "y" (symbol 3, the space skipped);
    # "." has no symbol and names no time; "[1.00" and "][2.00]" name times; "Ok" is symbols 6, 7
    assert anchors.symbol.tolist() == [-1, 0, 3, -1, -1, -1, 6, -1, -1]  # then <|im_end|>
    rows = anchors.row.tolist()
    assert rows[0] == 0.5 * 12.5 and rows[4] == 12.5 and rows[7] == 2.5 * 12.5
    assert rows[5] == pytest.approx((1.0 + 6 * 2.0) / 7 * 12.5)  # "][2.00]": the mean of the times it names
    assert all(np.isnan(rows[i]) for i in (1, 2, 3, 6, 8))
    first = np.arange(8) * 6  # symbol k first emitted at frame 6k
    first[6] = -1  # a symbol the path does not place
    placed = anchors.rows(first, per_row=3).tolist()
    assert placed[1] == 0 and placed[2] == 6 and np.isnan(placed[6]) and placed[0] == rows[0]
    assert Anchors(torch.tensor([-1]), torch.tensor([float("nan")])).any is False


def test_batch_anchors_land_on_the_tokens_that_write_them(trained):
    """In a real batch, each anchored token's first letter is the CTC symbol it is anchored to."""
    from export.checkpoint import Checkpoint
    from tests.train.test_recipe import _examples

    folder, _ = trained
    ckpt = Checkpoint.open(folder)
    store, examples = _examples(folder, ckpt)
    letters = {i: c for c, i in examples.alphabet.items()}
    multi = [i for i, m in enumerate(store.meta) if len(m["segments"]) > 1][:1]
    picks = multi + [i for i in range(len(store)) if i not in multi][:2]
    batch = examples.batch(picks, np.random.default_rng(0), ["timestamps", "transcribe", "language"])
    anchored = 0
    for b in range(3):
        answer_ids = batch.labels[b][batch.labels[b] != -100].tolist()
        anchors = batch.anchors[b]
        assert len(anchors.symbol) == len(answer_ids)
        for token, symbol in zip(answer_ids, anchors.symbol.tolist()):
            text = ckpt.tokenizer.decode([token]).lstrip(" ]")  # "]H": a stamp's bracket joins the word after it
            if symbol >= 0 and "\ufffd" not in text:  # a character split over tokens decodes to U+FFFD
                assert text[0] == letters[int(batch.ctc_targets[b][symbol])], (text, symbol)
                anchored += 1
        timed = ~torch.isnan(anchors.row)
        assert (b == 0) == bool(timed.any())  # only the timestamp answer names times
    # the timestamp answer opens with "[start": the first segment's start, in audio rows (12.5 a second)
    assert float(batch.anchors[0].row[0]) == pytest.approx(store.meta[picks[0]]["segments"][0]["start"] * 12.5)
    assert not batch.anchors[2].any and anchored > 10


def test_an_empty_target_has_no_frames():
    assert ctc_first_frames(np.log(np.full((5, 3), 1 / 3)), [], blank=2).tolist() == []
