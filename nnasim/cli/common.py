"""Options and helpers shared by the sub-commands."""

from __future__ import annotations

import argparse
import importlib.util
import math
from pathlib import Path

from nnasim.errors import UsageError
from nnasim.ir import Graph


def add_model_argument(parser: argparse.ArgumentParser, name: str = "model") -> None:
    parser.add_argument(
        name, help="an ONNX file or a built-in model name (see `nnasim zoo list`), e.g. lffd@320x240"
    )
    parser.add_argument(
        "--input-shape",
        metavar="SHAPE",
        help="fix dynamic input dimensions: 1,3,H,W (one input) or NAME=1,3,H,W[;NAME=...]",
    )


def check_finite_options(args: argparse.Namespace, *names: str) -> None:
    """Refuse NaN or infinity in numeric options (argparse's ``float`` accepts ``nan`` and ``1e400``)."""
    for name in names:
        value = getattr(args, name, None)
        if value is not None and not math.isfinite(value):
            raise UsageError(f"--{name.replace('_', '-')} {value}: must be a finite number")


def check_threshold(value: float | None) -> None:
    if value is not None and not (math.isfinite(value) and 0 <= value <= 1):
        raise UsageError(f"--score-threshold {value}: must be a number between 0 and 1")


MAX_DIM = 2**31 - 1  # what ONNX's int64 dims and the engine's int32 indices can hold


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="threads for the integer engine's kernels (default: every core; BLAS always uses one)",
    )


def add_workers_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="processes that run the images in parallel, each with one engine thread (for data sets)",
    )


def check_workers(workers: int) -> int:
    if workers < 1:
        raise UsageError(f"--workers {workers}: must be at least 1")
    return workers


def use_threads(args: argparse.Namespace) -> None:
    """Apply ``--threads`` (one thread count for Numba kernels and product blocks)."""
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads {args.threads}: must be at least 1")
    from nnasim.kernels.parallel import set_threads

    set_threads(args.threads)


def parse_input_shape(text: str | None):
    """``1,3,224,224`` -> a tuple; ``a=1,3,8,8;b=1,4`` -> a dict by input name."""
    if not text:
        return None
    try:
        if "=" not in text:
            shapes = {None: tuple(int(v) for v in text.split(","))}
        else:
            shapes = {}
            for item in text.split(";"):
                name, dims = item.split("=", 1)
                shapes[name.strip()] = tuple(int(v) for v in dims.split(","))
    except ValueError:
        raise UsageError(
            f"--input-shape {text!r}: expected integers like 1,3,224,224 or NAME=1,3,224,224"
        ) from None
    for shape in shapes.values():
        if any(abs(size) > MAX_DIM for size in shape):
            raise UsageError(f"--input-shape {text!r}: a dimension is too large (at most {MAX_DIM:,})")
    return shapes.get(None, shapes)


def load_graph(args: argparse.Namespace, spec: str | None = None) -> Graph:
    """The lowered graph of the model named on the command line (QDQ files keep their own formats)."""
    return _cached_graph(spec or args.model, parse_input_shape(getattr(args, "input_shape", None)), False)


def load_engine_graph(args: argparse.Namespace) -> Graph:
    """The lowered graph as the engines see it: a QDQ model's Q/DQ pairs become its tensors' formats."""
    return _cached_graph(args.model, parse_input_shape(getattr(args, "input_shape", None)), True)


# The code a lowered graph depends on: a change in any of these folders invalidates cached graphs.
_LOWERING_PACKAGES = ("nnasim.frontend", "nnasim.passes", "nnasim.ir", "nnasim.quant", "nnasim.models")


def _cached_graph(spec: str, input_shape, engine: bool) -> Graph:
    """Load through the user cache (``nnasim.io.cache``): a model file or zoo name already lowered
    by this code is unpickled without importing onnx or parsing the file again."""
    from nnasim.io import cache

    path = Path(spec)
    source = cache.file_stamp(path) if path.is_file() else ("zoo", spec)
    key = cache.key_of(source, input_shape, engine, cache.code_stamp(_package_folders()))
    graph = cache.load(key)
    if isinstance(graph, Graph):
        return graph
    from nnasim.quant.qdq import has_qdq, import_qdq, load_any

    graph = load_any(spec, input_shape)
    if engine and has_qdq(graph):
        graph = import_qdq(graph)
    cache.store(key, graph)
    return graph


def _package_folders() -> list[Path]:
    folders = []
    for name in _LOWERING_PACKAGES:
        found = importlib.util.find_spec(name)
        folders += [Path(location) for location in found.submodule_search_locations]
    return folders


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    from nnasim.report.tables import FORMATS

    parser.add_argument("--format", choices=FORMATS, default="table", help="output format")
    parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    parser.add_argument("--force", action="store_true", help="overwrite an existing output")


def emit(text: str, args: argparse.Namespace) -> None:
    """Print ``text`` or write it atomically to ``--output``."""
    from nnasim.io.files import write_text

    if args.output:
        write_text(args.output, text, force=args.force)
    else:
        print(text, end="")


def add_image_arguments(parser: argparse.ArgumentParser, prefix: str = "", what: str = "") -> None:
    """``--channel-order`` and ``--normalize`` (with ``prefix``, e.g. ``--detector-normalize``)."""
    flag = f"--{prefix}-" if prefix else "--"
    parser.add_argument(
        f"{flag}channel-order",
        choices=("rgb", "bgr"),
        help=f"channel order of {what or 'the model'}'s 3-channel image input (default: the model's own, "
        "RGB unless nnasim knows otherwise; 1-channel models get grayscale)",
    )
    parser.add_argument(
        f"{flag}normalize",
        metavar="MEAN,SCALE|raw|unit|signed",
        help=f"{what or 'model'} input = (pixel - MEAN) * SCALE; raw = 0..255, unit = 0..1, signed = -1..1 "
        "(default: the model's own preprocessing by file name, else signed)",
    )


def image_preprocessing(args: argparse.Namespace, model: str, prefix: str = ""):
    """The ``Preprocess`` for ``model`` from its known defaults and the ``--channel-order``/``--normalize``
    options (named with ``prefix``)."""
    from nnasim.io.data import parse_normalize, preprocessing_for

    key = f"{prefix}_" if prefix else ""
    normalize = getattr(args, f"{key}normalize", None)
    mean, scale = parse_normalize(normalize) if normalize else (None, None)
    return preprocessing_for(model, mean, scale, getattr(args, f"{key}channel_order", None))
