"""The recipe: data -> tokenizer -> model -> training -> the shipped folder (atomically).

Seeded end to end; progress on a terminal, one log line per `log_every` steps otherwise.
"""

from __future__ import annotations

import json
import math
import platform
import random
import shutil
import time
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path

import numpy as np
import torch

from export.atomic import atomic_dir
from export.config import ModelConfig
from export.progress import progress
from export.synth import SynthSize, config_dict
from export.tokens import END_OF_TEXT, IM_END
from train.batches import Examples, LengthSampler, PromptSpec, SpecAugment, TaskMix, alphabet
from train.data import DataConfig, build_seconds, build_store, dataset_hours
from train.features import FeatureStore
from train.greedy import greedy_scores
from train.evalset import EvalSetConfig, build_heldout_evalset
from train.model import TrainableMossAudio
from train.resume import resume_from, save_snapshot, snapshot_path
from train.ship import write_model_folder
from train.tasks import QUESTIONS, timestamp_answer, Segment
from train.texts import LANGUAGES
from train.tokenizer import make_tokenizer

TINY_AUDIO = dict(d_model=256, encoder_layers=4, encoder_attention_heads=4, encoder_ffn_dim=1024,
                  downsample_hidden_size=32, output_dim=256, deepstack_encoder_layer_indexes=[1, 2])
TINY_TEXT = dict(hidden_size=256, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4,
                 num_key_value_heads=2, head_dim=64, max_position_embeddings=4096)


