"""GET /: one small page, no build step and no external assets (it works offline on a device)."""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files


@lru_cache(maxsize=1)
def page_html() -> str:
    return files("runtime.serve").joinpath("page.html").read_text(encoding="utf-8")
