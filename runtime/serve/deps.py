"""The serve extra's packages: a missing one is an error that says what to install."""

from __future__ import annotations

import importlib.util

from runtime.errors import MissingDependencyError

# module imported -> the package pip installs it from
SERVE_PACKAGES = {"fastapi": "fastapi", "uvicorn": "uvicorn", "prometheus_client": "prometheus-client",
                  "python_multipart": "python-multipart"}


def require_serve() -> None:
    missing = [package for module, package in SERVE_PACKAGES.items() if not _importable(module)]
    if missing:
        raise MissingDependencyError(f"the server needs {', '.join(missing)}: pip install '.[serve]' "
                                     "(from a checkout) or pip install 'moss-audio-edge[serve]'")


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package that fails to import, or an import hook that refuses it
        return False
