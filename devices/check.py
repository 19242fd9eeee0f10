"""The device CI accuracy check: drift of every bundle variant on this machine, plus timings.

Against expected outputs (the bundle's expected.npz, or a file made with `python -m export
expected`), torch-free. Every variant runs on the backends the plan picks here (TensorRT,
CUDA llama.cpp where present), so what is checked is what is timed and what an app runs.
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path

from quant.cases import Case
from quant.drift import gguf_text, measure
from quant.evalset import load_evalset
from quant.expected import EXPECTED, load_expected
from quant.thresholds import breaches, load_thresholds, unchecked
from runtime.manifest import DriftReport, load_manifest
from runtime.placement.detect import Machine, best_profile, detect
from runtime.placement.profiles import get_profile

TIMING_TOKENS = 32


@dataclasses.dataclass
class CheckReport:
    drift: DriftReport
    machine: Machine
    profile: str | None
    device: str
    timings: dict[str, dict]
    failed: list[str]
    unchecked: list[str]  # bounds on evaluation-set scores, without an evaluation set

    def to_json(self) -> dict:
        from runtime.typed import to_json

        machine = {k: v for k, v in dataclasses.asdict(self.machine).items() if k != "cpu_flags"}
        return {"drift": to_json(self.drift), "device": {**machine, "profile": self.profile, "ran_on": self.device},
                "timings": self.timings, "failed": self.failed, "unchecked": self.unchecked}


def run_check(bundle: Path, *, device: str = "auto", profile: str | None = None, expected: Path | None = None,
              thresholds: Path | None = None, evalset: Path | None = None) -> CheckReport:
    bundle = Path(bundle)
    machine = detect()
    chosen = get_profile(profile) if profile else best_profile(machine)
    manifest = load_manifest(bundle)
    path = expected or bundle / (manifest.expected.file if manifest.expected else EXPECTED)
    made = load_expected(path)
    ran_on = _device(bundle, device)
    source = {"kind": "expected outputs", "source": str(path), "dtype": made.reference_dtype,
              "device": made.reference_device}
    items = load_evalset(evalset) if evalset else []
    report = measure(bundle, made.cases, gguf_text(bundle), source=source, device=ran_on, evalset=items)
    timings = _timings(bundle, made.cases[0], ran_on)
    bounds = load_thresholds(thresholds)
    return CheckReport(report, machine, chosen.name if chosen else None, ran_on, timings, breaches(report, bounds),
                       unchecked(report, bounds))


def _device(bundle: Path, device: str) -> str:
    """What `device` resolves to here (auto: the GPU when the plan can use it)."""
    from runtime.placement.plan import make_plan

    return make_plan(bundle, load_manifest(bundle, verify=False), device, check_memory=False).device


def _timings(bundle: Path, case: Case, device: str) -> dict:
    """Encode / prefill / decode speed of each decoder variant with the plan's encoder."""
    from runtime.pipeline import Pipeline

    out = {}
    for name in load_manifest(bundle, verify=False).decoders:
        with Pipeline.load(bundle, device=device, decoder=name, verify=False) as pipe:
            t = pipe.generate(case.samples, temperature=0, max_new_tokens=TIMING_TOKENS).timings
            out[f"decoder:{name}"] = {"encoder": pipe.encoder_name, "providers": pipe.encoder.providers,
                                      "n_gpu_layers": pipe.plan.n_gpu_layers, **t.to_dict()}
    return out


def junit(report: CheckReport, path: Path) -> None:
    """One testcase per variant; a breach is its failure."""
    profile = report.profile or report.machine.kind
    failed = report.failed
    variants = report.drift.variants
    failing = [v for v in variants if any(f.startswith(v + ":") for f in failed)]
    suite = ET.Element("testsuite", name="moss-audio device check", tests=str(len(variants)),
                       failures=str(len(failing)))
    for variant, metrics in variants.items():
        case = ET.SubElement(suite, "testcase", classname=f"devices.{profile}", name=variant)
        props = ET.SubElement(case, "properties")
        for k, v in dataclasses.asdict(metrics).items():
            if v is not None:
                ET.SubElement(props, "property", name=k, value=str(v))
        mine = [f for f in failed if f.startswith(variant + ":")]
        if mine:
            ET.SubElement(case, "failure", message="; ".join(mine)).text = "\n".join(mine)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
