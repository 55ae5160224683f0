"""QDQ as converters write it, built with onnx.helper: integer graph inputs and outputs (TFLite->ONNX),
com.microsoft 16-bit Q/DQ, fake-quant weights, int64 biases, mixed int8/int16, an unfolded
BatchNormalization, ops left in float, and what ``--bits`` means for a quantized model.

Oracles: onnxruntime (which fuses 8-bit Q/DQ groups into exact QLinear kernels: equal integers) and
equivalent forms of one model (fake-quant vs integer weights, int64 vs int32 bias: equal integers).
Where onnxruntime runs an op in float between Q and DQ (16-bit, BatchNormalization) its results
may differ from integer arithmetic by a rounding: those comparisons allow one step of the format.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from nnasim.engine.session import build_session
from nnasim.errors import DataError, ModelError, NnasimWarning
from nnasim.quant.qdq import load_qdq

ort = pytest.importorskip("onnxruntime")

ONNX_TYPE = {
    np.int8: TensorProto.INT8,
    np.uint8: TensorProto.UINT8,
    np.int16: TensorProto.INT16,
    np.uint16: TensorProto.UINT16,
}
RNG_SEED = 3


def _ort(model: onnx.ModelProto, feed: dict[str, np.ndarray]) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, feed)[0]


def _conv_params(rng):
    return {
        "w": rng.integers(-64, 64, (4, 3, 3, 3)).astype(np.int8),  # 7-bit: exact in onnxruntime
        "w_scale": rng.uniform(0.005, 0.02, 4).astype(np.float32),
        "b": rng.integers(-2000, 2000, 4),
    }


def conv_model(
    act=np.int8,
    domain="",
    integer_io=False,
    fake_quant=False,
    bias_type=np.int32,
    opset=13,
    second_width=None,
    tail_op=None,
):
    """``x -> Q -> DQ -> Conv(DQ(w), DQ(b)) -> Relu -> Q -> DQ -> y`` and variants.

    ``integer_io``: an NHWC integer input and output around Transposes (a TFLite->ONNX conversion);
    ``second_width``: the conv's output requantized to another width before a second conv;
    ``tail_op``: an op left in float after the last DequantizeLinear.
    """
    rng = np.random.default_rng(RNG_SEED)
    p = _conv_params(rng)
    info = np.iinfo(act)
    x_scale, y_scale = (
        np.float32(0.02 if info.bits == 8 else 0.0001),
        np.float32(0.05 if info.bits == 8 else 0.0003),
    )
    x_zp = np.array(3 if info.min < 0 else 130, act) if info.bits == 8 else np.array(0, act)
    y_zp = np.array(-5 if info.min < 0 else 120, act) if info.bits == 8 else np.array(0, act)
    inits = {
        "x_scale": x_scale,
        "x_zp": x_zp,
        "y_scale": y_scale,
        "y_zp": y_zp,
        "w_scale": p["w_scale"],
        "w_zp": np.zeros(4, np.int8),
        "b": p["b"].astype(bias_type),
        "b_scale": (x_scale * p["w_scale"]).astype(np.float32),
        "b_zp": np.zeros(4, bias_type) if bias_type == np.int32 else None,
    }
    node = helper.make_node

    def q(i, o, s, z, **kw):
        return node("QuantizeLinear", [i, s, z], [o], domain=domain, **kw)

    def dq(i, o, s, z, **kw):
        return node("DequantizeLinear", [i, s, z] if z else [i, s], [o], domain=domain, **kw)

    nodes = []
    if fake_quant:
        inits["w_float"] = (p["w"].astype(np.float32) * p["w_scale"][:, None, None, None]).astype(np.float32)
        nodes.append(q("w_float", "w", "w_scale", "w_zp", axis=0))
    else:
        inits["w"] = p["w"]
    nodes += [
        dq("w", "w_f", "w_scale", "w_zp", axis=0),
        dq("b", "b_f", "b_scale", "b_zp" if inits["b_zp"] is not None else "", axis=0),
    ]
    if integer_io:
        nodes += [
            node("Transpose", ["x"], ["x_nchw"], perm=[0, 3, 1, 2]),
            dq("x_nchw", "x_f", "x_scale", "x_zp"),
        ]
        x_info = helper.make_tensor_value_info("x", ONNX_TYPE[act], [1, 8, 8, 3])
    else:
        nodes += [q("x", "x_q", "x_scale", "x_zp"), dq("x_q", "x_f", "x_scale", "x_zp")]
        x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    nodes += [node("Conv", ["x_f", "w_f", "b_f"], ["c"], pads=[1, 1, 1, 1]), node("Relu", ["c"], ["r"])]
    last = "r"
    if second_width is not None:
        wide = np.int16 if second_width == 16 else np.int8
        inits |= {
            "m_scale": np.float32(y_scale / 200 if second_width == 16 else y_scale),
            "m_zp": np.array(0, wide),
        }
        inits |= {"w2": rng.integers(-64, 64, (4, 4, 1, 1)).astype(np.int8), "w2_scale": np.float32(0.01)}
        inits |= {"w2_zp": np.array(0, np.int8)}
        nodes += [
            q("r", "r_q", "m_scale", "m_zp"),
            dq("r_q", "r_f", "m_scale", "m_zp"),
            q("r_f", "r_q8", "y_scale", "y_zp"),
            dq("r_q8", "r_f8", "y_scale", "y_zp"),
            dq("w2", "w2_f", "w2_scale", "w2_zp"),
            node("Conv", ["r_f8", "w2_f"], ["c2"]),
        ]
        last = "c2"
    if integer_io:
        nodes += [q(last, "y_q", "y_scale", "y_zp"), node("Transpose", ["y_q"], ["y"], perm=[0, 2, 3, 1])]
        y_info = helper.make_tensor_value_info("y", ONNX_TYPE[act], [1, 8, 8, 4])
    else:
        out = "y" if tail_op is None else "y_f"
        nodes += [q(last, "y_q", "y_scale", "y_zp"), dq("y_q", out, "y_scale", "y_zp")]
        if tail_op is not None:
            inits["two"] = np.array(2.0, np.float32)
            nodes.append(node(tail_op, ["y_f", "two"], ["y"], name="float_tail"))
        y_info = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])
    graph = helper.make_graph(
        nodes,
        "qdq",
        [x_info],
        [y_info],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items() if v is not None],
    )
    opsets = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8 if opset < 21 else 10
    return model


def _float_input(seed=0):
    return {"x": np.random.default_rng(seed).uniform(-1.5, 2.5, (1, 3, 8, 8)).astype(np.float32)}


def _int_input(act, seed=0):
    info = np.iinfo(act)
    return {"x": np.random.default_rng(seed).integers(info.min, info.max + 1, (1, 8, 8, 3)).astype(act)}


@pytest.mark.parametrize("act", [np.int8, np.uint8])
def test_integer_graph_input_and_output_equal_onnxruntime(tmp_path, act):
    """input(int8, NHWC) -> Transpose -> DQ ... Q -> Transpose -> output(int8): integers in, integers out."""
    model = conv_model(act, integer_io=True)
    path = tmp_path / "int_io.onnx"
    onnx.save(model, str(path))
    graph = load_qdq(path)
    session = build_session(graph, 8)
    assert (
        session.graph.tensors["x"].quant is not None
        and session.graph.tensors["x"].dtype == np.dtype(act).name
    )
    for seed in range(3):
        feed = _int_input(act, seed)
        ours = session.run(feed)["y"]
        assert ours.dtype == act
        assert np.array_equal(ours, _ort(model, feed))
        fp32 = build_session(graph, 32).run(feed)["y"]  # Q/DQ as ONNX defines them, the conv in float
        assert fp32.dtype == act and np.abs(fp32.astype(np.int32) - ours.astype(np.int32)).max() <= 1


def test_integer_input_refuses_floats_and_out_of_range_values(tmp_path):
    path = tmp_path / "int_io.onnx"
    onnx.save(conv_model(np.int8, integer_io=True), str(path))
    session = build_session(load_qdq(path), 8)
    with pytest.raises(DataError, match="int8"):
        session.run({"x": np.zeros((1, 8, 8, 3), np.float32)})
    with pytest.raises(DataError, match="out of its range"):
        session.run({"x": np.full((1, 8, 8, 3), 300, np.int32)})


def test_quantize_at_graph_output_returns_integers(tmp_path):
    """A QuantizeLinear producing a graph output (no DQ after it): the output is the model's integers."""
    model = conv_model(np.int8)
    model.graph.node.pop()  # the last DequantizeLinear
    model.graph.output[0].CopyFrom(helper.make_tensor_value_info("y_q", TensorProto.INT8, [1, 4, 8, 8]))
    graph = load_qdq(model)
    session = build_session(graph, 8)
    feed = _float_input()
    ours = session.run(feed)["y_q"]
    assert ours.dtype == np.int8
    assert np.array_equal(ours, _ort(model, feed))


