"""The PyTorch reference against an independent NumPy implementation of upstream's semantics."""

import numpy as np
import pytest
import torch

from export.checkpoint import Checkpoint
from runtime.chunks import audio_token_count
from runtime.sampling import GenerationOptions
from tests.conftest import clip
from tests.independent_reference import IndependentMossAudio

GREEDY = GenerationOptions(max_new_tokens=16, temperature=0)


@pytest.mark.parametrize("seconds", [0.5, 4.01, 9.3])
def test_reference_agrees_with_independent_implementation(odd_ckpt, odd_reference, seconds):
    ind = IndependentMossAudio(odd_ckpt)
    x = clip(seconds, seed=3)
    ours = odd_reference.audio_rows(x).numpy().astype(np.float64)
    theirs = ind.rows(x)
    # Measured: max relative error 7.4e-7 (float32 torch vs float64 numpy).
    assert np.abs(ours - theirs).max() / np.abs(theirs).max() < 1e-5
    prompt, rows = odd_reference.prepare([x], "What is said?")
    assert prompt.ids.tolist() == ind.prompt_ids(theirs.shape[0], "What is said?")
    assert odd_reference.generate(prompt, rows, GREEDY) == ind.greedy(prompt.ids.tolist(), theirs, GREEDY.max_new_tokens)


@pytest.mark.parametrize("seconds", [0.01, 0.5, 4.0, 4.01, 9.3])
def test_rows_per_clip_are_ceil_frames_over_8(tiny_reference, seconds):
    x = clip(seconds)
    frames = x.size // 160
    assert tiny_reference.audio_rows(x).shape == (audio_token_count(frames, 400), tiny_reference.config.row_width)
    assert audio_token_count(frames, 400) == -(-frames // 8)


def test_stem_frames_reproduce_an_unpadded_lone_chunk(tiny_reference):
    """Upstream encodes a lone chunk unpadded; the fixed-width graph must narrow its stem to match."""
    enc = tiny_reference.tower.audio_encoder
    mel = torch.from_numpy(tiny_reference.mel(clip(0.9, seed=2)))[None]
    n = mel.shape[-1]
    padded = torch.nn.functional.pad(mel, (0, 400 - n))
    with torch.no_grad():
        alone, _ = enc.encode_chunks(mel, torch.tensor([n]))
        narrowed, _ = enc.encode_chunks(padded, torch.tensor([n]), torch.tensor([n]))
        unnarrowed, _ = enc.encode_chunks(padded, torch.tensor([n]))
    t = alone.shape[1]
    torch.testing.assert_close(narrowed[:, :t], alone, rtol=1e-5, atol=1e-5)
    assert (unnarrowed[:, :t] - alone).abs().max() > 1e-3  # the padding does change the tail: the mask matters


def test_reference_cli_json(tiny_ckpt, tmp_path):
    import json
    import subprocess
    import sys

    import soundfile as sf

    sf.write(tmp_path / "a.wav", clip(1.2), 16000)
    out = subprocess.run([sys.executable, "-m", "export", "reference", str(tiny_ckpt), str(tmp_path / "a.wav"),
                          "-q", "What?", "--json", "--temperature", "0", "--max-new-tokens", "6"],
                         capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert set(result) == {"prompt_token_ids", "token_ids", "text"}
    assert 1 <= len(result["token_ids"]) <= 6
    assert Checkpoint.open(tiny_ckpt).token_ids.audio in result["prompt_token_ids"]
