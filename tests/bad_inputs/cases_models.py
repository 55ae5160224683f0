"""Model files: odd files, external data, opsets, non-finite constants, nodes onnx cannot infer."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tests.bad_inputs.catalogue import Case, _conv_model, _model, _relu_model, _writer

WEIGHT = np.ones((4, 3, 3, 3), np.float32)


def _external_conv(location: str, offset: int = 0, length: int | None = None) -> onnx.ModelProto:
    """A conv whose weight lives in the file ``location`` (external data)."""
    model = _conv_model()
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    entries = {"location": location, "offset": str(offset)}
    if length is not None:
        entries["length"] = str(length)
    for key, value in entries.items():
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return model


def _external(location: str, data: bytes | None = WEIGHT.tobytes(), **kwargs):
    """The model in ``dir/m/``; ``data`` written to ``dir/m/weights.bin`` (None: nowhere)."""

    def make(folder: Path) -> None:
        (folder / "m").mkdir()
        onnx.save(_external_conv(location, **kwargs), folder / "m" / "model.onnx")
        if data is not None:
            (folder / "m" / "weights.bin").write_bytes(data)

    return make


def _in_cwd(monkeypatch, folder: Path) -> None:
    """A stray weights.bin in the current folder, which must never be used."""
    (folder / "cwd").mkdir(exist_ok=True)
    (folder / "cwd" / "weights.bin").write_bytes(WEIGHT.tobytes())
    monkeypatch.chdir(folder / "cwd")


def _outside_link(folder: Path) -> None:
    _external("weights.bin", data=None)(folder)
    (folder / "secret.bin").write_bytes(WEIGHT.tobytes())
    (folder / "m" / "weights.bin").symlink_to(folder / "secret.bin")


def _sparse(name: str, size: int):
    def make(folder: Path) -> None:
        with open(folder / name, "wb") as handle:
            handle.truncate(size)

    return make


def _conv_with(weight: np.ndarray, **attrs) -> onnx.ModelProto:
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", **attrs)
    return _model([node], [numpy_helper.from_array(weight, "w")])


def _conv_bn_overflowing() -> onnx.ModelProto:
    """Conv -> BatchNormalization whose scale (3e38 / sqrt(1)) times the conv's weights exceeds float32."""
    conv = helper.make_node("Conv", ["x", "w"], ["c"], name="conv")
    bn = helper.make_node("BatchNormalization", ["c", "g", "b", "m", "v"], ["y"], name="bn")
    stats = {"g": [3e38] * 4, "b": [0.0] * 4, "m": [0.0] * 4, "v": [1.0] * 4}
    inits = [numpy_helper.from_array(WEIGHT * 2, "w")]
    inits += [numpy_helper.from_array(np.array(v, np.float32), k) for k, v in stats.items()]
    return _model([conv, bn], inits)


def _poisoned(value: float) -> np.ndarray:
    weight = WEIGHT.copy()
    weight[1, 2, 0, 0] = value
    return weight


def _constant_node_nan() -> onnx.ModelProto:
    value = numpy_helper.from_array(np.array([1.0, np.nan, 3.0], np.float32).reshape(1, 3, 1, 1), "c")
    nodes = [
        helper.make_node("Constant", [], ["c"], name="const", value=value),
        helper.make_node("Mul", ["x", "c"], ["y"], name="mul"),
    ]
    return _model(nodes)


def _qdq_model(scale: float) -> onnx.ModelProto:
    inits = [
        numpy_helper.from_array(np.array(scale, np.float32), "s"),
        numpy_helper.from_array(np.array(0, np.int8), "z"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="quant"),
        helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], name="dequant"),
    ]
    return _model(nodes, inits, opset=13)


def _qdq_external(folder: Path) -> None:
    """A QDQ model (the path that used to skip the frontend's checks) with its weight outside its folder."""
    model = _qdq_model(0.05)
    conv = _external_conv("../weights.bin")
    model.graph.initializer.extend(conv.graph.initializer)
    model.graph.node[-1].output[0] = "d"
    model.graph.node.append(helper.make_node("Conv", ["d", "w"], ["y"], name="conv"))
    (folder / "m").mkdir()
    onnx.save(model, folder / "m" / "model.onnx")
    (folder / "weights.bin").write_bytes(WEIGHT.tobytes())


def _node(op: str, inputs=("x",), inits=None, **attrs) -> onnx.ModelProto:
    inits = {k: np.asarray(v) for k, v in (inits or {}).items()}
    node = helper.make_node(op, [*inputs, *inits], ["y"], name="the_node", **attrs)
    return _model([node], [numpy_helper.from_array(v, k) for k, v in inits.items()])


def _info(name: str, build, message: str, *extra: str) -> Case:
    return Case(name, ("info", "{dir}/model.onnx", *extra), message, _writer("model.onnx", build))


