"""``nnasim cascade --detector MODEL --verifier MODEL --data DIR -o REPORT_DIR``."""

from __future__ import annotations

import argparse
from pathlib import Path

from nnasim.analysis.cascade import CascadeRequest, cascade
from nnasim.analysis.compare import parse_configs
from nnasim.cli.common import (
    add_image_arguments,
    add_workers_argument,
    check_threshold,
    check_workers,
    image_preprocessing,
    use_threads,
)
from nnasim.cli.compare_cmd import add_quant_arguments, check_limit
from nnasim.errors import UsageError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "cascade",
        help="quantization impact on a detector -> verifier cascade (every bit-width combination)",
        description="Detector at each bit width finds and crops faces; verifier at each bit width embeds "
        "them; every combination is compared with the all-fp32 cascade.",
    )
    parser.add_argument("--detector", required=True, help="face detector: ONNX file or built-in name")
    parser.add_argument("--verifier", required=True, help="face embedder: ONNX file or built-in name")
    parser.add_argument(
        "--data", required=True, metavar="DIR", help="folder of photos (searched recursively)"
    )
    add_quant_arguments(parser, ("--bits-detector", "--bits-verifier"))
    parser.add_argument(
        "--calib-verifier", metavar="DIR", help="verifier calibration crops (default: fp32 faces)"
    )
    parser.add_argument("--identities", metavar="CSV", help="file,person rows (default: from file names)")
    parser.add_argument(
        "--score-threshold", type=float, help="detector operating threshold (default: the model's)"
    )
    parser.add_argument(
        "--margin", type=float, default=0.2, help="crop enlargement around the box (default 0.2)"
    )
    add_image_arguments(parser, "detector", "the detector")
    add_image_arguments(parser, "verifier", "the verifier")
    add_workers_argument(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_limit(args.limit)
    check_threshold(args.score_threshold)
    use_threads(args)
    if not 0 <= args.margin <= 3:
        raise UsageError(f"--margin {args.margin}: expected a value between 0 and 3")
    request = CascadeRequest(
        detector=args.detector,
        verifier=args.verifier,
        detector_configs=tuple(
            parse_configs(args.bits_detector, args.scheme, args.per_channel, "--bits-detector")
        ),
        verifier_configs=tuple(
            parse_configs(args.bits_verifier, args.scheme, args.per_channel, "--bits-verifier")
        ),
        data=Path(args.data),
        out=Path(args.output),
        limit=args.limit,
        calib=Path(args.calib) if args.calib else None,
        calib_verifier=Path(args.calib_verifier) if args.calib_verifier else None,
        calib_method=args.calib_method,
        identities=Path(args.identities) if args.identities else None,
        score_threshold=args.score_threshold,
        margin=args.margin,
        force=args.force,
        workers=check_workers(args.workers),
        detector_preprocess=image_preprocessing(args, args.detector, "detector"),
        verifier_preprocess=image_preprocessing(args, args.verifier, "verifier"),
    )
    from nnasim.analysis.summary import cascade_headline

    result = cascade(request)
    print("\n".join(cascade_headline(result)))
    return 0
