"""python -m bench.upstream --upstream DIR [--family moss-audio|moss-music] [--seconds S ...] [--python PY]
                           [--work DIR] [--json OUT]

How exactly our F32 bundle (ONNX FP32 encoder, F32 GGUF, KV cache f32, flash attention off)
matches upstream's own PyTorch code, on a synthetic checkpoint of a configuration no shipped
size has (tests.conftest.ODD_OVERRIDES: odd widths, 3-head attention, output_dim != d_model
so out_proj exists, two DeepStack taps) and deterministic clips of 0.7 s, 9.3 s and 30 s.

DIR is a checkout of OpenMOSS/MOSS-Audio (or, with --family moss-music, of OpenMOSS/MOSS-Music:
the same architecture under its own class names; with --family moss-transcribe-diarize, of
OpenMOSS/MOSS-Transcribe-Diarize, driven as bench/upstream_diarize.py says) or its extracted
src/ folder; nothing of upstream lives in this repository. Upstream runs in a second process under --python (default: this
interpreter), which must have the transformers version upstream pins (4.57.1: under
transformers 5 its encoder indexes a layer output that is no longer a tuple). That process
runs upstream's code only, plus the driver named below:

* upstream: MossAudioModel.from_pretrained and MossAudioProcessor.from_pretrained (its mel with
  its bfloat16 rounding, its prompt with time markers), forward for the last-position logits,
  generate(do_sample=False) for greedy tokens: what src/hf_inference.py does, FP32 on CPU.
  Driver: the checkpoint's special-token ids go to the processor (its defaults are the
  released tokenizer's), and a stub stands in for torchaudio, which the processor imports and
  does not use on its Whisper mel path.
* chunk driver, only where upstream's encoder encodes the whole clip at once (before its
  "Add chunk infer", d7a7519): upstream's encoder forward is given the clip's 400-frame chunks
  as one zero-padded batch (its conv stem, masks, positions, layers, LN, out_proj); the driver
  keeps each chunk's valid tokens and passes the DeepStack taps through out_proj when upstream
  has not (DESIGN, "The model"). Adapter, mergers, injection and decoding stay upstream's.

Per clip: prompt ids equal, mel and packed audio rows against upstream's, last-position logits
max relative error (max |ours - upstream| / max |upstream|), greedy tokens equal.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import re
import subprocess
import sys
import types
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

SECONDS = (0.7, 9.3, 30.0)
SEED = 7  # the odd checkpoint's seed in tests/conftest.py
TARGET = 1e-5  # last-position logits, max relative error
UPSTREAM = "upstream's forward"
DRIVER = "upstream layers, per-chunk driver"


def main(argv: list[str] | None = None) -> int:
    from runtime.cli import Parser, run_guarded

    p = Parser(prog="python -m bench.upstream", description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--upstream", type=Path, help="MOSS-Audio (or MOSS-Music) checkout, or its src/ folder (required)")
    p.add_argument("--family", choices=["moss-audio", "moss-music", "moss-transcribe-diarize"], default="moss-audio",
                   help="which upstream DIR holds and which the synthetic checkpoint declares")
    p.add_argument("--seconds", type=float, nargs="+", default=list(SECONDS), help="clip lengths")
    p.add_argument("--python", default=sys.executable,
                   help="interpreter for upstream's side, with the transformers it pins (default: this one)")
    p.add_argument("--work", type=Path, default=Path("work/upstream"), help="checkpoint, bundle and exchange files")
    p.add_argument("--json", type=Path, help="write the results here (default: WORK/upstream.json)")
    p.add_argument("--tokens", type=int, default=24, help="greedy tokens per clip")
    p.add_argument("--question", default=None, help="default: the family's own (upstream's default question)")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # upstream's side, in the other process
    args = p.parse_args(argv)
    if args.child:
        return _upstream_side(json.loads(args.child.read_text()))
    if args.upstream is None:
        p.error("--upstream DIR is required: a checkout of OpenMOSS/MOSS-Audio or its src/ folder")
    if args.tokens < 1:
        p.error("--tokens must be at least 1")
    return run_guarded(lambda: _run(args), args.verbose)


# --- this process: checkpoint, bundle, our runtime, the comparison ---------------------------
def _run(args: argparse.Namespace) -> int:
    from tests.conftest import clip

    from export.families import BY_NAME

    family = BY_NAME[args.family]
    args.question = args.question or family.default_question
    src = upstream_src(args.upstream, family.model_type)
    pin = _transformers_pin(src)
    _check_python(args.python, pin)
    work = args.work.resolve()
    ckpt, bundle = _prepare(work, family)
    np.savez(work / "clips.npz", **{str(s): clip(s) for s in args.seconds})
    spec = dict(src=str(src), checkpoint=str(ckpt), clips=str(work / "clips.npz"), question=args.question,
                tokens=args.tokens, out=str(work / "upstream.npz"), seconds=args.seconds,
                model_type=family.model_type, architecture=family.architecture)
    (work / "spec.json").write_text(json.dumps(spec, indent=2))
    _call_upstream(args.python, work / "spec.json")
    theirs = dict(np.load(work / "upstream.npz"))
    meta = json.loads(str(theirs.pop("meta")))
    rows = _compare(theirs, meta, _ours(bundle, args.question, args.tokens, args.seconds), args.seconds)
    report = dict(upstream=dict(meta["upstream"], path=str(args.upstream),
                                **_source_id(args.upstream, src, family.model_type)),
                  checkpoint=dict(family=family.name, size="tiny", seed=SEED, overrides=_odd_overrides(family)),
                  ours=dict(encoder="fp32 (onnxruntime)", decoder="f32", kv_type="f32", flash_attn="off"),
                  question=args.question, target_logits_rel=TARGET, rows=rows)
    _print(report)
    out = args.json or work / "upstream.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {out}")
    return 0


def upstream_files(model_type: str) -> tuple[str, ...]:
    return tuple(f"{part}_{model_type}.py" for part in ("modeling", "processing", "configuration"))


def upstream_src(folder: Path, model_type: str = "moss_audio") -> Path:
    """The folder holding upstream's modeling/processing/configuration files, or a clear error."""
    from runtime.errors import OptionsError

    files = upstream_files(model_type)
    folder = folder.expanduser()
    if not folder.is_dir():
        raise OptionsError(f"--upstream {folder}: no such folder; give a checkout of OpenMOSS/MOSS-Audio or its src/")
    if (folder / "HEAD").is_file() and (folder / "objects").is_dir():
        raise OptionsError(f"--upstream {folder} is a bare git repository; extract a commit first, e.g. "
                           f"mkdir OUT && git -C {folder} archive COMMIT src pyproject.toml | tar -x -C OUT")
    for candidate in (folder / "src", folder / model_type, folder):
        if all((candidate / f).is_file() for f in files):
            return candidate.resolve()
    raise OptionsError(f"--upstream {folder}: no {', '.join(files)} in it or in its src/; give a checkout "
                       "of the family's OpenMOSS repository (MOSS-Audio, MOSS-Music) or its src/ folder")


