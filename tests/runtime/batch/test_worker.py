"""What every worker is told: options refused before any worker starts; errors kept to one line."""

from __future__ import annotations

import pytest

from runtime.batch.local import split_threads
from runtime.batch.worker import AskSpec, LoadSpec, one_line
from runtime.errors import AudioError, OptionsError, PromptError


@pytest.mark.parametrize("ask, message", [
    (dict(options={"top_p": 3.0}), "top_p must be in"),
    (dict(options={"beams": 2}), "unknown generation option"),
    (dict(window="soon"), "give 'auto' or a number of seconds"),
    (dict(question="\udcff"), "not valid UTF-8"),
])
def test_a_bad_option_is_refused_up_front(ask, message):
    with pytest.raises((OptionsError, PromptError), match=message):
        AskSpec(**ask)


def test_errors_become_one_line_and_foreign_ones_are_named():
    assert one_line(AudioError("cannot decode a.wav: bad.\nUse wav")) == "cannot decode a.wav: bad. Use wav"
    assert one_line(RuntimeError("llama_decode\nfailed")) == "RuntimeError: llama_decode failed"


def test_threads_are_split_between_workers_unless_chosen(monkeypatch):
    monkeypatch.setattr("runtime.batch.local.cores", lambda: 8)
    assert split_threads(LoadSpec("b"), 3).threads == 2
    assert split_threads(LoadSpec("b"), 16).threads == 1
    assert split_threads(LoadSpec("b", threads=4), 3).threads == 4
