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


@pytest.mark.parametrize("every, kill", [
    (5, 7),  # inside the acoustic phase (steps 1-10)
    (15, 17),  # resumes inside the joint phase's single-sentence stretch (steps 10-17): its own sampler order
    (20, 25),  # after it: the full sampler, reshuffled at the first joint step
])
def test_interrupted_run_resumes_to_the_same_weights(trained, tmp_path, every, kill):
    from train.recipe import run
    from train.resume import snapshot_path

    folder, info = trained
    cache = tmp_path / "cache"
    shutil.copytree(folder.parent / "cache", cache)  # the features, not rebuilt
    cfg = small_recipe()
    cfg = replace(cfg, train=replace(cfg.train, snapshot_every=every, log_every=1))
    snapshot = snapshot_path(cfg, cache)
    assert snapshot == snapshot_path(small_recipe(), cache)  # how often it snapshots is not part of the run

    def kill_after(line: str) -> None:  # between snapshots: the steps after the last one are done twice
        if line.startswith(f"step={kill} "):
            raise Stop
    with pytest.raises(Stop):
        run(cfg, tmp_path / "model", cache, log=kill_after)
    assert snapshot.is_file() and not (tmp_path / "model").exists()

    lines = []
    resumed = run(cfg, tmp_path / "model", cache, log=lines.append)
    assert any(m.startswith(f"resuming at step {every} of 50") for m in lines), lines
    assert not snapshot.exists()  # removed once the folder is written
    assert (tmp_path / "model" / "model.safetensors").read_bytes() == (folder / "model.safetensors").read_bytes()
    assert resumed["resumed_at"][0]["step"] == every and info["resumed_at"] == []
    assert [h["step"] for h in resumed["history"]] == list(range(1, 51))  # kept, and the redone steps once
    assert json.loads((tmp_path / "model" / "train_info.json").read_text())["resumed_at"] == resumed["resumed_at"]

    from train.card import _time_line  # the model card says so, and what it means
    assert f"resumed from its snapshot at step {every}" in _time_line(resumed)
    assert "resumed" not in _time_line(info)


def test_a_changed_recipe_does_not_resume(tmp_path):
    from train.resume import snapshot_path

    cfg = small_recipe()
    other = replace(cfg, train=replace(cfg.train, lr=cfg.train.lr * 2))
    assert snapshot_path(cfg, tmp_path) != snapshot_path(other, tmp_path)


def test_a_damaged_snapshot_says_what_to_do(tmp_path):
    import numpy as np
    import torch
    from train.resume import resume_from

    model = torch.nn.Linear(2, 2)
    parts = dict(model=model, opt=torch.optim.AdamW(model.parameters()), rng=np.random.default_rng(0), samplers={})
    bad = tmp_path / "run-x.pt"
    bad.write_bytes(b"not a snapshot")
    with pytest.raises(RuntimeError, match="--restart"):
        resume_from(bad, **parts)
    assert resume_from(tmp_path / "absent.pt", **parts) is None
