"""Decompositions converters write into float TFLite files, fused back into the ops they stand for.

- PReLU as ``relu(x) + c * (x - abs(x))`` (onnx2tf; the slope is ``2c``) or as
  ``relu(x) + c * -relu(-x)`` (MTCNN's converter; the slope is ``c``);
- softmax as ``exp(x - max(x)) / sum(exp(x - max(x)))`` over the last axis.

Both forms compute the same floats as the fused op (``x - abs(x) = 2x`` and ``-relu(-x) = min(x, 0)``
are exact), so the fusion changes no fp32 result and lets the integer engine run one PReLU or
softmax instead of a chain of quantized elementwise ops.
"""

from __future__ import annotations

from dataclasses import replace

from nnasim.frontend.tflite_reader import TflModel, TflOp


class _Graph:
    def __init__(self, model: TflModel):
        self.model = model
        self.producer = {out: op for op in model.ops for out in op.outputs}
        self.users: dict[int, list[TflOp]] = {}
        for op in model.ops:
            for i in op.inputs:
                self.users.setdefault(i, []).append(op)

    def made_by(self, tensor: int, name: str, only_user: bool = True) -> TflOp | None:
        """The op ``name`` producing ``tensor``, if it is one (and ``tensor`` feeds nothing else)."""
        op = self.producer.get(tensor)
        if op is None or op.name != name or tensor in self.model.outputs:
            return None
        if only_user and len(self.users.get(tensor, [])) != 1:
            return None
        return op

    def is_const(self, tensor: int) -> bool:
        return (
            tensor >= 0
            and self.model.tensors[tensor].data is not None
            or (
                tensor in self.producer
                and self.producer[tensor].name == "DEQUANTIZE"
                and self.model.tensors[self.producer[tensor].inputs[0]].data is not None
            )
        )


def fuse_decompositions(model: TflModel) -> list[TflOp]:
    """The model's ops with every recognised decomposition replaced by one virtual op."""
    graph = _Graph(model)
    replaced: dict[int, TflOp] = {}
    removed: set[int] = set()
    for op in model.ops:
        if op.options.get("FusedActivationFunction", 0):
            continue
        match = _prelu(graph, op) if op.name == "ADD" else _softmax(graph, op) if op.name == "DIV" else None
        if match is not None:
            fused, parts = match
            replaced[op.index] = fused
            removed |= {p.index for p in parts}
    return [replaced.get(op.index, op) for op in model.ops if op.index not in removed or op.index in replaced]


def _prelu(graph: _Graph, add: TflOp) -> tuple[TflOp, list[TflOp]] | None:
    for relu_side, mul_side in ((0, 1), (1, 0)):
        relu = graph.made_by(add.inputs[relu_side], "RELU")
        mul = graph.made_by(add.inputs[mul_side], "MUL")
        if relu is None or mul is None or mul.options.get("FusedActivationFunction", 0):
            continue
        x = relu.inputs[0]
        for const_side in (0, 1):
            slope, other = mul.inputs[const_side], mul.inputs[1 - const_side]
            if not graph.is_const(slope):
                continue
            parts = _negative_part(graph, other, x)
            if parts is not None:
                chain, factor = parts
                fused = TflOp(add.index, "PRELU", (x, slope), add.outputs, {"AlphaScale": factor})
                return fused, [relu, mul, *chain]
    return None


def _negative_part(graph: _Graph, tensor: int, x: int) -> tuple[list[TflOp], float] | None:
    """The ops computing ``x - abs(x)`` (factor 2) or ``-relu(-x)`` (factor 1) into ``tensor``."""
    sub = graph.made_by(tensor, "SUB")
    if sub is not None and sub.inputs[0] == x and not sub.options.get("FusedActivationFunction", 0):
        absolute = graph.made_by(sub.inputs[1], "ABS")
        if absolute is not None and absolute.inputs[0] == x:
            return [sub, absolute], 2.0
    outer = graph.made_by(tensor, "NEG")
    inner_relu = graph.made_by(outer.inputs[0], "RELU") if outer else None
    inner = graph.made_by(inner_relu.inputs[0], "NEG") if inner_relu else None
    if inner is not None and inner.inputs[0] == x:
        return [outer, inner_relu, inner], 1.0
    return None


def _softmax(graph: _Graph, div: TflOp) -> tuple[TflOp, list[TflOp]] | None:
    exp = graph.producer.get(div.inputs[0])
    total = graph.made_by(div.inputs[1], "SUM")
    if exp is None or exp.name != "EXP" or total is None or total.inputs[0] != exp.outputs[0]:
        return None
    if len(graph.users.get(exp.outputs[0], [])) != 2 or exp.outputs[0] in graph.model.outputs:
        return None
    sub = graph.made_by(exp.inputs[0], "SUB")
    top = graph.made_by(sub.inputs[1], "REDUCE_MAX") if sub else None
    if top is None or top.inputs[0] != sub.inputs[0]:
        return None
    rank = len(graph.model.tensors[sub.inputs[0]].shape)
    for reduce in (top, total):
        axes = graph.model.tensors[reduce.inputs[1]].data
        if axes is None or axes.size != 1 or int(axes.reshape(-1)[0]) % rank != rank - 1:
            return None
        if not reduce.options.get("KeepDims", False):
            return None
    fused = replace(div, name="SOFTMAX", inputs=(sub.inputs[0],), options={"Beta": 1.0})
    return fused, [exp, total, sub, top]
