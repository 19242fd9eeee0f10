"""Resumable training: the loop's whole state in one file beside the feature cache.

The recipe takes ~80 min on an AVX-512 machine and ~2.8 h on an AVX2-only one, longer than a
shared machine or a session may stay up. A run snapshots everything that decides what comes
next (weights, optimizer, random generators, sampler order, history), so a run that stops and
starts again ends with the same weights, bit for bit, as one that never stopped. The file is
named by everything that changes the arithmetic (the recipe config and the training code), so a
changed recipe never resumes from another's state.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from runtime.atomic import write_bytes_atomic

# The code that decides what a step computes (repository paths); a change to any of them, or
# another torch, starts a new run. Even a comment does: a false restart costs time, a false resume
# would mix two recipes in one model.
_CODE = ("train/recipe.py", "train/model.py", "train/guide.py", "train/timeprobe.py", "train/align.py", "train/batches.py",
         "train/tasks.py", "train/features.py", "export/modeling.py", "export/reference.py", "runtime/prompt.py", "runtime/chunks.py")
_ROOT = Path(__file__).resolve().parent.parent
# Settings that only say how often to log or snapshot: changing them keeps a run resumable.
_BOOKKEEPING = {"log_every": 0, "snapshot_every": 0}


def snapshot_path(cfg: Any, cache: Path) -> Path:
    """cache/run-<key>.pt for a RecipeConfig."""
    neutral = replace(cfg, train=replace(cfg.train, **_BOOKKEEPING), evalset=None)  # built after training
    code = {m: hashlib.sha256((_ROOT / m).read_bytes()).hexdigest() for m in _CODE}
    import transformers  # its Qwen3 layers are the decoder's

    raw = json.dumps(dict(recipe=asdict(neutral), code=code, torch=torch.__version__,
                          transformers=transformers.__version__), sort_keys=True, default=str)
    return Path(cache) / f"run-{hashlib.sha256(raw.encode()).hexdigest()[:12]}.pt"


def save_snapshot(path: Path, *, model: nn.Module, opt: torch.optim.Optimizer, rng: np.random.Generator,
                  samplers: dict, **progress) -> None:
    """Complete or absent: written beside `path` and renamed. `samplers` are named LengthSamplers;
    `progress` is the loop's own bookkeeping (step, seconds, history, ...), given back by resume_from."""
    state = dict(progress, model=model.state_dict(), optimizer=opt.state_dict(), rng=rng.bit_generator.state,
                 torch_rng=torch.get_rng_state(), orders={k: torch.from_numpy(s.order) for k, s in samplers.items()})
    buf = io.BytesIO()
    torch.save(state, buf)
    write_bytes_atomic(path, buf.getvalue())


def resume_from(path: Path, *, model: nn.Module, opt: torch.optim.Optimizer, rng: np.random.Generator,
                samplers: dict) -> dict | None:
    """Put a snapshot's state back into these objects and return its `progress`; None if there is none."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state.pop("model"))
        opt.load_state_dict(state.pop("optimizer"))
        rng.bit_generator.state = state.pop("rng")
        torch.set_rng_state(state.pop("torch_rng"))
        for name, order in state.pop("orders").items():
            samplers[name].order = order.numpy()
    except Exception as e:  # written atomically, so a foreign, damaged or other-shaped file
        raise RuntimeError(f"cannot resume from the training snapshot {path} ({e}): delete it or pass --restart") from e
    return state
