"""Network inputs from files: images (decoded with Pillow, resized, normalised) and .npy/.npz arrays.

A folder contributes every image and array file in it (recursively, sorted by relative path).
``.npy`` holds the input of a single-input model (with or without the batch axis); ``.npz`` holds
one array per input name (or one array for a single-input model).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnasim.errors import DataError
from nnasim.io.data import IMAGE_EXTENSIONS, Preprocess, decode_rgb, files_under
from nnasim.ir import Graph

ARRAY_EXTENSIONS = (".npy", ".npz")

Feed = dict[str, np.ndarray]


def input_files(path: str | Path) -> list[Path]:
    """``path`` itself, or the image/array files under the folder ``path``."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(f"input {path} does not exist")
    files = files_under(path, IMAGE_EXTENSIONS + ARRAY_EXTENSIONS)
    if not files:
        raise DataError(f"no images or .npy/.npz files in {path}")
    return files


def read_feed(path: Path, graph: Graph, preprocess: Preprocess) -> Feed:
    """The feed dict one file gives, checked against the graph's input shapes."""
    suffix = path.suffix.lower()
    if suffix == ".npy":
        feed = {_single_input(graph, path): _load_array(path)}
    elif suffix == ".npz":
        feed = _read_npz(path, graph)
    elif suffix in IMAGE_EXTENSIONS:
        name = _single_input(graph, path)
        feed = {name: preprocess(decode_rgb(path), graph.shape(name))}
    else:
        raise DataError(f"{path}: not an image or .npy/.npz file")
    feed = {name: _fit_shape(path, name, value, graph.shape(name)) for name, value in feed.items()}
    return {name: _as_input_type(path, graph, name, value) for name, value in feed.items()}


def load_feeds(path: str | Path, graph: Graph, preprocess: Preprocess) -> list[tuple[str, Feed]]:
    """(file name, feed) for every input file at ``path``."""
    return [(p.name, read_feed(p, graph, preprocess)) for p in input_files(path)]


def _as_input_type(path: Path, graph: Graph, name: str, value: np.ndarray) -> np.ndarray:
    """Integer arrays for an integer input (a quantized model's) are fed as they are; images and float
    arrays are quantized with the model's own input format; float inputs take floats."""
    if np.dtype(graph.tensors[name].dtype).kind not in "iu":
        return value.astype(np.float32)
    if value.dtype.kind in "iu":
        return value
    from nnasim.quant.params import quantize_array
    from nnasim.quant.qdq import has_qdq, import_qdq

    fmt = import_qdq(graph).tensors[name].quant if has_qdq(graph) else None
    if fmt is None:
        raise DataError(
            f"{path}: input {name!r} is {graph.tensors[name].dtype} and the model gives it no scale "
            "and zero point: give an integer array (.npy/.npz)"
        )
    return quantize_array(value, fmt).astype(graph.tensors[name].dtype)


def _single_input(graph: Graph, path: Path) -> str:
    if len(graph.inputs) != 1:
        raise DataError(
            f"{path}: the model has inputs {list(graph.inputs)}; give a .npz with one array per input"
        )
    return graph.inputs[0]


def _load_array(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: cannot read the array: {error}") from None


def _read_npz(path: Path, graph: Graph) -> Feed:
    arrays = _load_array(path)
    names = list(arrays.keys())
    if len(names) == 1 and len(graph.inputs) == 1:
        return {graph.inputs[0]: arrays[names[0]]}
    missing = [n for n in graph.inputs if n not in names]
    if missing:
        raise DataError(f"{path}: no array for input(s) {missing}; it holds {names}")
    return {n: arrays[n] for n in graph.inputs}


def _fit_shape(path: Path, name: str, value: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Accept the input with or without its batch axis of 1; anything else is a DataError."""
    value = np.asarray(value)
    value = value if value.dtype.kind in "iu" else value.astype(np.float32)
    if value.shape == shape[1:] and shape[0] == 1:
        value = value[None]
    if value.shape != shape:
        raise DataError(
            f"{path}: input {name!r} has shape {list(value.shape)}, the model expects {list(shape)}"
        )
    return value
