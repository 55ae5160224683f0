"""An onnxruntime-quantized QDQ MobileFaceNet in nnasim: layer by layer, the integers of every
QLinearConv onnxruntime fuses equal nnasim's, given the same input integers."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import pytest
from oracles import shared_model

from nnasim.engine.session import build_session
from nnasim.kernels import layout
from nnasim.quant.qdq import load_qdq

ort = pytest.importorskip("onnxruntime")


def _aligned_faces(shared_dir, count: int) -> list[np.ndarray]:
    from PIL import Image

    paths = sorted((shared_dir / "images" / "aligned").glob("*.png"))[:count]
    images = [np.asarray(Image.open(p).convert("RGB").resize((112, 112)), np.float32) for p in paths]
    return [((image - 127.5) / 128.0).transpose(2, 0, 1)[None] for image in images]


@pytest.fixture(scope="module", params=["int8", "uint8"])
def qdq_mobilefacenet(request, tmp_path_factory, shared_dir):
    """MobileFaceNet quantized by onnxruntime (int8 weights, int8 or uint8 activations)."""
    from nnasim.quant.onnxruntime_qdq import quantize_with_onnxruntime

    source = shared_model("mobilefacenet")
    name = onnx.load(str(source)).graph.input[0].name
    feeds = [{name: x} for x in _aligned_faces(shared_dir, 6)]
    path = tmp_path_factory.mktemp("qdq") / f"mobilefacenet_qdq_{request.param}.onnx"
    quantize_with_onnxruntime(source, path, feeds[:4], activation_type=request.param)
    return path, feeds


def _fused_model(path, tmp_dir) -> onnx.ModelProto:
    """onnxruntime's own optimized graph (QDQ groups fused into QLinear ops), every tensor an output."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(tmp_dir / "fused.onnx")
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    fused = onnx.load(str(tmp_dir / "fused.onnx"))
    known = {o.name for o in fused.graph.output}
    for node in fused.graph.node:
        for name in node.output:
            if name not in known:
                fused.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    return fused


def _run_all(model: onnx.ModelProto, feed) -> dict[str, np.ndarray]:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feed), strict=True))


def test_qlinearconv_layers_equal_onnxruntime(qdq_mobilefacenet, tmp_path):
    """onnxruntime may re-express int8 activations as uint8 (its s8->u8 rewrite adds 128 to values
    and zero points alike); the comparison undoes that shift, read from the fused node's zero points."""
    path, feeds = qdq_mobilefacenet
    fused = _fused_model(path, tmp_path)
    qlinear = [n for n in fused.graph.node if n.op_type == "QLinearConv"]
    assert len(qlinear) >= 30, Counter(n.op_type for n in fused.graph.node)
    constants = {t.name: onnx.numpy_helper.to_array(t) for t in fused.graph.initializer}
    session = build_session(load_qdq(path), 8)
    assert session.rule == "float32"
    weight_of = {
        n.input[0]: n.output[0] for n in onnx.load(str(path)).graph.node if n.op_type == "DequantizeLinear"
    }
    layer_of = {node.inputs[1]: i for i, node in enumerate(session.graph.nodes) if node.op.value == "Conv"}
    compared = 0
    for feed in feeds[4:]:
        ort_values = _run_all(fused, feed)
        for node in qlinear:
            index = layer_of[weight_of[node.input[3]]]
            ours = session.graph.nodes[index]
            x_shift = int(constants[node.input[2]]) - int(session.quant(ours.inputs[0]).zero_point)
            y_shift = int(constants[node.input[7]]) - int(session.quant(ours.outputs[0]).zero_point)
            x = layout.from_onnx_layout(ort_values[node.input[0]].astype(np.int32) - x_shift)
            mine, _ = session.layers[index]([x])
            expected = ort_values[node.output[0]].astype(np.int32) - y_shift
            assert np.array_equal(layout.to_onnx_layout(mine), expected), node.name
            compared += 1
    assert compared == 2 * len(qlinear)


def test_qdq_model_keeps_its_own_scales(qdq_mobilefacenet):
    path, feeds = qdq_mobilefacenet
    graph = load_qdq(path)
    session = build_session(graph, 8, calib=None)
    assert any("QDQ" in note for note in session.notes)
    model = onnx.load(str(path))
    q_scales = {
        n.input[0]: onnx.numpy_helper.to_array(
            next(t for t in model.graph.initializer if t.name == n.input[1])
        )
        for n in model.graph.node
        if n.op_type == "QuantizeLinear" and any(t.name == n.input[1] for t in model.graph.initializer)
    }
    checked = [name for name in q_scales if name in session.graph.tensors]
    assert checked
    for name in checked:
        assert np.array_equal(session.quant(name).scale, q_scales[name])
    # end to end the embedding stays close to onnxruntime's (its unfused layers run in float)
    ours = session.run(feeds[5])
    theirs = _run_all(onnx.load(str(path)), feeds[5])
    key = next(iter(ours))
    cosine = float(np.dot(ours[key].ravel(), theirs[key].ravel()))
    cosine /= float(np.linalg.norm(ours[key]) * np.linalg.norm(theirs[key]))
    assert cosine > 0.98
