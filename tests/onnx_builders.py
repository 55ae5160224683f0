"""Small ONNX models built in code for the frontend, pass and executor tests."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

RNG = np.random.default_rng(1234)


def weight(*shape: int, scale: float = 0.5) -> np.ndarray:
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def single_op_model(
    op: str,
    input_shape: tuple[int, ...],
    consts: dict[str, np.ndarray] | None = None,
    extra_inputs: tuple[str, ...] = (),
    opset: int = 17,
    **attrs,
) -> onnx.ModelProto:
    """A model of one node reading input ``x`` and the named constants; output ``y``."""
    consts = consts or {}
    node = helper.make_node(op, ["x", *consts, *extra_inputs], ["y"], name=f"the_{op.lower()}", **attrs)
    return make_model([node], input_shape, consts, opset)


def make_model(nodes, input_shape, consts=None, opset: int = 17, outputs=("y",)) -> onnx.ModelProto:
    inits = [numpy_helper.from_array(v, k) for k, v in (consts or {}).items()]
    graph = helper.make_graph(
        nodes,
        "test",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def input_shape(model: onnx.ModelProto) -> tuple[int, ...]:
    return tuple(d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim)


def bn_consts(prefix: str, channels: int) -> dict[str, np.ndarray]:
    return {
        f"{prefix}_gamma": (RNG.uniform(0.5, 1.5, channels)).astype(np.float32),
        f"{prefix}_beta": weight(channels, scale=0.1),
        f"{prefix}_mean": weight(channels, scale=0.1),
        f"{prefix}_var": RNG.uniform(0.5, 2.0, channels).astype(np.float32),
    }
