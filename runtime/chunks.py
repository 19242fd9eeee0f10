"""How a clip's mel frames are cut into encoder chunks and how many audio tokens they give.

The chunk size comes from the manifest (upstream's 2 * n_window = 400 frames, 4 s; or a
windowed family's whole windows)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runtime.manifest import AudioInfo


def conv_out_len(n: int) -> int:
    """One Conv2d(kernel 3, stride 2, pad 1) along an axis."""
    return (n - 1) // 2 + 1


def stem_out_len(n: int) -> int:
    """Three stride-2 convolutions: 400 frames -> 50 tokens, 128 mel bins -> 16."""
    return conv_out_len(conv_out_len(conv_out_len(n)))


def chunk_lengths(frames: int, chunk: int) -> list[int]:
    return [min(chunk, frames - start) for start in range(0, frames, chunk)]


def audio_token_count(frames: int, chunk: int) -> int:
    """ceil(frames / 8) when the chunk is a multiple of 8, as 400 is."""
    return sum(stem_out_len(n) for n in chunk_lengths(frames, chunk))


def window_tokens(n_samples: int, audio: "AudioInfo") -> list[tuple[int, int]]:
    """A windowed family's windows: (samples, rows kept) each, a window of n samples keeping
    (n - 1) // samples_per_token + 1 rows (upstream's processor)."""
    window = audio.window_samples
    lengths = [min(window, n_samples - start) for start in range(0, n_samples, window)]
    return [(n, (n - 1) // audio.samples_per_token + 1) for n in lengths]


def clip_tokens(n_samples: int, audio: "AudioInfo") -> int:
    """Audio tokens (rows) a clip of n samples gives, as the family's processor counts them."""
    if audio.window_samples:
        return sum(rows for _, rows in window_tokens(n_samples, audio))
    return audio_token_count(n_samples // audio.hop_length, audio.chunk_frames)
