"""Shared CLI plumbing: one error line and exit 2 for user mistakes, the generation flags."""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import fields
from typing import Callable

from runtime.errors import MossError


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (and exit 2), like every other user mistake."""

    def error(self, message: str):  # type: ignore[override]
        say(f"error: {message} (see {self.prog} --help)")
        raise SystemExit(2)


def run_guarded(main: Callable[[], int], verbose: bool) -> int:
    try:
        return main()
    except MossError as e:
        if verbose:
            raise
        say(f"error: {e}")
        return 2
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    except BrokenPipeError:  # `... | head`: the reader left; say nothing more
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def say(line: str) -> None:
    """One line on stderr, whatever bytes a path or a question held."""
    sys.stderr.write(line.encode("utf-8", "backslashreplace").decode("utf-8") + "\n")


def finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


def add_load_args(p: argparse.ArgumentParser, threads_help: str | None = None) -> None:
    """How Pipeline.load opens the bundle: --device, --encoder, --decoder, --threads, ..."""
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--encoder", help="encoder variant in the bundle (default: the plan's for this machine)")
    p.add_argument("--decoder", help="decoder variant in the bundle, e.g. q4_k_m (default: the plan's)")
    p.add_argument("--threads", type=int, help=threads_help)
    p.add_argument("--n-gpu-layers", type=int, help="decoder layers on the GPU (-1: all)")
    p.add_argument("--context", type=int, help="decoder positions to allow (default: the device profile's)")
    p.add_argument("--prepack", action=argparse.BooleanOptionalAction, default=None,
                   help="onnxruntime's packed copy of the encoder weights: faster encoding, slower to load, private "
                   "memory (default: the device profile's)")
    p.add_argument("--repack", action=argparse.BooleanOptionalAction, default=None,
                   help="llama.cpp's CPU repacking of the decoder weights: faster decoding, slower prefill and load, "
                   "private memory (default: the device profile's)")
    p.add_argument("--arena", action=argparse.BooleanOptionalAction, default=None,
                   help="onnxruntime's memory arena for the encoder's activations: a little faster, a higher "
                   "memory peak (default: the device profile's)")


def load_options(args: argparse.Namespace) -> dict:
    """Pipeline.load's keyword arguments from add_load_args' flags."""
    return dict(device=args.device, encoder=args.encoder, decoder=args.decoder, threads=args.threads,
                n_gpu_layers=args.n_gpu_layers, context=args.context, prepack=args.prepack, repack=args.repack,
                arena=args.arena)


def add_generation_args(p: argparse.ArgumentParser, title: str = "default: the bundle's generation_config") -> None:
    """--max-new-tokens, --temperature, ...: unset flags keep the bundle's generation_config."""
    from runtime.sampling import GenerationOptions

    kinds = {int: non_negative_int, float: finite_float}
    g = p.add_argument_group(f"generation ({title})")
    for f in fields(GenerationOptions):
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            g.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        else:
            kind = kinds[type(f.default)]
            g.add_argument(flag, type=kind, default=None, help="0 is greedy" if f.name == "temperature" else None)


def generation_overrides(args: argparse.Namespace) -> dict:
    from runtime.sampling import GenerationOptions

    return {f.name: getattr(args, f.name) for f in fields(GenerationOptions) if getattr(args, f.name) is not None}
