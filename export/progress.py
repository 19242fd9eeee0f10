"""A progress bar on a terminal, silence otherwise (CI logs, pipes)."""

from __future__ import annotations

import sys
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], *, total: int | None = None, desc: str = "", initial: int = 0) -> Iterator[T]:
    if not sys.stderr.isatty():
        yield from items
        return
    from tqdm import tqdm

    yield from tqdm(items, total=total, desc=desc, initial=initial, leave=False, file=sys.stderr)
