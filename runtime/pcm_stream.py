"""Audio blocks from a byte stream as they arrive (a pipe from a microphone: `arecord ... |`):
a WAV header is read when the stream starts with one, else raw PCM as the caller describes it."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO, Iterator

import numpy as np

from runtime.errors import AudioError

FORMATS = {"s16le": np.dtype("<i2"), "s32le": np.dtype("<i4"), "f32le": np.dtype("<f4"), "u8": np.dtype("u1")}


@dataclass(frozen=True)
class PcmFormat:
    rate: int
    channels: int
    dtype: np.dtype

    @property
    def frame_bytes(self) -> int:
        return self.channels * self.dtype.itemsize


def read_exactly(stream: BinaryIO, n: int) -> bytes:
    data = b""
    while len(data) < n:
        got = stream.read(n - len(data))
        if not got:
            break
        data += got
    return data


def wav_header(stream: BinaryIO, first: bytes) -> PcmFormat:
    """Read a WAV header whose first 12 bytes are `first`, up to the start of its data chunk."""
    if first[8:12] != b"WAVE":
        raise AudioError("the input starts with RIFF but is not WAVE audio")
    fmt = None
    while True:
        head = read_exactly(stream, 8)
        if len(head) < 8:
            raise AudioError("the WAV input ended before its data chunk")
        tag, size = head[:4], struct.unpack("<I", head[4:])[0]
        if tag == b"data":
            break
        body = read_exactly(stream, size + (size & 1))
        if tag == b"fmt ":
            code, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            if code == 0xFFFE:  # WAVE_FORMAT_EXTENSIBLE: the sub-format's first two bytes
                code = struct.unpack("<H", body[24:26])[0]
            kinds = {(1, 8): "u8", (1, 16): "s16le", (1, 32): "s32le", (3, 32): "f32le"}
            if (code, bits) not in kinds:
                raise AudioError(f"WAV input of format {code} with {bits}-bit samples; stream 8/16/32-bit PCM or "
                                 "32-bit float")
            fmt = PcmFormat(rate, channels, FORMATS[kinds[(code, bits)]])
    if fmt is None:
        raise AudioError("the WAV input has no fmt chunk before its data")
    return fmt


def pcm_blocks(stream: BinaryIO, raw: PcmFormat, block_bytes: int = 6400) -> tuple[PcmFormat, Iterator[np.ndarray]]:
    """(format, blocks of mono float32 samples) as the bytes arrive; `raw` describes headerless input."""
    first = read_exactly(stream, 12)
    fmt = wav_header(stream, first) if first[:4] == b"RIFF" else raw
    pending = b"" if first[:4] == b"RIFF" else first

    def blocks() -> Iterator[np.ndarray]:
        nonlocal pending
        while True:
            got = stream.read1(block_bytes) if hasattr(stream, "read1") else stream.read(block_bytes)
            data = pending + got
            usable = len(data) - len(data) % fmt.frame_bytes
            pending = data[usable:]
            if usable:
                yield _samples(data[:usable], fmt)
            if not got:
                return

    return fmt, blocks()


def _samples(data: bytes, fmt: PcmFormat) -> np.ndarray:
    """Mono float32: a block may hold a single frame, too short for a shape to say which axis is time."""
    x = np.frombuffer(data, dtype=fmt.dtype).reshape(-1, fmt.channels)
    if fmt.dtype.kind == "u":
        x = (x.astype(np.float32) - 128) / 128
    elif fmt.dtype.kind == "i":
        x = x.astype(np.float32) / float(2 ** (8 * fmt.dtype.itemsize - 1))
    return x.astype(np.float32).mean(axis=1)
