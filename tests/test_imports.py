"""Edge devices have no torch: runtime and devices must import without it."""

import subprocess
import sys

FORBIDDEN = ("torch", "transformers", "export", "onnx", "safetensors")


def test_runtime_and_devices_import_without_torch():
    code = (
        "import sys, runtime, runtime.pipeline, runtime.__main__, runtime.manifest, devices\n"
        "from runtime import Pipeline\n"
        f"bad = [m for m in {FORBIDDEN!r} if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"runtime pulled in {out.stdout.strip()}"


def test_runtime_cli_help_runs_without_torch():
    code = (
        "import sys, runpy\nsys.argv = ['runtime', '--help']\n"
        "try:\n    runpy.run_module('runtime', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        f"bad = [m for m in {FORBIDDEN!r} if m in sys.modules]\n"
        "sys.stderr.write(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "usage: python -m runtime" in out.stdout
    assert out.stderr.strip() == ""
