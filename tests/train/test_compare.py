"""Comparing two score files: a paired draw cancels clips both get wrong, a clear difference gets an
interval away from zero, and files of different sets, or that are not score files, are refused."""

from __future__ import annotations

import copy

import pytest

from train.compare import compare, format_differences, load_items


def _items() -> list[dict]:
    seg = lambda a, b, t: {"start": a, "end": b, "text": t}
    items = []
    for k in range(12):
        items.append(dict(id=f"t{k}", task="transcribe", language="English", answer="the red boat is here",
                          prediction="the red boat is here" if k % 3 else "a bed coat is hear"))
    for k in range(8):
        items.append(dict(id=f"l{k}", task="language", language="German", answer="German",
                          prediction="German" if k % 4 else "English"))
    for k in range(6):
        items.append(dict(id=f"s{k}", task="timestamps", language="English", answer="", seconds=4.0,
                          segments=[seg(0.1, 1.5, "one two"), seg(2.0, 3.6, "three four")],
                          prediction="[0.10]one two[1.70][2.00]three for[3.60]" if k % 2 else "[0.30]one two three four[3.60]"))
    return items


def test_the_same_answers_differ_by_nothing_in_every_draw():
    items = _items()
    for row in compare(items, copy.deepcopy(items)[::-1], resamples=500):  # order does not matter, ids pair them
        assert row.a == row.b and row.low == row.high == 0.0 and row.b_better == 0.0


def test_fixing_every_wrong_clip_is_better_in_every_draw_with_a_nonzero_set_of_errors():
    a = _items()
    b = copy.deepcopy(a)
    for i in b:
        if i["task"] == "transcribe":
            i["prediction"] = i["answer"]
    rows = {r.name: r for r in compare(a, b, resamples=2000)}
    cer = rows["cer_en"]
    assert cer.b == 0.0 and cer.a > 0 and cer.high < 0
    # a draw may hold no wrong clip at all (then b - a is 0, not better): with 4 of 12 wrong, 0.67^12 ~ 0.8 %
    assert cer.b_better > 0.97
    assert rows["language_accuracy"].low == rows["language_accuracy"].high == 0.0
    # 4 of 12 clips with 7 edits in 20 characters ("a bed coat is hear"): 28 / 240
    assert "| cer_en | 11.67 % | 0.00 % | -11.67 |" in format_differences(list(rows.values()), "a", "b")


def test_files_of_different_sets_are_refused():
    a = _items()
    with pytest.raises(ValueError, match="different clips"):
        compare(a, a[:-1])
    other = copy.deepcopy(a)  # the same ids (they are positional) for another sentence
    other[3]["answer"] = "a green car is there"
    with pytest.raises(ValueError, match="clip t3 is not the same clip in both files .answer differ"):
        compare(a, other)
    with pytest.raises(ValueError, match="resamples=0"):
        compare(a, a, resamples=0)


def test_a_file_that_is_not_a_score_file_is_named(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{'items': []}")
    with pytest.raises(ValueError, match="bad.json: not a score file"):
        load_items(bad)
    bad.write_text('{"summary": {}}')
    with pytest.raises(ValueError, match="bad.json: no per-clip answers"):
        load_items(bad)
