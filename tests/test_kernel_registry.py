"""The kernel registry is the checklist: every registered kernel has a numpy reference under
tests/reference and a bit-exact test module that imports it."""

from __future__ import annotations

from pathlib import Path

import pytest

from nnasim.kernels import KERNELS

TESTS = Path(__file__).resolve().parent


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_registered_kernel_has_reference_and_test(name):
    module = KERNELS[name].__module__.rsplit(".", 1)[-1]
    assert (TESTS / "reference" / f"{module}_ref.py").is_file(), f"no tests/reference/{module}_ref.py"
    importers = [
        path.name
        for path in TESTS.glob("test_kernel_*.py")
        if f"nnasim.kernels.{module} import" in path.read_text()
    ]
    assert importers, f"no tests/test_kernel_*.py imports nnasim.kernels.{module}"