def _transformers_pin(src: Path) -> str | None:
    """The transformers version upstream's pyproject.toml pins (beside or above src/), if any."""
    for project in (src / "pyproject.toml", src.parent / "pyproject.toml"):
        if project.is_file():
            found = re.search(r'"transformers==([^";\s]+)', project.read_text())
            return found.group(1) if found else None
    return None


def _check_python(python: str, pin: str | None) -> None:
    """Fail early, saying what to do, when `python` lacks torch/transformers or has another transformers
    than upstream pins."""
    from runtime.errors import OptionsError

    try:
        run = subprocess.run([python, "-c", "import torch, transformers; print(transformers.__version__)"],
                             capture_output=True, text=True)
    except OSError as e:
        raise OptionsError(f"--python {python}: cannot run it ({e.strerror})") from None
    if run.returncode != 0:
        raise OptionsError(f"--python {python} cannot import torch and transformers: {run.stderr.strip()[-500:]}")
    have = run.stdout.strip()
    if pin and have != pin:
        raise OptionsError(f"upstream pins transformers=={pin} but {python} has {have or 'no transformers'}; make an "
                           f"environment for it (python -m venv --system-site-packages VENV && VENV/bin/pip install "
                           f"transformers=={pin}) and pass --python VENV/bin/python")


def _source_id(given: Path, src: Path, model_type: str) -> dict:
    """The git commit of a checkout (when `given` is its top) and the sha256 of upstream's modeling file."""
    run = subprocess.run(["git", "-C", str(given), "rev-parse", "--show-toplevel", "HEAD"], capture_output=True,
                         text=True)
    lines = run.stdout.split()
    own = run.returncode == 0 and Path(lines[0]).resolve() in (given.resolve(), src.parent)
    digest = hashlib.sha256((src / upstream_files(model_type)[0]).read_bytes()).hexdigest()
    return dict(commit=lines[1] if own else None, modeling_sha256=digest)


