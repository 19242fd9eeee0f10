"""Shared CLI plumbing: one error line and exit 2 for user mistakes, generation flags."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from typing import Callable

from runtime.errors import MossError
from runtime.sampling import GenerationOptions


def run_guarded(main: Callable[[], int], verbose: bool) -> int:
    try:
        return main()
    except MossError as e:
        if verbose:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def add_generation_args(p: argparse.ArgumentParser) -> None:
    """--max-new-tokens, --temperature, ... with GenerationOptions' defaults (upstream's)."""
    for f in fields(GenerationOptions):
        p.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default,
                       help=f"default {f.default}" + (" (0 is greedy)" if f.name == "temperature" else ""))


def generation_options(args: argparse.Namespace) -> GenerationOptions:
    return GenerationOptions(**{f.name: getattr(args, f.name) for f in fields(GenerationOptions)})
