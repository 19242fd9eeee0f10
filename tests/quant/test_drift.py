"""The drift report on the K-quant-compatible `small` checkpoint, and the --check gate."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from quant.cases import Case
from quant.metrics import cer, decoder_metrics, wer
from quant.thresholds import breaches, load_thresholds, unchecked
from runtime.errors import OptionsError
from runtime.manifest import DriftReference, DriftReport, VariantDrift, load_manifest
from runtime.prompt import Prompt


def test_report_lists_every_variant_with_its_metrics(small_drift):
    run, report = small_drift
    assert set(report["variants"]) == {"encoder:fp32", "encoder:int8", "decoder:f16", "decoder:q8_0", "decoder:q4_k_m"}
    for name, m in report["variants"].items():
        assert m["bytes"] > 0 and 20 < m["peak_rss_mb"] < 2000
        assert 0 <= m["greedy_match"] <= 1 and m["cer"] >= 0
        if name.startswith("decoder:"):
            assert all(m[k] is not None for k in ("kl_mean", "kl_p99", "top1"))
        else:
            assert m["cosine"] is not None and m["max_rel_error"] is not None
    assert report["reference"]["kind"] == "pytorch reference" and report["reference"]["dtype"] == "float32"
    for column in ("KL mean", "top-1", "peak MB"):
        assert column in run.stdout


def test_quants_order_sensibly(small_drift):
    v = small_drift[1]["variants"]
    kl = {n: v[f"decoder:{n}"]["kl_mean"] for n in ("f16", "q8_0", "q4_k_m")}
    assert kl["f16"] < kl["q8_0"] < kl["q4_k_m"]
    assert v["decoder:f16"]["top1"] >= v["decoder:q4_k_m"]["top1"]
    assert v["encoder:fp32"]["cosine"] > v["encoder:int8"]["cosine"]


def test_check_passes_at_the_shipped_thresholds_and_figures_reach_the_manifest(small_drift, small_bundle):
    run, report = small_drift
    assert run.returncode == 0, run.stderr
    assert load_manifest(small_bundle).drift.variants.keys() == report["variants"].keys()


def test_check_fails_when_a_threshold_is_tightened_below_the_measurement(small_drift, small_bundle, tmp_path):
    measured = small_drift[1]["variants"]["decoder:q8_0"]["kl_mean"]
    tight = load_thresholds()
    tight["decoder"]["q8_0"]["kl_mean_max"] = measured / 2
    (tmp_path / "tight.json").write_text(json.dumps(tight))
    run = subprocess.run([sys.executable, "-m", "quant", "drift", str(small_bundle), "--check", "--thresholds",
                          str(tmp_path / "tight.json"), "--no-manifest"], capture_output=True, text=True)
    assert run.returncode == 1, run.stderr
    assert "FAIL decoder:q8_0: kl_mean" in run.stderr and "above its max" in run.stderr


def report_of(**variants) -> DriftReport:
    ref = DriftReference("test", "test", "float32", "cpu", ("a",), 1, 1, 1)
    return DriftReport(ref, {name: VariantDrift(kind=name.split(":")[0], file="f", bytes=1, peak_rss_mb=1.0, **m)
                             for name, m in variants.items()})


def test_unlisted_variant_unmeasured_and_nan_metrics_fail_loudly():
    report = report_of(**{"decoder:q2_k": dict(kl_mean=1.0),
                          "decoder:q8_0": dict(kl_mean=1e-3, top1=0.99),
                          "decoder:f16": dict(kl_mean=math.nan, kl_p99=0.0, top1=1.0, greedy_match=1.0, cer=0.0)})
    found = breaches(report, load_thresholds())
    assert any("no thresholds for decoder 'q2_k'" in f for f in found)
    assert any("decoder:q8_0: kl_p99 was not measured" in f for f in found)
    assert "decoder:f16: kl_mean is NaN" in found


def test_evaluation_bounds_gate_a_run_with_an_evaluation_set_and_are_named_without_one():
    bounds = {"encoder": {}, "decoder": {"q8_0": {"kl_mean_max": 1.0, "eval_cer_max": 0.1, "language_accuracy_min": 0.9}}}
    plain = report_of(**{"decoder:q8_0": dict(kl_mean=1e-3)})
    assert breaches(plain, bounds) == []
    assert unchecked(plain, bounds) == ["decoder q8_0 eval_cer_max", "decoder q8_0 language_accuracy_min"]
    scored = report_of(**{"decoder:q8_0": dict(kl_mean=1e-3, eval_cer=0.2, language_accuracy=None)})
    assert unchecked(scored, bounds) == []
    assert breaches(scored, bounds) == ["decoder:q8_0: eval_cer 0.2 is above its max 0.1",
                                        "decoder:q8_0: language_accuracy was not measured"]


@pytest.mark.parametrize("key,value", [("kl_mean_maxx", 1.0), ("klmean_max", 1.0), ("top1_min", float("nan")),
                                       ("top1_min", "0.9")])
def test_a_misspelt_or_bad_bound_is_an_error_not_a_gate_turned_off(tmp_path, key, value):
    data = load_thresholds()
    data["decoder"]["q8_0"] = {key: value}
    (tmp_path / "t.json").write_text(json.dumps(data))
    with pytest.raises(OptionsError, match="q8_0"):
        load_thresholds(tmp_path / "t.json")


def test_kl_is_taken_over_the_reference_top_tokens_renormalized():
    """Two positions, a 5-token vocabulary, the reference's top 2 kept: worked by hand."""
    ref_tokens = np.array([[0, 1], [2, 3]])
    ref_logprobs = np.log(np.array([[0.6, 0.2], [0.5, 0.25]]))  # renormalized: [.75, .25], [2/3, 1/3]
    case = Case("c", np.zeros(1), Prompt(np.zeros(3, np.int64), np.full(3, -1)), np.zeros((0, 1)), [0],
                ref_tokens, ref_logprobs)
    logits = np.log(np.array([[0.3, 0.3, 0.2, 0.1, 0.1], [0.1, 0.05, 0.3, 0.5, 0.05]]))
    m = decoder_metrics([case], [logits])
    p1, q1 = np.array([0.75, 0.25]), np.array([0.5, 0.5])
    p2, q2 = np.array([2 / 3, 1 / 3]), np.array([0.375, 0.625])
    expected = [(p1 * np.log(p1 / q1)).sum(), (p2 * np.log(p2 / q2)).sum()]
    assert m["kl_mean"] == pytest.approx(np.mean(expected), rel=1e-9)
    assert m["top1"] == 0.5  # position 1 agrees (token 0); position 2 picks token 3, the reference token 2


def test_error_rates_on_normalized_words():
    assert cer("Hello, World!", "hello world") == 0.0
    assert cer("abcd", "abXd") == 0.25
    assert wer("the cat sat", "the cat sat down") == pytest.approx(1 / 3)
    assert wer("", "") == 0.0 and wer("", "x") == 1.0
