"""The hardware-independent part of the cost model: per-layer work of a lowered graph.

Computed once per graph and reused for every profile and bit width, so that a sweep over
hardware parameters only redoes the cheap, hardware-dependent arithmetic (``plan`` and
``model``). Tensors that share memory (a Reshape's output and its input; the inputs of a
Concat, written in place into its output) are mapped to one *storage* id.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from nnasim.cost.encoding import encoded_bits
from nnasim.errors import ModelError
from nnasim.ir import Graph, Node, Op, QuantParams
from nnasim.quant.params import per_axis

MAC = "mac"  # runs on the MAC array
VECTOR = "vector"  # runs on the element engine (elementwise, pooling, standalone BN, ...)
ALIAS = "alias"  # a view: no data moves, no cycles

_ALIAS_OPS = (Op.RESHAPE, Op.IDENTITY, Op.DROPOUT, Op.QUANTIZE, Op.DEQUANTIZE, Op.CONCAT)
_POOL_OPS = (Op.MAXPOOL, Op.AVGPOOL)


@dataclass(frozen=True)
class LayerWork:
    """What one node asks of any accelerator, independent of the accelerator.

    ``inputs``/``input_elems`` are the activation storages it reads; ``row_elems`` is one
    row (width x channels) of its main input, for line buffers and halo re-reads.
    """

    index: int
    name: str
    op: str
    kind: str
    inputs: tuple[str, ...]
    input_elems: tuple[int, ...]
    output: str
    output_elems: int
    in_width: int = 1
    row_elems: int = 0
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    reduce_channels: int = 0
    out_channels: int = 0
    groups: int = 1
    pixels: int = 0
    macs: int = 0
    weight_elems: int = 0
    bias_elems: int = 0
    vector_ops: int = 0
    weight_name: str | None = None
    in_shape: tuple[int, int, int] = (1, 1, 1)
    out_shape: tuple[int, int, int] = (1, 1, 1)
    element_class: str = "other"
    broadcast: bool = False

    @property
    def depthwise(self) -> bool:
        return self.kind == MAC and self.groups > 1 and self.reduce_channels == 1


@dataclass
class Workload:
    """Per-layer work of one graph plus the storage map the memory planner needs."""

    name: str
    layers: tuple[LayerWork, ...]
    storage_elems: dict[str, int]
    graph_inputs: frozenset[str]
    graph_outputs: frozenset[str]
    weights: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    weight_quant: dict[str, object] = field(repr=False, default_factory=dict)
    consumers: dict[str, tuple[int, ...]] = field(repr=False, default_factory=dict)
    _entropy: dict[int, tuple[float, ...]] = field(repr=False, default_factory=dict)
    _encoded: dict[tuple[int, bool], tuple[float, ...]] = field(repr=False, default_factory=dict)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def weight_elems(self) -> int:
        return sum(layer.weight_elems for layer in self.layers)

    def encoded_bits_per_weight(self, bits: int, per_channel: bool = False) -> tuple[float, ...]:
        """Bits per weight of each layer's weights quantized to ``bits`` (per output channel or per
        tensor) and coded by ``nnasim.cost.encoding`` (0 without weights); cached."""
        key = (bits, per_channel)
        if key not in self._encoded:
            self._encoded[key] = tuple(
                self._encoded_layer(layer, bits, per_channel) if layer.weight_name is not None else 0.0
                for layer in self.layers
            )
        return self._encoded[key]

    def _encoded_layer(self, layer: LayerWork, bits: int, per_channel: bool) -> float:
        weights = self.weights[layer.weight_name]
        q = _integers(np.asarray(weights), bits, self.weight_quant.get(layer.weight_name), per_channel)
        return encoded_bits(q, bits) / q.size if q.size else 0.0

    def entropy_bits_per_weight(self, bits: int) -> tuple[float, ...]:
        """Order-0 entropy of each layer's weights quantized to ``bits`` (0 without weights); cached."""
        if bits not in self._entropy:
            self._entropy[bits] = tuple(
                weight_entropy_bits(
                    self.weights[layer.weight_name], bits, self.weight_quant.get(layer.weight_name)
                )
                if layer.weight_name is not None
                else 0.0
                for layer in self.layers
            )
        return self._entropy[bits]


def weight_entropy_bits(weights: np.ndarray, bits: int, quant: QuantParams | None = None) -> float:
    """Bits per weight a lossless entropy coder needs for ``weights`` stored with ``bits`` bits.

    Uses the tensor's own integers when it is quantized to ``bits`` already (a QDQ model, a
    quantized graph), else symmetric per-tensor max-abs quantization of its real values.
    """
    q = _integers(np.asarray(weights), bits, quant).ravel()
    if q.size == 0:
        return 0.0
    counts = np.unique(q, return_counts=True)[1] if q.size < 4096 else np.bincount(q - q.min())
    p = counts[counts > 0] / q.size
    return float(-(p * np.log2(p)).sum())


