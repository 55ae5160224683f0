"""Turn what the user names (a path, a zoo name, a ModelProto) into a checked, shape-inferred ModelProto."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from nnasim.errors import ModelError, UsageError

MIN_OPSET = 7
InputShape = Sequence[int] | dict[str, Sequence[int]] | None


def read_model(spec: str | Path | onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
    """Return the ModelProto and a label naming where it came from (for error messages)."""
    if isinstance(spec, onnx.ModelProto):
        return spec, spec.graph.name or "<model>"
    path = Path(spec)
    if not path.exists():
        if path.suffix == ".onnx" or "/" in str(spec):
            raise ModelError(f"{spec}: no such file")
        from nnasim.models import zoo

        path = zoo.resolve(str(spec))  # raises UsageError listing the zoo for an unknown name
    return _parse_file(path), str(path)


def display_name(spec: str | Path | onnx.ModelProto) -> str:
    """The model's name as the user typed it: a zoo name (``lffd@320x240``) or the file's name."""
    if isinstance(spec, onnx.ModelProto):
        return spec.graph.name or "<model>"
    path = Path(spec)
    return path.name if path.exists() or path.suffix else str(spec)


def _parse_file(path: Path) -> onnx.ModelProto:
    if path.is_dir():
        raise ModelError(f"{path}: is a folder, not an ONNX file")
    data = path.read_bytes()
    if not data:
        raise ModelError(f"{path}: empty file, not an ONNX model")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as error:
        raise ModelError(f"{path}: not a valid ONNX file (protobuf: {error})") from None
    if not model.HasField("graph") or not model.graph.node:
        raise ModelError(f"{path}: not an ONNX model (no graph or no nodes)")
    return model


def default_opset(model: onnx.ModelProto, label: str) -> int:
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not versions:
        raise ModelError(f"{label}: opset_import has no default ('ai.onnx') domain")
    if versions[0] < MIN_OPSET:
        raise ModelError(f"{label}: opset {versions[0]} is older than the oldest supported, {MIN_OPSET}")
    return versions[0]


def fix_input_shapes(model: onnx.ModelProto, label: str, input_shape: InputShape) -> None:
    """Set every graph input's shape to a static one: from ``input_shape`` or the file."""
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    wanted = _wanted_shapes(inputs, label, input_shape)
    for value in inputs:
        dims = value.type.tensor_type.shape.dim
        shape = wanted.get(value.name)
        if shape is not None:
            if len(dims) and len(shape) != len(dims):
                raise UsageError(
                    f"{label}: input {value.name!r} has rank {len(dims)}, --input-shape gives {shape}"
                )
            value.type.tensor_type.shape.Clear()
            for size in shape:
                value.type.tensor_type.shape.dim.add().dim_value = int(size)
            continue
        if not value.type.tensor_type.HasField("shape"):
            raise ModelError(f"{label}: input {value.name!r} has no shape; give one with --input-shape")
        for dim in dims:
            if not dim.HasField("dim_value") or dim.dim_value <= 0:
                shown = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]
                raise ModelError(
                    f"{label}: input {value.name!r} has dynamic or non-positive shape {shown}; "
                    "fix it with --input-shape, e.g. --input-shape 1,3,224,224"
                )


def _wanted_shapes(inputs: list, label: str, input_shape: InputShape) -> dict[str, tuple[int, ...]]:
    if input_shape is None:
        return {}
    if isinstance(input_shape, dict):
        unknown = set(input_shape) - {i.name for i in inputs}
        if unknown:
            raise UsageError(f"{label}: --input-shape names unknown inputs {sorted(unknown)}")
        shapes = {name: tuple(shape) for name, shape in input_shape.items()}
    elif len(inputs) != 1:
        raise UsageError(f"{label}: the model has {len(inputs)} inputs; give --input-shape as NAME=1,3,H,W")
    else:
        shapes = {inputs[0].name: tuple(input_shape)}
    for name, shape in shapes.items():
        if not shape or any(int(s) <= 0 for s in shape):
            raise UsageError(f"{label}: --input-shape for {name!r} must be positive integers, got {shape}")
    return shapes


def check_and_infer(model: onnx.ModelProto, label: str) -> onnx.ModelProto:
    """Run the onnx checker and strict shape inference, naming the file on failure.

    A lenient inference runs first: it fills graph outputs exported without a shape,
    which the checker would otherwise reject.
    """
    _forget_unknown_dims(model)
    if any(not o.type.tensor_type.HasField("shape") for o in model.graph.output):
        with contextlib.suppress(onnx.shape_inference.InferenceError, ValueError, RuntimeError):
            model = onnx.shape_inference.infer_shapes(model)  # else the checker below says what is wrong
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError) as error:
        raise ModelError(f"{label}: fails the ONNX checker: {_first_line(error)}") from None
    return check_and_infer_shapes(model, label)


def _forget_unknown_dims(model: onnx.ModelProto) -> None:
    """Clear intermediate and output dimensions a converter wrote as ``-1`` or 0 (Paddle2ONNX does):
    strict shape inference would report them as conflicts with the static sizes it infers."""
    for value in [*model.graph.value_info, *model.graph.output]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.HasField("dim_value") and dim.dim_value <= 0:
                dim.Clear()


def check_and_infer_shapes(model: onnx.ModelProto, label: str) -> onnx.ModelProto:
    """Strict shape inference, naming the file on failure."""
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except (onnx.shape_inference.InferenceError, ValueError, RuntimeError) as error:
        raise ModelError(f"{label}: shape inference failed: {_first_line(error)}") from None


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return " ".join(lines[:2])[:300] if lines else type(error).__name__
