"""The drift report on the K-quant-compatible `small` checkpoint, and the --check gate."""

import json
import subprocess
import sys

from quant.thresholds import breaches, load_thresholds
from runtime.manifest import load_manifest


def test_report_lists_every_variant_with_its_metrics(small_drift):
    run, report = small_drift
    assert set(report["variants"]) == {"encoder:fp32", "encoder:int8", "decoder:f16", "decoder:q8_0", "decoder:q4_k_m"}
    for name, m in report["variants"].items():
        assert m["bytes"] > 0 and 20 < m["peak_rss_mb"] < 2000
        assert 0 <= m["greedy_match"] <= 1 and m["cer"] >= 0
        if name.startswith("decoder:"):
            assert {"kl_mean", "kl_p99", "top1"} <= set(m)
        else:
            assert {"cosine", "max_rel_error"} <= set(m)
    for column in ("KL mean", "top-1", "peak MB"):
        assert column in run.stdout


def test_quants_order_sensibly(small_drift):
    v = small_drift[1]["variants"]
    kl = {n: v[f"decoder:{n}"]["kl_mean"] for n in ("f16", "q8_0", "q4_k_m")}
    assert kl["f16"] < kl["q8_0"] < kl["q4_k_m"]  # measured 1.1e-5 < 2.5e-3 < 0.10
    assert v["decoder:f16"]["top1"] >= v["decoder:q8_0"]["top1"] >= v["decoder:q4_k_m"]["top1"]
    assert v["encoder:fp32"]["cosine"] > v["encoder:int8"]["cosine"]


def test_check_passes_at_the_shipped_thresholds_and_figures_reach_the_manifest(small_drift, small_bundle):
    run, report = small_drift
    assert run.returncode == 0, run.stderr
    assert load_manifest(small_bundle).drift["variants"].keys() == report["variants"].keys()


def test_check_fails_when_a_threshold_is_tightened_below_the_measurement(small_drift, small_bundle, small_ckpt,
                                                                         tmp_path):
    measured = small_drift[1]["variants"]["decoder:q8_0"]["kl_mean"]
    tight = load_thresholds()
    tight["decoder"]["q8_0"]["kl_mean_max"] = measured / 2
    (tmp_path / "tight.json").write_text(json.dumps(tight))
    run = subprocess.run([sys.executable, "-m", "quant", "drift", str(small_bundle), "--checkpoint", str(small_ckpt),
                          "--check", "--thresholds", str(tmp_path / "tight.json"), "--no-manifest"],
                         capture_output=True, text=True)
    assert run.returncode == 1
    assert "FAIL decoder:q8_0: kl_mean" in run.stderr and "above its max" in run.stderr


def test_unlisted_variant_and_unmeasured_metric_fail_loudly():
    report = {"variants": {"decoder:q2_k": {"kl_mean": 1.0}, "decoder:q8_0": {"kl_mean": 1e-3, "top1": 0.99}}}
    found = breaches(report, load_thresholds())
    assert any("no thresholds for decoder 'q2_k'" in f for f in found)
    assert any("decoder:q8_0: kl_p99 was not measured" in f for f in found)
