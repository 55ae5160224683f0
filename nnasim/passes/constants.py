"""Evaluate nodes whose inputs are all constant (what passes leave foldable)."""

from __future__ import annotations

from nnasim.ir import Graph
from nnasim.passes.rewrite import prune, with_const


def fold_constants(graph: Graph) -> Graph:
    from nnasim.ir.execute import run_node

    tensors, nodes = dict(graph.tensors), []
    for node in graph.nodes:
        inputs = [n for n in node.inputs if n]
        if node.outputs[0] not in graph.outputs and inputs and all(tensors[n].is_const for n in inputs):
            folded = graph.with_(tensors=tensors)
            value = run_node(folded, node, [tensors[n].data for n in inputs])
            tensors = with_const(tensors, node.outputs[0], value)
        else:
            nodes.append(node)
    return prune(graph.with_(nodes=tuple(nodes), tensors=tensors))
