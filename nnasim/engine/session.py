"""Sessions: a graph prepared for repeated inference, fp32 or integer, behind one interface.

``build_session(graph, bits, ...)`` calibrates and quantizes a float graph (or imports the formats
of a QDQ model), builds one integer layer per node and returns a ``Session`` whose ``run`` takes
float feeds in ONNX layout and returns dequantized float32 outputs in ONNX layout. ``bits=32``
returns the fp32 executor behind the same interface.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import numpy as np

from nnasim.engine.layers import LUT_OPS, BuildContext, LayerFn, build_layer, default_acc_bits
from nnasim.errors import ModelError, NnasimWarning, UsageError
from nnasim.ir import Graph, Op, QuantParams
from nnasim.ir.execute import FloatSession, check_feeds
from nnasim.kernels import layout
from nnasim.kernels.quantize import quantize_to_engine
from nnasim.kernels.requant import RULES
from nnasim.quant.calibrate import calibrate
from nnasim.quant.own_formats import carries_formats, integer_constants
from nnasim.quant.params import dequantize_array, quantize_array
from nnasim.quant.qdq import has_own_weights, has_qdq, import_qdq
from nnasim.quant.quantize import quantize_graph

GENERATED_SAMPLES = 4
DEFAULT_RULE = {"pow2": "pow2", "affine": "fixedpoint"}


def generated_feeds(
    graph: Graph, count: int = GENERATED_SAMPLES, seed: int = 0
) -> list[dict[str, np.ndarray]]:
    """Standard-normal inputs of the graph's input shapes (a stand-in when no calibration data is given)."""
    rng = np.random.default_rng(seed)
    return [
        {name: rng.standard_normal(graph.shape(name)).astype(np.float32) for name in graph.inputs}
        for _ in range(count)
    ]


class Session:
    """An integer graph ready to run; ``saturations`` accumulate per layer over every run."""

    def __init__(self, graph: Graph, layers: list[LayerFn], rule: str, bits: int, notes: list[str]):
        self.graph = graph
        self.layers = layers
        self.rule = rule
        self.bits = bits
        self.notes = notes
        self.saturations: dict[str, int] = {node.name: 0 for node in graph.nodes}

    def run_integers(self, feeds: dict[str, np.ndarray], keep_all: bool = False) -> dict[str, np.ndarray]:
        """Integer tensors (engine layout: 4-D NHWC) of the outputs, or of every tensor with ``keep_all``."""
        values = {
            name: self._quantize_input(name, value) for name, value in check_feeds(self.graph, feeds).items()
        }
        const = {name for name, tensor in self.graph.tensors.items() if tensor.is_const}
        last_use = {n: i for i, node in enumerate(self.graph.nodes) for n in node.inputs if n}
        for index, (node, layer) in enumerate(zip(self.graph.nodes, self.layers, strict=True)):
            args = [values[n] for n in node.inputs if n and n not in const]
            values[node.outputs[0]], count = layer(args)
            self.saturations[node.name] += count
            if not keep_all:
                for name in node.inputs:
                    if last_use.get(name) == index and name not in self.graph.outputs:
                        values.pop(name, None)
        return values if keep_all else {name: values[name] for name in self.graph.outputs}

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Graph outputs dequantized to float32, ONNX layout."""
        return {name: self.dequantize(name, q) for name, q in self.run_integers(feeds).items()}

    def run_layers(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every computed tensor (and the inputs) dequantized to float32, ONNX layout."""
        return {name: self.dequantize(name, q) for name, q in self.run_integers(feeds, keep_all=True).items()}

    def quant(self, name: str) -> QuantParams:
        return self.graph.tensors[name].quant

    def dequantize(self, name: str, q: np.ndarray) -> np.ndarray:
        """Float32 values of an engine tensor; a model's integer output stays integers of its type."""
        tensor = self.graph.tensors[name]
        if np.dtype(tensor.dtype).kind in "iu":
            return layout.to_onnx_layout(q).astype(tensor.dtype)
        return dequantize_array(layout.to_onnx_layout(q), self.quant(name), axis=None)

    def _quantize_input(self, name: str, value: np.ndarray) -> np.ndarray:
        """A float input quantized to its format; a model's integer input is fed as it is."""
        if np.dtype(self.graph.tensors[name].dtype).kind in "iu":
            return layout.from_onnx_layout(np.asarray(value, np.int32))
        params = self.quant(name)
        if np.size(params.scale) == 1:
            zero_point = int(np.asarray(params.zero_point).reshape(-1)[0])
            return quantize_to_engine(value, float(params.scale), zero_point, params.qmin, params.qmax)
        return layout.from_onnx_layout(quantize_array(value, params))