@pytest.mark.parametrize("act", [np.int16, np.uint16])
def test_com_microsoft_16bit_qdq(act):
    """onnxruntime's 16-bit form: com.microsoft Q/DQ with int16/uint16 activations, run at 16 bits."""
    model = conv_model(act, domain="com.microsoft")
    session = build_session(load_qdq(model), 16)
    assert session.bits == 16
    assert session.quant("x").bits == 16 and session.quant("y").bits == 16
    assert session.quant("y").signed == (act == np.int16)
    feed = _float_input()
    ours, theirs = session.run(feed)["y"], _ort(model, feed)
    step = float(session.quant("y").scale)
    assert np.abs(ours - theirs).max() <= step * 1.001  # onnxruntime runs 16-bit Conv in float
    assert np.mean(ours == theirs) > 0.95


def test_fake_quant_weights_fold_to_the_models_integers():
    """float weight -> QuantizeLinear -> DequantizeLinear (fake-quant export) == the integer weight model."""
    fake, real = conv_model(np.int8, fake_quant=True), conv_model(np.int8)
    ours, theirs = build_session(load_qdq(fake), 8), build_session(load_qdq(real), 8)
    conv = next(n for n in ours.graph.nodes if n.op.value == "Conv")
    expected = numpy_helper.to_array(next(t for t in real.graph.initializer if t.name == "w"))
    assert np.array_equal(ours.graph.const(conv.inputs[1]), expected.astype(np.int64))
    feed = _float_input()
    assert np.array_equal(ours.run_integers(feed)["y"], theirs.run_integers(feed)["y"])
    assert np.array_equal(ours.run(feed)["y"], _ort(real, feed))