@dataclass(frozen=True)
class TrainConfig:
    # Two phases. Acoustic: conv stem, encoder and adapter under character CTC alone, no decoder.
    # Measured in 800-step pilots on the same batches (1 thread each, two at a time): a CTC-only step
    # takes 0.32 s against 0.87 s for a joint one, and reaches CTC 2.06 where the joint recipe is at
    # 2.68 after the same steps, so the encoder learns ~3.5x faster per second alone; and the joint
    # recipe's decoder had not begun to listen by then (greedy CER 77 %, one language answer for
    # every clip): it learns the templates first. Joint: everything, cross-entropy + CTC.
    # 2500 CTC-only steps (610 s, 2 threads) gave held-out CTC greedy CER 33 %; 500 joint steps after
    # them, greedy CER 69 % and 44 % language accuracy, where joint-only training was at 77 % / 20 %.
    # 5000 + 4500 steps in FP32: measured 23 + 50.5 min (with the guide below) on 2 cores of an
    # AVX-512 EPYC with avx512_bf16. BF16 autocast (below) made the same time hold 6000 + 6000 steps:
    # 17.6 + 56.0 min, plus 7.5 min of features, 81 min of the 90; shipped-set F32 CER (en) 25.4 ->
    # 19.3 % (random words 55.7 -> 42.2 %), language 92 % both, timestamp MAE 1.22 -> 1.19 s. On an
    # AVX2-only EPYC (FP32: no native BF16) a CTC-only step takes 0.50 s against 0.28 (GEMM-bound: mm
    # and addmm are 54 % of it, the conv stem's convolutions 20 %) and a guided joint one ~1.7 s
    # against 0.68: about 3.7 h there.
    ctc_steps: int = 6000
    steps: int = 6000  # joint steps
    lr: float = 1.5e-3
    min_lr_ratio: float = 0.05
    warmup: int = 300  # in each phase
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.98)
    clip_norm: float = 1.0
    ctc_weight: float = 1.0  # in the joint phase; 1.5 vs 0.5 in 800-step pilots: CTC 2.32 vs 2.68, CE equal
    ctc_upsample: int = 3  # character CTC outputs per audio token
    budget_frames: int = 4800  # padded mel frames per batch (48 s)
    max_batch: int = 16
    curriculum: float = 0.15  # first fraction of joint steps: single-sentence clips only
    # Guided attention (train/guide.py) in the joint phase: weight, the prior's width (audio rows,
    # 80 ms each) around each token's forced-aligned row (train/align.py), and the decoder layers whose
    # head 0 it guides. 1000-step joint pilots from one 2500-step acoustic checkpoint (AVX2 EPYC, 1
    # thread each), greedy CER (en) on the shipped set: none 60.2 %, a diagonal prior (words evenly
    # spread over the clip) 56.3 %; aligned, weight 1: layers 1-2 width 3 48.9 %, width 1.5 48.6 %,
    # layers 1-3 width 3 46.7 % (templates 45.7 -> 26.5 %, random words 81.7 -> 76.8 %); weight 3
    # 55.5 %. Full recipe (AVX-512 EPYC, 2 threads), F32 bundle on the shipped set, without -> with it:
    # CER (en) 36.1 -> 25.4 %, timestamp MAE 1.63 -> 1.22 s, language 92 % both; joint phase 48 -> 50.5 min.
    guide_weight: float = 1.0
    guide_width: float = 3.0
    guide_layers: tuple[int, ...] = (1, 2, 3)
    # Time probe (train/timeprobe.py) in the joint phase: weight (0: off), and the decoder layer whose
    # input every audio row's time digits are read from (so the guided heads of that layer and the
    # ones above it find the time at the row they attend to). Off: the full recipe with 0.5 on layer 2
    # (2026-12-07, same seed, data and steps; F32 bundle, shipped set) learned the probe within 400
    # joint steps (loss 8.2 -> 0.03) and its timestamps moved partly: text CER 48.8 -> 34.5 %, boundary
    # error on clips with the right segment count 0.59 -> 0.39 s, second-set MAE 1.96 -> 1.01 s; but
    # the written fractions stayed habitual (".99", ".22", ".55"), fewer counts were right (21 -> 18 of
    # 25; MAE 1.04 -> 1.17 s), and CER (en) went 17.8 -> 21.7 %, language 96 -> 92 %. Step cost: the same
    # within noise (paired ratio 1.018).
    time_weight: float = 0.0
    time_layer: int = 2
    # Answer-token noise in the joint phase: this share of the answer tokens the decoder reads (teacher
    # forcing) is replaced by random ordinary tokens, its targets kept, so that it cannot spell a word
    # from the words before it alone. Why: the shipped model's CER on 41 of its own training clips of
    # random common words (`train evalset --training 120`: same texts and voices) is 38.9 %, as on
    # held-out ones (40.9 %), against 1.0 % on template sentences: it underfits what it has to hear.
    # Off: the full recipe with 0.15
    # (2026-12-07, same seed, data and steps; F32 bundle, shipped set) got worse at what it was for:
    # CER (en) 17.83 -> 23.17 % (random words 40.9 -> 49.6 %, templates 2.3 -> 5.4 %; train compare
    # +5.3 points, 95 % interval [+1.6, +9.2]), language 96 -> 92 %, second set 51.7 -> 56.0 %, its own
    # training word clips 38.9 -> 43.6 %; only the timestamp MAE moved the other way (1.04 -> 0.83 s,
    # [-0.72, +0.29]).
    answer_noise: float = 0.0
    # Share of training clips whose features get SpecAugment masks (train/batches.py; 0: off). Kept: the
    # full recipe with 0 (2026-12-07, same seed, data and steps; F32 bundle, shipped set) fit its training
    # data a little better (final CE/CTC 0.56/0.28 against 0.66/0.51; CER on its own 76 English training
    # clips, `--training 120`, 21.3 -> 19.7 %) but not held-out speech: CER (en) 17.83 -> 20.62 % (train compare +2.8, [-2.1, +8.3];
    # templates 2.3 -> 7.2 %, random words 40.9 -> 40.6 %), language 96 -> 92 %, second set 51.7 -> 51.0 %.
    specaug: float = 0.8
    # "auto": matmuls and convolutions in BF16 (torch.autocast; weights, optimizer and losses stay FP32)
    # on CPUs with native BF16 dot products (avx512_bf16, amx_bf16), FP32 elsewhere, where BF16 is
    # emulated and slower; "bf16" or "fp32" force one. Measured on 2 cores of an AVX-512 EPYC with
    # avx512_bf16 (15-20 steps of real batches): a joint step 0.61 -> 0.49 s, an acoustic one 0.24 -> 0.16 s.
    autocast: str = "auto"
    log_every: int = 100
    snapshot_every: int = 200  # steps between resumable snapshots (train/resume.py): at most ~5 min lost


