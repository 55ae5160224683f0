"""Oracles and data the tests share: onnxruntime runs and the trained models in ../shared."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def shared_model(name: str) -> Path:
    """Path of a trained model in ../shared/models, skipping the test when it is absent."""
    path = SHARED / "models" / f"{name}.onnx"
    if not path.exists():
        pytest.skip(f"needs {path}, which is absent here")
    return path


def ort_run(model, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Run a ModelProto or path in onnxruntime (one thread, warnings silenced)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    source = model.SerializeToString() if hasattr(model, "SerializeToString") else str(model)
    session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)
