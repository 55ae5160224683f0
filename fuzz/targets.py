"""Fuzz targets: feed a mutated input to a loader; nnasim's own errors are fine, anything else is a bug."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from nnasim.errors import NnasimError


def model_target(data: bytes, folder: Path | None = None) -> str:
    """Load, lower and run a model given as bytes; return 'ok' or 'error' (nnasim's own)."""
    from nnasim.frontend import load_lowered
    from nnasim.ir.execute import run_float

    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        path = Path(tmp) / "fuzzed.onnx"
        path.write_bytes(data)
        try:
            graph = load_lowered(path)
            feeds = {n: np.zeros(graph.shape(n), graph.tensors[n].dtype) for n in graph.inputs}
            with np.errstate(all="ignore"):
                run_float(graph, feeds)
        except NnasimError:
            return "error"
    return "ok"


def profile_target(text: str, folder: Path | None = None) -> str:
    """Load a profile given as YAML text and cost a small network with it; 'ok' or 'error'."""
    from nnasim.cost.profile import load_profile

    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        path = Path(tmp) / "fuzzed.yaml"
        path.write_text(text, encoding="latin-1")
        try:
            load_profile(path)
        except NnasimError:
            return "error"
    return "ok"
