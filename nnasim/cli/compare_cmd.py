"""``nnasim compare MODEL --task classify|detect|embed --data DIR -o REPORT_DIR``."""

from __future__ import annotations

import argparse
from pathlib import Path

from nnasim.analysis.compare import CALIB_METHODS, SCHEMES, TASKS, CompareRequest, compare, parse_configs
from nnasim.cli.common import (
    add_image_arguments,
    add_model_argument,
    add_threads_argument,
    add_workers_argument,
    check_threshold,
    check_workers,
    image_preprocessing,
    parse_input_shape,
    use_threads,
)
from nnasim.errors import UsageError


def add_quant_arguments(parser: argparse.ArgumentParser, bits_flags: tuple[str, ...] = ("--bits",)) -> None:
    """Bit widths, scheme, per-channel and calibration options (shared with ``cascade``)."""
    for flag in bits_flags:
        parser.add_argument(
            flag,
            default="32,16,8",
            help="comma-separated widths of 32, 16, 8; 8pc/16pc for per-channel weights (default 32,16,8)",
        )
    parser.add_argument("--scheme", choices=SCHEMES, default="pow2", help="fixed-point scheme (default pow2)")
    parser.add_argument("--per-channel", action="store_true", help="per-channel weight quantization")
    parser.add_argument("--calib", metavar="DIR", help="calibration images (default: the data itself)")
    parser.add_argument("--calib-method", choices=CALIB_METHODS, default="minmax", help="range calibration")
    parser.add_argument("--limit", type=int, metavar="N", help="use only the first N images (sorted by name)")
    parser.add_argument("-o", "--output", required=True, metavar="REPORT_DIR", help="report folder to write")
    parser.add_argument("--force", action="store_true", help="replace an existing report folder")
    add_threads_argument(parser)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="quantization impact: fp32 vs fixed point on images (per-layer SQNR, task metrics)",
        description="Run the same images through fp32 and each bit width; write report.md, report.json "
        "and PNG figures.",
    )
    add_model_argument(parser)
    parser.add_argument("--task", choices=TASKS, required=True, help="what the model's output means")
    parser.add_argument(
        "--data", required=True, metavar="DIR", help="folder of images (searched recursively)"
    )
    add_quant_arguments(parser)
    parser.add_argument(
        "--labels",
        metavar="CSV",
        help="classify: file,label rows (default: each image's folder name); detect: file,x1,y1,x2,y2 boxes",
    )
    parser.add_argument(
        "--identities", metavar="CSV", help="embed: file,person rows (default: from file names)"
    )
    parser.add_argument(
        "--score-threshold", type=float, help="detect: operating threshold (default: the model's)"
    )
    add_image_arguments(parser)
    add_workers_argument(parser)
    parser.set_defaults(run=run)


def check_limit(limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise UsageError(f"--limit {limit}: must be at least 1")


def run(args: argparse.Namespace) -> int:
    check_limit(args.limit)
    check_threshold(args.score_threshold)
    use_threads(args)
    request = CompareRequest(
        model=args.model,
        task=args.task,
        data=Path(args.data),
        out=Path(args.output),
        configs=tuple(parse_configs(args.bits, args.scheme, args.per_channel)),
        limit=args.limit,
        calib=Path(args.calib) if args.calib else None,
        calib_method=args.calib_method,
        labels=Path(args.labels) if args.labels else None,
        identities=Path(args.identities) if args.identities else None,
        score_threshold=args.score_threshold,
        preprocess=image_preprocessing(args, args.model),
        input_shape=parse_input_shape(args.input_shape),
        force=args.force,
        workers=check_workers(args.workers),
    )
    from nnasim.analysis.summary import compare_headline

    result = compare(request)
    print("\n".join(compare_headline(result)))
    return 0
