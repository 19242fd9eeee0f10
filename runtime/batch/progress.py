"""How far a batch is and how fast it goes: a bar on a terminal, one summary line always."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass


@dataclass
class Summary:
    """This run's count, its audio and its speed; inputs answered by earlier runs are `skipped`
    (`skipped_failures` of them with an error)."""

    files: int = 0
    failures: int = 0
    skipped: int = 0
    skipped_failures: int = 0
    audio_s: float = 0.0
    wall_s: float = 0.0
    interrupted: bool = False

    @property
    def audio_hours(self) -> float:
        return self.audio_s / 3600

    @property
    def throughput(self) -> float:
        """Audio seconds per wall second (audio-hours per hour); 1/RTF."""
        return self.audio_s / self.wall_s if self.wall_s else 0.0

    @property
    def rtf(self) -> float:
        """Real-time factor: wall seconds per audio second (below 1 is faster than real time)."""
        return self.wall_s / self.audio_s if self.audio_s else 0.0

    def add(self, record: dict) -> None:
        self.files += 1
        self.failures += bool(record.get("error"))
        self.audio_s += record.get("audio_s") or 0.0

    def line(self) -> str:
        done = f"{self.files} files ({self.failures} failed)"
        if self.skipped:
            done += f", {self.skipped} done before ({self.skipped_failures} failed)"
        speed = f"{self.throughput:.3g} audio-hours/hour, RTF {self.rtf:.3g}" if self.audio_s else "no audio answered"
        return (f"{'interrupted: ' if self.interrupted else ''}{done}, {self.audio_hours:.3g} audio hours in "
                f"{self.wall_s:.1f} s wall: {speed}")

    def to_dict(self) -> dict:
        return {"files": self.files, "failures": self.failures, "skipped": self.skipped,
                "skipped_failures": self.skipped_failures,
                "audio_hours": round(self.audio_hours, 6), "wall_s": round(self.wall_s, 3),
                "audio_s_per_wall_s": round(self.throughput, 4), "rtf": round(self.rtf, 4),
                "interrupted": self.interrupted}


class Progress:
    """Counts records into a Summary; shows files/s and audio-hours/hour with tqdm on a terminal."""

    def __init__(self, total: int, skipped: int = 0, skipped_failures: int = 0, *, show: bool | None = None):
        self.summary = Summary(skipped=skipped, skipped_failures=skipped_failures)
        self._t0 = time.perf_counter()
        self._bar = None
        if sys.stderr.isatty() if show is None else show:
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="file", file=sys.stderr, dynamic_ncols=True)

    def add(self, record: dict) -> None:
        self.summary.add(record)
        self.summary.wall_s = time.perf_counter() - self._t0
        if self._bar is not None:
            self._bar.set_postfix_str(f"{self.summary.throughput:.2f} audio-h/h, {self.summary.failures} failed",
                                      refresh=False)
            self._bar.update(1)

    def close(self) -> Summary:
        self.summary.wall_s = time.perf_counter() - self._t0
        if self._bar is not None:
            self._bar.close()
        return self.summary