def build_session(
    graph: Graph,
    bits: int | None,
    scheme: str = "pow2",
    per_channel: bool = False,
    requant: str | None = None,
    calib: Iterable[dict[str, np.ndarray]] | None = None,
    calib_method: str = "minmax",
    acc_bits: int | None = None,
    layer_bits: dict[str, str] | None = None,
    ranges: dict[str, tuple[float, float]] | None = None,
) -> Session | FloatSession:
    """Prepare ``graph`` (a lowered IR graph) for inference at ``bits`` = 8, 16 (integer) or 32 (fp32).

    ``bits=None``: a quantized model's own width, else 8. A quantized model asked for another
    integer width runs in its own formats all the same, with one warning.

    ``calib`` is a list of feed dicts; None calibrates on generated inputs and says so (a warning
    and ``session.notes``); ``ranges`` (from ``calibrate``) skips calibration. ``layer_bits`` gives
    layers their own widths (mixed precision, see ``quant.widths``); each layer then accumulates
    in the width its inputs need unless ``acc_bits`` fixes one for all.
    A QDQ model keeps its own scales and zero points (``calib``, ``scheme``
    and ``per_channel`` do not apply) and defaults to the ``float32`` rule, onnxruntime's semantics.
    """
    if bits == 32:
        return FloatSession(graph)
    notes: list[str] = []
    if has_qdq(graph):
        quantized = import_qdq(graph)
        bits = _own_width(graph, quantized, bits)
        rule, scheme = requant or "float32", "affine"
        notes.append(
            "QDQ model (any quantized dialect is read as QDQ): its own scales and zero points are used"
        )
    elif carries_formats(graph):
        quantized = integer_constants(graph)
        bits = _own_width(graph, quantized, bits)
        rule, scheme = requant or "fixedpoint", "affine"
        notes.append("integer model (TFLite): its own scales and zero points are used, not calibrated")
    else:
        if has_own_weights(graph):
            scheme, rule = "affine", requant or "float32"
            notes.append(
                "dynamically quantized model: weights keep their own formats; activations, which "
                "DynamicQuantizeLinear quantizes per input at run time, are calibrated (per tensor, affine)"
            )
        else:
            rule = requant or DEFAULT_RULE.get(scheme, "pow2")
        bits = bits or 8
        if ranges is None and calib is None:
            message = (
                f"no calibration data given: ranges calibrated on {GENERATED_SAMPLES} generated normal inputs"
            )
            warnings.warn(message, NnasimWarning, stacklevel=2)
            notes.append(message)
            calib = generated_feeds(graph)
        if ranges is None:
            ranges = calibrate(graph, calib, calib_method, bits, scheme)
        quantized = quantize_graph(integer_constants(graph), bits, ranges, scheme, per_channel, layer_bits)
    _check_rule(rule, scheme)
    add_rule = None
    if rule == "xnnpack" and bits > 8:
        rule, add_rule = "fixedpoint", "xnnpack"
        notes.append(
            "XNNPACK has no 16-bit kernels: TFLite runs them with its own, the fixedpoint rule, "
            "except ADD, whose optimized int16 kernel rounds its 16-element blocks differently"
        )
    if layer_bits:
        bits = max(t.quant.bits for t in quantized.tensors.values() if t.quant is not None and not t.is_const)
        accumulators = (
            f"{acc_bits}-bit" if acc_bits else "per-layer (int32 for 8-bit inputs, int64 for 16-bit)"
        )
        notes.append(f"mixed-precision integer engine, rule {rule!r}, {accumulators} saturating accumulators")
    else:
        acc_bits = acc_bits or default_acc_bits(bits)
        notes.append(
            f"{bits}-bit integer engine, requantization rule {rule!r}, {acc_bits}-bit saturating accumulators"
        )
    lut_ops = sorted({node.op.value for node in quantized.nodes if node.op in (*LUT_OPS, Op.SOFTMAX)})
    if lut_ops:
        notes.append(f"integer lookup tables (no float at run time) for: {', '.join(lut_ops)}")
    if any(node.op == Op.LAYER_NORM for node in quantized.nodes):
        notes.append("LayerNormalization in fixed point (integer square root, no float at run time)")
    ctx = BuildContext(quantized, rule, acc_bits, add_rule)
    layers = [_layer(ctx, node) for node in quantized.nodes]
    return Session(quantized, layers, rule, bits, notes)


def session_ranges(
    graph: Graph,
    bits: int | None,
    scheme: str,
    calib: Iterable[dict[str, np.ndarray]],
    calib_method: str = "minmax",
) -> dict[str, tuple[float, float]] | None:
    """The activation ranges ``build_session`` would calibrate for these arguments (None where it
    calibrates nothing: fp32 and models with their own formats), so that processes given them
    build the same session without the calibration data."""
    if bits == 32 or has_qdq(graph) or carries_formats(graph):
        return None
    scheme = "affine" if has_own_weights(graph) else scheme
    return calibrate(graph, calib, calib_method, bits or 8, scheme)


def _layer(ctx: BuildContext, node) -> LayerFn:
    """``build_layer``, its refusals naming the model's file as well as the node and op."""
    try:
        return build_layer(ctx, node)
    except ModelError as error:
        source = ctx.graph.source
        if source and not str(error).startswith(source):
            raise ModelError(f"{source}: {error}") from None
        raise


def _own_width(graph: Graph, quantized: Graph, bits: int | None) -> int:
    """The widest activation format of a quantized model; ``bits`` asking for another width is ignored,
    with one warning (a quantized model runs in the formats it was quantized to)."""
    widths = sorted(
        {t.quant.bits for t in quantized.tensors.values() if t.quant is not None and not t.is_const}
    )
    if bits is not None and bits not in widths:
        shown = "/".join(f"{w}-bit" for w in widths)
        warnings.warn(
            f"{graph.source or graph.name}: a quantized model runs in its own {shown} formats; "
            f"{bits}-bit is ignored",
            NnasimWarning,
            stacklevel=3,
        )
    return widths[-1]


def _check_rule(rule: str, scheme: str) -> None:
    if rule not in RULES:
        raise UsageError(f"unknown requantization rule {rule!r}; choose from {', '.join(RULES)}")
    if rule == "pow2" and scheme != "pow2":
        raise UsageError("the pow2 requantization rule (shifts only) needs the pow2 scheme")
