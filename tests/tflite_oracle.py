"""The TFLite interpreter and TFLite Micro's as oracles: every tensor of a run, compared with the
engine's integers."""

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


def integer_inputs(details, seed: int = 0) -> list[np.ndarray]:
    """Uniform random integers over each input's full range, from its details (shape, dtype)."""
    rng = np.random.default_rng(seed)
    values = []
    for detail in details:
        info = np.iinfo(detail["dtype"])
        values.append(
            rng.integers(info.min, info.max, detail["shape"], endpoint=True).astype(detail["dtype"])
        )
    return values


def invoke(it, inputs: list[np.ndarray]) -> None:
    """Run interpreter ``it`` on ``inputs``, one per input in its order."""
    for detail, q in zip(it.get_input_details(), inputs, strict=True):
        it.set_tensor(detail["index"], q)
    it.invoke()


def compare_all_tensors(path: Path, rule: str | None = None, reference: bool = True, seed: int = 0):
    """(TFLite tensor names that differ, number compared) over every op output of one run."""
    it = interpreter(path, reference)
    inputs = integer_inputs(it.get_input_details(), seed)
    invoke(it, inputs)
    return compare_with_runtime(path, rule, inputs, it.get_tensor)


MICRO_BOOKKEEPING_BYTES = 1 << 20  # TFLM's own structures in the arena (measured: under 0.3 MiB)


def micro_interpreter(path: Path):
    """TFLite Micro's interpreter on ``path``, keeping every tensor: its arena holds every
    non-constant tensor at once (no reuse) plus TFLM's bookkeeping."""
    from tflite_micro.python.tflite_micro import runtime

    activations = sum(
        int(np.prod(t.shape)) * np.dtype(t.dtype.lower()).itemsize
        for t in read_tflite(path).tensors
        if t.data is None
    )
    return runtime.Interpreter.from_bytes(
        path.read_bytes(),
        arena_size=activations + MICRO_BOOKKEEPING_BYTES,
        intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors,
    )


def compare_all_tensors_micro(path: Path, rule: str = "fixedpoint", seed: int = 0):
    """``compare_all_tensors`` against TFLite Micro's interpreter."""
    it = micro_interpreter(path)
    count = len(read_tflite(path).inputs)
    inputs = integer_inputs([it.get_input_details(i) for i in range(count)], seed)
    for i, q in enumerate(inputs):
        it.set_input(q, i)
    it.invoke()
    return compare_with_runtime(path, rule, inputs, lambda index: it.GetTensor(index, 0)["tensor_data"])


def compare_with_runtime(path: Path, rule: str | None, inputs: list[np.ndarray], tensor_of):
    """(names that differ, number compared): the engine run on ``inputs`` (the integers a runtime
    was given) against ``tensor_of(index)``, the runtime's integers of every op output."""
    model = read_tflite(path)
    graph, names = convert_tflite(model)
    session = build_session(graph, None, requant=rule)  # the model's own widths
    feeds = {
        name: dequantize_array(q.transpose(0, 3, 1, 2) if q.ndim == 4 else q, session.quant(name))
        for q, name in zip(inputs, graph.inputs, strict=True)
    }
    ours = session.run_integers(feeds, keep_all=True)
    differ, compared = [], 0
    for op in model.ops:
        for index in op.outputs:
            if names.get(index) not in ours:
                continue  # folded away (a PAD into its convolution)
            compared += 1
            got, want = ours[names[index]], tensor_of(index)
            if got.shape != want.shape or not np.array_equal(got.astype(np.int64), want.astype(np.int64)):
                differ.append(f"{op.name} {model.tensors[index].name}")
    outputs = [names[i] for i in model.outputs]
    assert all(o in ours for o in outputs)
    return differ, compared
