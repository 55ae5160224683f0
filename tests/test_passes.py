"""Each lowering pass: the structure it produces and unchanged fp32 outputs."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper
from onnx_builders import RNG, bn_consts, make_model, weight

from nnasim.frontend import load_model
from nnasim.ir import Op
from nnasim.ir.execute import run_float
from nnasim.passes import PIPELINE, lower
from nnasim.passes.activations import fuse_activations
from nnasim.passes.batchnorm import fold_batchnorm
from nnasim.passes.cleanup import remove_identity
from nnasim.passes.constants import fold_constants

X = (1, 3, 8, 8)


def conv_bn_relu_add_bn():
    """conv -> BN -> Relu -> (+ x-branch conv) -> BN -> PRelu; the second BN follows an Add."""
    consts = {"w1": weight(4, 3, 3, 3), "w2": weight(4, 3, 1, 1), "slope": weight(4, 1, 1, scale=0.1)}
    consts |= bn_consts("a", 4) | bn_consts("b", 4)
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node(
            "BatchNormalization", ["c1", "a_gamma", "a_beta", "a_mean", "a_var"], ["b1"], name="bn1"
        ),
        helper.make_node("Relu", ["b1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["x", "w2"], ["c2"], name="conv2"),
        helper.make_node("Add", ["r1", "c2"], ["s"], name="add"),
        helper.make_node(
            "BatchNormalization", ["s", "b_gamma", "b_beta", "b_mean", "b_var"], ["b2"], name="bn2"
        ),
        helper.make_node("PRelu", ["b2", "slope"], ["p"], name="prelu"),
        helper.make_node("Identity", ["p"], ["y"], name="id"),
    ]
    return make_model(nodes, X, consts)


def outputs_equal_before_and_after(graph, transformed):
    x = RNG.standard_normal(X).astype(np.float32)
    before, after = run_float(graph, {"x": x}), run_float(transformed, {"x": x})
    for name in graph.outputs:
        np.testing.assert_allclose(after[name], before[name], rtol=1e-5, atol=1e-5)


def ops(graph):
    return [(n.op, n.act.kind if n.act else None) for n in graph.nodes]


def test_fold_batchnorm_into_conv_but_not_after_add():
    graph = load_model(conv_bn_relu_add_bn())
    folded = fold_batchnorm(graph)
    assert [n.op for n in folded.nodes].count(Op.BATCHNORM) == 1
    assert next(n for n in folded.nodes if n.name == "conv1").outputs == ("b1",)
    outputs_equal_before_and_after(graph, folded)


def test_fuse_activations_into_producers():
    graph = fold_batchnorm(load_model(conv_bn_relu_add_bn()))
    fused = fuse_activations(graph)
    assert (Op.CONV, Op.RELU) in ops(fused)
    assert (Op.BATCHNORM, Op.PRELU) in ops(fused)
    assert not any(n.op in (Op.RELU, Op.PRELU) for n in fused.nodes)
    outputs_equal_before_and_after(graph, fused)


def test_remove_identity_keeps_output_name():
    graph = load_model(conv_bn_relu_add_bn())
    cleaned = remove_identity(graph)
    assert Op.IDENTITY not in [n.op for n in cleaned.nodes]
    assert cleaned.outputs == ("y",) and cleaned.nodes[-1].outputs == ("y",)
    outputs_equal_before_and_after(graph, cleaned)


def test_fold_constants_evaluates_constant_branches():
    consts = {"c": weight(1, 3, 1, 1), "d": weight(1, 3, 1, 1)}
    nodes = [
        helper.make_node("Mul", ["c", "d"], ["cd"], name="const_mul"),
        helper.make_node("Add", ["x", "cd"], ["y"], name="add"),
    ]
    graph = load_model(make_model(nodes, X, consts))
    assert graph.tensors["cd"].is_const  # the frontend already folds fully constant nodes
    folded = fold_constants(graph)
    assert [n.name for n in folded.nodes] == ["add"]
    outputs_equal_before_and_after(graph, folded)


def test_pipeline_is_named_and_traced():
    graph = load_model(conv_bn_relu_add_bn())
    seen = []
    lowered = lower(graph, trace=lambda stage, g: seen.append((stage, len(g.nodes))))
    assert [s for s, _ in seen] == [name for name, _ in PIPELINE]
    assert ops(lowered) == [(Op.CONV, Op.RELU), (Op.CONV, None), (Op.ADD, None), (Op.BATCHNORM, Op.PRELU)]
    outputs_equal_before_and_after(graph, lowered)


def test_graph_check_runs_after_each_pass():
    def breaks_graph(graph):
        return graph.with_(nodes=graph.nodes[1:])

    with pytest.raises(AssertionError, match="after pass 'broken'"):
        lower(load_model(conv_bn_relu_add_bn()), pipeline=(("broken", breaks_graph),))


def test_remove_identity_handles_chains():
    """Paddle exports chain Identities (PP-OCRv6: 147 of them); each is bypassed, outputs unchanged."""
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("Identity", ["r"], ["i1"], name="id1"),
        helper.make_node("Identity", ["i1"], ["i2"], name="id2"),
        helper.make_node("Add", ["i2", "i1"], ["a"], name="add"),
        helper.make_node("Identity", ["a"], ["y"], name="id3"),
    ]
    graph = load_model(make_model(nodes, X))
    cleaned = remove_identity(graph)
    assert [n.name for n in cleaned.nodes] == ["relu", "add"] and cleaned.nodes[-1].outputs == ("y",)
    outputs_equal_before_and_after(graph, cleaned)
