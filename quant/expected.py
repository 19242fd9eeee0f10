"""Expected outputs shipped in a bundle, so a device checks drift without torch or checkpoint.

expected.npz holds, per clip: the 16 kHz samples, the reference's packed rows (float32: float16
rounding alone, 3.7e-4 relative, would exceed the FP32 encoder's bound), the
prompt, its greedy continuation, and for every prompt and continuation position the
reference's TOP_K most likely next tokens with their log-probabilities.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from quant.drift import Case, reference_cases
from runtime.errors import BundleError
from runtime.prompt import Prompt

EXPECTED = "expected.npz"
TOP_K = 64


def write_expected(reference, out_dir: Path, clips: list[Path], question: str, n_tokens: int) -> Path:
    cases = reference_cases(None, clips, question, n_tokens, reference=reference)
    arrays = {"names": np.array([c.name for c in cases]), "question": np.array(question)}
    for i, c in enumerate(cases):
        k = min(TOP_K, c.ref_tokens.shape[1])
        arrays.update({
            f"{i}/samples": c.samples.astype(np.float32), f"{i}/rows": c.rows.astype(np.float32),
            f"{i}/prompt_ids": c.prompt.ids, f"{i}/audio_rows": c.prompt.audio_rows,
            f"{i}/continuation": np.asarray(c.continuation, dtype=np.int64),
            f"{i}/ref_tokens": c.ref_tokens[:, :k].astype(np.int32),
            f"{i}/ref_logprobs": c.ref_logprobs[:, :k].astype(np.float32),
        })
    path = out_dir / EXPECTED
    np.savez_compressed(path, **arrays)
    return path


def load_expected(folder: Path, name: str = EXPECTED) -> list[Case]:
    path = Path(folder) / name
    if not path.is_file():
        raise BundleError(f"{folder} carries no {name}: re-export it (expected outputs are on by default) "
                          "or give --checkpoint to measure against the PyTorch reference")
    data = np.load(path)
    cases = []
    for i, name in enumerate(data["names"].tolist()):
        cases.append(Case(
            name=name, samples=data[f"{i}/samples"],
            prompt=Prompt(ids=data[f"{i}/prompt_ids"], audio_rows=data[f"{i}/audio_rows"]),
            rows=data[f"{i}/rows"].astype(np.float32), continuation=data[f"{i}/continuation"].tolist(),
            ref_tokens=data[f"{i}/ref_tokens"].astype(np.int64), ref_logprobs=data[f"{i}/ref_logprobs"].astype(np.float64),
        ))
    return cases
