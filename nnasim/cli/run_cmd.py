"""``nnasim run MODEL --bits 8|16|32 --input FILE|DIR``: fp32 or bit-exact integer inference.

Prints a summary of every output per input, the engine's notes and the most saturated layers;
``--dump DIR`` writes every layer's integer tensor and quantization format as golden data.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
from tqdm import tqdm

from nnasim.cli.common import (
    add_image_arguments,
    add_model_argument,
    add_threads_argument,
    image_preprocessing,
    load_graph,
    use_threads,
)
from nnasim.errors import NnasimWarning, UsageError
from nnasim.io.files import refuse_existing
from nnasim.quant.calibrate import METHODS
from nnasim.quant.params import SCHEMES

REQUANT_RULES = (
    "float32",
    "fixedpoint",
    "single-rounding",
    "xnnpack",
    "pow2",
)  # nnasim.kernels.requant.RULES
TOP_SATURATED = 5


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a model in fp32 or the bit-exact 8/16-bit integer engine",
        description="fp32 or bit-exact integer inference, with optional per-layer golden dumps",
        epilog="Images are resized (bilinear) to the model input, given the model's channels (RGB, BGR "
        "or grayscale for a 1-channel input) and normalised as (pixel - mean) * scale. Defaults: the "
        "model's own preprocessing where nnasim knows it (ultraface: 127, 1/128; mobilefacenet: 127.5, "
        "1/128; arcface-mbf: 127, 1/128; landmarks-68: grayscale 0, 1/256; lffd-head: raw BGR), else "
        "127.5, 1/127.5 RGB. The run prints what it used.",
    )
    add_model_argument(parser)
    parser.add_argument(
        "--bits",
        type=int,
        choices=(8, 16, 32),
        help="8/16: integer engine; 32: fp32; a quantized model runs at its own width, which another "
        "8/16 does not change (default: 8)",
    )
    parser.add_argument(
        "--input",
        metavar="FILE|DIR",
        help="an image, .npy, .npz or a folder (default: one generated standard-normal input, with a note)",
    )
    parser.add_argument(
        "--calib", metavar="DIR", help="calibration inputs (default: generated inputs, with a note)"
    )
    parser.add_argument("--calib-method", choices=METHODS, default="minmax", help="activation range method")
    parser.add_argument(
        "--scheme", choices=SCHEMES, default="pow2", help="power-of-two exponents or scale+zero point"
    )
    parser.add_argument("--per-channel", action="store_true", help="per-output-channel weight formats")
    parser.add_argument(
        "--requant",
        choices=REQUANT_RULES,
        help="requantization rule, named after the runtime it matches (docs/tflite.md): fixedpoint = TFLite "
        "reference kernels, single-rounding = TFLITE_SINGLE_ROUNDING builds, xnnpack = TFLite's default CPU "
        "path, float32 = onnxruntime (default: pow2 for --scheme pow2, fixedpoint for affine and TFLite "
        "files, float32 for QDQ)",
    )
    parser.add_argument(
        "--profile",
        metavar="NAME|FILE",
        help="take the accumulator width (saturating) from this hardware profile (default: 32 bits for "
        "8-bit, 64 for 16-bit)",
    )
    add_image_arguments(parser)
    parser.add_argument("--mean", type=float, help="image preprocessing: subtract this from the pixels")
    parser.add_argument("--std", type=float, help="image preprocessing: then divide by this (with --mean)")
    parser.add_argument("--limit", type=int, metavar="N", help="use only the first N inputs")
    parser.add_argument(
        "--dump", metavar="DIR", help="write per-layer .npz golden tensors and index.json here"
    )
    parser.add_argument("--force", action="store_true", help="replace an existing --dump folder")
    add_threads_argument(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from nnasim.engine.dump import DumpWriter
    from nnasim.engine.inputs import load_feeds
    from nnasim.engine.session import build_session

    _check_options(args)
    use_threads(args)
    graph = load_graph(args)
    preprocess = image_preprocessing(args, args.model)
    if args.mean is not None:
        preprocess = preprocess.with_options(normalize=(args.mean, 1.0 / args.std))
    feeds = _inputs(args, graph, preprocess)
    calib = [feed for _, feed in load_feeds(args.calib, graph, preprocess)] if args.calib else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        session = build_session(
            graph,
            args.bits,
            scheme=args.scheme,
            per_channel=args.per_channel,
            requant=args.requant,
            calib=calib,
            calib_method=args.calib_method,
            acc_bits=_accumulator_bits(args),
        )
    for warning in caught:  # said once on stderr, so left out of the notes printed below
        warnings.warn(warning.message, stacklevel=1)
    said = {str(warning.message) for warning in caught}
    integer = args.bits != 32
    header = {"model": str(args.model), "bits": session.bits if integer else 32}
    if integer:
        header |= {"rule": session.rule, **_formats(args, graph, session)}
    dump = DumpWriter(args.dump, args.force, header) if args.dump else None
    lines = []
    try:
        for name, feed in tqdm(feeds, desc="run", unit="input", disable=None):
            if dump is None:
                outputs = session.run(feed)
            else:
                tensors = session.run_integers(feed, keep_all=True) if integer else session.run_layers(feed)
                dump.add(name, session.graph, tensors, integer)
                outputs = {n: _as_float(session, n, tensors[n], integer) for n in session.graph.outputs}
            lines += _summary(name, outputs)
    except BaseException as error:
        if dump is not None:
            dump.abort(error)
        raise
    if dump is not None:
        dump.close(dict(session.saturations))
    print("\n".join(lines + _input_lines(args, graph, preprocess) + _engine_lines(args, session, said)))
    return 0


def _inputs(args: argparse.Namespace, graph, preprocess) -> list[tuple[str, dict]]:
    """The ``--input`` files, or one generated input (said on stderr) when none is given."""
    from nnasim.engine.inputs import load_feeds
    from nnasim.engine.session import generated_feeds

    if args.input:
        return load_feeds(args.input, graph, preprocess)[: args.limit]
    warnings.warn(
        "no --input given: running one generated standard-normal input", NnasimWarning, stacklevel=2
    )
    return [("generated", generated_feeds(graph, count=1, seed=1)[0])]


def _check_options(args: argparse.Namespace) -> None:
    if (args.mean is None) != (args.std is None):
        raise UsageError("--mean and --std go together")
    if args.mean is not None and args.normalize:
        raise UsageError("--normalize and --mean/--std say the same thing; give one of them")
    if args.std is not None and args.std <= 0:
        raise UsageError(f"--std must be positive, got {args.std}")
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {args.limit}")
    if args.dump:
        refuse_existing(Path(args.dump), args.force)


def _formats(args: argparse.Namespace, graph, session) -> dict:
    """The dump header's scheme and per-channel flag: a quantized model's own, else the options'."""
    from nnasim.quant.qdq import has_own_weights, has_qdq

    if not has_qdq(graph) and not has_own_weights(graph):
        return {"scheme": args.scheme, "per_channel": args.per_channel}
    constants = [t.quant for t in session.graph.tensors.values() if t.is_const and t.quant is not None]
    scheme = "qdq" if has_qdq(graph) else "affine"  # a dynamic model: calibrated affine activations
    return {"scheme": scheme, "per_channel": any(q.axis is not None for q in constants)}