def _odd_overrides(family) -> dict:
    from dataclasses import asdict

    from export.families import MOSS_TRANSCRIBE_DIARIZE
    from tests.conftest import DIARIZE_ODD, ODD_OVERRIDES

    return asdict(DIARIZE_ODD) if family is MOSS_TRANSCRIBE_DIARIZE else ODD_OVERRIDES


def _prepare(work: Path, family) -> tuple[Path, Path]:
    """The odd checkpoint (128 mel bins, n_window 200: what upstream's classes need) and its F32 bundle,
    rebuilt every run so the bundle is always this code's."""
    from export.bundle import ExportOptions, export_bundle
    from export.diarize.synth import write_diarize_checkpoint
    from export.families import MOSS_TRANSCRIBE_DIARIZE
    from export.synth import write_checkpoint
    from tests.conftest import DIARIZE_ODD, DIARIZE_ODD_TEMPLATE

    work.mkdir(parents=True, exist_ok=True)
    if family is MOSS_TRANSCRIBE_DIARIZE:
        ckpt = write_diarize_checkpoint(work / "checkpoint-odd", DIARIZE_ODD, seed=SEED, template=DIARIZE_ODD_TEMPLATE)
    else:
        ckpt = write_checkpoint(work / "checkpoint-odd", "tiny", seed=SEED, config_overrides=_odd_overrides(family),
                                family=family)
    bundle = work / "bundle-odd"
    export_bundle(ckpt, bundle, ExportOptions(encoder=("fp32",), decoder=("f32",), expected=False))
    return ckpt, bundle


def _call_upstream(python: str, spec: Path) -> None:
    from runtime.errors import OptionsError

    repo = Path(__file__).resolve().parent.parent
    run = subprocess.run([python, "-m", "bench.upstream", "--child", str(spec)], cwd=repo, capture_output=True,
                         text=True)
    if run.returncode != 0:
        raise OptionsError(f"upstream's side failed ({python}):\n{run.stderr.strip()[-3000:]}")


def _ours(bundle: Path, question: str, tokens: int, seconds: list[float]) -> dict[str, dict]:
    """Our runtime on the same clips: prompt ids, mel, packed rows, last-position logits, greedy ids."""
    from runtime.mel import log_mel, window_mels
    from runtime.pipeline import Pipeline
    from tests.conftest import clip

    pipe = Pipeline.load(bundle, device="cpu", encoder="fp32", decoder="f32", kv_type="f32", flash_attn="off")
    out = {}
    for s in seconds:
        x = clip(s)
        rows = pipe.encode_audio(x)
        prompt = pipe.prompt([pipe.token_count(x.size)], question)
        greedy = pipe.generate(x, question, temperature=0, max_new_tokens=tokens).token_ids
        a = pipe.manifest.audio
        mel = window_mels(x, a)[0] if a.window_samples else log_mel(x, a)
        out[str(s)] = dict(ids=prompt.ids, mel=mel, rows=rows,
                           logits=pipe.decoder.prefill(prompt, rows)[-1], greedy=np.asarray(greedy))
    pipe.close()
    return out


def _max_rel(ref: np.ndarray, got: np.ndarray) -> float | None:
    if ref.shape != got.shape:
        return None
    return float(np.abs(got.astype(np.float64) - ref).max() / np.abs(ref.astype(np.float64)).max())


def _compare(theirs: dict[str, np.ndarray], meta: dict, ours: dict[str, dict], seconds: list[float]) -> list[dict]:
    rows = []
    for variant in meta["variants"]:
        for s in seconds:
            key, o = f"{variant}/{s}", ours[str(s)]
            row = dict(variant=variant, clip_s=s, audio_tokens=int(o["rows"].shape[0]))
            error = meta["errors"].get(key)
            ids = theirs[f"{s}/ids"]
            row["prompt_ids_equal"] = bool(np.array_equal(ids, o["ids"]))
            mel = theirs[f"{s}/mel"]
            same_shape = mel.shape == o["mel"].shape
            row["mel_differ"] = f"{int((mel != o['mel']).sum())}/{mel.size}" if same_shape else "shape"
            row["mel_max_abs"] = float(np.abs(mel - o["mel"]).max()) if same_shape else None
            if error:
                rows.append(dict(row, rows_rel=None, logits_rel=None, greedy=None, greedy_equal=None, error=error))
                continue
            up, me = theirs[f"{key}/greedy"].tolist(), o["greedy"].tolist()
            same = next((i for i, (a, b) in enumerate(zip(up, me)) if a != b), min(len(up), len(me)))
            rows.append(dict(row, rows_rel=_max_rel(theirs[f"{key}/rows"], o["rows"]),
                             logits_rel=_max_rel(theirs[f"{key}/logits"], o["logits"]),
                             greedy=f"{same}/{max(len(up), len(me))}", greedy_equal=up == me, error=None))
    return rows


