"""Edge devices have no torch: runtime and devices must import without it."""

import subprocess
import sys

FORBIDDEN = ("torch", "transformers", "export", "onnx", "safetensors")
REPORT = f"bad = [m for m in {FORBIDDEN!r} if m in sys.modules]\nsys.stderr.write(','.join(bad))\n"


def fresh_interpreter(code: str) -> subprocess.CompletedProcess:
    """Run `code` in a new Python and report on stderr which forbidden modules it loaded."""
    return subprocess.run([sys.executable, "-c", "import sys\n" + code + REPORT], capture_output=True, text=True,
                          check=True)


def test_runtime_and_devices_import_without_torch():
    out = fresh_interpreter("import runtime, runtime.pipeline, runtime.__main__, runtime.manifest, devices\n"
                            "from runtime import Pipeline\n")
    assert out.stderr.strip() == "", f"runtime pulled in {out.stderr.strip()}"


def test_runtime_cli_help_runs_without_torch():
    out = fresh_interpreter("import runpy\nsys.argv = ['runtime', '--help']\n"
                            "try:\n    runpy.run_module('runtime', run_name='__main__')\nexcept SystemExit:\n    pass\n")
    assert "usage: python -m runtime" in out.stdout
    assert out.stderr.strip() == ""
