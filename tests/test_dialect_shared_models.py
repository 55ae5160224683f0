"""Real models from ../shared/models quantized by onnxruntime, in the dialects users hand over.

- ArcFace MobileFaceNet (arcface-mbf-512) in QOperator form: every QLinearConv layer's integers equal
  onnxruntime's, given onnxruntime's input integers (its PRelus run in float between Q and DQ, so
  the end-to-end embedding is compared by cosine).
- UltraFace-slim quantized without pre-processing (BatchNormalization left unfolded, the box decoding
  left in float): each BN layer runs with the model's formats, within one step of onnxruntime's
  float BN, and the whole model is refused with a message naming the file, the node and the op.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx
import pytest
from onnx import version_converter
from oracles import shared_model

from nnasim.engine.session import build_session
from nnasim.errors import ModelError
from nnasim.kernels import layout
from nnasim.quant.qdq import load_qdq

ort = pytest.importorskip("onnxruntime")
quantization = pytest.importorskip("onnxruntime.quantization")


def _inputs(shape, count: int, seed: int = 0) -> list[np.ndarray]:
    """Smooth random images in [-1, 1] (calibration and test inputs; the checks are on integers)."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        coarse = rng.uniform(-1, 1, (*shape[:2], shape[2] // 8 + 1, shape[3] // 8 + 1))
        images.append(np.kron(coarse, np.ones((8, 8)))[..., : shape[2], : shape[3]].astype(np.float32))
    return images


def _quantize(model: onnx.ModelProto, out, name: str, quant_format: str, feeds, pre_process: bool):
    source = out.parent / f"{out.stem}_source.onnx"
    onnx.save(version_converter.convert_version(model, 13), str(source))
    if pre_process:
        from onnxruntime.quantization.shape_inference import quant_pre_process

        quant_pre_process(str(source), str(source), skip_symbolic_shape=True)

    class Reader(quantization.CalibrationDataReader):
        def __init__(self):
            self.items = iter([{name: x} for x in feeds])

        def get_next(self):
            return next(self.items, None)

    logging.disable(logging.WARNING)
    try:
        quantization.quantize_static(
            str(source),
            str(out),
            Reader(),
            quant_format=getattr(quantization.QuantFormat, quant_format),
            per_channel=True,
            reduce_range=True,
            activation_type=quantization.QuantType.QUInt8,
            weight_type=quantization.QuantType.QInt8,
        )
    finally:
        logging.disable(logging.NOTSET)
    return out


def _ort_all(model: onnx.ModelProto, names: list[str], feed) -> dict[str, np.ndarray]:
    model = onnx.ModelProto.FromString(model.SerializeToString())
    known = {o.name for o in model.graph.output}
    model.graph.output.extend(onnx.helper.make_empty_tensor_value_info(n) for n in names if n not in known)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feed), strict=True))


@pytest.fixture(scope="module")
def arcface_qoperator(tmp_path_factory):
    model = onnx.load(str(shared_model("arcface-mbf-512")))
    name = model.graph.input[0].name
    feeds = _inputs((1, 3, 112, 112), 4)
    path = tmp_path_factory.mktemp("arcface") / "arcface_qoperator.onnx"
    return _quantize(model, path, name, "QOperator", feeds[:3], pre_process=True), name, feeds[3]


def test_arcface_qoperator_layers_equal_onnxruntime(arcface_qoperator):
    path, name, x = arcface_qoperator
    model = onnx.load(str(path))
    convs = [n for n in model.graph.node if n.op_type == "QLinearConv"]
    assert len(convs) == 50
    session = build_session(load_qdq(path), 8)
    index = {node.name: i for i, node in enumerate(session.graph.nodes)}
    values = _ort_all(model, [t for n in convs for t in (n.input[0], n.output[0])], {name: x})
    for conv in convs:
        i = index[conv.name]
        mine, _ = session.layers[i]([layout.from_onnx_layout(values[conv.input[0]].astype(np.int32))])
        assert np.array_equal(layout.to_onnx_layout(mine), values[conv.output[0]].astype(np.int32)), conv.name
    ours, theirs = session.run({name: x}), _ort_all(model, [], {name: x})
    a, b = next(iter(ours.values())).ravel(), next(iter(theirs.values())).ravel()
    assert float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)) > 0.99


@pytest.fixture(scope="module")
def ultraface_unfolded(tmp_path_factory):
    """UltraFace-slim quantized by quantize_static without pre-processing: BN stays unfolded."""
    model = onnx.load(str(shared_model("ultraface-slim-320")))
    name = model.graph.input[0].name
    feeds = _inputs((1, 3, 240, 320), 3, seed=4)
    folder = tmp_path_factory.mktemp("ultraface")
    return (
        _quantize(model, folder / "ultraface_qdq.onnx", name, "QDQ", feeds[:2], pre_process=False),
        name,
        feeds[2],
    )


def test_ultraface_float_tail_is_named(ultraface_unfolded):
    path, _, _ = ultraface_unfolded
    with pytest.raises(ModelError) as error:
        load_qdq(path)
    message = str(error.value)
    assert str(path) in message and "node '" in message and "(Div)" in message


def test_ultraface_unfolded_batchnorm_layers(ultraface_unfolded, tmp_path):
    """The model cut before its float box decoding: its 25 unfolded BNs run as integer layers; each,
    given onnxruntime's input integers, is within one step of onnxruntime's float BN (mostly equal)."""
    path, name, x = ultraface_unfolded
    model = onnx.load(str(path))
    bns = [n for n in model.graph.node if n.op_type == "BatchNormalization"]
    assert len(bns) == 25
    producer = {o: n for n in model.graph.node for o in n.output}
    consumer = {i: n for n in model.graph.node for i in n.input}

    def integers_after(tensor: str) -> str:  # through a ReLU, to the QuantizeLinear's integers
        while consumer[tensor].op_type != "QuantizeLinear":
            tensor = consumer[tensor].output[0]
        return consumer[tensor].output[0]

    pairs = [(producer[bn.input[0]].input[0], integers_after(bn.output[0])) for bn in bns]
    cut = tmp_path / "backbone.onnx"
    onnx.utils.extract_model(str(path), str(cut), [name], [consumer[pairs[-1][1]].output[0]])
    session = build_session(load_qdq(cut), 8)
    layers = [i for i, n in enumerate(session.graph.nodes) if n.op.value == "BatchNormalization"]
    assert len(layers) == 25
    values = _ort_all(onnx.load(str(cut)), [t for pair in pairs for t in pair], {name: x})
    equal = total = 0
    for (x_q, y_q), i in zip(pairs, layers, strict=True):
        mine, _ = session.layers[i]([layout.from_onnx_layout(values[x_q].astype(np.int32))])
        diff = layout.to_onnx_layout(mine) - values[y_q].astype(np.int32)
        assert np.abs(diff).max() <= 1, session.graph.nodes[i].name
        equal, total = equal + int(np.sum(diff == 0)), total + diff.size
    assert equal / total > 0.99
