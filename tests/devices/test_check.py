"""python -m devices check on the CPU against the expected outputs shipped in the bundle."""

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np

from runtime.manifest import file_digest, update_manifest


def check(bundle, *extra):
    return subprocess.run([sys.executable, "-m", "devices", "check", str(bundle), *map(str, extra)],
                          capture_output=True, text=True)


def test_passes_without_torch_and_writes_junit(small_bundle, tmp_path):
    out = check(small_bundle, "--junit", tmp_path / "r.xml", "--json", tmp_path / "r.json")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "expected outputs shipped with the bundle" in out.stdout and "decode" in out.stdout
    suite = ET.parse(tmp_path / "r.xml").getroot()
    assert suite.get("failures") == "0"
    assert {c.get("name") for c in suite} == {"encoder:fp32", "encoder:int8", "decoder:f16", "decoder:q8_0",
                                              "decoder:q4_k_m"}


def test_runs_with_torch_absent(small_bundle):
    """The expected-outputs path imports no torch: block it and run the check."""
    code = ("import sys; sys.modules['torch'] = None\n"
            "from devices.__main__ import main\n"
            f"sys.exit(main(['check', {str(small_bundle)!r}]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]


def tampered(small_bundle, tmp_path, rehash):
    bundle = tmp_path / "bundle"
    shutil.copytree(small_bundle, bundle)
    data = dict(np.load(bundle / "expected.npz"))
    data["0/rows"] = data["0/rows"] + np.random.default_rng(0).normal(0, 0.05, data["0/rows"].shape).astype(np.float32)
    np.savez_compressed(bundle / "expected.npz", **data)
    if rehash:
        update_manifest(bundle, lambda m: m["files"].__setitem__("expected.npz", file_digest(bundle / "expected.npz").__dict__))
    return bundle


def test_fails_when_an_expected_output_is_tampered(small_bundle, tmp_path):
    out = check(tampered(small_bundle, tmp_path, rehash=True), "--junit", tmp_path / "r.xml")
    assert out.returncode == 1
    assert "FAIL encoder:fp32: cosine" in out.stderr
    failures = [c for c in ET.parse(tmp_path / "r.xml").getroot() if c.find("failure") is not None]
    assert "encoder:fp32" in {c.get("name") for c in failures}


def test_tampered_file_without_new_hash_is_refused(small_bundle, tmp_path):
    out = check(tampered(small_bundle, tmp_path, rehash=False))
    assert out.returncode == 2 and "expected.npz" in out.stderr
    assert "sha256 of" in out.stderr or "truncated or replaced" in out.stderr
