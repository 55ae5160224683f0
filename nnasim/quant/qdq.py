"""Pre-quantized ONNX models, kept as they are: every dialect is read as QDQ with the model's formats.

``load_qdq`` rewrites the other dialects to standard QDQ (``quant.qoperator``: com.microsoft Q/DQ,
QOperator nodes, integer inputs and integer data movement; ``quant.dynamic``: dynamic quantization),
evaluates the DequantizeLinear of every constant (and the QuantizeLinear of float constants, as
fake-quant exports write them) and keeps its format, then imports the model with the standard
frontend and lowering. ``import_qdq`` turns every ``x -> QuantizeLinear -> DequantizeLinear -> y``
pair into the format of ``x`` and removes the pair, so the engine runs on integers with the
model's own scales and zero points; a DQ -> Q with another format becomes a requantization node.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from nnasim.errors import ModelError, NnasimError
from nnasim.frontend import load_lowered
from nnasim.frontend.source import parse_model_file, read_model
from nnasim.ir import Graph, Node, Op, QuantParams, Tensor
from nnasim.quant.dynamic import DYNAMIC_TYPES, rewrite_dynamic
from nnasim.quant.own_formats import exact_integers
from nnasim.quant.params import per_axis, quantize_array, weight_params
from nnasim.quant.qoperator import FLOAT_SUFFIX, QDQ_TYPES, is_qoperator, to_standard_qdq
from nnasim.quant.quantize import INHERITS_FORMAT

QDQ_OPS = (Op.QUANTIZE, Op.DEQUANTIZE)
BIAS_TYPES = (np.int32, np.int64)  # int64: biases of int16x8 conversions
CONSTANT_MOVES = ("Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity")


def has_qdq(graph: Graph) -> bool:
    return any(node.op in QDQ_OPS for node in graph.nodes)


def has_own_weights(graph: Graph) -> bool:
    """Whether constants carry the model's own formats (a dynamically quantized model, after loading)."""
    return any(tensor.is_const and tensor.quant is not None for tensor in graph.tensors.values())


def is_quantized(model: onnx.ModelProto) -> bool:
    """Whether ``model`` is a quantized ONNX model of any dialect (QDQ, QOperator, dynamic)."""
    return any(
        node.op_type in QDQ_TYPES or node.op_type in DYNAMIC_TYPES or is_qoperator(node)
        for node in model.graph.node
    )


def is_quantized_file(spec: str | Path) -> bool:
    """Whether ``spec`` names an ONNX file of a quantized dialect."""
    path = Path(str(spec))
    if not path.is_file():
        return False
    try:
        model = parse_model_file(path)  # the frontend's guarded reader (regular file, size checked)
    except NnasimError:  # unreadable files are reported by the frontend, with its own message
        return False
    return is_quantized(model)


def load_any(spec: str | Path | onnx.ModelProto, input_shape=None) -> Graph:
    """The lowered graph of any model the engines run: a quantized model keeps its own formats."""
    quantized = is_quantized(spec) if isinstance(spec, onnx.ModelProto) else is_quantized_file(spec)
    return load_qdq(spec, input_shape) if quantized else load_lowered(spec, input_shape)


def format_of(
    scale: np.ndarray, zero_point: np.ndarray | None, axis: int | None, dtype=np.uint8
) -> QuantParams:
    """QuantParams of an ONNX (De)QuantizeLinear's scale and zero point (of ``dtype`` when absent)."""
    zero_point = np.zeros(np.shape(scale), dtype) if zero_point is None else np.asarray(zero_point)
    if zero_point.dtype not in (np.int8, np.uint8, np.int16, np.uint16):
        raise ModelError(
            f"zero point of type {zero_point.dtype} is not supported for activations and weights "
            "(8/16-bit integers; int32/int64 only for biases)"
        )
    if not np.all(np.isfinite(scale)) or np.any(np.asarray(scale) <= 0):
        raise ModelError(f"QDQ scale {np.asarray(scale).ravel()[:4]} is not a positive finite number")
    per_channel = np.size(scale) > 1
    return QuantParams(
        scale=np.asarray(scale, np.float32),
        zero_point=zero_point.astype(np.int32),
        bits=8 * zero_point.dtype.itemsize,
        scheme="affine",
        axis=axis if per_channel else None,
        signed=zero_point.dtype.kind == "i",
    )