EXTERNAL = ("info", "{dir}/m/model.onnx")
SLICE = {"starts": np.array([0], np.int64), "ends": np.array([4], np.int64), "axes": np.array([2], np.int64)}

MODEL_FILE_CASES = [
    Case(
        "model is a FIFO",
        ("info", "{dir}/model.onnx"),
        r"model\.onnx: is a FIFO",
        lambda f: os.mkfifo(f / "model.onnx"),
    ),
    Case("model is a device", ("info", "/dev/zero"), r"/dev/zero: is a device, not an ONNX file"),
    Case(
        "model is a folder",
        ("info", "{dir}/m.onnx"),
        r"m\.onnx: is a folder",
        lambda f: (f / "m.onnx").mkdir(),
    ),
    Case(
        "40 GiB sparse model",
        ("info", "{dir}/model.onnx"),
        r"model\.onnx: 40\.00 GiB is more than nnasim reads as an ONNX file",
        _sparse("model.onnx", 40 * 2**30),
    ),
    Case(
        "dangling symlink model",
        ("info", "{dir}/model.onnx"),
        r"model\.onnx: no such file",
        lambda f: (f / "model.onnx").symlink_to(f / "gone"),
    ),
    Case(
        "external data only in the current folder",
        EXTERNAL,
        r"initializer 'w': external data: file 'weights\.bin' not found beside the model",
        _external("weights.bin", data=None),
        _in_cwd,
    ),
    Case(
        "external data absolute path",
        EXTERNAL,
        r"location '/etc/passwd' must be a file name relative to the model's folder",
        _external("/etc/passwd"),
    ),
    Case(
        "external data ..",
        EXTERNAL,
        r"location '\.\./weights\.bin' must be a file name relative",
        _external("../weights.bin"),
    ),
    Case(
        "external data link out of the folder",
        EXTERNAL,
        r"location 'weights\.bin' leads out of the model's folder",
        _outside_link,
    ),
    Case(
        "external data truncated",
        EXTERNAL,
        r"bytes 0\.\.432 are outside weights\.bin \(100 bytes\)",
        _external("weights.bin", bytes(100), length=432),
    ),
    Case(
        "external data short",
        EXTERNAL,
        r"100 bytes in weights\.bin, its shape and type need 432",
        _external("weights.bin", bytes(100)),
    ),
    Case(
        "external data offset beyond",
        EXTERNAL,
        r"are outside weights\.bin",
        _external("weights.bin", offset=10**12, length=432),
    ),
    Case(
        "external data negative offset",
        EXTERNAL,
        r"bytes -5\.\.",
        _external("weights.bin", offset=-5, length=432),
    ),
    Case(
        "external data is a folder",
        EXTERNAL,
        r"'sub' is not a regular file",
        lambda f: (_external("sub")(f), (f / "m" / "sub").mkdir()),
    ),
    Case(
        "external data NaN weights",
        EXTERNAL,
        r"constant 'w' holds NaN",
        _external("weights.bin", _poisoned(np.nan).tobytes()),
    ),
    Case(
        "QDQ model with external data outside its folder",
        EXTERNAL,
        r"location '\.\./weights\.bin' must be",
        _qdq_external,
    ),
    _info(
        "opset 99",
        lambda: _relu_model(opset=99),
        r"model\.onnx: opset 99 is newer than the newest this onnx package knows",
    ),
    _info("NaN weight", lambda: _conv_with(_poisoned(np.nan)), r"constant 'w' holds NaN \(1 of 108 values\)"),
    _info("Inf weight", lambda: _conv_with(_poisoned(np.inf)), r"constant 'w' holds infinity"),
    _info("-Inf weight", lambda: _conv_with(_poisoned(-np.inf)), r"constant 'w' holds infinity"),
    _info("NaN in a Constant node", _constant_node_nan, r"constant 'c' holds NaN"),
    _info(
        "BatchNormalization folding overflows float32",
        _conv_bn_overflowing,
        r"model\.onnx: constant 'conv::folded_weight' holds infinity \(108 of 108 values\)",
    ),
    _info(
        "negative BatchNormalization variance",
        lambda: _node(
            "BatchNormalization",
            inits={
                n: np.array(v, np.float32)
                for n, v in zip("gbmv", ([1] * 3, [0] * 3, [0] * 3, [1, -2, 1]), strict=True)
            },
        ),
        r"node 'the_node' \(BatchNormalization\): var \+ epsilon must be positive \(smallest -2\)",
    ),
    _info("NaN QDQ scale", lambda: _qdq_model(np.nan), r"constant 's' holds NaN"),
    _info("Inf QDQ scale", lambda: _qdq_model(np.inf), r"constant 's' holds infinity"),
    _info("zero QDQ scale", lambda: _qdq_model(0.0), r"scale"),
    _info(
        "MaxPool without kernel_shape",
        lambda: _node("MaxPool"),
        r"node 'the_node' \(MaxPool\): Attribute kernel_shape must be specified",
    ),
    _info(
        "MaxPool stride 0",
        lambda: _node("MaxPool", kernel_shape=[2, 2], strides=[0, 1]),
        r"node 'the_node' \(MaxPool\): Attribute strides must only contain positive",
    ),
    _info(
        "Conv dilation 0",
        lambda: _conv_with(WEIGHT, dilations=[0, 1]),
        r"node 'conv' \(Conv\): Attribute dilations must only contain positive",
    ),
    _info(
        "Conv negative pads",
        lambda: _conv_with(WEIGHT, pads=[-1, 0, 0, 0]),
        r"node 'conv' \(Conv\): Attribute pads must not contain negative",
    ),
    _info(
        "MatMul shape mismatch",
        lambda: _node("MatMul", inits={"w": np.ones((5, 4), np.float32)}),
        r"node 'the_node' \(MatMul\): Incompatible dimensions",
    ),
    _info(
        "Transpose repeated perm",
        lambda: _node("Transpose", perm=[0, 1, 1, 2]),
        r"node 'the_node' \(Transpose\): Attribute perm for Transpose has repeated",
    ),
    _info("Transpose short perm", lambda: _node("Transpose", perm=[0, 1]), r"node 'the_node' \(Transpose\)"),
    _info(
        "Softmax axis 7",
        lambda: _node("Softmax", axis=7),
        r"node 'the_node' \(Softmax\): 'axis' must be in \[-4 , 3\]",
    ),
    _info(
        "Concat axis 9",
        lambda: _node("Concat", inputs=("x", "x"), axis=9),
        r"node 'the_node' \(Concat\): axis must be in",
    ),
    _info(
        "Slice step 0",
        lambda: _node("Slice", inits={**SLICE, "steps": np.array([0], np.int64)}),
        r"node 'the_node' \(Slice\): 'step' cannot be 0",
    ),
    _info("Flatten axis 9", lambda: _node("Flatten", axis=9), r"node 'the_node' \(Flatten\)"),
    _info(
        "Reshape to a wrong size",
        lambda: _node("Reshape", inits={"shape": np.array([7, 7], np.int64)}),
        r"node 'the_node' \(Reshape\)",
    ),
    Case(
        "--input-shape 1e23",
        ("info", "tinynet", "--input-shape", "1,3,1e23,8"),
        r"--input-shape '1,3,1e23,8': expected integers",
    ),
    Case(
        "--input-shape 10^23",
        ("info", "tinynet", "--input-shape", "1,3,100000000000000000000000,8"),
        r"--input-shape .*too large",
    ),
    Case(
        "--input-shape huge product",
        ("info", "tinynet", "--input-shape", "1,3,4000000000,4000000000"),
        r"--input-shape .*too large|alone needs",
    ),
]


