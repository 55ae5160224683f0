"""Small helpers the passes share for rewriting a Graph."""

from __future__ import annotations

from nnasim.ir import Graph, Node, Tensor


def rename_tensor(nodes: list[Node], old: str, new: str) -> list[Node]:
    """Make every node that reads ``old`` read ``new`` instead."""
    return [
        node.with_(inputs=tuple(new if n == old else n for n in node.inputs)) if old in node.inputs else node
        for node in nodes
    ]


def single_consumer(graph: Graph, name: str, consumers: dict[str, list[Node]]) -> bool:
    """True when ``name`` is read by exactly one node and is not a graph output."""
    return len(consumers.get(name, ())) == 1 and name not in graph.outputs


def prune(graph: Graph) -> Graph:
    """Drop nodes whose outputs nobody reads and tensors nobody mentions."""
    needed = set(graph.outputs)
    kept: list[Node] = []
    for node in reversed(graph.nodes):
        if any(out in needed for out in node.outputs):
            kept.append(node)
            needed.update(n for n in node.inputs if n)
            if node.act is not None and node.act.slope:
                needed.add(node.act.slope)
    kept.reverse()
    mentioned = needed | set(graph.inputs) | {out for node in kept for out in node.outputs}
    tensors = {name: tensor for name, tensor in graph.tensors.items() if name in mentioned}
    return graph.with_(nodes=tuple(kept), tensors=tensors)


def with_const(graph_tensors: dict[str, Tensor], name: str, value) -> dict[str, Tensor]:
    """A copy of the tensor table with ``name`` holding constant ``value``."""
    tensors = dict(graph_tensors)
    tensors[name] = Tensor(name, tuple(value.shape), str(value.dtype), value)
    return tensors
