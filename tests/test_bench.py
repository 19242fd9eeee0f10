"""The benchmark scripts run (tiny model, seconds) so they never rot; the full run is manual."""

import json
import subprocess
import sys


def test_quick_benchmark_writes_every_section(tmp_path):
    out = subprocess.run([sys.executable, "-m", "bench", "--quick", "--json", str(tmp_path / "b.json"),
                          "--work", str(tmp_path / "work")], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads((tmp_path / "b.json").read_text())
    assert {"encoder", "decoder", "end_to_end", "limit"} <= set(result)
    assert {r["gguf"] for r in result["decoder"]} == {"f16", "q8_0", "q4_k_m"}
    assert all(r["ours_decode_tok_s"] > 0 and r["llama_bare_decode_tok_s"] > 0 for r in result["decoder"])
    assert result["limit"]["read_bandwidth_gb_s"] > 0.5
    assert all(r["percent_of_ceiling"] <= 100 for r in result["limit"]["decoders"])
    assert "PyTorch reference" in result["end_to_end"][-1]["pipeline"]
    for title in ("Encoder", "Decoder", "End to end", "bandwidth ceiling"):
        assert title in out.stdout
