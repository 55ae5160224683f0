"""Per-layer widths for mixed precision: what each width means and which layer gets which.

A width names a layer's input-activation and weight formats: ``8`` (8-bit, per-tensor weights),
``8pc`` (8-bit, per-channel weights), ``16`` (16-bit activations and weights), ``16pc`` (16-bit,
per-channel weights) and ``16x8`` (16-bit activations, 8-bit per-channel weights: TFLite's
int16x8 mode). The same ``Width`` is what the cost model prices (``cost.evaluate``), uniform
or per layer. ``layer_widths`` expands a partial assignment to every node: a node named in it
takes its width, an unnamed weighted node (Conv, Gemm, MatMul, BatchNormalization) the default,
and any other node (Add, pooling, activations...) the width of the layer that produces its
first computed input, so a residual add or a pool runs at the width of the layer before it.
"""

from __future__ import annotations

from dataclasses import dataclass

from nnasim.errors import UsageError
from nnasim.ir import Graph, Node, Op

WEIGHTED_OPS = (Op.CONV, Op.GEMM, Op.MATMUL, Op.BATCHNORM)


@dataclass(frozen=True)
class Width:
    """One layer's formats: activation bits, weight bits, per-channel weights."""

    name: str
    act_bits: int
    weight_bits: int
    per_channel: bool

    @property
    def act_bytes(self) -> int:
        return self.act_bits // 8


WIDTHS = {
    w.name: w
    for w in (
        Width("8", 8, 8, False),
        Width("8pc", 8, 8, True),
        Width("16", 16, 16, False),
        Width("16pc", 16, 16, True),
        Width("16x8", 16, 8, True),
    )
}


def parse_width(text: int | str | Width) -> Width:
    """The ``Width`` named ``text`` (``8`` and ``16`` may be numbers); a ``UsageError`` listing
    the names otherwise."""
    if isinstance(text, Width):
        return text
    width = WIDTHS.get(str(text).strip())
    if width is None:
        raise UsageError(f"unknown layer width {text!r}; choose from {', '.join(WIDTHS)}")
    return width


def uniform_width(bits: int, per_channel: bool) -> Width:
    """The width every layer has in a plain ``bits``-bit run."""
    return parse_width(f"{bits}{'pc' if per_channel else ''}")


def is_weighted(node: Node) -> bool:
    return node.op in WEIGHTED_OPS


def weighted_layers(graph: Graph) -> list[str]:
    """Names of the nodes whose width a search chooses (they carry weights)."""
    return [node.name for node in graph.nodes if is_weighted(node)]


def layer_widths(graph: Graph, layer_bits: dict[str, str] | None, default: Width) -> dict[str, Width]:
    """Every node's ``Width``: named ones as given, weighted ones ``default``, the rest inherited."""
    layer_bits = dict(layer_bits or {})
    unknown = sorted(set(layer_bits) - {node.name for node in graph.nodes})
    if unknown:
        raise UsageError(f"layer widths name nodes the graph does not have: {', '.join(unknown[:5])}")
    producers = graph.producers()
    widths: dict[str, Width] = {}
    for node in graph.nodes:
        if node.name in layer_bits:
            widths[node.name] = parse_width(layer_bits[node.name])
        elif is_weighted(node):
            widths[node.name] = default
        else:
            source = next((producers[n] for n in node.inputs if n in producers), None)
            widths[node.name] = widths[source.name] if source is not None else default
    return widths


def width_names(widths: dict[str, Width]) -> dict[str, str]:
    """``{node: width name}``: the form the cost model and reports take."""
    return {name: width.name for name, width in widths.items()}
