"""The packages' arrows run one way: runtime at the bottom, measurement (quant) above it,
export and devices above that, train and bench on top. Every import counts, also the lazy
ones inside functions: a lazy upward import is still an upward dependency."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"runtime", "quant", "export", "devices", "train", "bench"}
ALLOWED = {
    "runtime": set(),
    "quant": {"runtime"},
    "export": {"runtime", "quant"},
    "devices": {"runtime", "quant"},
    "train": {"runtime", "quant", "export"},
    "bench": {"runtime", "quant", "export", "devices"},
}


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & OURS


def upward_imports(package: str) -> list[str]:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for target in sorted(imports_of(path) - ALLOWED[package] - {package}):
            bad.append(f"{path.relative_to(ROOT)} imports {target}")
    return bad


@pytest.mark.parametrize("package", sorted(p for p in ALLOWED if (ROOT / p).is_dir()))
def test_no_import_runs_upward(package):
    assert upward_imports(package) == []


def test_the_scan_sees_lazy_imports(tmp_path):
    """The check itself: an import inside a function is found."""
    (tmp_path / "m.py").write_text("def f():\n    from export.bundle import x\n    import devices.check\n")
    assert imports_of(tmp_path / "m.py") == {"export", "devices"}
