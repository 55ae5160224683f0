"""Per-node work counts read off the IR: multiply-accumulates and parameters."""

from __future__ import annotations

import numpy as np

from nnasim.ir import Graph, Node, Op


def node_macs(graph: Graph, node: Node) -> int:
    """Multiply-accumulates of one node (Conv, Gemm, MatMul; 0 for the rest)."""
    if node.op == Op.CONV:
        weight_shape = graph.shape(node.inputs[1])
        per_output = int(np.prod(weight_shape[1:]))  # (Cin / group) * KH * KW
        return graph.tensors[node.outputs[0]].size * per_output
    if node.op == Op.GEMM:
        return graph.tensors[node.outputs[0]].size * graph.shape(node.inputs[1])[1]
    if node.op == Op.MATMUL:
        return graph.tensors[node.outputs[0]].size * graph.shape(node.inputs[0])[-1]
    return 0


def node_params(graph: Graph, node: Node) -> int:
    """Elements of the constant tensors a node reads (weights, bias, BN affine, PRelu slope)."""
    names = {n for n in node.inputs if n and graph.tensors[n].is_const}
    if node.act is not None and node.act.slope:
        names.add(node.act.slope)
    if node.op in (Op.RESHAPE, Op.QUANTIZE, Op.DEQUANTIZE):
        return 0
    return sum(graph.tensors[n].size for n in names)


def op_label(node: Node) -> str:
    """The op name with its fused activation, e.g. ``Conv+Relu``."""
    return node.op.value if node.act is None else f"{node.op.value}+{node.act.kind.value}"