def _integers(
    weights: np.ndarray, bits: int, quant: QuantParams | None, per_channel: bool = False
) -> np.ndarray:
    """The integers a tensor is stored as: its own when quantized to ``bits``, else symmetric
    max-abs quantization of its real values, per tensor or per output channel (axis 0)."""
    if quant is not None and quant.bits == bits:
        if weights.dtype.kind in "iu":
            return weights.astype(np.int64)
        scale = per_axis(quant.scale, weights.ndim, quant.axis)
        return np.rint(weights / scale).astype(np.int64) + per_axis(
            quant.zero_point, weights.ndim, quant.axis
        )
    if quant is not None and weights.dtype.kind in "iu":
        zero = per_axis(quant.zero_point, weights.ndim, quant.axis)
        weights = (weights - zero) * per_axis(quant.scale, weights.ndim, quant.axis)
    values = np.asarray(weights, dtype=np.float32 if weights.dtype == np.float32 else np.float64)
    qmax = (1 << (bits - 1)) - 1
    if values.size == 0:
        return values.astype(np.int64)
    if per_channel and values.ndim > 1:
        peak = np.max(np.abs(values.reshape(values.shape[0], -1)), axis=1)
        gain = np.where(peak > 0, qmax / np.where(peak > 0, peak, 1.0), 1.0).astype(values.dtype)
        return np.rint(values * gain.reshape((-1,) + (1,) * (values.ndim - 1))).astype(np.int32)
    peak = float(max(values.max(), -values.min())) or 1.0
    return np.rint(values * (qmax / peak)).astype(np.int32)


def build_workload(graph: Graph) -> Workload:
    """The per-layer work of a lowered ``graph``; raises ``ModelError`` for ops it cannot cost."""
    storage = _storage_map(graph)
    layers = []
    for node in graph.nodes:
        layers.append(_layer_work(graph, node, len(layers), storage))
    storage_elems: dict[str, int] = {}
    for name, tensor in graph.tensors.items():
        if not tensor.is_const:
            sid = storage.get(name, name)
            storage_elems[sid] = max(storage_elems.get(sid, 0), tensor.size)
    weights = {
        layer.weight_name: graph.tensors[layer.weight_name].data for layer in layers if layer.weight_name
    }
    quant = {name: graph.tensors[name].quant for name in weights if graph.tensors[name].quant is not None}
    consumers: dict[str, list[int]] = {}
    for layer in layers:
        for sid in layer.inputs:
            consumers.setdefault(sid, []).append(layer.index)
    return Workload(
        name=graph.name,
        consumers={s: tuple(users) for s, users in consumers.items()},
        layers=tuple(layers),
        storage_elems=storage_elems,
        graph_inputs=frozenset(storage.get(n, n) for n in graph.inputs),
        graph_outputs=frozenset(storage.get(n, n) for n in graph.outputs),
        weights=weights,
        weight_quant=quant,
    )


def _storage_map(graph: Graph) -> dict[str, str]:
    """Tensor name -> storage id; views share their source's storage."""
    parent: dict[str, str] = {}

    def find(name: str) -> str:
        while name in parent:
            name = parent[name]
        return name

    for node in graph.nodes:
        activations = [n for n in node.inputs if n and not graph.tensors[n].is_const]
        if node.op == Op.CONCAT:
            for name in activations:
                root = find(name)
                if root != find(node.outputs[0]):
                    parent[root] = find(node.outputs[0])
        elif node.op in _ALIAS_OPS and activations:
            parent[node.outputs[0]] = find(activations[0])
    return {name: find(name) for name in graph.tensors if not graph.tensors[name].is_const}


def _layer_work(graph: Graph, node: Node, index: int, storage: dict[str, str]) -> LayerWork:
    activations = [n for n in node.inputs if n and not graph.tensors[n].is_const]
    out = graph.tensors[node.outputs[0]]
    base = dict(
        out_shape=_hwc(out.shape),
        index=index,
        name=node.name,
        op=node.op.value,
        inputs=tuple(storage[n] for n in activations),
        input_elems=tuple(graph.tensors[n].size for n in activations),
        output=storage[out.name],
        output_elems=out.size,
    )
    if node.op in _ALIAS_OPS:
        return LayerWork(kind=ALIAS, **{**base, "inputs": (), "input_elems": ()})
    main_shape = graph.shape(activations[0]) if activations else out.shape
    geometry = _row_geometry(main_shape)
    if node.op in (Op.CONV, Op.CONV_TRANSPOSE):
        return _conv_work(graph, node, base, geometry)
    if node.op in (Op.GEMM, Op.MATMUL):
        return _matmul_work(graph, node, base, geometry)
    return _vector_work(graph, node, base, geometry)


