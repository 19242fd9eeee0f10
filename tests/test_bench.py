"""The benchmark scripts run (tiny model, seconds) so they never rot; the full run is manual."""

import json
import subprocess
import sys


def test_quick_benchmark_writes_every_section(tmp_path):
    out = subprocess.run([sys.executable, "-m", "bench", "--quick", "--json", str(tmp_path / "b.json"),
                          "--work", str(tmp_path / "work")], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads((tmp_path / "b.json").read_text())
    assert {"encoder", "decoder", "end_to_end", "incremental", "startup", "knobs", "limit", "batch",
            "server"} <= set(result)
    for row in result["encoder"]:  # the ceiling the FP32 ratio is read against
        assert row["gflop"] > 0 and row["pytorch_gflop_s"] > 0 and row["onnx_fp32_gflop_s"] > 0
        assert row["fp32_gemm_peak_gflop_s"] > 0
    chosen, *flipped = result["knobs"]
    assert chosen["setting"] == "profile" and len(flipped) == 3
    for row, knob in zip(flipped, ("prepack", "repack", "arena")):  # each differs from the profile in one knob
        assert [k for k in ("prepack", "repack", "arena") if row[k] != chosen[k]] == [knob], row
    assert all(r["load_s"] > 0 and r["encode_s"] > 0 and r["pss_two_over_rss_one"] > 0 for r in result["knobs"])
    assert all(r["start_to_answer_s"] > r["load_s"] for r in result["knobs"])
    assert [r["shape"] for r in result["startup"]] == ["tiny", "tiny-151936"]
    for start in result["startup"]:
        assert start["load_s"] > 0 and start["cli_first_token_s"] > 0 and start["pss_two_mb"] > 0
    assert [(r["mode"], r["workers"]) for r in result["batch"]] == [("local", 1), ("local", 1), ("local", 2),
                                                                     ("ray", 2)]
    assert result["batch"][1]["threads_each"] == 1
    assert all(r["files"] == 8 and r["failures"] == 0 and r["audio_s"] == 16.0 for r in result["batch"])
    assert all(r["audio_s_per_wall_s"] > 0 and r["steady_audio_s_per_s"] > 0 for r in result["batch"])
    assert {r["gguf"] for r in result["decoder"]} == {"f16", "q8_0", "q4_k_m"}
    for r in result["decoder"]:
        assert r["ours_greedy_tok_s"] > 0 and r["llama_greedy_tok_s"] > 0 and r["sampled_tokens"] > 0
    fed = result["incremental"][0]
    assert fed["last_sample_to_first_token_s"] > 0 and fed["feed_s_per_audio_s"] > 0
    assert result["limit"]["read_bandwidth_gb_s"] > 0.5
    assert "PyTorch reference" in result["end_to_end"][-1]["pipeline"]
    ours, http = result["server"]
    assert ours["new_tokens"] == http["new_tokens"] >= 2 and ours["cold_ttft_s"] > ours["warm_ttft_s"] > 0
    assert http["decode_tok_s"] > 0 and ours["clips"] == http["clips"] >= 2
    assert http["cold_ttft_ratio"] > 0 and http["warm_ttft_ratio"] > 0 and http["decode_ratio"] > 0
    for title in ("Encoder", "Decoder", "End to end", "Start-up", "Start-up knobs", "while the audio arrives", "bandwidth ceiling",
                  "Batch: 8 clips", "Server"):
        assert title in out.stdout


def test_quick_diarize_benchmark(tmp_path):
    out = subprocess.run([sys.executable, "-m", "bench.diarize", "--quick", "--seconds", "7", "--new-tokens", "8",
                          "--json", str(tmp_path / "d.json"), "--work", str(tmp_path / "work")],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = json.loads((tmp_path / "d.json").read_text())["rows"]
    assert [r["pipeline"] for r in rows[:3]] == [f"ours: encoder fp32 + decoder {d}" for d in ("f16", "q8_0", "q4_k_m")]
    assert "PyTorch reference" in rows[3]["pipeline"]
    assert all(r["ttft_s"] > 0 and r["decode_tok_s"] > 0 and r["peak_rss_mb"] > 0 for r in rows)
    assert "MOSS-Transcribe-Diarize tiny" in out.stdout
    one = subprocess.run([sys.executable, "-m", "bench.diarize", "--quick", "--one-pass", "0.5", "--new-tokens", "4",
                          "--json", str(tmp_path / "o.json"), "--work", str(tmp_path / "work")],
                         capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    row = json.loads((tmp_path / "o.json").read_text())["one_pass"]
    assert row["minutes"] == 0.5 and row["positions"] > 375 and row["peak_rss_mb"] > 0  # 30 s: 375 audio rows
