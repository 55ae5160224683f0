"""ONNX or TFLite -> IR: read a model (file, zoo name or ModelProto), check it, fix shapes, convert."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import onnx

from nnasim.frontend.importer import build_graph, check_memory, check_structure
from nnasim.frontend.source import (
    InputShape,
    check_and_infer,
    default_opset,
    display_name,
    fix_input_shapes,
    read_model,
)
from nnasim.ir import Graph, check_graph


def load_model(spec: str | Path | onnx.ModelProto, input_shape: InputShape = None) -> Graph:
    """Import ``spec`` into the IR as it is (no passes run), with static shapes everywhere."""
    if _is_tflite(spec):
        from nnasim.frontend.tflite import load_tflite

        return load_tflite(spec, input_shape, lowered=False)
    model, label = read_model(spec)
    model = _copy_if_shared(model, spec)
    opset = default_opset(model, label)
    check_structure(model, label)
    fix_input_shapes(model, label, input_shape)
    model = check_and_infer(model, label)
    check_memory(model, label)
    graph = replace(build_graph(model, label, opset), name=display_name(spec))  # tables show what was typed
    check_graph(graph)
    return graph


def load_lowered(spec: str | Path | onnx.ModelProto, input_shape: InputShape = None) -> Graph:
    """Import ``spec`` and run the standard lowering pipeline (the graph both engines read)."""
    from nnasim.passes import lower

    if _is_tflite(spec):
        from nnasim.frontend.tflite import load_tflite

        return load_tflite(spec, input_shape)
    return lower(load_model(spec, input_shape))


def _is_tflite(spec) -> bool:
    from nnasim.frontend.tflite_reader import is_tflite_file

    return not isinstance(spec, onnx.ModelProto) and is_tflite_file(spec)


def _copy_if_shared(model: onnx.ModelProto, spec) -> onnx.ModelProto:
    """Never modify a ModelProto the caller owns: fixing shapes edits it in place."""
    if not isinstance(spec, onnx.ModelProto):
        return model
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    return copy
