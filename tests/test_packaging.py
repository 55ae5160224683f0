"""The installed package carries the built-in models and profiles, and pyproject lists every package."""

from __future__ import annotations

import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed_in_pyproject():
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    mapping = config["package-dir"]
    found = set()
    for package, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((package, *relative)))
    assert found == listed


def test_plain_install_runs_from_another_folder(tmp_path):
    """`pip install .` (not editable) then `nnasim info` on a zoo model, run outside the checkout."""
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": str(target), "NNASIM_CACHE": str(tmp_path / "cache")}
    result = subprocess.run(
        [sys.executable, "-m", "nnasim", "info", "lffd@64x64"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "2.29 M parameters" in result.stdout
    # the README's benchmark scripts use the installed package, not the checkout's source folders;
    # -S leaves out this environment's editable-install hook, as after a plain `pip install .`
    plain = {**env, "PYTHONPATH": os.pathsep.join([str(target), *site.getsitepackages()])}
    script = [sys.executable, "-S", str(ROOT / "benchmarks" / "talk_table.py")]
    result = subprocess.run(script, cwd=tmp_path, env=plain, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "of 16 within 5%" in result.stdout
    installed = target / "nnasim"
    assert (installed / "models" / "lffd.py").exists()
    assert sorted(p.name for p in (installed / "hwprofiles").glob("*.yaml")) == sorted(
        p.name for p in (ROOT / "hwprofiles").glob("*.yaml")
    )