def _qdq_conv(x_scale: float, w_scale: float, y_scale: float, zero=np.int16) -> onnx.ModelProto:
    """x -> Q/DQ (16-bit) -> Conv (int8 weight through DQ) -> Q/DQ (16-bit) -> y."""
    inits = [
        numpy_helper.from_array(np.array(x_scale, np.float32), "sx"),
        numpy_helper.from_array(np.array(0, zero), "zx"),
        numpy_helper.from_array(np.ones((4, 3, 3, 3), np.int8), "wq"),
        numpy_helper.from_array(np.array(w_scale, np.float32), "sw"),
        numpy_helper.from_array(np.array(0, np.int8), "zw"),
        numpy_helper.from_array(np.array(y_scale, np.float32), "sy"),
        numpy_helper.from_array(np.array(0, zero), "zy"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["xq"], name="qx"),
        helper.make_node("DequantizeLinear", ["xq", "sx", "zx"], ["xd"], name="dqx"),
        helper.make_node("DequantizeLinear", ["wq", "sw", "zw"], ["w"], name="dqw"),
        helper.make_node("Conv", ["xd", "w"], ["c"], name="conv"),
        helper.make_node("QuantizeLinear", ["c", "sy", "zy"], ["cq"], name="qy"),
        helper.make_node("DequantizeLinear", ["cq", "sy", "zy"], ["y"], name="dqy"),
    ]
    return _model(nodes, inits, opset=21)


def _underflow(folder: Path) -> None:
    onnx.save(_qdq_conv(1e-6, 1e-6, 1e4), folder / "model.onnx")
    np.save(folder / "x.npy", np.ones((1, 3, 8, 8), np.float32) * 1e-3)


MODEL_FILE_CASES.append(
    Case(
        "16-bit multiplier below 2^-32 (fixedpoint)",
        ("run", "{dir}/model.onnx", "--bits", "16", "--requant", "fixedpoint", "--input", "{dir}/x.npy"),
        r"node 'conv' \(Conv\): requantization multiplier 1e-16 underflows to 0 under the fixedpoint rule",
        _underflow,
    )
)
