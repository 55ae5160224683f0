"""Mutations of valid inputs: bytes of a serialized model, and fields of its protobuf.

Each mutator takes a ``random.Random`` and returns bytes to feed to a loader. The
fuzz targets assert that nnasim either works or raises its own error.
"""

from __future__ import annotations

import random

import numpy as np
import onnx
from onnx import helper, numpy_helper

OP_TYPES = (
    "Conv",
    "Relu",
    "Add",
    "Gemm",
    "MaxPool",
    "Softmax",
    "Reshape",
    "Concat",
    "Erf",
    "Slice",
    "Resize",
)


def seed_model() -> onnx.ModelProto:
    """A small valid model touching the common converters: conv, BN, pool, gemm, softmax."""
    rng = np.random.default_rng(0)
    consts = {
        "w": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
        "b": rng.standard_normal(4).astype(np.float32),
        "g": np.ones(4, np.float32),
        "be": np.zeros(4, np.float32),
        "m": np.zeros(4, np.float32),
        "v": np.ones(4, np.float32),
        "fc": rng.standard_normal((5, 16)).astype(np.float32),
        "shape": np.array([1, -1], np.int64),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("BatchNormalization", ["c", "g", "be", "m", "v"], ["n"]),
        helper.make_node("Relu", ["n"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Reshape", ["p", "shape"], ["f"]),
        helper.make_node("Gemm", ["f", "fc"], ["z"], transB=1),
        helper.make_node("Softmax", ["z"], ["y"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "seed",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 5])],
        [numpy_helper.from_array(v, k) for k, v in consts.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def flip_bytes(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        buf[rng.randrange(len(buf))] = rng.randrange(256)
    return bytes(buf)


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data))]


def splice(rng: random.Random, data: bytes) -> bytes:
    start, length = rng.randrange(len(data)), rng.randint(1, 64)
    return data[:start] + bytes(rng.randrange(256) for _ in range(length)) + data[start:]


def mutate_fields(rng: random.Random, model: onnx.ModelProto) -> bytes:
    """Change one protobuf field: a dim, an attribute, an op type, an input name, an initializer."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    choice = rng.randrange(7)
    if choice == 0:
        dims = graph.input[0].type.tensor_type.shape.dim
        dims[rng.randrange(len(dims))].dim_value = rng.choice([0, -1, 1, 2, 3, 7, 1 << 20, 1 << 40])
    elif choice == 1:
        node = rng.choice([n for n in graph.node if n.attribute] or list(graph.node))
        if node.attribute:
            attr = rng.choice(node.attribute)
            if attr.ints:
                attr.ints[rng.randrange(len(attr.ints))] = rng.choice([-3, -1, 0, 1, 5, 1 << 31])
            else:
                attr.i = rng.choice([-3, -1, 0, 2, 9])
    elif choice == 2:
        rng.choice(graph.node).op_type = rng.choice(OP_TYPES)
    elif choice == 3:
        node = rng.choice(graph.node)
        if node.input:
            node.input[rng.randrange(len(node.input))] = rng.choice(["", "nope", "x", "y", "w"])
    elif choice == 4:
        del graph.initializer[rng.randrange(len(graph.initializer))]
    elif choice == 5:
        init = rng.choice(graph.initializer)
        if init.dims:
            init.dims[rng.randrange(len(init.dims))] = rng.choice([0, 1, 2, 3, 100])
    else:
        model.opset_import[0].version = rng.choice([1, 6, 7, 9, 11, 13, 99])
    return model.SerializeToString()


def mutate(rng: random.Random, model: onnx.ModelProto, data: bytes) -> bytes:
    """One random mutation of either kind."""
    kind = rng.randrange(4)
    if kind == 0:
        return flip_bytes(rng, data)
    if kind == 1:
        return truncate(rng, data)
    if kind == 2:
        return splice(rng, data)
    return mutate_fields(rng, model)


PROFILE_VALUES = (None, 0, -1, -0.5, 1e30, "fast", [], {}, {8: -1}, True, "2nx", "nonesuch", 3.5)


def mutate_profile(rng: random.Random) -> str:
    """A hardware profile YAML text with one mutation: a key dropped, retyped, added, or bytes flipped."""
    import yaml

    from nnasim.cost.profile import builtin_profiles

    text = rng.choice(list(builtin_profiles().values())).read_text()
    if rng.random() < 0.25:
        return flip_bytes(rng, text.encode()).decode("latin-1")
    data = yaml.safe_load(text)
    target, key = _random_slot(rng, data)
    action = rng.randrange(3)
    if action == 0 and key in target:
        del target[key]
    elif action == 1:
        target[key] = rng.choice(PROFILE_VALUES)
    else:
        target[rng.choice(["extra_key", "inherits", "clock_ghz", 8, 4])] = rng.choice(PROFILE_VALUES)
    return yaml.safe_dump(data)


def _random_slot(rng: random.Random, data: dict):
    """A (mapping, key) pair somewhere in the nested profile."""
    target = data
    key = rng.choice(list(target))
    while isinstance(target.get(key), dict) and target[key] and rng.random() < 0.6:
        target = target[key]
        key = rng.choice(list(target))
    return target, key
