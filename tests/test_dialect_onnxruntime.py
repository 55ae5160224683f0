"""Small float models quantized by onnxruntime itself (quantize_static in QDQ and QOperator form,
quantize_dynamic), run in nnasim with the models' own formats and compared with onnxruntime.

u8s8 with 7-bit weights (``reduce_range``) is exact integer arithmetic in onnxruntime on any x86
(see test_engine_onnxruntime_ops.py), so QDQ (fused by onnxruntime into QLinear ops) and QOperator
outputs, and every QOperator layer's integers, must be equal (``np.array_equal``).
"""

from __future__ import annotations

import logging

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from nnasim.engine.session import build_session
from nnasim.kernels import layout
from nnasim.quant.qdq import load_qdq

ort = pytest.importorskip("onnxruntime")
quantization = pytest.importorskip("onnxruntime.quantization")


def _init(rng, name, shape, scale):
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def tiny_float_model() -> onnx.ModelProto:
    """Conv+Relu, MaxPool, Conv, residual Add, Concat, AveragePool, LeakyRelu, Mul, GlobalAveragePool,
    MatMul + bias, Gemm, Sigmoid: one of each op onnxruntime's quantizers rewrite."""
    rng = np.random.default_rng(0)
    inits = [
        _init(rng, "w1", (8, 3, 3, 3), 0.3),
        _init(rng, "b1", (8,), 0.3),
        _init(rng, "w2", (8, 8, 3, 3), 0.1),
        _init(rng, "b2", (8,), 0.1),
        _init(rng, "w3", (16, 12), 0.2),
        _init(rng, "b3", (12,), 0.2),
        _init(rng, "w4", (10, 12), 0.2),
        _init(rng, "b4", (10,), 0.2),
        _init(rng, "k", (1, 16, 1, 1), 1.0),
    ]
    node = helper.make_node
    nodes = [
        node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        node("Relu", ["c1"], ["r1"]),
        node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        node("Conv", ["p1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
        node("Add", ["c2", "p1"], ["a2"]),
        node("Concat", ["a2", "p1"], ["cat"], axis=1),
        node("AveragePool", ["cat"], ["p2"], kernel_shape=[2, 2], strides=[2, 2]),
        node("LeakyRelu", ["p2"], ["l2"], alpha=0.1),
        node("Mul", ["l2", "k"], ["m2"]),
        node("GlobalAveragePool", ["m2"], ["gp"]),
        node("Flatten", ["gp"], ["f"]),
        node("MatMul", ["f", "w3"], ["mm"]),
        node("Add", ["mm", "b3"], ["g"]),
        node("Gemm", ["g", "w4", "b4"], ["g2"], transB=1),
        node("Sigmoid", ["g2"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def _feeds(count: int, seed: int = 1) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal((1, 3, 16, 16)).astype(np.float32)} for _ in range(count)]


class _Reader(quantization.CalibrationDataReader):
    def __init__(self, feeds):
        self.items = iter(feeds)

    def get_next(self):
        return next(self.items, None)


def _quantize(tmp_path, quant_format: str, extra_options: dict | None = None) -> str:
    source, out = tmp_path / "float.onnx", tmp_path / f"{quant_format}.onnx"
    onnx.save(tiny_float_model(), str(source))
    reader = _Reader(_feeds(4, seed=9))
    logging.disable(logging.WARNING)  # onnxruntime's advice to pre-process
    try:
        quantization.quantize_static(
            str(source),
            str(out),
            reader,
            quant_format=getattr(quantization.QuantFormat, quant_format),
            per_channel=True,
            reduce_range=True,
            activation_type=quantization.QuantType.QUInt8,
            weight_type=quantization.QuantType.QInt8,
            extra_options=extra_options or {},
        )
    finally:
        logging.disable(logging.NOTSET)
    return str(out)


def _ort_session(model) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("quant_format", ["QDQ", "QOperator"])
def test_onnxruntime_quantized_model_outputs_equal(tmp_path, quant_format):
    path = _quantize(tmp_path, quant_format)
    ops = {node.op_type for node in onnx.load(path).graph.node}
    if quant_format == "QOperator":
        assert {
            "QLinearConv",
            "QLinearMatMul",
            "QGemm",
            "QLinearAdd",
            "QLinearConcat",
            "QLinearMul",
        } <= ops, ops
        assert {"QLinearAveragePool", "QLinearGlobalAveragePool", "QLinearLeakyRelu", "QLinearSigmoid"} <= ops
    session = build_session(load_qdq(path), 8)
    assert session.rule == "float32"
    theirs = _ort_session(path)
    for feed in _feeds(3):
        expected = theirs.run(None, feed)[0]
        assert np.array_equal(session.run(feed)["y"], expected)


def test_onnxruntime_mixed_precision_model(tmp_path):
    """onnxruntime's mixed precision (TensorQuantOverrides: one tensor uint16, converted back to uint8
    for its consumers, com.microsoft Q/DQ): that tensor is 16-bit, a requantization layer follows,
    and the outputs equal onnxruntime's."""
    overrides = {
        "r1": [
            {
                "quant_type": quantization.QuantType.QUInt16,
                "convert": {"quant_type": quantization.QuantType.QUInt8},
            }
        ]
    }
    path = _quantize(tmp_path, "QDQ", {"UseQDQContribOps": True, "TensorQuantOverrides": overrides})
    assert "com.microsoft" in {n.domain for n in onnx.load(path).graph.node}
    session = build_session(load_qdq(path), 8)
    assert session.quant("r1").bits == 16 and not session.quant("r1").signed
    requant = next(n for n in session.graph.nodes if n.op.value == "Identity")
    assert requant.inputs == ("r1",) and session.quant(requant.outputs[0]).bits == 8
    theirs = _ort_session(path)
    for feed in _feeds(2):
        assert np.array_equal(session.run(feed)["y"], theirs.run(None, feed)[0])


def _engine_name(values: dict, model: onnx.ModelProto, name: str) -> str:
    """The engine tensor of a QOperator output: the float op's result ``NAME::float``, or the graph
    output whose DequantizeLinear reads it."""
    read_by_dq = {n.input[0]: n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    return next(n for n in (f"{name}::float", name, read_by_dq.get(name)) if n in values)


def test_qoperator_every_layer_equals_onnxruntime(tmp_path):
    """Every integer tensor of the QOperator model (each QLinear op's output) equals onnxruntime's."""
    path = _quantize(tmp_path, "QOperator")
    model = onnx.load(path)
    integer_tensors = [
        node.output[0]
        for node in model.graph.node
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear")
    ]
    for name in integer_tensors:
        model.graph.output.append(helper.make_empty_tensor_value_info(name))
    theirs = _ort_session(model)
    names = [o.name for o in theirs.get_outputs()]
    session = build_session(load_qdq(path), 8)
    feed = _feeds(1)[0]
    expected = dict(zip(names, theirs.run(None, feed), strict=True))
    ours = session.run_integers(feed, keep_all=True)
    for name in integer_tensors:
        engine_name = _engine_name(ours, model, name)
        assert np.array_equal(layout.to_onnx_layout(ours[engine_name]), expected[name].astype(np.int32)), name


def test_qoperator_formats_are_the_models_own(tmp_path):
    path = _quantize(tmp_path, "QOperator")
    model = onnx.load(path)
    consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    conv = next(n for n in model.graph.node if n.op_type == "QLinearConv")
    session = build_session(load_qdq(path), 8)
    ours = next(n for n in session.graph.nodes if n.op.value == "Conv")
    assert np.array_equal(session.graph.const(ours.inputs[1]), consts[conv.input[3]].astype(np.int64))
    assert np.array_equal(session.quant(ours.inputs[1]).scale, consts[conv.input[4]])
    assert np.array_equal(session.graph.const(ours.inputs[2]), consts[conv.input[8]].astype(np.int64))
    out = session.quant(ours.outputs[0])
    assert float(out.scale) == float(consts[conv.input[6]]) and int(out.zero_point) == int(
        consts[conv.input[7]]
    )
    assert not out.signed


def test_dynamic_quant_model_keeps_its_weights(tmp_path):
    """quantize_dynamic: the ConvInteger/MatMulInteger weights are the model's integers; activations are
    calibrated, so outputs are close to onnxruntime's (which quantizes each input on the fly)."""
    source, out = tmp_path / "float.onnx", tmp_path / "dynamic.onnx"
    onnx.save(tiny_float_model(), str(source))
    logging.disable(logging.WARNING)
    try:
        quantization.quantize_dynamic(
            str(source),
            str(out),
            weight_type=quantization.QuantType.QInt8,
            op_types_to_quantize=["Conv", "MatMul"],
        )
    finally:
        logging.disable(logging.NOTSET)
    model = onnx.load(str(out))
    assert {"DynamicQuantizeLinear", "ConvInteger", "MatMulInteger"} <= {n.op_type for n in model.graph.node}
    consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    integer = next(n for n in model.graph.node if n.op_type == "ConvInteger")
    graph = load_qdq(str(out))
    session = build_session(graph, 8, calib=_feeds(4, seed=9))
    assert any("dynamically quantized" in note for note in session.notes)
    conv = next(n for n in session.graph.nodes if n.op.value == "Conv")
    assert np.array_equal(
        session.graph.const(conv.inputs[1]).astype(np.int64), consts[integer.input[1]].astype(np.int64)
    )
    theirs = _ort_session(str(out))
    for feed in _feeds(2):
        ours, expected = session.run(feed)["y"], theirs.run(None, feed)[0]
        assert np.abs(ours - expected).max() < 0.05
    fp32 = build_session(graph, 32).run(_feeds(1)[0])["y"]
    assert np.abs(fp32 - theirs.run(None, _feeds(1)[0])[0]).max() < 0.05


def test_supported_ops_lists_the_qoperator_ops_read():
    from nnasim.frontend.supported import QOPERATOR_OPS
    from nnasim.quant.qoperator import QOPS

    assert set(QOPERATOR_OPS) == set(QOPS)


def test_qoperator_model_equals_onnx_reference(tmp_path):
    """A QOperator model of standard-domain ops only (QLinearConv, MaxPool and Flatten on uint8,
    QLinearMatMul), against onnx.reference, ONNX's own evaluator: every integer tensor equal."""
    rng = np.random.default_rng(4)
    inits = [
        _init(rng, "w1", (6, 3, 3, 3), 0.3),
        _init(rng, "w2", (6, 6, 3, 3), 0.1),
        _init(rng, "w3", (96, 5), 0.1),
    ]
    node = helper.make_node
    nodes = [
        node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        node("MaxPool", ["c1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        node("Conv", ["p1", "w2"], ["c2"], strides=[2, 2], pads=[1, 1, 1, 1]),
        node("Flatten", ["c2"], ["f"]),
        node("MatMul", ["f", "w3"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "std",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
        inits,
    )
    source, out = tmp_path / "std.onnx", tmp_path / "std_qop.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(source))
    logging.disable(logging.WARNING)
    try:
        quantization.quantize_static(
            str(source), str(out), _Reader(_feeds(3, seed=5)), quant_format=quantization.QuantFormat.QOperator
        )
    finally:
        logging.disable(logging.NOTSET)
    quantized = onnx.load(str(out))
    assert {n.domain for n in quantized.graph.node} == {""}
    assert {"QLinearConv", "QLinearMatMul", "MaxPool"} <= {n.op_type for n in quantized.graph.node}
    names = [
        n.output[0] for n in quantized.graph.node if n.op_type not in ("QuantizeLinear", "DequantizeLinear")
    ]
    quantized.graph.output.extend(helper.make_empty_tensor_value_info(n) for n in names)
    quantized.opset_import[
        0
    ].version = 21  # onnx.reference has Q/DQ from opset 19; the other ops are unchanged
    from onnx.reference import ReferenceEvaluator

    feed = _feeds(1, seed=6)[0]
    expected = dict(
        zip(
            [o.name for o in quantized.graph.output],
            ReferenceEvaluator(quantized).run(None, feed),
            strict=True,
        )
    )
    ours = build_session(load_qdq(str(out)), 8).run_integers(feed, keep_all=True)
    for name in names:
        engine_name = _engine_name(ours, quantized, name)
        assert np.array_equal(layout.to_onnx_layout(ours[engine_name]), expected[name].astype(np.int32)), name


def test_qlinear_softmax_equals_onnxruntime(tmp_path):
    """QOperator Softmax (com.microsoft QLinearSoftmax, output scale 1/256): equal to onnxruntime."""
    rng = np.random.default_rng(8)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Softmax", ["c"], ["y"], axis=1)]
    graph = helper.make_graph(
        nodes,
        "softmax",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6, 16, 16])],
        [_init(rng, "w", (6, 3, 1, 1), 1.0)],
    )
    source, out = tmp_path / "softmax.onnx", tmp_path / "softmax_qop.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(source))
    logging.disable(logging.WARNING)
    try:
        quantization.quantize_static(
            str(source), str(out), _Reader(_feeds(3, seed=2)), quant_format=quantization.QuantFormat.QOperator
        )
    finally:
        logging.disable(logging.NOTSET)
    assert "QLinearSoftmax" in {n.op_type for n in onnx.load(str(out)).graph.node}
    session = build_session(load_qdq(str(out)), 8)
    theirs = _ort_session(str(out))
    for feed in _feeds(3, seed=3):
        assert np.array_equal(session.run(feed)["y"], theirs.run(None, feed)[0])


def _lstm_model() -> onnx.ModelProto:
    """A bidirectional LSTM (4 steps, 6 inputs, 8 hidden) on x of shape [4, 1, 6]."""
    rng = np.random.default_rng(3)
    inits = [
        _init(rng, "W", (2, 32, 6), 0.4),
        _init(rng, "R", (2, 32, 8), 0.4),
        _init(rng, "B", (2, 64), 0.2),
    ]
    node = helper.make_node("LSTM", ["x", "W", "R", "B"], ["y"], hidden_size=8, direction="bidirectional")
    graph = helper.make_graph(
        [node],
        "lstm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 1, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 2, 1, 8])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    return model


def test_dynamic_quantize_lstm_runs_as_an_lstm_of_its_dequantized_weights(tmp_path):
    """quantize_dynamic turns an LSTM into com.microsoft DynamicQuantizeLSTM (int8 [dirs, in, 4h]
    weights): nnasim's fp32 equals onnxruntime's float LSTM of the dequantized weights, and is
    close to onnxruntime's own DynamicQuantizeLSTM (which quantizes x at run time)."""
    source, out = tmp_path / "lstm.onnx", tmp_path / "lstm_dynamic.onnx"
    onnx.save(_lstm_model(), str(source))
    logging.disable(logging.WARNING)
    try:
        quantization.quantize_dynamic(str(source), str(out), op_types_to_quantize=["LSTM"])
    finally:
        logging.disable(logging.NOTSET)
    model = onnx.load(str(out))
    dynamic = next(n for n in model.graph.node if n.op_type == "DynamicQuantizeLSTM")
    consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    float_model = _lstm_model()
    for index, name in ((1, "W"), (2, "R")):
        q, scale, zero = (consts[dynamic.input[i]] for i in (index, 6 + 2 * index, 7 + 2 * index))
        real = (q.astype(np.float32) - zero.reshape(-1, 1, 1)) * scale.reshape(-1, 1, 1)
        weight = next(t for t in float_model.graph.initializer if t.name == name)
        weight.CopyFrom(numpy_helper.from_array(real.transpose(0, 2, 1).astype(np.float32), name))
    x = {"x": np.random.default_rng(4).standard_normal((4, 1, 6)).astype(np.float32)}
    ours = build_session(load_qdq(str(out)), 32).run(x)["y"]
    assert np.abs(ours - _ort_session(float_model).run(None, x)[0]).max() < 1e-5
    assert np.abs(ours - _ort_session(str(out)).run(None, x)[0]).max() < 0.05


def test_dynamic_conv_with_an_integer_bias_add(tmp_path):
    """Older quantize_dynamic: ConvInteger -> Add(Reshape(Cast(Floor(Div(b, x_scale * w_scale)))))
    -> Cast -> Mul; nnasim reads the float bias b and the model's integer weights."""
    rng = np.random.default_rng(5)
    w_q = rng.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8)
    constants = {
        "w_q": w_q,
        "w_scale": np.array(0.01, np.float32),
        "w_zero": np.array(0, np.int8),
        "b": (rng.standard_normal(4) * 0.5).astype(np.float32),
        "shape": np.array([1, 4, 1, 1], np.int64),
    }
    node = helper.make_node
    nodes = [
        node("DynamicQuantizeLinear", ["x"], ["x_q", "x_scale", "x_zero"]),
        node("ConvInteger", ["x_q", "w_q", "x_zero", "w_zero"], ["acc"], pads=[1, 1, 1, 1], name="conv"),
        node("Mul", ["x_scale", "w_scale"], ["scales"]),
        node("Div", ["b", "scales"], ["b_div"]),
        node("Floor", ["b_div"], ["b_floor"]),
        node("Cast", ["b_floor"], ["b_int"], to=TensorProto.INT32),
        node("Reshape", ["b_int", "shape"], ["b_q"]),
        node("Add", ["acc", "b_q"], ["acc_b"]),
        node("Cast", ["acc_b"], ["acc_f"], to=TensorProto.FLOAT),
        node("Mul", ["acc_f", "scales"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "old_dynamic",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])],
        [numpy_helper.from_array(v, n) for n, v in constants.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "old_dynamic.onnx"
    onnx.save(model, str(path))
    graph = load_qdq(str(path))
    conv = next(n for n in graph.nodes if n.op.value == "Conv")
    assert np.array_equal(graph.const(conv.inputs[2]), constants["b"])
    x = {"x": np.random.default_rng(6).standard_normal((1, 3, 8, 8)).astype(np.float32)}
    ours, theirs = build_session(graph, 32).run(x)["y"], _ort_session(model).run(None, x)[0]
    assert np.abs(ours - theirs).max() < 0.05 * np.abs(theirs).max()
