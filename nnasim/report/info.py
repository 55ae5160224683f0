"""``nnasim info``: the per-layer table of a lowered graph (shapes, parameters, MACs)."""

from __future__ import annotations

from nnasim.ir import Graph
from nnasim.ir.stats import node_macs, node_params, op_label


def layer_table(graph: Graph) -> list[dict]:
    """One row per node: name, op (with fused activation), shapes, parameters, MACs."""
    rows = []
    for node in graph.nodes:
        computed = [n for n in node.inputs if n and not graph.tensors[n].is_const]
        rows.append(
            {
                "layer": node.name,
                "op": op_label(node),
                "input": " ".join("x".join(map(str, graph.shape(n))) for n in computed),
                "output": "x".join(map(str, graph.shape(node.outputs[0]))),
                "params": node_params(graph, node),
                "MACs": node_macs(graph, node),
            }
        )
    return rows


def totals(rows: list[dict]) -> dict:
    return {
        "layers": len(rows),
        "params": sum(r["params"] for r in rows),
        "MACs": sum(r["MACs"] for r in rows),
    }
