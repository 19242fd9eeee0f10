"""The encoder's own checks, on a stand-in backend (the graphs themselves: tests/export)."""

import numpy as np
import pytest

from runtime.encoder import Encoder
from runtime.errors import EncoderOverflow
from tests.conftest import AUDIO


class Backend:
    """Returns fixed rows for every chunk; one value poisoned when asked."""

    n_mels, chunk_frames, width, max_chunks, providers = AUDIO.n_mels, AUDIO.chunk_frames, 8, None, ["test"]

    def __init__(self, poison: float | None = None):
        self.poison = poison

    def run(self, feeds: dict) -> np.ndarray:
        rows = np.ones((len(feeds["frames"]), AUDIO.chunk_tokens, self.width), np.float32)
        if self.poison is not None:
            rows[-1, 0, 3] = self.poison
        return rows


def test_finite_rows_pass_through():
    rows = Encoder(Backend(), AUDIO).rows(np.zeros((AUDIO.n_mels, 900), np.float32))
    assert rows.shape == (50 + 50 + 13, 8) and np.isfinite(rows).all()


@pytest.mark.parametrize("poison", [np.inf, -np.inf, np.nan])
def test_an_overflowed_graph_is_refused_not_passed_to_the_decoder(poison):
    with pytest.raises(EncoderOverflow, match="fp32 or int8 encoder"):
        Encoder(Backend(poison), AUDIO).rows(np.zeros((AUDIO.n_mels, 900), np.float32))


def test_chunk_by_chunk_encoding_is_guarded_too():
    """Sessions call run_chunks directly as audio arrives."""
    with pytest.raises(EncoderOverflow):
        Encoder(Backend(np.nan), AUDIO).run_chunks(np.zeros((AUDIO.n_mels, 400), np.float32), [400], 400)
