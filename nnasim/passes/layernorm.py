"""Fuse a layer normalisation spelled out in elementary ops (older exports, Paddle2ONNX) into one
LayerNormalization node, which the integer engine runs in fixed point (a Div of two computed
tensors it could not run otherwise).

The pattern, over trailing axes, with ``x`` read by the first ReduceMean and the Sub:
``m = ReduceMean(x); d = x - m; v = ReduceMean(d ** 2 or d * d); n = d / Sqrt(v + eps)``,
then optionally ``n * scale`` and ``+ bias`` by constants.
"""

from __future__ import annotations

import numpy as np

from nnasim.ir import Graph, Node, Op
from nnasim.passes.rewrite import prune, with_const


def fuse_layer_norm(graph: Graph) -> Graph:
    nodes, tensors = list(graph.nodes), dict(graph.tensors)
    for mean in graph.nodes:
        match = _match(graph.with_(nodes=tuple(nodes), tensors=tensors), mean)
        if match is None:
            continue
        replaced, fused, consts = match
        for name, value in consts.items():
            tensors = with_const(tensors, name, value)
        position = nodes.index(replaced[-1])
        nodes[position] = fused
        nodes = [n for n in nodes if n not in replaced[:-1]]
    return prune(graph.with_(nodes=tuple(nodes), tensors=tensors))


def _match(graph: Graph, mean: Node):
    """(nodes replaced, the fused node, new constants) if ``mean`` starts the pattern, else None."""
    if mean not in graph.nodes or mean.op != Op.REDUCE_MEAN or not mean.attrs["keepdims"]:
        return None
    x, shape = mean.inputs[0], graph.shape(mean.inputs[0])
    axes = tuple(mean.attrs["axes"])
    if axes != tuple(range(axes[0], len(shape))):
        return None
    consumers = graph.consumers()
    sub = _only(consumers, mean.outputs[0], Op.SUB)
    if sub is None or sub.inputs != (x, mean.outputs[0]) or mean.act or sub.act:
        return None
    users = list({id(n): n for n in consumers.get(sub.outputs[0], [])}.values())  # d * d reads d twice
    square = next((n for n in users if _is_square(n, sub.outputs[0])), None)
    div = next((n for n in users if n.op == Op.DIV and n.inputs[0] == sub.outputs[0]), None)
    if len(users) != 2 or square is None or div is None:
        return None
    chain = [mean, sub, square]
    variance = _only(consumers, square.outputs[0], Op.REDUCE_MEAN)
    if variance is None or tuple(variance.attrs["axes"]) != axes or not variance.attrs["keepdims"]:
        return None
    add_eps = _only(consumers, variance.outputs[0], Op.ADD)
    eps = _scalar_const(graph, add_eps, variance.outputs[0]) if add_eps is not None else None
    sqrt = _only(consumers, add_eps.outputs[0], Op.SQRT) if eps is not None else None
    if sqrt is None or div.inputs[1] != sqrt.outputs[0] or len(consumers.get(sqrt.outputs[0], [])) != 1:
        return None
    chain += [variance, add_eps, sqrt, div]
    if any(n.act is not None for n in chain):
        return None
    normalised = shape[axes[0] :]
    scale, bias, last = np.ones(normalised, np.float32), np.zeros(normalised, np.float32), div
    mul = _only(consumers, div.outputs[0], Op.MUL)
    gamma = _trailing_const(graph, mul, div.outputs[0], normalised) if mul is not None else None
    if gamma is not None and mul.act is None:
        scale, last = gamma, mul
        chain.append(mul)
    add = _only(consumers, last.outputs[0], Op.ADD)
    beta = _trailing_const(graph, add, last.outputs[0], normalised) if add is not None else None
    if beta is not None and add.act is None:
        bias, last = beta, add
        chain.append(add)
    out = last.outputs[0]
    consts = {f"{out}::ln_scale": scale, f"{out}::ln_bias": bias}
    fused = Node(
        mean.name,
        Op.LAYER_NORM,
        (x, *consts),
        (out,),
        {"axis": axes[0], "epsilon": eps},
    )
    return chain, fused, consts


def _only(consumers, name: str, op: Op) -> Node | None:
    users = consumers.get(name, [])
    return users[0] if len(users) == 1 and users[0].op == op else None


def _is_square(node: Node, name: str) -> bool:
    if node.op == Op.POW:
        return node.inputs[0] == name and node.attrs["exponent"] == 2.0
    return node.op == Op.MUL and node.inputs == (name, name)


def _other_const(graph: Graph, node: Node, name: str) -> np.ndarray | None:
    others = [n for n in node.inputs if n != name]
    if len(others) != 1 or not graph.tensors[others[0]].is_const:
        return None
    return graph.const(others[0])


def _scalar_const(graph: Graph, node: Node, name: str) -> float | None:
    value = _other_const(graph, node, name)
    return float(value.reshape(-1)[0]) if value is not None and value.size == 1 else None


def _trailing_const(graph: Graph, node: Node, name: str, normalised: tuple[int, ...]) -> np.ndarray | None:
    """The constant operand of ``node`` as a (normalised-shape) array, if it varies only there."""
    value = _other_const(graph, node, name)
    if value is None:
        return None
    squeezed = value.reshape(
        value.shape[-len(normalised) :] if value.ndim >= len(normalised) else value.shape
    )
    if value.size != squeezed.size:
        return None
    try:
        return np.broadcast_to(squeezed, normalised).astype(np.float32)
    except ValueError:
        return None
