"""``nnasim mixed MODEL --hw PROFILE --data DIR -o REPORT_DIR [--export OUT.onnx]``: per-layer widths."""

from __future__ import annotations

import argparse
from pathlib import Path

from nnasim.cli.common import add_image_arguments, add_model_argument, image_preprocessing, load_graph
from nnasim.cli.compare_cmd import check_limit
from nnasim.errors import UsageError
from nnasim.kernels.requant import RULES
from nnasim.quant.params import SCHEMES


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "mixed",
        help="mixed-precision search: per-layer widths, Pareto front of SQNR against MB and inferences/s",
        description="Measure each layer's sensitivity, then lower layers greedily (each step measured on "
        "the data); write report.md, report.json and mixed_front.png, and optionally the chosen "
        "assignment as a QDQ ONNX model.",
    )
    add_model_argument(parser)
    parser.add_argument("--hw", required=True, help="a profile name (see `nnasim hw list`) or a YAML file")
    parser.add_argument(
        "--data", required=True, metavar="DIR", help="folder of images (searched recursively)"
    )
    parser.add_argument("--calib", metavar="DIR", help="calibration images (default: the data itself)")
    parser.add_argument("--limit", type=int, metavar="N", help="use only the first N images (sorted by name)")
    parser.add_argument(
        "--widths",
        default="16,16x8,8pc",
        help="the ladder of layer widths, widest first, from 8, 8pc, 16, 16pc, 16x8 (default 16,16x8,8pc)",
    )
    parser.add_argument("--scheme", choices=SCHEMES, default="pow2", help="fixed-point scheme (default pow2)")
    parser.add_argument("--requant", choices=RULES, help="requantization rule (default: by scheme)")
    parser.add_argument(
        "--min-sqnr-fraction",
        type=float,
        default=0.9,
        metavar="F",
        help="choose the cheapest point with at least F x the widest network's SQNR in dB (default 0.9)",
    )
    add_image_arguments(parser)
    parser.add_argument("-o", "--output", required=True, metavar="REPORT_DIR", help="report folder to write")
    parser.add_argument(
        "--export", metavar="OUT.onnx", help="write the chosen assignment as a QDQ ONNX model"
    )
    parser.add_argument("--force", action="store_true", help="replace an existing report folder or export")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from nnasim.analysis.compare import input_feeds
    from nnasim.analysis.mixed import quantized_graph, report_sections, search
    from nnasim.cost import load_profile
    from nnasim.io.data import load_images
    from nnasim.io.files import atomic_file, refuse_existing
    from nnasim.quant.export_qdq import export_qdq
    from nnasim.quant.qdq import has_qdq
    from nnasim.report.document import write_report

    check_limit(args.limit)
    if not 0 < args.min_sqnr_fraction <= 1:
        raise UsageError(f"--min-sqnr-fraction {args.min_sqnr_fraction}: must be in (0, 1]")
    refuse_existing(Path(args.output), args.force)
    if args.export:
        refuse_existing(Path(args.export), args.force)
    hw = load_profile(args.hw)
    graph = load_graph(args)
    if has_qdq(graph):
        raise UsageError(f"{args.model}: a QDQ model has its own formats; give the float model to search")
    preprocess = image_preprocessing(args, args.model)
    images = load_images(args.data, args.limit)
    feeds = input_feeds(graph, images, preprocess)
    calib = input_feeds(graph, load_images(args.calib), preprocess) if args.calib else feeds
    ladder = tuple(w.strip() for w in args.widths.split(","))
    result = search(graph, feeds, hw, calib, args.scheme, args.requant, ladder, args.min_sqnr_fraction)
    title = f"nnasim mixed: {Path(args.model).name} on {hw.name}"
    header = {
        "model": args.model,
        "hw": hw.name,
        "data": str(args.data),
        "images": len(images.samples),
        "calibration": f"{args.calib or 'the data itself'} (minmax, {len(calib)} images)",
        "scheme": args.scheme,
        "widths": list(result.ladder),
        "preprocessing": preprocess.source,
    }
    write_report(args.output, args.force, title, header, report_sections(result, title))
    chosen, widest = result.chosen, result.uniform(result.ladder[0])
    print(
        f"chosen: {chosen.sqnr_db:.2f} dB ({chosen.sqnr_db / widest.sqnr_db:.0%} of all-{result.ladder[0]}), "
        f"{chosen.megabytes:.3f} MB/inference ({chosen.megabytes / widest.megabytes:.0%}), "
        f"{chosen.inferences_per_second:.0f} inferences/s"
    )
    if args.export:
        with atomic_file(args.export, args.force) as tmp:
            export_qdq(quantized_graph(graph, result, chosen, args.scheme, args.requant), tmp)
    return 0
