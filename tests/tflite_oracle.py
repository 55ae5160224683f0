"""The TFLite interpreter as an oracle: every tensor of a run, compared with the engine's integers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from oracles import SHARED

from nnasim.engine.session import build_session
from nnasim.frontend.tflite import convert_tflite
from nnasim.frontend.tflite_reader import read_tflite
from nnasim.quant.params import dequantize_array


def shared_tflite(name: str) -> Path:
    path = SHARED / "models" / name
    if not path.exists():
        pytest.skip(f"needs {path}, which is absent here")
    return path


def interpreter(path: Path, reference: bool = True):
    import warnings

    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.BUILTIN_REF if reference else OpResolverType.AUTO
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "preserve_all_tensors is for debugging"
        it = Interpreter(
            model_path=str(path),
            experimental_op_resolver_type=resolver,
            experimental_preserve_all_tensors=True,
        )
    it.allocate_tensors()
    return it


def integer_inputs(it, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    values = []
    for detail in it.get_input_details():
        info = np.iinfo(detail["dtype"])
        values.append(
            rng.integers(info.min, info.max, detail["shape"], endpoint=True).astype(detail["dtype"])
        )
    return values


def compare_all_tensors(path: Path, rule: str | None = None, reference: bool = True, seed: int = 0):
    """(TFLite tensor names that differ, number compared) over every op output of one run."""
    model = read_tflite(path)
    graph, names = convert_tflite(model)
    session = build_session(graph, None, requant=rule)  # the model's own widths
    it = interpreter(path, reference)
    feeds = {}
    for detail, q, name in zip(it.get_input_details(), integer_inputs(it, seed), graph.inputs, strict=True):
        it.set_tensor(detail["index"], q)
        feeds[name] = dequantize_array(q.transpose(0, 3, 1, 2) if q.ndim == 4 else q, session.quant(name))
    it.invoke()
    ours = session.run_integers(feeds, keep_all=True)
    differ, compared = [], 0
    for op in model.ops:
        for index in op.outputs:
            if names.get(index) not in ours:
                continue  # folded away (a PAD into its convolution)
            compared += 1
            got, want = ours[names[index]], it.get_tensor(index)
            if got.shape != want.shape or not np.array_equal(got.astype(np.int64), want.astype(np.int64)):
                differ.append(f"{op.name} {model.tensors[index].name}")
    outputs = [names[i] for i in model.outputs]
    assert all(o in ours for o in outputs)
    return differ, compared
