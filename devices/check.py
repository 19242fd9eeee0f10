"""The device CI accuracy check: drift of every bundle variant on this machine, plus timings.

Against the PyTorch reference when a checkpoint (and torch) is given, otherwise against the
expected outputs recorded at export time and shipped in the bundle: no torch needed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import asdict
from pathlib import Path

from devices.detect import Machine, best_profile, detect
from devices.profiles import Profile, get_profile
from quant.drift import Case, measure
from quant.thresholds import breaches, load_thresholds
from runtime.manifest import load_manifest

TIMING_TOKENS = 32


def run_check(bundle: Path, *, profile: str | None = None, checkpoint: Path | None = None,
              expected: Path | None = None, thresholds: Path | None = None) -> tuple[dict, list[str]]:
    bundle = Path(bundle)
    machine = detect()
    chosen = get_profile(profile) if profile else best_profile(machine)
    cases, decode, source = _reference(bundle, checkpoint, expected)
    report = measure(bundle, cases, decode, source=source)
    report["device"] = {**{k: v for k, v in asdict(machine).items() if k != "cpu_flags"},
                        "profile": chosen.name if chosen else None}
    report["timings"] = _timings(bundle, cases[0], chosen)
    return report, breaches(report, load_thresholds(thresholds))


def _reference(bundle: Path, checkpoint: Path | None, expected: Path | None) -> tuple[list[Case], object, dict]:
    if checkpoint is not None:
        from export.checkpoint import Checkpoint  # needs the export extra (torch)
        from quant.drift import reference_cases
        from runtime import DEMO_AUDIO

        ckpt = Checkpoint.open(checkpoint)
        return (reference_cases(Path(checkpoint), [DEMO_AUDIO]), ckpt.decode,
                {"kind": "pytorch reference", "checkpoint": str(checkpoint), "dtype": "float32", "device": "cpu"})
    from quant.expected import EXPECTED, load_expected

    cases = load_expected(expected.parent if expected else bundle, name=expected.name if expected else EXPECTED)
    return cases, _gguf_decoder(bundle), {"kind": "expected outputs shipped with the bundle",
                                          "file": str(expected or bundle / EXPECTED)}


def _gguf_decoder(bundle: Path):
    """Text of token ids through the bundle's own GGUF vocabulary (no tokenizer files needed)."""
    from quant.drift import most_precise
    from runtime.llama import LlamaModel

    m = load_manifest(bundle, verify=False)
    model = LlamaModel(bundle / m.decoders[most_precise(m.decoders)].file)
    return lambda ids: b"".join(model.piece(int(t)) for t in ids).decode("utf-8", errors="replace")


def _timings(bundle: Path, case: Case, profile: Profile | None) -> dict:
    """Encode / prefill / decode speed of each decoder variant with the device's encoder."""
    from runtime.pipeline import Pipeline

    m = load_manifest(bundle, verify=False)
    device = "cuda" if profile and profile.kind != "cpu" else "cpu"
    wanted = profile.encoder["precision"] if profile else "fp32"
    encoder = wanted if wanted in m.encoders else None
    out = {}
    for name in m.decoders:
        pipe = Pipeline.load(bundle, device=device, encoder=encoder, decoder=name, verify=False)
        t = pipe.generate(case.samples, temperature=0, max_new_tokens=TIMING_TOKENS).timings
        out[f"decoder:{name}"] = {"encoder": pipe.encoder_name, **t.to_dict()}
    return out


def junit(report: dict, failed: list[str], path: Path) -> None:
    """One testcase per variant; a breach is its failure."""
    profile = report["device"].get("profile") or report["device"]["kind"]
    failing = [v for v in report["variants"] if any(f.startswith(v + ":") for f in failed)]
    suite = ET.Element("testsuite", name="moss-audio device check", tests=str(len(report["variants"])),
                       failures=str(len(failing)))
    for variant, metrics in report["variants"].items():
        case = ET.SubElement(suite, "testcase", classname=f"devices.{profile}", name=variant)
        props = ET.SubElement(case, "properties")
        for k, v in metrics.items():
            ET.SubElement(props, "property", name=k, value=str(v))
        mine = [f for f in failed if f.startswith(variant + ":")]
        if mine:
            ET.SubElement(case, "failure", message="; ".join(mine)).text = "\n".join(mine)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def describe(machine: Machine, profile: Profile | None) -> str:
    where = f"{machine.kind} {machine.model} ({machine.arch}, {machine.total_gb:.1f} GB, {machine.free_gb:.1f} GB free)"
    return f"{where} -> profile {profile.name if profile else 'none'}"
