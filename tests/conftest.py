"""Shared fixtures: where ../shared is, ONNX builders for small test graphs, onnxruntime sessions."""

from __future__ import annotations

from pathlib import Path

import pytest
from oracles import SHARED


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ``shared/`` folder beside the repo (trained models, photos); skip when absent."""
    if not (SHARED / "models").is_dir():
        pytest.skip(f"needs {SHARED} (trained models and photos), which is absent here")
    return SHARED