def test_int64_bias_equals_int32_bias():
    """int16x8 conversions write int64 biases: the same values as int32 give the same integers."""
    wide = conv_model(np.int16, bias_type=np.int64, opset=21)
    narrow = conv_model(np.int16, bias_type=np.int32, opset=21)
    feed = _float_input()
    ours = build_session(load_qdq(wide), 16)
    assert np.array_equal(
        ours.run_integers(feed)["y"], build_session(load_qdq(narrow), 16).run_integers(feed)["y"]
    )
    conv = next(n for n in ours.graph.nodes if n.op.value == "Conv")
    assert ours.graph.const(conv.inputs[2]).dtype == np.int64


def test_mixed_int8_int16_keeps_each_width():
    """conv -> Q16 -> DQ16 -> Q8 -> DQ8 -> conv: the first output stays 16-bit, a requantization
    layer takes it to the second conv's 8-bit input (onnxruntime runs DQ -> Q in float)."""
    model = conv_model(np.int8, opset=21, second_width=16)
    session = build_session(load_qdq(model), 8)
    ops = [n.op.value for n in session.graph.nodes]
    assert ops == ["Conv", "Identity", "Conv"], ops
    first, requant, second = session.graph.nodes
    assert session.quant(first.outputs[0]).bits == 16 and session.quant(second.inputs[0]).bits == 8
    assert session.quant(requant.outputs[0]).bits == 8
    feed = _float_input()
    ours, theirs = session.run(feed)["y"], _ort(model, feed)
    assert np.abs(ours - theirs).max() <= float(session.quant("y").scale) * 1.001
    # the requantization layer against a numpy int64 reference (float32 rule: rint(float32(q - zp) * m))
    values = session.run_integers(feed, keep_all=True)
    q16 = values[first.outputs[0]].astype(np.int64)
    m = np.float32(
        np.float32(session.quant(first.outputs[0]).scale)
        / np.float32(session.quant(requant.outputs[0]).scale)
    )
    zp8 = int(session.quant(requant.outputs[0]).zero_point)
    expected = np.clip(np.rint(np.float32(q16) * m) + zp8, -128, 127)
    assert np.array_equal(values[requant.outputs[0]], expected.astype(np.int32))


