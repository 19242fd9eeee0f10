"""python -m runtime serve: routed from python -m runtime, light to parse, one line per mistake."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import cli_probe
from tests.test_base_install import blocked_env



def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "runtime", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=120)


@pytest.mark.parametrize("argv", [["serve", "--help"], ["serve", "b", "--workers", "x"], ["--help"]])
def test_help_and_argument_errors_load_no_engine_and_no_server(argv):
    rc, loaded, out = cli_probe(*argv)
    assert (rc, loaded) == (0 if "--help" in argv else 2, []), out.stderr
    if argv == ["serve", "--help"]:
        assert "/v1/audio/transcriptions" in out.stdout and "--max-upload-mb" in out.stdout
    if argv == ["--help"]:
        assert "python -m runtime serve" in out.stdout  # the ask form's help points at the server


@pytest.mark.parametrize("args,message", [
    (["/nonexistent-bundle"], "bundle folder not found"),
    (["BUNDLE", "--workers", "0"], "workers must be at least 1"),
    (["BUNDLE", "--max-queue", "0"], "max_queue must be at least 1"),
    (["BUNDLE", "--top-p", "3"], "top_p must be in (0, 1]"),
])
def test_mistakes_exit_2_with_one_line_before_binding(tiny_bundle, args, message):
    out = run("serve", *[tiny_bundle if a == "BUNDLE" else a for a in args])
    assert out.returncode == 2 and out.stderr.startswith("error: ") and message in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_without_the_serve_extra_it_says_what_to_install(tiny_bundle, tmp_path):
    out = run("serve", tiny_bundle, env=blocked_env(tmp_path, ("fastapi", "uvicorn")))
    assert out.returncode == 2 and "pip install '.[serve]'" in out.stderr and "fastapi, uvicorn" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_a_bundle_that_fails_to_load_stops_the_server_with_the_reason(tampered_bundle):
    """The port opens at once and the bundle loads behind it; a corrupt file ends the server (exit 2)."""
    out = run("serve", tampered_bundle, "--decoder", "q8_0", "--port", "0")
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("error: sha256 of") and "Traceback" not in out.stderr
