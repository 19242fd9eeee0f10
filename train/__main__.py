"""python -m train {run, pilot, evalset, score, compare, report}: the recipe, a shortened pilot of it,
evaluation sets, scoring a bundle, comparing two bundles' scores, and the model card's measurements."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

# Before torch loads OpenMP: spinning workers collapse throughput (30x measured) when other
# processes share the two cores; passive waiting keeps most of it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

DEFAULT_OUT = Path("models/moss-audio-tiny")
DEFAULT_CACHE = Path(".cache/train")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("run", help="synthesize data, train, and write the model folder")
    r.add_argument("--out", type=Path, default=DEFAULT_OUT)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--steps", type=int, default=None, help="override the number of joint training steps")
    r.add_argument("--ctc-steps", type=int, default=None, help="override the number of CTC-only (acoustic) steps before them")
    r.add_argument("--scale", type=float, default=1.0, help="scale the number of training clips (e.g. 0.1 for a pilot)")
    r.add_argument("--restart", action="store_true",
                   help="discard the snapshot an interrupted run of the same recipe left in --cache (it resumes from it otherwise)")

    pl = sub.add_parser("pilot", help="a shortened recipe scored by greedy CTC (and, after joint steps, decoder) "
                                      "transcripts: a 20-60 min check of a recipe change before the full run")
    pl.add_argument("--ctc-steps", type=int, default=2500)
    pl.add_argument("--steps", type=int, default=0, help="joint steps after the acoustic ones (0: score the encoder only)")
    pl.add_argument("--eval", type=Path, action="append",
                    help=f"evaluation set(s) to score (default: {DEFAULT_OUT / 'eval'})")
    pl.add_argument("--json", type=Path, help="write the pilot's recipe, history and scores here")
    for parser in (r, pl):
        parser.add_argument("--set", dest="assign", action="append", default=[], metavar="SECTION.NAME=VALUE",
                            help="change the recipe, e.g. train.budget_frames=2400 or audio.downsample_hidden_size=64")
        parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                            help="feature cache (reused when the data config matches)")

    e = sub.add_parser("evalset", help="build an evaluation set (held-out by default, or your sentences and voices)")
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--sentences", type=Path, help="one sentence per line, optionally 'xx<TAB>text' (xx: en de fr es it)")
    e.add_argument("--voices", help="comma-separated VOICE[+VARIANT][:SPEED[:PITCH]], e.g. en-us+f4:150:60,de+m6")
    e.add_argument("--seed", type=int, default=1234)
    e.add_argument("--clean", action="store_true", help="no noise or reverb")
    e.add_argument("--training", type=int, metavar="N",
                   help="N transcription clips of the recipe's own training texts and voices (the data of --set's recipe, "
                        "built into --cache if missing): CER on them against held-out clips tells underfitting from overfitting")
    e.add_argument("--set", dest="assign", action="append", default=[], metavar="SECTION.NAME=VALUE",
                   help="with --training: the recipe whose data to draw from (e.g. data.seed=1)")
    e.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="with --training: the feature cache")

    s = sub.add_parser("score", help="run a bundle over an evaluation set and report CER/WER, language and timestamp scores")
    s.add_argument("bundle", type=Path)
    s.add_argument("--eval", type=Path, default=DEFAULT_OUT / "eval")
    s.add_argument("--encoder", default="fp32")
    s.add_argument("--decoder", default="f32")
    s.add_argument("--json", type=Path, help="also write the scores and every answer here")

    from train.compare import RESAMPLES  # numpy and train.score: light

    c = sub.add_parser("compare", help="two `score --json` files of the same evaluation set: each metric's difference "
                                       "with its 95 %% interval over resampled clips (paired bootstrap)")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    c.add_argument("--resamples", type=int, default=RESAMPLES, help="bootstrap draws (at least 1)")
    c.add_argument("--seed", type=int, default=0)

    rp = sub.add_parser("report", help="export every variant, score them on the shipped and second sets, "
                                       "check against the reference, and rewrite the model card")
    rp.add_argument("--model", type=Path, default=DEFAULT_OUT)
    rp.add_argument("--bundle", type=Path, default=Path("bundles/moss-audio-tiny"))
    rp.add_argument("--second", type=Path, default=DEFAULT_CACHE / "second-set",
                    help="where the second set is built (from train/sets/second_set.txt and SECOND_VOICES)")
    rp.add_argument("--skip-export", action="store_true", help="reuse an existing --bundle")
    rp.add_argument("--card-only", action="store_true", help="only rewrite README.md from scores.json")

    a = p.parse_args(argv)
    if a.cmd == "report":
        return _report(a)
    if a.cmd == "run":
        return _run(a)
    if a.cmd == "pilot":
        return _pilot(a)
    if a.cmd == "evalset":
        return _evalset(a)
    if a.cmd == "compare":
        return _compare(a)
    return _score(a)


def _recipe(assignments: list[str], seed: int = 0):
    from train.recipe import RecipeConfig, override

    base = RecipeConfig(seed=seed)
    try:  # --seed seeds the data too; --set comes after it, so data.seed=N still wins
        return override(replace(base, data=replace(base.data, seed=seed)), assignments)
    except ValueError as e:
        raise SystemExit(f"python -m train: {e}") from None


def _pilot(a) -> int:
    from train.pilot import run_pilot

    cfg = _recipe(a.assign)
    dirs = a.eval or [DEFAULT_OUT / "eval"]
    sets = {d.name if d.name != "eval" else str(d.parent.name): d for d in dirs}
    if len(sets) < len(dirs):
        print("two --eval sets have the same name: give each its own folder name", file=sys.stderr)
        return 2
    missing = [str(d) for d in sets.values() if not (d / "eval.jsonl").is_file()]
    if missing:
        print(f"no eval.jsonl in {', '.join(missing)} (build one with python -m train evalset --out DIR)", file=sys.stderr)
        return 2
    result = run_pilot(cfg, a.ctc_steps, a.steps, a.cache, sets, log=lambda m: print(m, flush=True))
    if a.json:
        from runtime.atomic import write_bytes_atomic

        write_bytes_atomic(a.json, json.dumps(result, indent=1).encode())
    return 0


def _run(a) -> int:
    from train.recipe import run

    cfg = _recipe(a.assign, a.seed)
    data = cfg.data
    if a.scale != 1.0:
        data = replace(data, **{part: {k: max(1, int(v * a.scale)) if v else 0
                                       for k, v in getattr(data, part).items()}
                                for part in ("single", "multi", "words")})
    cfg = replace(cfg, data=data, train=replace(cfg.train, steps=cfg.train.steps if a.steps is None else a.steps,
                                                 ctc_steps=cfg.train.ctc_steps if a.ctc_steps is None else a.ctc_steps))
    run(cfg, a.out, a.cache, log=lambda m: print(m, flush=True), restart=a.restart)
    return 0


def _evalset(a) -> int:
    from train.evalset import (EVAL_AUGMENT, build_heldout_evalset, custom_items, read_sentences, training_items,
                               write_evalset)
    from train.voices import Voice

    if a.training is not None:
        from train.data import build_store

        if a.sentences is not None or a.voices:
            print("--training takes the training clips' own texts and voices: drop --sentences and --voices", file=sys.stderr)
            return 2
        meta = build_store(_recipe(a.assign).data, a.cache).meta
        write_evalset(a.out, training_items(meta, a.training), None if a.clean else EVAL_AUGMENT)
    elif a.sentences is None:
        build_heldout_evalset(a.out)
    else:
        if not a.voices:
            print("--sentences needs --voices (e.g. --voices en-us+f4:150:60,de+m6:170:40)", file=sys.stderr)
            return 2
        voices = [Voice.parse(v) for v in a.voices.split(",") if v.strip()]
        items = custom_items(read_sentences(a.sentences), voices, a.seed)
        write_evalset(a.out, items, None if a.clean else EVAL_AUGMENT)
    print(f"wrote {a.out}")
    return 0


# Voice settings of the second set: eval-only variants at speeds and pitches near the ends of the
# training ranges, and base voices the shipped set does not use for these languages.
SECOND_VOICES = ("en-us+m7:140:30,en-gb-x-rp+f4:190:70,en-029+linda:165:45,en-gb-scotland+john:150:60,"
                 "en-us-nyc+belinda:180:35,de+david:150:55,fr-fr+max:170:40,es+m6:160:65,it+f4:175:45")


def _report(a) -> int:
    from train.card import render
    from train.evalset import EVAL_AUGMENT, custom_items, read_sentences, write_evalset
    from train.report import demo_check, export_all, score_sets, variants, write_report
    from train.voices import Voice

    def write_card() -> None:
        report = json.loads((a.model / "scores.json").read_text())
        (a.model / "README.md").write_text(render(a.model, report, {"second_voices": SECOND_VOICES.replace(",", ", ")}))
        print(f"wrote {a.model / 'README.md'}")

    if a.card_only:
        write_card()
        return 0
    if not a.skip_export:
        export_all(a.model, a.bundle)
    sentences = Path(__file__).parent / "sets" / "second_set.txt"
    voices = [Voice.parse(v) for v in SECOND_VOICES.split(",")]
    write_evalset(a.second, custom_items(read_sentences(sentences), voices, seed=7), EVAL_AUGMENT)
    demo = demo_check(a.model, a.bundle)
    print(f"demo: {demo}", flush=True)
    second = [("fp32", "f32"), ("int8", "f32"), ("fp32", "q4_k_m")]  # the extremes; every variant on the shipped set
    scores = score_sets(a.bundle, {"shipped": (a.model / "eval", variants()), "second": (a.second, second)},
                        log=lambda m: print(m, flush=True))
    write_report(a.model / "scores.json", demo, scores)
    write_card()
    return 0


def _score(a) -> int:
    from train.score import format_scores, score_bundle

    result = score_bundle(a.bundle, a.eval, encoder=a.encoder, decoder=a.decoder)
    print(format_scores(result["summary"]))
    if a.json:
        a.json.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    return 0


def _compare(a) -> int:
    from train.compare import compare, format_differences, load_items

    try:
        rows = compare(load_items(a.a), load_items(a.b), resamples=a.resamples, seed=a.seed)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_differences(rows, a.a.name, a.b.name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
