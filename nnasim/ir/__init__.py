"""The intermediate representation both engines read: small frozen dataclasses.

Layout follows ONNX (NCHW); tensors carry static shapes. A ``Tensor`` with ``data``
is a constant (weights, biases, folded values). Quantization parameters, once a
quantization pass has run, sit on the tensor they describe.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

import numpy as np


class Op(str, Enum):
    """Operators of the lowered graph; values are the ONNX op names they come from."""

    CONV = "Conv"
    GEMM = "Gemm"
    MATMUL = "MatMul"
    BATCHNORM = "BatchNormalization"
    RELU = "Relu"
    PRELU = "PRelu"
    LEAKY_RELU = "LeakyRelu"
    CLIP = "Clip"
    SIGMOID = "Sigmoid"
    EXP = "Exp"
    SOFTMAX = "Softmax"
    ADD = "Add"
    SUB = "Sub"
    MUL = "Mul"
    DIV = "Div"
    CONCAT = "Concat"
    MAXPOOL = "MaxPool"
    AVGPOOL = "AveragePool"
    GLOBAL_AVGPOOL = "GlobalAveragePool"
    RESHAPE = "Reshape"
    TRANSPOSE = "Transpose"
    SLICE = "Slice"
    RESIZE = "Resize"
    IDENTITY = "Identity"
    DROPOUT = "Dropout"
    CONV_TRANSPOSE = "ConvTranspose"
    HARD_SIGMOID = "HardSigmoid"
    HARD_SWISH = "HardSwish"
    SQRT = "Sqrt"
    POW = "Pow"
    ERF = "Erf"
    REDUCE_MEAN = "ReduceMean"
    LAYER_NORM = "LayerNormalization"
    QUANTIZE = "QuantizeLinear"
    DEQUANTIZE = "DequantizeLinear"


ACTIVATION_OPS = (Op.RELU, Op.CLIP, Op.PRELU, Op.LEAKY_RELU)


@dataclass(frozen=True)
class Activation:
    """An activation fused into the op that produces its input.

    ``kind`` is one of ``ACTIVATION_OPS``; ``lo``/``hi`` bound Relu and Clip,
    ``alpha`` is LeakyRelu's slope, ``slope`` names PRelu's constant slope tensor.
    """

    kind: Op
    lo: float = float("-inf")
    hi: float = float("inf")
    alpha: float = 0.0
    slope: str | None = None


@dataclass(frozen=True)
class QuantParams:
    """Fixed-point format of a tensor: ``real = scale * (q - zero_point)``.

    ``axis`` is None for per-tensor parameters, else the channel axis of the
    per-channel ``scale``/``zero_point`` arrays. ``scheme`` is ``pow2`` (scale a power
    of two, zero point 0) or ``affine``.
    """

    scale: np.ndarray
    zero_point: np.ndarray
    bits: int
    scheme: str = "affine"
    axis: int | None = None
    signed: bool = True

    @property
    def qmin(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def qmax(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1


@dataclass(frozen=True)
class Tensor:
    """A named value: static shape, dtype name, optional constant data and quant params."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    data: np.ndarray | None = field(default=None, compare=False, repr=False)
    quant: QuantParams | None = field(default=None, compare=False)

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


@dataclass(frozen=True)
class Node:
    """One operator application. ``attrs`` holds ONNX attributes, normalised by the frontend."""

    name: str
    op: Op
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict[str, Any] = field(default_factory=dict, compare=False)
    act: Activation | None = None

    def with_(self, **changes: Any) -> Node:
        return replace(self, **changes)


@dataclass(frozen=True)
class Graph:
    """Nodes in topological order, every tensor by name, and the graph's inputs/outputs."""

    name: str
    nodes: tuple[Node, ...]
    tensors: dict[str, Tensor]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    def with_(self, **changes: Any) -> Graph:
        return replace(self, **changes)

    def const(self, name: str) -> np.ndarray | None:
        """The constant data of tensor ``name``, or None if it is computed."""
        return self.tensors[name].data

    def producers(self) -> dict[str, Node]:
        return {out: node for node in self.nodes for out in node.outputs}

    def consumers(self) -> dict[str, list[Node]]:
        users: dict[str, list[Node]] = {}
        for node in self.nodes:
            for name in node.inputs:
                if name:
                    users.setdefault(name, []).append(node)
        return users

    def shape(self, name: str) -> tuple[int, ...]:
        return self.tensors[name].shape


def check_graph(graph: Graph) -> None:
    """Raise ``AssertionError`` naming the first broken invariant of ``graph``.

    Invariants: every tensor a node reads is a constant, a graph input or produced by
    an earlier node; each tensor has one producer; graph outputs are produced.
    """
    available = set(graph.inputs) | {n for n, t in graph.tensors.items() if t.is_const}
    for node in graph.nodes:
        for name in node.inputs:
            assert not name or name in available, f"node {node.name!r} reads {name!r} before it exists"
            assert not name or name in graph.tensors, f"tensor {name!r} of node {node.name!r} is not declared"
        for name in node.outputs:
            assert name not in available, f"tensor {name!r} has two producers (second: {node.name!r})"
            assert name in graph.tensors, f"output {name!r} of node {node.name!r} is not declared"
            available.add(name)
        if node.act is not None and node.act.slope is not None:
            assert graph.tensors[node.act.slope].is_const, f"PRelu slope of {node.name!r} is not constant"
    for name in graph.outputs:
        assert name in available, f"graph output {name!r} is never produced"
