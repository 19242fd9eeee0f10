"""The accuracy gates on the model they were measured on: the shipped tiny model's bundle,
scored on its shipped evaluation set, passes quant/thresholds.json's evaluation bounds, and a
bound tightened below what the model scores fails."""

import json
import subprocess
import sys

import pytest

from export.bundle import ExportOptions, export_bundle
from export.demo import DEFAULT_MODEL
from quant.thresholds import breaches, load_thresholds
from runtime.manifest import DriftReport
from runtime.typed import from_json

EVAL = DEFAULT_MODEL / "eval"


@pytest.fixture(scope="module")
def gated(tmp_path_factory):
    """(bundle, run, drift JSON) of the shipped model, FP32 encoder, the decoder types at both ends."""
    out = tmp_path_factory.mktemp("shipped")
    bundle = out / "bundle"
    export_bundle(DEFAULT_MODEL, bundle, ExportOptions(encoder=("fp32",), decoder=("f32", "q4_k_m")))
    run = subprocess.run([sys.executable, "-m", "quant", "drift", str(bundle), "--eval", str(EVAL), "--check",
                          "--no-manifest", "--json", str(out / "drift.json")], capture_output=True, text=True)
    return bundle, run, json.loads((out / "drift.json").read_text())


def test_the_shipped_model_passes_its_evaluation_bounds(gated):
    _, run, report = gated
    assert run.returncode == 0, run.stdout + run.stderr
    assert "not checked" not in run.stderr
    bounds = load_thresholds()
    for name, v in report["variants"].items():
        kind, variant = name.split(":")
        assert "eval_cer_max" in bounds[kind][variant], f"{name} has no CER bound"
        assert v["eval_cer"] is not None and v["language_accuracy"] is not None and v["timestamp_mae_s"] is not None


def test_a_cer_bound_below_the_score_fails(gated):
    report = from_json(DriftReport, gated[2])
    tight = load_thresholds()
    tight["decoder"]["q4_k_m"]["eval_cer_max"] = report.variants["decoder:q4_k_m"].eval_cer * 0.9
    assert [b for b in breaches(report, tight) if "eval_cer" in b] == [
        f"decoder:q4_k_m: eval_cer {report.variants['decoder:q4_k_m'].eval_cer:.6g} is above its max "
        f"{tight['decoder']['q4_k_m']['eval_cer_max']:.6g}"]