def load_qdq(spec: str | Path | onnx.ModelProto, input_shape=None) -> Graph:
    """Load a quantized model: the lowered graph, constants carrying their own formats.

    The graph still holds the Q/DQ nodes of activations (the fp32 executor runs them as ONNX
    defines them); ``import_qdq`` makes them formats, checking the model (errors name file and node).
    """
    source, label = read_model(spec)
    model = onnx.ModelProto()
    model.CopyFrom(source)
    for index, node in enumerate(model.graph.node):  # as the frontend names them; rewrites name theirs after
        node.name = node.name or f"{node.op_type}_{index}"
    rewrite_dynamic(model, label)
    to_standard_qdq(model, label)
    _fold_constant_quantize(model, label)
    formats, exact = _fold_constant_dequantize(model, label)
    formats |= _follow_constant_moves(model, formats, label)
    formats |= _frontend_renamed(model, formats, label, exact)
    graph = _lowered(model, input_shape, label)
    tensors = {
        name: replace(tensor, quant=formats[name], data=_exact(exact, name, tensor.data))
        if tensor.is_const and name in formats
        else tensor
        for name, tensor in graph.tensors.items()
    }
    graph = graph.with_(tensors=tensors)
    if has_qdq(graph):
        import_qdq(graph)  # the model's formats are checked once, at load time
    return graph


def _lowered(model: onnx.ModelProto, input_shape, label: str) -> Graph:
    """The frontend's lowered graph of the rewritten ``model``; its messages name the file."""
    try:
        return load_lowered(model, input_shape).with_(source=label)
    except ModelError as error:
        shown = f"{model.graph.name or '<model>'}: "
        message = str(error)
        if message.startswith(shown):
            raise ModelError(f"{label}: {message[len(shown) :]}") from None
        raise


def _exact(exact: dict[str, np.ndarray], name: str, data: np.ndarray) -> np.ndarray:
    """A bias's exact float64 value where the frontend kept its shape, else the frontend's data."""
    value = exact.get(name)
    return value.reshape(data.shape) if value is not None and value.size == data.size else data


def _frontend_renamed(
    model: onnx.ModelProto, formats: dict[str, QuantParams], label: str, exact: dict[str, np.ndarray]
) -> dict[str, QuantParams]:
    """Formats of the constants the frontend rewrites: Gemm/MatMul weights become ``OUT::weight``
    of shape (N, K) (transposed unless transB) and Gemm biases ``OUT::bias`` (``exact`` follows)."""
    renamed = {}
    for node in model.graph.node:
        if node.op_type not in ("Gemm", "MatMul") or len(node.input) < 2 or node.input[1] not in formats:
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
            raise ModelError(
                f"{label}: node {node.name!r} (Gemm): alpha/beta != 1 on quantized weights is not supported"
            )
        fmt = formats[node.input[1]]
        transposed = node.op_type == "MatMul" or not attrs.get("transB", 0)
        axis = None if fmt.axis is None else (1 - fmt.axis if transposed else fmt.axis)
        renamed[f"{node.output[0]}::weight"] = replace(fmt, axis=axis)
        if node.op_type == "Gemm" and len(node.input) > 2 and node.input[2] in formats:
            renamed[f"{node.output[0]}::bias"] = formats[node.input[2]]
            if node.input[2] in exact:
                exact[f"{node.output[0]}::bias"] = exact[node.input[2]]
    return renamed