def _print(report: dict) -> None:
    from quant.report import format_table

    u = report["upstream"]
    print(f"\nupstream: {u['path']} (commit {u['commit'] or 'unknown'}, {u['model_class']}, modeling sha256 "
          f"{u['modeling_sha256'][:12]}), transformers {u['transformers']}, torch {u['torch']}")
    print(f"upstream's encoder: {u['encoder']}")
    if not u["chunked"]:
        print(f"  it does not chunk: '{DRIVER}' drives its encoder per 400-frame chunk as DESIGN describes")
    print(f"ours: ONNX FP32 encoder, F32 GGUF, KV f32, flash attention off; question {report['question']!r}")

    def fmt(value: float | None, spec: str) -> str:
        return "-" if value is None else spec.format(value)

    def met(r: dict) -> str:
        if r["error"]:
            return "raised"
        return "yes" if r["logits_rel"] is not None and r["logits_rel"] <= TARGET else "NO"

    cells = [[r["variant"], r["clip_s"], r["audio_tokens"], "yes" if r["prompt_ids_equal"] else "NO",
              r["mel_differ"], fmt(r["mel_max_abs"], "{:.1e}"), fmt(r["rows_rel"], "{:.2e}"),
              fmt(r["logits_rel"], "{:.2e}"), r["greedy"] or "-", met(r)] for r in report["rows"]]
    print(format_table(["upstream side", "clip s", "audio tok", "ids equal", "mel differ", "mel max abs", "rows rel",
                        "logits rel", "greedy", f"logits <= {TARGET:g}"], cells, left=1))
    print("rows/logits rel: max |ours - upstream| / max |upstream|; greedy: leading tokens equal / the longer "
          "answer (EOS included)")
    for r in report["rows"]:
        if r["error"]:
            print(f"{r['variant']}, {r['clip_s']} s: raised {r['error']}")


# --- the other process: upstream's code ------------------------------------------------------
def _upstream_side(spec: dict) -> int:
    """Run upstream on every clip; write ids, mel, rows, logits and greedy ids to spec['out']."""
    import torch
    import transformers

    if spec["model_type"] == "moss_transcribe_diarize":
        from bench.upstream_diarize import diarize_side

        return diarize_side(spec, UPSTREAM)
    modeling, processing = import_upstream(Path(spec["src"]), spec["model_type"])
    ckpt = Path(spec["checkpoint"])
    model_class = getattr(modeling, spec["architecture"])
    model, info = model_class.from_pretrained(str(ckpt), dtype=torch.float32, output_loading_info=True)
    bad = {k: v for k, v in info.items() if v}
    if bad:
        raise RuntimeError(f"upstream's model did not take the checkpoint's weights by name: {bad}")
    model.eval()
    ids = json.loads((ckpt / "processor_config.json").read_text())
    processor = getattr(processing, spec["architecture"].replace("Model", "Processor")).from_pretrained(
        str(ckpt), enable_time_marker=True, audio_token_id=ids["audio_token_id"],
        audio_start_id=ids["audio_start_id"], audio_end_id=ids["audio_end_id"])
    encoder = model.audio_encoder
    chunked = hasattr(encoder, "chunk_frames")
    variants: dict[str, Callable | None] = {UPSTREAM: None}
    if not chunked:
        variants[DRIVER] = _per_chunk_features(encoder, 2 * int(json.loads((ckpt / "config.json").read_text())
                                                                ["audio_config"]["n_window"]))
    out: dict[str, np.ndarray] = {}
    errors: dict[str, str] = {}
    clips = np.load(spec["clips"])
    for s in spec["seconds"]:
        inputs = processor(text=spec["question"], audios=[clips[str(s)]], return_tensors="pt")
        inputs["audio_data"] = inputs["audio_data"].to(torch.float32)  # as src/hf_inference.py: to the model's dtype
        inputs["audio_input_mask"] = inputs["input_ids"] == processor.audio_token_id
        out[f"{s}/ids"] = inputs["input_ids"][0].numpy()
        out[f"{s}/mel"] = inputs["audio_data"][0, :, : int(inputs["audio_data_seqlens"][0])].numpy()
        for name, features in variants.items():
            try:
                with _features(model, features), torch.no_grad():
                    with _packed_rows(model) as rows:
                        logits = model(**inputs).logits[0, -1]
                    packed = torch.cat(rows, dim=-1)[0]
                    gen = model.generate(**inputs, do_sample=False, max_new_tokens=spec["tokens"], use_cache=True)
            except Exception as e:  # a failure of upstream's own forward is a result to report
                errors[f"{name}/{s}"] = f"{type(e).__name__}: {str(e).splitlines()[0]}"
                continue
            out[f"{name}/{s}/logits"] = logits.numpy()
            out[f"{name}/{s}/rows"] = packed.numpy()
            out[f"{name}/{s}/greedy"] = gen[0, inputs["input_ids"].shape[1]:].numpy()
    encoding = (f"chunks of {encoder.chunk_frames} frames (n_window {encoder.n_window}), conv_chunksize "
                f"{encoder.conv_chunksize}" if chunked else "the whole clip at once (no chunking)")
    meta = dict(upstream=dict(transformers=transformers.__version__, torch=torch.__version__, python=sys.executable,
                              chunked=chunked, encoder=encoding, model_class=spec["architecture"]),
                variants=list(variants), errors=errors)
    np.savez(spec["out"], meta=np.asarray(json.dumps(meta)), **out)
    return 0