def _row_geometry(shape: tuple[int, ...]) -> dict[str, int]:
    """Width and row size (width x channels) of an NCHW (or lower-rank) tensor."""
    if len(shape) == 4:
        return {"in_width": shape[3], "row_elems": shape[1] * shape[3], "in_shape": _hwc(shape)}
    row = int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
    return {"in_width": 1, "row_elems": row, "in_shape": _hwc(shape)}


def _hwc(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(height, width, channels) of an NCHW tensor; a flat tensor is 1 x 1 x features."""
    if len(shape) == 4:
        return (shape[2], shape[3], shape[1])
    if len(shape) == 3:
        return (1, shape[2], shape[1])
    return (1, 1, int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else max(int(np.prod(shape)), 1))


_ELEMENT_CLASS = {
    Op.ADD: "add",
    Op.SUB: "add",
    Op.MUL: "mul",
    Op.MAXPOOL: "maxpool",
    Op.AVGPOOL: "avgpool",
    Op.GLOBAL_AVGPOOL: "avgpool",
    **dict.fromkeys(
        (Op.SIGMOID, Op.EXP, Op.HARD_SIGMOID, Op.HARD_SWISH, Op.SQRT, Op.POW, Op.ERF, Op.TANH), "lut"
    ),
    Op.REDUCE_MEAN: "avgpool",
    Op.SOFTMAX: "softmax",
    Op.RESIZE: "resize",
}


def _conv_work(graph: Graph, node: Node, base: dict, geometry: dict) -> LayerWork:
    weight = graph.tensors[node.inputs[1]]
    if not weight.is_const:
        raise ModelError(f"node {node.name!r}: Conv with computed weights is not supported by the cost model")
    out_ch, per_group, kh, kw = weight.shape
    _, _, oh, ow = graph.shape(node.outputs[0])
    bias = graph.tensors[node.inputs[2]].size if len(node.inputs) > 2 and node.inputs[2] else 0
    strides = tuple(node.attrs.get("strides", (1, 1)))
    macs = oh * ow * out_ch * per_group * kh * kw
    if node.op == Op.CONV_TRANSPOSE:  # its equivalent conv (stride 1): only 1 in sh*sw taps is not a zero
        macs, strides = macs // (strides[0] * strides[1]), (1, 1)
    return LayerWork(
        kind=MAC,
        kernel=(kh, kw),
        stride=(strides[0], strides[1]),
        reduce_channels=per_group,
        out_channels=out_ch,
        groups=int(node.attrs.get("group", 1)),
        pixels=oh * ow,
        macs=macs,
        weight_elems=weight.size,
        bias_elems=bias,
        weight_name=weight.name,
        **geometry,
        **base,
    )


def _matmul_work(graph: Graph, node: Node, base: dict, geometry: dict) -> LayerWork:
    a_shape = graph.shape(node.inputs[0])
    b = graph.tensors[node.inputs[1]]
    out_shape = graph.shape(node.outputs[0])
    trans_a = node.op == Op.GEMM and node.attrs.get("transA", 0)
    reduce = a_shape[-2] if trans_a else a_shape[-1]
    out_features = out_shape[-1]
    rows = math.prod(out_shape[:-1])
    bias = graph.tensors[node.inputs[2]].size if len(node.inputs) > 2 and node.inputs[2] else 0
    return LayerWork(
        kind=MAC,
        reduce_channels=reduce,
        out_channels=out_features,
        pixels=rows,
        macs=rows * reduce * out_features,
        weight_elems=b.size if b.is_const else 0,
        bias_elems=bias,
        weight_name=b.name if b.is_const else None,
        **geometry,
        **base,
    )


def _vector_work(graph: Graph, node: Node, base: dict, geometry: dict) -> LayerWork:
    """Elementwise, pooling, normalisation and data-movement ops on the element engine."""
    window = 1
    if node.op in _POOL_OPS:
        kh, kw = node.attrs.get("kernel_shape", (1, 1))
        window = kh * kw
    params = sum(graph.tensors[n].size for n in node.inputs if n and graph.tensors[n].is_const)
    params += sum(
        graph.tensors[v].size for v in node.attrs.values() if isinstance(v, str) and v in graph.tensors
    )
    if node.act is not None and node.act.slope is not None:
        params += graph.tensors[node.act.slope].size
    elems = max(base["output_elems"], *base["input_elems"]) if base["input_elems"] else base["output_elems"]
    sizes = base["input_elems"]
    return LayerWork(
        kind=VECTOR,
        vector_ops=elems * window,
        weight_elems=params,
        kernel=tuple(node.attrs.get("kernel_shape", (1, 1))) if node.op in _POOL_OPS else (1, 1),
        stride=tuple(node.attrs.get("strides", (1, 1))) if node.op in _POOL_OPS else (1, 1),
        element_class=_ELEMENT_CLASS.get(node.op, "other"),
        broadcast=len(sizes) > 1 and min(sizes) < max(sizes),
        **geometry,
        **base,
    )
