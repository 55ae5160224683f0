"""Checks shared by the compare and cascade tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def assert_nontrivial_png(path: Path) -> None:
    """A real figure: a few KB at least, and neither blank nor a flat colour."""
    assert path.exists(), f"{path} is missing"
    assert path.stat().st_size > 5_000, f"{path} is only {path.stat().st_size} bytes"
    pixels = np.asarray(Image.open(path).convert("RGB"), np.float64)
    assert pixels.std() > 10, f"{path} looks blank"
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20, f"{path} has almost no colours"
