"""python -m devices check on the CPU against the expected outputs shipped in the bundle.
(The passing run, torch-free with JUnit and JSON, is in tests/test_base_install.py.)"""

import dataclasses
import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np

from runtime.manifest import file_digest, update_manifest


def check(bundle, *extra):
    return subprocess.run([sys.executable, "-m", "devices", "check", str(bundle), *map(str, extra)],
                          capture_output=True, text=True)


def tampered(small_bundle, tmp_path, rehash):
    bundle = tmp_path / "bundle"
    shutil.copytree(small_bundle, bundle)
    data = dict(np.load(bundle / "expected.npz"))
    data["0/rows"] = data["0/rows"] + np.random.default_rng(0).normal(0, 0.05, data["0/rows"].shape).astype(np.float32)
    np.savez_compressed(bundle / "expected.npz", **data)
    if rehash:
        update_manifest(bundle, lambda m: dataclasses.replace(
            m, files={**m.files, "expected.npz": file_digest(bundle / "expected.npz")}))
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
