"""Inputs: folders walked for audio, manifests read, ids stable and unique."""

from __future__ import annotations

import json

import pytest

from runtime.batch.inputs import InputError, Item, collect


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_a_folder_gives_its_audio_recursively_with_relative_ids(tmp_path):
    for name in ("b.wav", "a.FLAC", "deep/er/c.mp3", "notes.txt", ".hidden.wav", ".cache/x.wav"):
        touch(tmp_path / "in" / name)
    items = collect([tmp_path / "in"])
    assert [i.id for i in items] == ["a.FLAC", "b.wav", "deep/er/c.mp3"]
    assert all(i.path == str((tmp_path / "in" / i.id).resolve()) and i.question is None for i in items)


def test_a_file_by_itself_is_named_by_its_name_whatever_its_extension(tmp_path):
    [item] = collect([touch(tmp_path / "x" / "call.raw")])
    assert item == Item("call.raw", str((tmp_path / "x" / "call.raw").resolve()))


def test_jsonl_and_csv_manifests_with_ids_questions_and_relative_paths(tmp_path):
    (tmp_path / "m.jsonl").write_text(json.dumps({"path": "a.wav", "id": "A", "question": "Who?"}) + "\n\n"
                                      + json.dumps({"path": "/abs/b.wav"}) + "\n")
    (tmp_path / "m.csv").write_text("id,path,question\nC,sub/c.wav,\n,d.wav,What?\n")
    items = collect([tmp_path / "m.jsonl", tmp_path / "m.csv"])
    assert items == [Item("A", str(tmp_path / "a.wav"), "Who?"), Item("/abs/b.wav", "/abs/b.wav"),
                     Item("C", str(tmp_path / "sub/c.wav")), Item("d.wav", str(tmp_path / "d.wav"), "What?")]


def test_duplicate_ids_are_named_before_anything_runs(tmp_path):
    for folder in ("x", "y"):
        touch(tmp_path / folder / "same.wav")
    with pytest.raises(InputError, match=r"1 duplicate id\(s\): 'same.wav'; give each input a unique id"):
        collect([tmp_path / "x", tmp_path / "y"])


@pytest.mark.parametrize("name, text, message", [
    ("m.jsonl", '{"id": "a"}\n', r"m.jsonl:1 has no `path`"),
    ("m.jsonl", '{"path": "a.wav"}\n{"path": \n', r"m.jsonl:2 is not JSON"),
    ("m.jsonl", '{"path": "a.wav", "question": 3}\n', r"`question` must be text"),
    ("m.csv", "file,id\na.wav,1\n", r"m.csv has no `path` column"),
])
def test_a_bad_manifest_names_its_line_and_the_fix(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(InputError, match=message):
        collect([tmp_path / name])


def test_a_missing_input_is_refused(tmp_path):
    with pytest.raises(InputError, match="input not found: .*nope; give audio files, folders or"):
        collect([tmp_path / "nope"])