@dataclass(frozen=True)
class RecipeConfig:
    seed: int = 0
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    audio: dict = field(default_factory=lambda: dict(TINY_AUDIO))
    text: dict = field(default_factory=lambda: dict(TINY_TEXT))
    adapter_hidden_size: int = 512
    bpe_size: int = 1024
    dtype: str = "bfloat16"  # stored weights
    evalset: EvalSetConfig | None = EvalSetConfig()
    tasks: TaskMix = TaskMix()
    # One process on both cores. Measured not to help (2026-12-07, same machine and batches): two
    # 1-thread processes each taking half of every batch and all-reducing the gradients (gloo; 23 ms
    # for 7.4 M) ran a joint step in 0.548 s against 0.537 and an acoustic one in 0.200 s against 0.157.
    threads: int = 2


def override(cfg: RecipeConfig, assignments: list[str]) -> RecipeConfig:
    """Apply 'section.name=value' assignments ('train.budget_frames=2400',
    'audio.downsample_hidden_size=64', 'seed=1'). Values are read as JSON (else as text) and must
    have the type of the value they replace; an int may replace a float, a list a tuple."""
    for item in assignments:
        key, eq, text = item.partition("=")
        section, _, name = key.strip().rpartition(".")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        target = getattr(cfg, section, None) if section else cfg
        known = (sorted(target) if isinstance(target, dict) else
                 [f.name for f in fields(target)] if target is not None and is_dataclass(target) else [])
        if not eq or name not in known:
            hint = f"known: {', '.join(known)}" if known else "sections: train, data, evalset, tasks, audio, text, or none"
            raise ValueError(f"cannot set {item!r}: expected SECTION.NAME=VALUE ({hint})")
        value = _like(target[name] if isinstance(target, dict) else getattr(target, name), value, item)
        changed = dict(target, **{name: value}) if isinstance(target, dict) else replace(target, **{name: value})
        cfg = changed if not section else replace(cfg, **{section: changed})
    return cfg


def _like(current, value, item: str):
    """`value` as the type of `current` (int -> float, list -> tuple), or a ValueError naming both."""
    if isinstance(current, tuple) and isinstance(value, list):
        return tuple(value)
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if current is None or type(value) is type(current):
        return value
    raise ValueError(f"cannot set {item!r}: expected {type(current).__name__} (now {json.dumps(current, default=str)}), "
                     f"got {type(value).__name__}")


def tokenizer_corpus(store) -> list[str]:
    """The text the model reads and writes: prompts, questions, and every answer form."""
    out = ["You are a helpful assistant."] + list(QUESTIONS.values()) * 50 + list(LANGUAGES.values()) * 50
    for m in store.meta:
        segs = [Segment(**s) for s in m["segments"]]
        out += [s.text for s in segs]
        if len(segs) > 1:
            out.append(timestamp_answer(segs))
    return out


