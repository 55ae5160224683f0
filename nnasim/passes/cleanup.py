"""Remove ops that do nothing at inference: Identity and Dropout."""

from __future__ import annotations

from nnasim.ir import Graph, Op
from nnasim.passes.rewrite import prune, rename_tensor


def remove_identity(graph: Graph) -> Graph:
    """Bypass Identity/Dropout; if one produces a graph output, its producer takes the name."""
    nodes = list(graph.nodes)
    for output in [n.outputs[0] for n in graph.nodes if n.op in (Op.IDENTITY, Op.DROPOUT)]:
        # look the node up again: renaming an earlier one's tensor (a chain of Identities) replaced it
        node = next(n for n in nodes if n.outputs[0] == output)
        src, dst = node.inputs[0], node.outputs[0]
        nodes.remove(node)
        producer = next((n for n in nodes if src in n.outputs), None)
        if dst in graph.outputs and producer is not None and src not in graph.outputs:
            nodes = [n.with_(outputs=(dst,)) if n is producer else n for n in nodes]
            nodes = rename_tensor(nodes, src, dst)
        elif dst in graph.outputs:
            nodes.append(node)  # an input or constant routed straight to an output: keep the copy
        else:
            nodes = rename_tensor(nodes, dst, src)
    return prune(graph.with_(nodes=tuple(nodes)))
