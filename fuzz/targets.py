"""Fuzz targets: feed a mutated input to a loader; nnasim's own errors are fine, anything else is a bug."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from nnasim.errors import NnasimError


def model_target(data: bytes, folder: Path | None = None, side: dict[str, bytes] | None = None) -> str:
    """Load (through the QDQ-aware loader), lower and run a model given as bytes, with ``side`` files
    (external data) beside it; return 'ok' or 'error' (nnasim's own)."""
    from nnasim.ir.execute import run_float
    from nnasim.quant.qdq import load_any

    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        path = Path(tmp) / "fuzzed.onnx"
        path.write_bytes(data)
        for name, content in (side or {}).items():
            (Path(tmp) / name).write_bytes(content)
        try:
            graph = load_any(path)
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


def spec_target(text: str, folder: Path | None = None) -> str:
    """Load and check a sweep spec given as YAML text (its grid too); 'ok' or 'error'."""
    from nnasim.sweep.grid import Grid
    from nnasim.sweep.spec import load_spec

    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        path = Path(tmp) / "spec.yaml"
        path.write_text(text, encoding="latin-1")
        try:
            Grid(load_spec(path))
        except NnasimError:
            return "error"
    return "ok"


_ARRAY_GRAPH = []


def array_target(suffix: str, data: bytes, folder: Path | None = None) -> str:
    """Read a .npy/.npz input for a 1x3x32x32 model; 'ok' or 'error'."""
    from nnasim.engine.inputs import read_feed
    from nnasim.frontend import load_lowered
    from nnasim.io.data import DEFAULT_PREPROCESSING

    if not _ARRAY_GRAPH:
        _ARRAY_GRAPH.append(load_lowered("tinynet"))
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        path = Path(tmp) / f"input{suffix}"
        path.write_bytes(data)
        try:
            read_feed(path, _ARRAY_GRAPH[0], DEFAULT_PREPROCESSING)
        except NnasimError:
            return "error"
    return "ok"