def _constants(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Initializers and Constant-node values by name."""
    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def _node_axis(node: onnx.NodeProto, ndim: int) -> int:
    axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
    return axis + ndim if axis < 0 else axis


def _operand(values: dict[str, np.ndarray], node: onnx.NodeProto, index: int) -> np.ndarray | None:
    return values[node.input[index]] if len(node.input) > index and node.input[index] else None


def _replace_nodes(model: onnx.ModelProto, kept: list[onnx.NodeProto], new: dict[str, np.ndarray]) -> None:
    del model.graph.node[:]
    model.graph.node.extend(kept)
    model.graph.initializer.extend(numpy_helper.from_array(value, name) for name, value in new.items())


def _fold_constant_quantize(model: onnx.ModelProto, label: str) -> None:
    """Fake-quant exports: a float constant -> QuantizeLinear becomes the integers it gives."""
    values = _constants(model)
    kept, new = [], {}
    for node in model.graph.node:
        if node.op_type != "QuantizeLinear" or node.input[0] not in values or node.input[1] not in values:
            kept.append(node)
            continue
        data = values[node.input[0]].astype(np.float32)
        zero_point = _operand(values, node, 2)
        fmt = _format_at(label, node, values[node.input[1]], zero_point, _node_axis(node, data.ndim))
        dtype = np.uint8 if zero_point is None else zero_point.dtype
        new[node.output[0]] = quantize_array(data, fmt).astype(dtype)
    _replace_nodes(model, kept, new)


def _format_at(label: str, node: onnx.NodeProto, scale, zero_point, axis: int, dtype=np.uint8) -> QuantParams:
    """``format_of`` whose error names the file and node."""
    try:
        return format_of(scale, zero_point, axis, dtype)
    except ModelError as error:
        raise ModelError(f"{label}: node {node.name!r} ({node.op_type}): {error}") from None


def _fold_constant_dequantize(
    model: onnx.ModelProto, label: str
) -> tuple[dict[str, QuantParams], dict[str, np.ndarray]]:
    """Replace each DequantizeLinear of a constant by its float32 value; return the formats by name,
    and the exact float64 values of the biases (int32/int64 exceed float32's 24-bit mantissa)."""
    values = _constants(model)
    formats, exact, kept, new = {}, {}, [], {}
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear" or node.input[0] not in values:
            kept.append(node)
            continue
        data = values[node.input[0]]
        scale = values[node.input[1]]
        zero_point = _operand(values, node, 2)
        axis = _node_axis(node, data.ndim)
        if data.dtype in BIAS_TYPES:
            fmt = _bias_format(scale, axis, data.dtype)
        else:
            fmt = _format_at(label, node, scale, zero_point, axis, data.dtype)
        dtype = np.float64 if data.dtype in BIAS_TYPES else np.float32
        real = (data.astype(np.int64) - per_axis(fmt.zero_point, data.ndim, fmt.axis)).astype(dtype)
        real = real * per_axis(fmt.scale, data.ndim, fmt.axis).astype(dtype)
        if data.dtype in BIAS_TYPES:
            exact[node.output[0]] = real
        new[node.output[0]] = real.astype(np.float32)  # the model stays float32 for the checker
        formats[node.output[0]] = fmt
    _replace_nodes(model, kept, new)
    return formats, exact


def _bias_format(scale: np.ndarray, axis: int, dtype) -> QuantParams:
    """int32 (or int64) biases: scale = input scale x weight scale, zero point 0."""
    scale = np.asarray(scale, np.float32)
    per_channel = scale.size > 1
    bits = 8 * np.dtype(dtype).itemsize
    return QuantParams(scale, np.zeros(scale.shape, np.int32), bits, "affine", axis if per_channel else None)


def _follow_constant_moves(
    model: onnx.ModelProto, formats: dict[str, QuantParams], label: str
) -> dict[str, QuantParams]:
    """Constant data movement after a weight's DequantizeLinear (tf2onnx writes ``DQ -> Transpose ->
    Conv``) evaluated here, so the moved weight keeps its format (per-channel axis moved with it)."""
    from onnx.reference import ReferenceEvaluator

    moved: dict[str, QuantParams] = {}
    values = _constants(model)
    kept, new = [], {}
    for node in model.graph.node:
        source = node.input[0] if node.input else ""
        known = moved.get(source) or formats.get(source)
        if (
            node.op_type not in CONSTANT_MOVES
            or known is None
            or not all(n in values for n in node.input if n)
        ):
            kept.append(node)
            continue
        feeds = {n: values[n] for n in node.input if n}
        graph = onnx.helper.make_graph(
            [node],
            "move",
            [
                onnx.helper.make_tensor_value_info(n, onnx.helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
                for n, v in feeds.items()
            ],
            [onnx.helper.make_empty_tensor_value_info(node.output[0])],
        )
        opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
        out = ReferenceEvaluator(
            onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
        )
        value = np.asarray(out.run(None, feeds)[0])
        values[node.output[0]] = new[node.output[0]] = value
        moved[node.output[0]] = replace(
            known, axis=_moved_axis(node, known, feeds[source].shape, value.shape, label)
        )
    _replace_nodes(model, kept, new)
    return moved


def _moved_axis(
    node: onnx.NodeProto, fmt: QuantParams, before: tuple, after: tuple, label: str
) -> int | None:
    if fmt.axis is None:
        return None
    if node.op_type == "Transpose":
        perm = next(
            (list(a.ints) for a in node.attribute if a.name == "perm"), list(reversed(range(len(before))))
        )
        return perm.index(fmt.axis)
    prefix = int(np.prod(before[: fmt.axis]))
    for axis, size in enumerate(after):
        if size == before[fmt.axis] and int(np.prod(after[:axis])) == prefix:
            return axis
    raise ModelError(
        f"{label}: node {node.name!r} ({node.op_type}) reshapes a per-channel weight across its channel axis"
    )


def _same_format(a: QuantParams, b: QuantParams) -> bool:
    return (
        a.bits == b.bits
        and a.signed == b.signed
        and np.array_equal(a.scale, b.scale)
        and np.array_equal(a.zero_point, b.zero_point)
    )


def _node_format(graph: Graph, node: Node) -> QuantParams:
    """The format a (De)QuantizeLinear node states (its zero point's type, or its input's for a DQ)."""
    zp = graph.const(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
    dtype = graph.tensors[node.inputs[0]].dtype if node.op == Op.DEQUANTIZE else "uint8"
    try:
        return format_of(graph.const(node.inputs[1]), zp, node.attrs.get("axis"), np.dtype(dtype))
    except ModelError as error:
        raise ModelError(
            f"{graph.source or graph.name}: node {node.name!r} ({node.op.value}): {error}"
        ) from None


class _Import:
    """One pass over a QDQ graph: the engine tensor each ONNX tensor is, and its format."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.label = graph.source or graph.name
        self.engine_of: dict[str, str] = {}
        self.formats: dict[str, QuantParams] = {}
        self.nodes: list[Node] = []

    def error(self, node: Node, message: str) -> ModelError:
        return ModelError(f"{self.label}: node {node.name!r} ({node.op.value}): {message}")

    def quantize(self, node: Node) -> None:
        fmt = _node_format(self.graph, node)
        source = self.engine_of.get(node.inputs[0], node.inputs[0])
        q = node.outputs[0]
        known = self.formats.get(source)
        if known is None or _same_format(known, fmt):
            self.formats.setdefault(source, fmt)
            self.engine_of[q] = source
        else:  # DQ -> Q with another format (mixed precision), or a second Q of one tensor
            self.nodes.append(Node(node.name, Op.IDENTITY, (source,), (q,)))
            self.formats[q] = fmt
            self.engine_of[q] = q

    def dequantize(self, node: Node) -> None:
        q, out = node.inputs[0], node.outputs[0]
        fmt = _node_format(self.graph, node)
        if q in self.engine_of:
            source = self.engine_of[q]
            if not _same_format(self.formats[source], fmt):
                raise self.error(
                    node, f"its scale/zero point differ from those of the QuantizeLinear of {q!r}"
                )
            self.engine_of[out] = source
        elif q in self.graph.inputs:
            self.formats[q] = fmt
            self.engine_of[q] = self.engine_of[out] = q
        else:
            raise self.error(node, f"reads {q!r}, which no QuantizeLinear or integer graph input provides")

    def run(self) -> Graph:
        for node in self.graph.nodes:
            if node.op == Op.QUANTIZE:
                self.quantize(node)
            elif node.op == Op.DEQUANTIZE:
                self.dequantize(node)
            else:
                self.nodes.append(node.with_(inputs=tuple(self.engine_of.get(n, n) for n in node.inputs)))
        rename = self._output_names()
        tensors = dict(self.graph.tensors)
        for engine, name in rename.items():  # a graph output keeps its type (a Q's output: integers)
            dtype = self.graph.tensors[name].dtype if name in self.graph.outputs else tensors[engine].dtype
            tensors[name] = replace(tensors[engine], name=name, dtype=dtype)
        for name, fmt in self.formats.items():
            target = rename.get(name, name)
            tensors[target] = replace(tensors[target], quant=fmt)
        nodes = [
            node.with_(
                inputs=tuple(rename.get(n, n) for n in node.inputs),
                outputs=tuple(rename.get(n, n) for n in node.outputs),
            )
            for node in self.nodes
        ]
        for node in nodes:
            self._integer_constants(node, tensors)
            self._inherit_format(node, tensors)
        nodes = [moved for node in nodes for moved in _requantize_after_move(node, tensors)]
        used = {n for node in nodes for n in (*node.inputs, *node.outputs)}
        used |= set(self.graph.inputs) | set(self.graph.outputs)
        return self.graph.with_(nodes=tuple(nodes), tensors={n: t for n, t in tensors.items() if n in used})

    def _output_names(self) -> dict[str, str]:
        """Engine tensors renamed to the graph outputs they are (a DQ's float or a Q's integer output)."""
        rename: dict[str, str] = {}
        for output in self.graph.outputs:
            engine = self.engine_of.get(output, output)
            if engine == output:
                continue
            if engine in self.graph.inputs or engine in rename or engine in self.graph.outputs:
                self.nodes.append(Node(f"{output}::copy", Op.IDENTITY, (engine,), (output,)))
                self.formats[output] = self.formats[engine]
            else:
                rename[engine] = output
        for alias, engine in self.engine_of.items():  # a rewritten op's result takes its ONNX name
            if engine == f"{alias}{FLOAT_SUFFIX}" and engine not in rename:
                rename[engine] = alias
        return rename

    def _integer_constants(self, node: Node, tensors: dict[str, Tensor]) -> None:
        """Weights and biases back to their exact integers (the frontend folded them to floats)."""
        if node.op == Op.BATCHNORM:
            self._batchnorm_scale(node, tensors)
        for name in node.inputs[1:]:
            tensor = tensors.get(name)
            if tensor is not None and tensor.is_const and tensor.quant is not None:
                tensors[name] = exact_integers(tensor, f"{self.label}: node {node.name!r} ({node.op.value})")
        if node.op in (Op.CONV, Op.GEMM, Op.MATMUL) and node.inputs[1] in tensors:
            weight = tensors[node.inputs[1]]
            if weight.is_const and weight.quant is None:
                raise self.error(node, f"its weight {node.inputs[1]!r} has no DequantizeLinear (no format)")

    def _batchnorm_scale(self, node: Node, tensors: dict[str, Tensor]) -> None:
        """An unfolded BatchNormalization's per-channel scale (computed from gamma and var, so without a
        format of its own) gets a symmetric per-channel format: its integer is +-qmax, exact to a part in
        2**(bits-1); the bias is quantized in the accumulator's format when the layer is built."""
        scale = tensors[node.inputs[1]]
        source = tensors[node.inputs[0]].quant
        if scale.quant is not None or source is None:
            return
        fmt = weight_params(scale.data, 8 if source.bits <= 8 else 16, "affine", 0)
        tensors[scale.name] = replace(
            scale, data=quantize_array(scale.data, fmt, narrow=True).astype(np.int64), quant=fmt
        )

    def _inherit_format(self, node: Node, tensors: dict[str, Tensor]) -> None:
        """Data-movement ops without their own Q/DQ keep their input's format."""
        out = node.outputs[0]
        if tensors[out].quant is not None:
            return
        source = tensors[node.inputs[0]].quant
        if node.op in INHERITS_FORMAT and source is not None:
            tensors[out] = replace(tensors[out], quant=source)
        else:
            raise self.error(
                node,
                f"its output {out!r} has no QuantizeLinear: the model leaves this op in float, and nnasim "
                "runs quantized models in integers only",
            )


def _moves_integers(node: Node) -> bool:
    """Ops whose integer kernel only moves or selects values: their output has their input's format
    (an Identity here is a requantization layer: the lowering removed the model's own)."""
    return (node.op in INHERITS_FORMAT and node.op != Op.IDENTITY) or (
        node.op == Op.RESIZE and node.attrs.get("mode") == "nearest"
    )


def _requantize_after_move(node: Node, tensors: dict[str, Tensor]) -> list[Node]:
    """A data-movement op whose model gives its output another format than its input: the op moves
    the input's integers, then a requantization layer takes them to the output's format."""
    out = node.outputs[0]
    source, target = tensors[node.inputs[0]].quant, tensors[out].quant
    if not _moves_integers(node) or source is None or _same_format(source, target):
        return [node]
    moved = f"{out}::moved"
    tensors[moved] = replace(tensors[out], name=moved, dtype="float32", quant=source)
    return [node.with_(outputs=(moved,)), Node(f"{node.name}::requantize", Op.IDENTITY, (moved,), (out,))]


def import_qdq(graph: Graph) -> Graph:
    """Formats from the Q/DQ pairs onto the tensors they quantize; the pairs themselves removed."""
    return _Import(graph).run()
