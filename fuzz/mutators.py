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


# --- numeric extremes, NaN, external data (models) --------------------------------------------

EXTREMES = (float("nan"), float("inf"), float("-inf"), 3.4e38, -3.4e38, 1e-45, -0.0, 0.0, 1e308)
LOCATIONS = ("w.bin", "../w.bin", "/etc/passwd", "", "sub/w.bin", "nonexistent.bin", ".", "w.bin\x00x")


def poison_values(rng: random.Random, model: onnx.ModelProto) -> bytes:
    """An initializer with a NaN, an infinity or another extreme float in it."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    init = rng.choice([t for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT])
    values = numpy_helper.to_array(init).copy()
    flat = values.reshape(-1)
    with np.errstate(over="ignore"):  # 1e308 becomes float32 infinity, as intended
        for _ in range(rng.randint(1, 3)):
            flat[rng.randrange(flat.size)] = rng.choice(EXTREMES)
    init.CopyFrom(numpy_helper.from_array(values, init.name))
    return model.SerializeToString()


def externalize(rng: random.Random, model: onnx.ModelProto) -> tuple[bytes, dict[str, bytes]]:
    """An initializer moved to external data with a random location, offset and length; also the
    side files to write beside the model (the right bytes, too few, or none)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    init = rng.choice(list(model.graph.initializer))
    data = numpy_helper.to_array(init).tobytes()
    init.ClearField("raw_data")
    for field in ("float_data", "int64_data", "int32_data"):
        init.ClearField(field)
    init.data_location = onnx.TensorProto.EXTERNAL
    entries = {"location": rng.choice(LOCATIONS)}
    if rng.random() < 0.5:
        entries["offset"] = str(rng.choice([0, 1, -1, 8, 1 << 40]))
    if rng.random() < 0.5:
        entries["length"] = str(rng.choice([0, len(data), len(data) - 1, len(data) + 1, 1 << 40]))
    for key, value in entries.items():
        entry = init.external_data.add()
        entry.key, entry.value = key, value
    side = {"w.bin": rng.choice([data, data[: len(data) // 2], b"", bytes(8) + data])}
    return model.SerializeToString(), side if rng.random() < 0.8 else {}


def mutate_model(rng: random.Random, model: onnx.ModelProto, data: bytes) -> tuple[bytes, dict[str, bytes]]:
    """Any model mutation: bytes, fields, poisoned values or external data; (model bytes, side files)."""
    kind = rng.randrange(6)
    if kind == 4:
        return poison_values(rng, model), {}
    if kind == 5:
        return externalize(rng, model)
    return mutate(rng, model, data), {}


# --- profiles and specs: extremes and aliases -------------------------------------------------

NUMERIC_TEXT = (
    ".nan",
    ".inf",
    "-.inf",
    "1.0e+308",
    "-1.0e+308",
    "9223372036854775808",
    "65",
    "-0.0",
    "1e-320",
)


def alias_text(rng: random.Random) -> str:
    """YAML using anchors and aliases: harmless reuse, a nested bomb, or a recursive alias."""
    choice = rng.randrange(3)
    if choice == 0:
        return "base: &b 2nx\ninherits: *b\n"
    if choice == 1:
        depth, width = rng.randint(2, 9), rng.randint(2, 12)
        lines = ["l0: &l0 [x, x]"] + [
            f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, depth)
        ]
        return "\n".join(lines) + "\n"
    return "a: &a [*a]\n" if rng.random() < 0.5 else "a: &a {b: *a}\n"


def mutate_profile_extreme(rng: random.Random) -> str:
    """A built-in profile with one number replaced by an extreme, or alias text mixed in."""
    from nnasim.cost.profile import builtin_profiles

    text = rng.choice(list(builtin_profiles().values())).read_text()
    if rng.random() < 0.3:
        return alias_text(rng) + (text if rng.random() < 0.5 else "")
    lines = text.splitlines()
    numeric = [
        i for i, line in enumerate(lines) if ":" in line and any(c.isdigit() for c in line.split(":", 1)[1])
    ]
    index = rng.choice(numeric)
    key, _, rest = lines[index].partition(":")
    if "{" in rest:  # a per-bit mapping: replace one of its values
        parts = rest.split(",")
        part = rng.randrange(len(parts))
        name = parts[part].split(":")[0]
        parts[part] = f"{name}: {rng.choice(NUMERIC_TEXT)}" + (
            "}" if parts[part].rstrip().endswith("}") else ""
        )
        lines[index] = f"{key}:{','.join(parts)}"
    else:
        lines[index] = f"{key}: {rng.choice(NUMERIC_TEXT)}"
    return "\n".join(lines) + "\n"


SPEC_SEED = """base: 2nx
parameters:
  ocm_kib: [0, 64]
  dram_gbps: {start: 4, stop: 16, step: 6}
  clock_mhz: {start: 500, stop: 1000, factor: 2}
models: [tinynet]
bits: [8]
area: {mm2_per_mac: 0.00042, mm2_per_kib: 0.004}
objectives: {area_mm2: min, tinynet_ips: max}
"""


def mutate_spec(rng: random.Random) -> str:
    """The seed sweep spec with an extreme range bound or factor, a NaN, or aliases."""
    choice = rng.randrange(4)
    if choice == 0:
        return alias_text(rng) + SPEC_SEED
    value = rng.choice(NUMERIC_TEXT + ("1.0000000001", "1", "0", "-1", "1e-300"))
    field = rng.choice(
        ["start: 4", "stop: 16", "step: 6", "start: 500", "stop: 1000", "factor: 2", "[0, 64]"]
    )
    replacement = f"[{value}]" if field.startswith("[") else f"{field.split(':')[0]}: {value}"
    text = SPEC_SEED.replace(field, replacement, 1)
    return flip_bytes(rng, text.encode()).decode("latin-1") if choice == 3 else text


# --- arrays: .npy headers and .npz members ----------------------------------------------------

ARRAY_SHAPE = (1, 3, 32, 32)


def _npy(value: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, value, allow_pickle=True)
    return buffer.getvalue()


def mutate_array(rng: random.Random) -> tuple[str, bytes]:
    """(suffix, bytes) of a .npy or .npz input: extreme values, odd dtypes, lying headers, cut members."""
    import io
    import zipfile

    value = np.zeros(ARRAY_SHAPE, np.float32)
    choice = rng.randrange(6)
    if choice == 0:
        with np.errstate(over="ignore"):
            value.reshape(-1)[rng.randrange(value.size)] = rng.choice(EXTREMES)
    elif choice == 1:
        value = rng.choice(
            [
                np.array(["a"]),
                np.array([None], object),
                np.zeros(3, [("a", "f4")]),
                np.zeros(ARRAY_SHAPE, np.float64) + 1e300,
                np.zeros(ARRAY_SHAPE, np.complex64),
            ]
        )
    data = _npy(value)
    if choice == 2:  # a header lying about the shape
        shape = rng.choice([(10**6, 10**6), (1, 3, 32, 33), (), (0,), (2**62,), (-1, 3)])
        text = data[10:].split(b"}")[0].decode("latin-1")
        header = text[: text.index("'shape':")] + f"'shape': {shape!r}, " + "}"
        data = data[:8] + len(header).to_bytes(2, "little") + header.encode() + data[10 + len(text) + 1 :]
    if choice == 3:
        data = flip_bytes(rng, data)
    if choice == 4:
        data = truncate(rng, data)
    if rng.random() < 0.5:
        return ".npy", data
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", rng.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])) as archive:
        archive.writestr(rng.choice(["input.npy", "x.npy", "other.npy", "input"]), data)
    archive_bytes = buffer.getvalue()
    if choice == 5:
        archive_bytes = rng.choice([truncate, flip_bytes, splice])(rng, archive_bytes)
    return ".npz", archive_bytes