def test_unfolded_batchnorm_runs_with_the_models_formats(tmp_path):
    """onnxruntime quantize_static without pre-processing leaves BatchNormalization between Q/DQ pairs."""
    quantization = pytest.importorskip("onnxruntime.quantization")
    rng = np.random.default_rng(5)
    inits = [
        numpy_helper.from_array((rng.standard_normal(s) * 0.3).astype(np.float32), n)
        for n, s in (("w", (4, 3, 3, 3)), ("b", (4,)), ("beta", (4,)), ("mean", (4,)))
    ] + [numpy_helper.from_array(rng.uniform(0.5, 2, 4).astype(np.float32), n) for n in ("gamma", "var")]
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "gamma", "beta", "mean", "var"], ["n"]),
        helper.make_node("Relu", ["n"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "bn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])],
        inits,
    )
    source, out = tmp_path / "bn.onnx", tmp_path / "bn_qdq.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(source))

    class Reader(quantization.CalibrationDataReader):
        def __init__(self):
            self.items = iter([_float_input(s) for s in range(3)])

        def get_next(self):
            return next(self.items, None)

    logging.disable(logging.WARNING)
    try:
        quantization.quantize_static(str(source), str(out), Reader(), reduce_range=True, per_channel=True)
    finally:
        logging.disable(logging.NOTSET)
    quantized = onnx.load(str(out))
    assert "BatchNormalization" in {n.op_type for n in quantized.graph.node}
    session = build_session(load_qdq(out), 8)
    assert [n.op.value for n in session.graph.nodes] == ["Conv", "BatchNormalization"]
    feed = _float_input(7)
    ours, theirs = session.run(feed)["y"], _ort(quantized, feed)
    step = float(session.quant("y").scale)
    assert np.abs(ours - theirs).max() <= step * 1.001  # onnxruntime's BN runs in float
    assert np.mean(ours == theirs) > 0.95


def test_op_left_in_float_names_file_node_and_op(tmp_path):
    path = tmp_path / "float_tail.onnx"
    onnx.save(conv_model(np.int8, tail_op="Div"), str(path))
    with pytest.raises(ModelError) as error:
        load_qdq(path)
    message = str(error.value)
    assert str(path) in message and "'float_tail'" in message and "(Div)" in message


def test_other_bits_on_a_quantized_model_warns_once():
    graph = load_qdq(conv_model(np.int8))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        session = build_session(graph, 16)
    ours = [w for w in caught if issubclass(w.category, NnasimWarning)]
    assert (
        len(ours) == 1
        and "own 8-bit formats" in str(ours[0].message)
        and "16-bit is ignored" in str(ours[0].message)
    )
    assert session.bits == 8
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_session(graph, 8)


def test_cli_runs_integer_inputs_as_given(tmp_path, capsys):
    from nnasim.cli import main

    path = tmp_path / "int_io.onnx"
    model = conv_model(np.int8, integer_io=True)
    onnx.save(model, str(path))
    feed = _int_input(np.int8)
    np.save(tmp_path / "x.npy", feed["x"])
    assert main(["run", str(path), "--input", str(tmp_path / "x.npy")]) == 0
    out = capsys.readouterr().out
    expected = _ort(model, feed)
    assert f"min {expected.min():.6g}  max {expected.max():.6g}" in out


def test_weight_dequantized_then_transposed_keeps_its_format():
    """tf2onnx writes TFLite's OHWI weights as ``DQ(axis=0) -> Transpose -> Conv``: the moved weight
    keeps its integers and its per-channel axis, so the model equals the one with OIHW weights."""
    direct = conv_model(np.int8)
    moved = conv_model(np.int8)
    weight = next(t for t in moved.graph.initializer if t.name == "w")
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight).transpose(0, 2, 3, 1).copy(), "w"))
    dq = next(n for n in moved.graph.node if n.output[0] == "w_f")
    dq.output[0] = "w_ohwi"
    moved.graph.node.insert(1, helper.make_node("Transpose", ["w_ohwi"], ["w_f"], perm=[0, 3, 1, 2]))
    ours, theirs = build_session(load_qdq(moved), 8), build_session(load_qdq(direct), 8)
    conv = next(n for n in ours.graph.nodes if n.op.value == "Conv")
    assert ours.quant(conv.inputs[1]).axis == 0
    feed = _float_input(2)
    assert np.array_equal(ours.run_integers(feed)["y"], theirs.run_integers(feed)["y"])
    assert np.array_equal(ours.run(feed)["y"], _ort(moved, feed))


