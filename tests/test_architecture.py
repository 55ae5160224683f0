"""The import rule of docs/architecture.md: each stage imports only the stages below it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# What each package of nnasim may import (besides itself); docs/architecture.md draws it.
ALLOWED = {
    "errors": set(),
    "ir": {"errors"},
    "io": {"errors"},
    "kernels": {"errors"},
    "models": {"errors", "io"},
    "passes": {"errors", "ir"},
    "frontend": {"errors", "ir", "io", "models", "passes"},
    "quant": {"errors", "ir", "io", "frontend", "passes"},
    "engine": {"errors", "ir", "io", "kernels", "frontend", "passes", "quant"},
    "cost": {"errors", "ir", "io", "frontend", "passes", "quant"},
    "report": {"errors", "ir", "io", "cost"},
    "analysis": {"errors", "ir", "io", "frontend", "passes", "quant", "engine", "cost", "report"},
    "sweep": {"errors", "ir", "io", "frontend", "passes", "quant", "cost", "report"},
    "hwprofiles": set(),
    "cli": None,  # the only room that knows the command line: may import anything
}


def _package_files():
    for path in sorted((ROOT / "nnasim").rglob("*.py")):
        parts = path.relative_to(ROOT / "nnasim").parts
        yield (parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")), path
    for folder in ("models", "hwprofiles"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield folder, path


def _imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found |= {name.split(".")[1] for name in names if name.startswith("nnasim.")}
    return found


def test_every_package_has_a_rule():
    packages = {package for package, _ in _package_files()} - {"__init__", "__main__"}
    assert packages <= set(ALLOWED), packages - set(ALLOWED)


@pytest.mark.parametrize("package,path", list(_package_files()), ids=lambda v: str(v))
def test_imports_run_down_the_stages(package, path):
    allowed = ALLOWED.get(package)
    if allowed is None:
        return
    upward = _imported_packages(path) - allowed - {package}
    assert not upward, f"{path.relative_to(ROOT)} imports {sorted(upward)}: not below {package}"


def test_the_rule_is_documented():
    text = (ROOT / "docs" / "architecture.md").read_text()
    for package, allowed in ALLOWED.items():
        if allowed is not None and package not in ("hwprofiles",):
            assert f"`{package}`" in text, package
