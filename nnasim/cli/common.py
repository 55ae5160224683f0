"""Options and helpers shared by the sub-commands."""

from __future__ import annotations

import argparse
import math

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
    from nnasim.quant.qdq import load_any

    return load_any(spec or args.model, parse_input_shape(getattr(args, "input_shape", None)))


def load_engine_graph(args: argparse.Namespace) -> Graph:
    """The lowered graph as the engines see it: a QDQ model's Q/DQ pairs become its tensors' formats."""
    from nnasim.quant.qdq import has_qdq, import_qdq

    graph = load_graph(args)
    return import_qdq(graph) if has_qdq(graph) else graph


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