def test_data_movement_into_another_format_is_requantized():
    """``DQ(s1) -> MaxPool -> Q(s2)`` with s2 != s1: the max is taken on the integers, then a
    requantization layer takes them to s2 (without it the integers would be read in the wrong scale)."""
    node = helper.make_node
    inits = {
        "s1": np.float32(0.02),
        "z1": np.array(10, np.uint8),
        "s2": np.float32(0.03),
        "z2": np.array(5, np.uint8),
    }
    nodes = [
        node("QuantizeLinear", ["x", "s1", "z1"], ["xq"]),
        node("DequantizeLinear", ["xq", "s1", "z1"], ["xf"]),
        node("MaxPool", ["xf"], ["p"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
        node("QuantizeLinear", ["p", "s2", "z2"], ["pq"]),
        node("DequantizeLinear", ["pq", "s2", "z2"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "move",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    session = build_session(load_qdq(model), 8)
    assert [n.op.value for n in session.graph.nodes] == ["MaxPool", "Identity"]
    feed = _float_input(4)
    ours, theirs = session.run(feed)["y"], _ort(model, feed)
    assert np.abs(ours - theirs).max() <= 0.03 * 1.001
    assert np.mean(ours == theirs) > 0.95
    # the integers: max of the input integers, then rint(float32(q - z1) * float32(s1 / s2)) + z2
    q = np.clip(np.rint(feed["x"] / np.float32(0.02)) + 10, 0, 255)
    pooled = q.reshape(1, 3, 4, 2, 4, 2).max(axis=(3, 5))
    expected = np.clip(
        np.rint(np.float32(pooled - 10) * np.float32(np.float32(0.02) / np.float32(0.03))) + 5, 0, 255
    )
    assert np.array_equal(np.rint(ours / np.float32(0.03)) + 5, expected)


def test_scales_in_constant_nodes(tmp_path):
    """PyTorch writes scales and zero points as Constant nodes: the same model, the same integers."""
    model = conv_model(np.int8, integer_io=True)
    moved = onnx.ModelProto.FromString(model.SerializeToString())
    for name in ("x_scale", "x_zp", "y_scale", "y_zp"):
        tensor = next(t for t in moved.graph.initializer if t.name == name)
        moved.graph.node.insert(0, helper.make_node("Constant", [], [name], value=tensor))
        moved.graph.initializer.remove(tensor)
    feed = _int_input(np.int8, 5)
    ours = build_session(load_qdq(moved), 8).run(feed)["y"]
    assert np.array_equal(ours, build_session(load_qdq(model), 8).run(feed)["y"])
    assert np.array_equal(ours, _ort(moved, feed))


def test_integer_arithmetic_nnasim_cannot_do_names_file_node_and_op(tmp_path):
    """A Div of two computed tensors between Q/DQ pairs: refused naming the file, the node and the op."""
    node = helper.make_node
    inits = {"s": np.float32(0.02), "z": np.array(0, np.int8)}
    nodes = [
        node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
        node("DequantizeLinear", ["xq", "s", "z"], ["xf"]),
        node("Relu", ["xf"], ["r"]),
        node("QuantizeLinear", ["r", "s", "z"], ["rq"]),
        node("DequantizeLinear", ["rq", "s", "z"], ["rf"]),
        node("Div", ["xf", "rf"], ["d"], name="ratio"),
        node("QuantizeLinear", ["d", "s", "z"], ["dq"]),
        node("DequantizeLinear", ["dq", "s", "z"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "div",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()],
    )
    path = tmp_path / "div.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    with pytest.raises(ModelError) as error:
        build_session(load_qdq(path), 8)
    message = str(error.value)
    assert message.startswith(str(path)) and "'ratio'" in message and "Div" in message


def _bad_model(path, nodes, inits, inputs=None, outputs=None):
    graph = helper.make_graph(
        nodes,
        "bad",
        inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
        outputs or [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()],
    )
    opsets = [helper.make_opsetid("", 13), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_malformed_quantized_models_are_one_line_errors_naming_file_and_node(tmp_path, capsys):
    from nnasim.cli import main

    node, scales = helper.make_node, {"s": np.float32(0.1), "z": np.array(0, np.uint8)}
    w = {"w": np.ones((2, 3, 1, 1), np.int8), "ws": np.float32(0.1), "wz": np.array(0, np.int8)}
    cases = {
        "computed_scale": (
            [
                node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
                node("Identity", ["s"], ["s2"]),
                node("QLinearConv", ["xq", "s2", "z", "w", "ws", "wz", "s", "z"], ["yq"], name="qc"),
                node("DequantizeLinear", ["yq", "s", "z"], ["y"]),
            ],
            scales | w,
            "node 'qc' (QLinearConv): its scale must be a constant",
        ),
        "dynamic_chain": (
            [
                node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
                node("ConvInteger", ["xq", "w", "xz"], ["y"]),
            ],
            w,
            "node 'ConvInteger_1' (ConvInteger): only the Cast -> Mul",
        ),
        "unsupported_qoperator": (
            [
                node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
                node(
                    "QLinearReduceMean", ["xq", "s", "z", "s", "z"], ["yq"], domain="com.microsoft", axes=[1]
                ),
                node("DequantizeLinear", ["yq", "s", "z"], ["y"]),
            ],
            scales,
            "node 'QLinearReduceMean_1' uses op com.microsoft::QLinearReduceMean",
        ),
    }
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 4, 4), np.float32))
    for name, (nodes, inits, expected) in cases.items():
        path = _bad_model(tmp_path / f"{name}.onnx", nodes, inits)
        assert main(["run", str(path), "--input", str(tmp_path / "x.npy")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"{path}: {expected}" in err, err


def test_float_array_for_an_integer_input_without_a_format(tmp_path, capsys):
    from nnasim.cli import main

    path = _bad_model(
        tmp_path / "int_in.onnx",
        [helper.make_node("Transpose", ["x"], ["y"], perm=[0, 2, 3, 1])],
        {},
        [helper.make_tensor_value_info("x", TensorProto.INT8, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.INT8, None)],
    )
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 4, 4), np.float32))
    assert main(["run", str(path), "--input", str(tmp_path / "x.npy"), "--bits", "32"]) == 2
    assert (
        "x.npy: input 'x' is int8 and the model gives it no scale and zero point" in capsys.readouterr().err
    )