def ordinary_tokens(tokenizer: Path) -> int:
    """How many tokens the BPE learned (ids 0..n-1; the special ones follow)."""
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(tokenizer / "tokenizer.json")).get_vocab_size(with_added_tokens=False)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Each phase warms up (the decoder starts from its init in the joint one); then the acoustic
    phase stays constant and the joint phase decays by cosine to min_lr_ratio."""
    acoustic = step < cfg.ctc_steps
    step = step if acoustic else step - cfg.ctc_steps
    if acoustic or step < cfg.warmup:
        return cfg.lr * min(1.0, (step + 1) / cfg.warmup)
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


@dataclass
class Prepared:
    """What training starts from: the cached clips, the tokenizer folder, the model's config and
    initialised weights, and the batch maker."""

    store: FeatureStore
    tokenizer: Path
    raw: dict
    model: TrainableMossAudio
    examples: Examples
    parameters: int  # in the checkpoint (no CTC head)
    precision: str  # what TrainConfig.autocast means on this CPU: 'bf16' or 'fp32'
    seconds: float  # building (or loading) the data


def prepare(cfg: RecipeConfig, cache: Path, log=print) -> Prepared:
    """Seed everything, then build (or load from `cache`) data, tokenizer and the initial model."""
    t0 = time.time()
    mode = precision(cfg.train.autocast)  # resolved once; a bad value fails before minutes of data building
    for name in ("specaug", "answer_noise"):
        if not 0 <= getattr(cfg.train, name) <= 1:
            raise ValueError(f"train.{name}={getattr(cfg.train, name)} is a share of clips or tokens: give one from 0 to 1")
    torch.set_num_threads(cfg.threads)
    torch.set_flush_denormal(True)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)

    store = build_store(cfg.data, cache)
    t_data = time.time() - t0
    log(f"data: {len(store)} clips, {dataset_hours(store):.2f} h, {t_data:.0f} s")

    work = cache / f"tokenizer-{cfg.data.key()}-{cfg.bpe_size}"
    rows = make_tokenizer(work, tokenizer_corpus(store), cfg.bpe_size)
    spec = PromptSpec.of_folder(work)

    raw = config_dict(SynthSize(audio=cfg.audio, text=dict(cfg.text, vocab_size=rows),
                                adapter_hidden_size=cfg.adapter_hidden_size, dtype=cfg.dtype))
    config = ModelConfig.from_dict(raw)
    chars = alphabet(store)
    tc = cfg.train
    model = TrainableMossAudio(config, ctc_chars=len(chars), ctc_upsample=tc.ctc_upsample,
                               guide_layers=tc.guide_layers if tc.guide_weight else (), guide_width=tc.guide_width,
                               time_layer=tc.time_layer if tc.time_weight else None)
    n_params = sum(t.numel() for t in model.checkpoint_state().values())
    log(f"model: {n_params / 1e6:.2f} M parameters (vocab {rows})")

    [im_end], [pad] = spec.tokenize(IM_END, True), spec.tokenize(END_OF_TEXT, True)
    masks = SpecAugment(prob=tc.specaug) if tc.specaug > 0 else None
    examples = Examples(store, spec, im_end, pad, chars, cfg.tasks, masks, tc.answer_noise, ordinary_tokens(work))
    return Prepared(store, work, raw, model, examples, n_params, mode, t_data)


def run(cfg: RecipeConfig, out: Path, cache: Path, log=print, *, restart: bool = False) -> dict:
    """Build everything and write `out`; returns the training facts also stored in train_info.json.

    Training resumes from this recipe's snapshot in `cache` if an earlier run stopped (`restart`
    discards it); the snapshot is removed once the folder is written."""
    t0 = time.time()
    p = prepare(cfg, cache, log)
    model, store = p.model, p.store
    snapshot = snapshot_path(cfg, cache)
    if restart:
        snapshot.unlink(missing_ok=True)
    history, resumed = train_loop(model, p.examples, store, cfg.train, cfg.seed, log, snapshot, p.precision)
    t_train = history[-1]["seconds"] if history else 0.0

    with atomic_dir(out) as tmp:
        write_model_folder(tmp, p.raw, model.checkpoint_state(), p.tokenizer, cfg.dtype)
        ctc = None
        if cfg.evalset is not None:  # built beside the cache (atomically), then copied into the folder
            shutil.copytree(build_heldout_evalset(cache / "eval", cfg.evalset), tmp / "eval")
            # The CTC head is not shipped; its greedy CER beside the decoder's says which half limits.
            ctc = greedy_scores(model, p.examples, p.tokenizer, tmp / "eval", decoder=False)["ctc"]
            log(f"encoder CTC greedy CER on the held-out set: en {ctc['en']} %, all {ctc['all']} %")
        info = dict(
            seed=cfg.seed, recipe=json.loads(json.dumps(asdict(cfg), default=str)), parameters=p.parameters,
            clips=len(store), hours=round(dataset_hours(store), 3), steps=cfg.train.steps,
            ctc_steps=cfg.train.ctc_steps,
            data_seconds=round(p.seconds, 1), data_build_seconds=build_seconds(cfg.data, cache),
            train_seconds=round(t_train, 1), resumed_at=resumed, precision=p.precision,
            total_seconds=round(time.time() - t0 + (resumed[-1]["seconds"] if resumed else 0.0), 1),
            machine=machine(cfg.threads), ctc_cer=ctc, history=history,
        )
        (tmp / "train_info.json").write_text(json.dumps(info, indent=1))
    snapshot.unlink(missing_ok=True)
    log(f"wrote {out} in {info['total_seconds']:.0f} s total")
    return info


def train_loop(model: TrainableMossAudio, examples: Examples, store, cfg: TrainConfig, seed: int, log,
               snapshot: Path, compute: str) -> tuple[list[dict], list[dict]]:
    """(history, resumes): the log records, and where each earlier run stopped ({step, seconds,
    machine}); `seconds` in both count training time over all runs, less the steps a run did after
    its last snapshot (done again by the next)."""
    rng = np.random.default_rng(seed)
    bf16 = compute == "bf16"  # Prepared.precision
    frames = np.diff(store.offsets)
    multi = np.array([len(m["segments"]) > 1 for m in store.meta])
    everything = np.arange(len(store))
    early = LengthSampler(frames, everything[~multi] if (~multi).any() else everything, cfg.budget_frames, cfg.max_batch)
    full = LengthSampler(frames, everything, cfg.budget_frames, cfg.max_batch)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "norm" in name or "embed" in name else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=cfg.betas, fused=True)
    samplers = {"early": early, "full": full}
    history, window, resumes = [], [], []
    start, before, audio_s = 0, 0.0, 0.0
    done = resume_from(snapshot, model=model, opt=opt, rng=rng, samplers=samplers)
    if done is not None:
        start, before, audio_s = done["step"], done["seconds"], done["audio_s"]
        history, window = done["history"], done["window"]
        resumes = done["resumes"] + [dict(step=start, seconds=before, machine=machine(torch.get_num_threads()))]
        log(f"resuming at step {start} of {cfg.ctc_steps + cfg.steps} from {snapshot} (--restart discards it)")
    model.train()
    t0 = time.time() - before
    total = cfg.ctc_steps + cfg.steps
    for step in progress(range(start, total), total=total, initial=start, desc="train"):
        acoustic = step < cfg.ctc_steps
        joint_step = step - cfg.ctc_steps
        sampler = full if acoustic or joint_step >= cfg.curriculum * cfg.steps else early
        if step % 500 == 0 or joint_step == 0:
            sampler.reshuffle(rng)
        idx = sampler.draw(rng)
        batch = examples.batch(idx, rng, noisy=not acoustic)
        audio_s += sum(m.shape[1] for m in batch.mels) / 100
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model.ctc_only(batch) if acoustic else model(batch)
        if acoustic:
            loss = out["ctc"]
        else:
            loss = (out["ce"] + cfg.ctc_weight * out["ctc"] + cfg.guide_weight * out.get("guide", 0.0)
                    + cfg.time_weight * out.get("time", 0.0))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
        opt.step()
        window.append({k: out[k].item() for k in ("ce", "ctc", "guide", "time") if k in out})
        if (step + 1) % cfg.log_every == 0 or step + 1 in (cfg.ctc_steps, total):
            elapsed = time.time() - t0
            rec = dict(step=step + 1, phase="acoustic" if acoustic else "joint",
                       **{k: round(float(np.mean([w[k] for w in window])), 4) for k in window[-1]},
                       lr=round(lr_at(step, cfg), 6), seconds=round(elapsed, 1), audio_per_s=round(audio_s / elapsed, 1))
            history.append(rec)
            log(" ".join(f"{k}={v}" for k, v in rec.items()))
            window = []
        if (step + 1) % cfg.snapshot_every == 0 or step + 1 == total:
            save_snapshot(snapshot, model=model, opt=opt, rng=rng, samplers=samplers, step=step + 1,
                          seconds=time.time() - t0, audio_s=audio_s, history=history, window=window, resumes=resumes)
    model.eval()
    return history, resumes


def precision(autocast: str) -> str:
    """'bf16' or 'fp32': what TrainConfig.autocast means on this CPU."""
    if autocast not in ("auto", "bf16", "fp32"):
        raise ValueError(f"train.autocast={autocast!r}: choose auto, bf16 or fp32")
    if autocast != "auto":
        return autocast
    from runtime.placement.detect import cpu_summary

    return "bf16" if {"avx512_bf16", "amx_bf16"} & set(cpu_summary()[1]) else "fp32"


def machine(threads: int) -> str:
    """The CPU with its ISA flags: a training step takes 2-2.5x as long on AVX2 as on AVX-512 (see TrainConfig)."""
    from runtime.placement.detect import cpu_summary

    cpu, isa = cpu_summary()
    isa_text = " ".join(isa) or "no ISA flags read"
    return f"{cpu} ({isa_text}), {threads} threads, torch {torch.__version__}, {platform.system()}"
