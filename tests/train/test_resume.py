"""An interrupted recipe run resumes from its snapshot and ends with the same weights, bit for
bit, as the run that never stopped."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest

from tests.train.conftest import small_recipe


class Stop(Exception):
    pass


def test_interrupted_run_resumes_to_the_same_weights(trained, tmp_path):
    from train.recipe import run
    from train.resume import snapshot_path

    folder, info = trained
    cache = tmp_path / "cache"
    shutil.copytree(folder.parent / "cache", cache)  # the features, not rebuilt
    cfg = small_recipe()
    cfg = replace(cfg, train=replace(cfg.train, snapshot_every=20))  # snapshots at 20, 40 and 50 of 50 steps
    snapshot = snapshot_path(cfg, cache)
    assert snapshot == snapshot_path(small_recipe(), cache)  # how often it snapshots is not part of the run

    def stop_at_25(line: str) -> None:  # a kill between snapshots: steps 21-25 are done twice
        if line.startswith("step=25 "):
            raise Stop
    with pytest.raises(Stop):
        run(cfg, tmp_path / "model", cache, log=stop_at_25)
    assert snapshot.is_file() and not (tmp_path / "model").exists()

    lines = []
    resumed = run(cfg, tmp_path / "model", cache, log=lines.append)
    assert any(m.startswith("resuming at step 20 of 50") for m in lines), lines
    assert not snapshot.exists()  # removed once the folder is written
    assert (tmp_path / "model" / "model.safetensors").read_bytes() == (folder / "model.safetensors").read_bytes()
    assert resumed["resumed_at"][0]["step"] == 20 and info["resumed_at"] == []
    strip = [{k: v for k, v in h.items() if k not in ("seconds", "audio_per_s")} for h in resumed["history"]]
    assert strip == [{k: v for k, v in h.items() if k not in ("seconds", "audio_per_s")} for h in info["history"]]
    assert json.loads((tmp_path / "model" / "train_info.json").read_text())["resumed_at"] == resumed["resumed_at"]

    from train.card import _time_line  # the model card says so, and what it means
    assert "resumed from its snapshot at step 20" in _time_line(resumed)
    assert "resumed" not in _time_line(info)


def test_a_changed_recipe_does_not_resume(tmp_path):
    from train.resume import snapshot_path

    cfg = small_recipe()
    other = replace(cfg, train=replace(cfg.train, lr=cfg.train.lr * 2))
    assert snapshot_path(cfg, tmp_path) != snapshot_path(other, tmp_path)


def test_a_damaged_snapshot_says_what_to_do(tmp_path):
    from train.resume import load_snapshot

    bad = tmp_path / "run-x.pt"
    bad.write_bytes(b"not a snapshot")
    with pytest.raises(RuntimeError, match="--restart"):
        load_snapshot(bad)
    assert load_snapshot(tmp_path / "absent.pt") is None
