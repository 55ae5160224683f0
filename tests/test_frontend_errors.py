"""Bad models get one clear line naming the file and what is wrong, exit code 2, no traceback."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnx_builders import make_model, single_op_model, weight

from nnasim.cli import main
from nnasim.errors import ModelError, UsageError
from nnasim.frontend import load_model
from nnasim.frontend.supported import markdown

X = (1, 3, 8, 8)


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err
    return code, err


def save(tmp_path, model: onnx.ModelProto, name: str = "m.onnx"):
    path = tmp_path / name
    onnx.save(model, path)
    return path


def test_unsupported_op_names_node_op_and_supported_list(tmp_path, capsys):
    path = save(tmp_path, single_op_model("Cos", X))
    code, err = run_cli(capsys, "info", str(path))
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "'the_cos'" in err and "op Cos" in err and "Conv" in err and str(path) in err


def test_custom_domain_op_is_named_with_its_domain(tmp_path):
    node = helper.make_node("Foo", ["x"], ["y"], domain="com.acme", name="mystery")
    model = make_model([node], X)
    model.opset_import.append(helper.make_opsetid("com.acme", 1))
    with pytest.raises(ModelError, match=r"'mystery' uses op com\.acme::Foo"):
        load_model(model)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty file"),
        (b"this is not a model at all", "not"),
        (None, "not a valid ONNX file"),  # a truncated real model
    ],
)
def test_unreadable_files_name_the_file(tmp_path, capsys, content, message):
    path = tmp_path / "bad.onnx"
    if content is None:
        whole = single_op_model("Conv", X, {"w": weight(8, 3, 3, 3)}).SerializeToString()
        content = whole[: len(whole) // 2]
    path.write_bytes(content)
    code, err = run_cli(capsys, "info", str(path))
    assert code == 2 and str(path) in err and message in err and "Traceback" not in err


def test_missing_file_and_unknown_zoo_name(capsys):
    code, err = run_cli(capsys, "info", "no/such/model.onnx")
    assert code == 2 and "no such file" in err
    code, err = run_cli(capsys, "info", "resnet9000")
    assert code == 2 and "resnet9000" in err and "lffd" in err


def dynamic_model() -> onnx.ModelProto:
    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph(
        [node],
        "dyn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_dynamic_input_asks_for_input_shape(tmp_path, capsys):
    path = save(tmp_path, dynamic_model())
    code, err = run_cli(capsys, "info", str(path))
    assert code == 2 and "--input-shape" in err and "'x'" in err
    assert main(["info", str(path), "--input-shape", "1,3,4,5"]) == 0
    assert "1x3x4x5" in capsys.readouterr().out


def test_bad_input_shape_option():
    with pytest.raises(UsageError, match="positive"):
        load_model(dynamic_model(), input_shape=(1, 3, 0, 5))


def test_old_opset_is_refused():
    with pytest.raises(ModelError, match="opset 6 is older"):
        load_model(single_op_model("Relu", X, opset=6))


def test_missing_initializer_is_named():
    node = helper.make_node("Conv", ["x", "w_missing"], ["y"], name="c")
    with pytest.raises(ModelError, match="w_missing"):
        load_model(make_model([node], X))


def test_caller_model_is_not_modified():
    model = dynamic_model()
    before = model.SerializeToString()
    load_model(model, input_shape=(1, 3, 4, 4))
    assert model.SerializeToString() == before


def test_debug_flag_shows_the_traceback(tmp_path):
    path = save(tmp_path, single_op_model("Cos", X))
    with pytest.raises(ModelError):
        main(["--debug", "info", str(path)])


def test_supported_ops_md_is_current():
    from pathlib import Path

    committed = (Path(__file__).resolve().parents[1] / "SUPPORTED_OPS.md").read_text()
    assert committed == markdown(), "regenerate: python -m nnasim.frontend.supported > SUPPORTED_OPS.md"


def test_weights_of_int_dtype_are_kept_as_constants():
    graph = load_model(single_op_model("Add", X, {"c": np.ones((1, 3, 1, 1), np.float32)}))
    assert graph.tensors["c"].is_const and graph.tensors["c"].dtype == "float32"


def test_huge_input_is_refused_before_allocation_with_estimate():
    model = single_op_model("Relu", X)
    with pytest.raises(ModelError, match=r"needs [\d,.]+ GiB"):
        load_model(model, input_shape=(1, 64, 100_000, 100_000))


def test_cycle_is_reported():
    nodes = [
        helper.make_node("Relu", ["x", "b"], ["a"], name="first"),
        helper.make_node("Relu", ["a"], ["b"], name="second"),
        helper.make_node("Relu", ["b"], ["y"], name="third"),
    ]
    with pytest.raises(ModelError, match="'first'.*cycle"):
        load_model(make_model(nodes, X))


def test_constant_dequantize_folds_at_opset_13():
    """onnx.reference has DequantizeLinear only from opset 19: opset-13 QDQ weights still fold, exactly."""
    w_q = np.arange(-54, 54, dtype=np.int8).reshape(4, 3, 3, 3)
    scale = np.array([0.5, 0.25, 0.125, 1.0], np.float32)
    consts = {"w_q": w_q, "w_scale": scale, "w_zp": np.zeros(4, np.int8)}
    nodes = [
        helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zp"], ["w"], axis=0),
        helper.make_node("Conv", ["x", "w"], ["y"], name="conv"),
    ]
    graph = load_model(make_model(nodes, X, consts, opset=13))
    folded = graph.const(graph.nodes[0].inputs[1])
    assert np.array_equal(folded, w_q.astype(np.float32) * scale.reshape(4, 1, 1, 1))


def test_every_unsupported_op_is_named_in_one_error(tmp_path, capsys):
    """Mapping a model takes one round: the error lists every unsupported node and its op."""
    nodes = [
        helper.make_node("Cos", ["x"], ["a"], name="cos_1"),
        helper.make_node("Relu", ["a"], ["b"], name="fine"),
        helper.make_node("Cos", ["b"], ["c"], name="cos_2"),
        helper.make_node("Foo", ["c"], ["y"], domain="com.acme", name="mystery"),
    ]
    model = make_model(nodes, X)
    model.opset_import.append(helper.make_opsetid("com.acme", 1))
    path = save(tmp_path, model)
    code, err = run_cli(capsys, "info", str(path))
    assert code == 2 and err.count("\n") == 1 and str(path) in err
    assert "3 nodes use 2 ops nnasim does not support (Cos, com.acme::Foo)" in err
    for name, op in [("cos_1", "Cos"), ("cos_2", "Cos"), ("mystery", "com.acme::Foo")]:
        assert f"node '{name}' uses op {op}" in err
    assert "'fine'" not in err


def test_every_shape_only_op_on_activations_is_named(tmp_path):
    nodes = [
        helper.make_node("Floor", ["x"], ["a"], name="floor_1"),
        helper.make_node("Ceil", ["a"], ["y"], name="ceil_1"),
    ]
    with pytest.raises(ModelError, match=r"'floor_1' \(Floor\), node 'ceil_1' \(Ceil\) compute on"):
        load_model(make_model(nodes, X))


def test_paddle_minus_one_dims_and_reshape_zero(tmp_path):
    """Paddle2ONNX writes -1 for dynamic dims of inputs, intermediates and outputs, and Reshape
    targets with 0 (copy) and -1 (infer): --input-shape fixes the input, the rest is inferred."""
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("Reshape", ["r", "target"], ["y"], name="reshape"),
    ]
    target = np.array([0, -1, 4], np.int64)
    graph = helper.make_graph(
        nodes,
        "paddle",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [-1, 3, -1, -1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [-1, -1, 4])],
        [onnx.numpy_helper.from_array(target, "target")],
        value_info=[helper.make_tensor_value_info("r", TensorProto.FLOAT, [-1, 3, -1, -1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 8
    loaded = load_model(model, input_shape=(2, 3, 8, 8))
    assert loaded.shape("y") == (2, 48, 4) and loaded.shape("r") == (2, 3, 8, 8)
    with pytest.raises(ModelError, match="dynamic or non-positive shape"):
        load_model(model)


def test_stale_exported_shapes_give_way_to_input_shape():
    """An export's intermediate and output sizes for another input size (PP-OCRv2's rec model) do not
    conflict with --input-shape: value_info is recomputed and output sizes are cleared (rank kept)."""
    node = helper.make_node("Relu", ["x"], ["y"], name="relu")
    graph = helper.make_graph(
        [node],
        "stale",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 32, 100])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    assert load_model(model, input_shape=(1, 3, 48, 320)).shape("y") == (1, 3, 48, 320)


def test_an_exported_output_rank_that_the_graph_does_not_compute_gives_way_to_input_shape():
    """ddddocr's CRNN declares its output [1, seqlen] where its Reshape makes 3-D (onnxruntime
    warns and runs it); with --input-shape the output's shape is inferred, rank included."""
    nodes = [helper.make_node("Reshape", ["x", "target"], ["y"], name="reshape")]
    target = onnx.numpy_helper.from_array(np.array([-1, 1, 8], np.int64), "target")
    graph = helper.make_graph(
        nodes,
        "stale_rank",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "seqlen"])],
        [target],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    assert load_model(model, input_shape=(1, 1, 4, 6)).shape("y") == (3, 1, 8)


def test_an_output_only_constant_folding_can_shape_passes_the_checker():
    """A Reshape target computed as h * w from Gathers of a Shape (onnx's inference does not
    propagate that product; ddddocr's CRNN): the checker sees the model without that output, and
    folding the chain gives its shape."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "i2"], ["h"], name="gather_h"),
        helper.make_node("Gather", ["s", "i3"], ["w"], name="gather_w"),
        helper.make_node("Mul", ["h", "w"], ["hw"], name="mul"),
        helper.make_node("Unsqueeze", ["hw", "axes"], ["hw1"], name="unsqueeze"),
        helper.make_node("Concat", ["lead", "hw1"], ["target"], name="concat", axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"], name="reshape"),
    ]
    constants = {"i2": np.array(2), "i3": np.array(3), "axes": np.array([0]), "lead": np.array([1, 2])}
    graph = helper.make_graph(
        nodes,
        "flatten",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, "hw"])],
        [onnx.numpy_helper.from_array(v.astype(np.int64), n) for n, v in constants.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    assert load_model(model, input_shape=(1, 2, 3, 4)).shape("y") == (1, 2, 12)
