"""expected.npz: the reference's outputs shipped in a bundle, so a device checks drift without
torch or the checkpoint.

Per clip: the samples, the reference's packed rows (float32: float16 would put ~1e-4 of
rounding into an fp32 encoder's measured error), the prompt ids and audio-row map, the greedy
continuation, and at each compared position the reference's top tokens with their log-probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from quant.cases import Case
from runtime.errors import BundleError
from runtime.prompt import Prompt

EXPECTED = "expected.npz"


@dataclass
class Expected:
    cases: list[Case]
    question: str
    reference_dtype: str  # what made them: the PyTorch reference in this dtype, on this device
    reference_device: str


def write_expected(expected: Expected, path: Path) -> Path:
    cases = expected.cases
    arrays = {"names": np.array([c.name for c in cases]), "question": np.array(expected.question),
              "reference_dtype": np.array(expected.reference_dtype),
              "reference_device": np.array(expected.reference_device)}
    for i, c in enumerate(cases):
        arrays.update({
            f"{i}/samples": c.samples.astype(np.float32), f"{i}/rows": c.rows.astype(np.float32),
            f"{i}/prompt_ids": c.prompt.ids, f"{i}/audio_rows": c.prompt.audio_rows,
            f"{i}/continuation": np.asarray(c.continuation, dtype=np.int64),
            f"{i}/ref_tokens": c.ref_tokens.astype(np.int32), f"{i}/ref_logprobs": c.ref_logprobs.astype(np.float32),
        })
    np.savez_compressed(path, **arrays)
    return Path(path)


def load_expected(path: Path) -> Expected:
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"{path} not found: re-export the bundle (expected outputs are on by default), or make "
                          "one with `python -m export expected CHECKPOINT --out FILE`")
    try:
        data = np.load(path)
        cases = [Case(
            name=name, samples=data[f"{i}/samples"],
            prompt=Prompt(ids=data[f"{i}/prompt_ids"], audio_rows=data[f"{i}/audio_rows"]),
            rows=data[f"{i}/rows"].astype(np.float32), continuation=data[f"{i}/continuation"].tolist(),
            ref_tokens=data[f"{i}/ref_tokens"].astype(np.int64), ref_logprobs=data[f"{i}/ref_logprobs"].astype(np.float64),
        ) for i, name in enumerate(data["names"].tolist())]
        return Expected(cases, str(data["question"]), str(data["reference_dtype"]), str(data["reference_device"]))
    except (KeyError, ValueError, OSError) as e:
        raise BundleError(f"{path} is not an expected-outputs file ({e}); re-export it") from None