def import_upstream(src: Path, model_type: str, package: str = "src") -> tuple[types.ModuleType, types.ModuleType]:
    """Upstream's modules, from `src` under the package name its own imports use ("src" for MOSS-Audio's
    absolute imports; the folder's own name for a package that imports relatively)."""
    module = types.ModuleType(package)
    module.__path__ = [str(src)]
    sys.modules[package] = module
    modeling = importlib.import_module(f"{package}.modeling_{model_type}")
    sys.modules.setdefault("torchaudio", types.ModuleType("torchaudio"))  # imported, unused for Whisper mels
    return modeling, importlib.import_module(f"{package}.processing_{model_type}")


def _per_chunk_features(encoder, chunk: int) -> Callable:
    """get_audio_features for an encoder that does not chunk: its forward on the clip's chunks as one
    zero-padded batch (a single chunk unpadded), valid tokens kept in order, taps through out_proj."""
    import torch

    def features(input_features: torch.Tensor, feature_lens: torch.Tensor):
        mel = input_features[0, :, : int(feature_lens[0])]
        lengths = [min(chunk, mel.shape[-1] - start) for start in range(0, mel.shape[-1], chunk)]
        batch = mel.new_zeros((len(lengths), mel.shape[0], max(lengths)))
        for i, n in enumerate(lengths):
            batch[i, :, :n] = mel[:, i * chunk : i * chunk + n]
        lens = torch.tensor(lengths)
        out = encoder(batch, feature_lens=lens, output_deepstack_hidden_states=True)
        tokens = encoder._compute_downsampled_length(lens)
        keep = torch.arange(out.last_hidden_state.shape[1])[None, :] < tokens[:, None]
        width = encoder.config.output_dim
        taps = [(h if h.shape[-1] == width else encoder.out_proj(h))[keep][None] for h in out.hidden_states]
        return out.last_hidden_state[keep][None], taps

    return features


@contextmanager
def _features(model, features: Callable | None) -> Iterator[None]:
    """Swap the model's get_audio_features for the driver's (None: upstream's own)."""
    if features is None:
        yield
        return
    model.get_audio_features = features
    try:
        yield
    finally:
        del model.get_audio_features


@contextmanager
def _packed_rows(model) -> Iterator[list]:
    """Record the adapter's and the mergers' outputs (read only): the packed rows [main | tap0 | ...]."""
    rows: list = []
    modules = [model.audio_adapter, *model.deepstack_audio_merger_list]
    handles = [m.register_forward_hook(lambda _m, _i, o: rows.append(o)) for m in modules]
    try:
        yield rows
    finally:
        for h in handles:
            h.remove()


if __name__ == "__main__":
    sys.exit(main())