def _accumulator_bits(args: argparse.Namespace) -> int | None:
    if not args.profile or args.bits == 32:
        return None
    from nnasim.cost.profile import load_profile

    return load_profile(args.profile).accumulator_bits.get(args.bits)


def _as_float(session, name: str, value: np.ndarray, integer: bool) -> np.ndarray:
    return session.dequantize(name, value) if integer else value


def _summary(input_name: str, outputs: dict[str, np.ndarray]) -> list[str]:
    lines = [f"{input_name}:"]
    for name, value in outputs.items():
        lines.append(
            f"  {name}: shape {list(value.shape)}  min {value.min():.6g}  max {value.max():.6g}  "
            f"mean {value.mean():.6g}"
        )
    return lines


def _input_lines(args: argparse.Namespace, graph, preprocess) -> list[str]:
    """What images were turned into (arrays are fed as they are)."""
    from nnasim.engine.inputs import input_files
    from nnasim.io.data import IMAGE_EXTENSIONS

    if not args.input or not any(p.suffix.lower() in IMAGE_EXTENSIONS for p in input_files(args.input)):
        return []
    name = graph.inputs[0]
    return [f"image input {name!r}: {preprocess.describe(graph.shape(name)[1])}"]


def _engine_lines(args: argparse.Namespace, session, said: set[str]) -> list[str]:
    lines = [f"notes: {note}" for note in session.notes if note not in said]
    worst = sorted(((n, c) for n, c in session.saturations.items() if c), key=lambda item: -item[1])
    if worst:
        listed = ", ".join(f"{n} ({c})" for n, c in worst[:TOP_SATURATED])
        lines.append(f"saturated values: {sum(c for _, c in worst)} in {len(worst)} layers; most: {listed}")
    elif args.bits != 32:
        lines.append("saturated values: none")
    return lines
