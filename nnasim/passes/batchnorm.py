"""Fold a BatchNormalization (per-channel affine) into the Conv or Gemm that feeds it.

A BN whose input comes from anything else (an Add, a graph input, a shared tensor)
cannot fold backwards, and folding forwards into a zero-padded conv would change the
border, so it stays: the cost model counts it as its own pass over the data.
"""

from __future__ import annotations

import numpy as np

from nnasim.ir import Graph, Node, Op
from nnasim.passes.rewrite import prune, single_consumer, with_const


def fold_batchnorm(graph: Graph) -> Graph:
    nodes, tensors = list(graph.nodes), dict(graph.tensors)
    consumers = graph.consumers()
    producers = graph.producers()
    for bn in graph.nodes:
        if bn.op != Op.BATCHNORM:
            continue
        producer = producers.get(bn.inputs[0])
        if not _foldable(graph, producer, bn, consumers):
            continue
        scale, bias = graph.const(bn.inputs[1]), graph.const(bn.inputs[2])
        weight, old_bias = graph.const(producer.inputs[1]), _bias_of(graph, producer)
        with np.errstate(over="ignore"):  # an overflow is refused by frontend.check_finite_constants
            new_weight = (weight * scale.reshape((-1,) + (1,) * (weight.ndim - 1))).astype(np.float32)
            new_bias = (old_bias * scale + bias).astype(np.float32)
        w_name, b_name = f"{producer.name}::folded_weight", f"{producer.name}::folded_bias"
        tensors = with_const(with_const(tensors, w_name, new_weight), b_name, new_bias)
        folded = producer.with_(inputs=(producer.inputs[0], w_name, b_name), outputs=bn.outputs)
        nodes = [folded if n is producer else n for n in nodes if n is not bn]
        producers[bn.outputs[0]] = folded
    return prune(graph.with_(nodes=tuple(nodes), tensors=tensors))


def _foldable(graph: Graph, producer: Node | None, bn: Node, consumers) -> bool:
    return (
        producer is not None
        and producer.op in (Op.CONV, Op.GEMM)
        and producer.act is None
        and single_consumer(graph, producer.outputs[0], consumers)
        and graph.tensors[producer.inputs[1]].is_const
    )


def _bias_of(graph: Graph, node: Node) -> np.ndarray:
    if len(node.inputs) > 2 and node.inputs[2]:
        return graph.const(node.inputs[2])
    return np.zeros(graph.const(node.inputs[1]).shape[0], np.float32)
