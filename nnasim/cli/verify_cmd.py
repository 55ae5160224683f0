"""``nnasim verify --pairs pairs.txt --images DIR -o OUT``: the LFW protocol at every width combination."""

from __future__ import annotations

import argparse
from pathlib import Path

from nnasim.analysis.compare import CALIB_METHODS, SCHEMES, QuantConfig, parse_configs
from nnasim.errors import UsageError

DEFAULT_MODELS = {
    "detector": "ultraface-rfb-320.onnx",
    "landmarks": "landmarks-68.onnx",
    "verifier": "arcface-mbf-512.onnx",
}
DEFAULT_COMBOS = "32/32,16/16,8pc/8pc,8/8,8/32,32/8,8/16,32/8pc"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="face verification on LFW pairs: detector -> landmarks -> aligned crop -> embedder, every width",
        description="Run LFW View 2 (pairs.txt) through the cascade at each detector/verifier width "
        "combination; write OUT/report (report.md, report.json, ROC, agreement, heatmaps) and cache the "
        "embeddings in OUT/cache.",
    )
    parser.add_argument("--pairs", required=True, metavar="FILE", help="LFW pairs.txt (official format)")
    parser.add_argument(
        "--images",
        metavar="DIR",
        help="the LFW photos, flat or one folder per person (default: beside --pairs)",
    )
    found = "default: models/{} in the nearest folder above --pairs that has it"
    parser.add_argument("--detector", help="face detector (" + found.format(DEFAULT_MODELS["detector"]) + ")")
    parser.add_argument(
        "--landmarks",
        help="68-landmark model, 64x64 gray (" + found.format(DEFAULT_MODELS["landmarks"]) + ")",
    )
    parser.add_argument(
        "--verifier",
        help="ArcFace-aligned 112x112 embedder (" + found.format(DEFAULT_MODELS["verifier"]) + ")",
    )
    parser.add_argument(
        "--configs",
        default=DEFAULT_COMBOS,
        metavar="DET/VER,...",
        help="detector/verifier width combinations, widths 32, 16, 8 and 16pc/8pc for per-channel weights; "
        f"32/32 is always first (default {DEFAULT_COMBOS})",
    )
    parser.add_argument("--scheme", choices=SCHEMES, default="pow2", help="fixed-point scheme (default pow2)")
    parser.add_argument(
        "--calib-count", type=int, default=32, metavar="N", help="calibration photos (default 32)"
    )
    parser.add_argument("--calib-method", choices=CALIB_METHODS, default="minmax", help="range calibration")
    parser.add_argument("--folds", metavar="1,2,...", help="evaluate only these folds (default: all)")
    parser.add_argument(
        "--limit", type=int, metavar="N", help="only the first N same and N different pairs of each fold"
    )
    parser.add_argument("--heatmap-people", type=int, default=6, metavar="N", help="people in the heatmaps")
    parser.add_argument(
        "--workers", type=int, metavar="N", help="local worker processes (default: all cores)"
    )
    parser.add_argument(
        "--scheduler", metavar="ADDRESS", help="run on the Dask cluster at ADDRESS (tcp://host:8786) instead"
    )
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="folder for report/ and cache/")
    parser.add_argument("--force", action="store_true", help="replace an existing report")
    parser.set_defaults(run=run)


def parse_combos(text: str, scheme: str):
    """``"32/32,8/16"`` -> Combos, fp32/fp32 first (added if missing)."""
    from nnasim.analysis.lfw_verify import Combo

    combos = []
    for token in [t.strip() for t in text.split(",") if t.strip()]:
        if token.count("/") != 1:
            raise UsageError(
                f"--configs {text!r}: each item is DETECTOR/VERIFIER widths, e.g. 8/32, got {token!r}"
            )
        det, ver = (parse_configs(w, scheme, option="--configs")[-1] for w in token.split("/"))
        combos.append(Combo(det, ver))
    reference = Combo(QuantConfig(32, scheme), QuantConfig(32, scheme))
    return tuple(dict.fromkeys([reference, *combos]))


def default_model(role: str, pairs: Path) -> str:
    """``models/<name>`` in the nearest folder above ``pairs`` that holds it (the shared data layout:
    ``shared/images/lfw/pairs.txt`` beside ``shared/models/``)."""
    name = DEFAULT_MODELS[role]
    for folder in pairs.resolve().parents:
        if (folder / "models" / name).is_file():
            return str(folder / "models" / name)
    raise UsageError(f"--{role}: no models/{name} above {pairs}; give the model with --{role} FILE")


def parse_folds(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        folds = tuple(sorted({int(v) for v in text.split(",") if v.strip()}))
    except ValueError:
        raise UsageError(f"--folds {text!r}: expected fold numbers like 1,2") from None
    if not folds or min(folds) < 1:
        raise UsageError(f"--folds {text!r}: fold numbers start at 1")
    return folds


def mapper_for(args: argparse.Namespace):
    from nnasim.analysis import faces

    if args.scheduler:
        return dask_mapper(args.scheduler)
    workers = args.workers or faces.default_workers()
    if workers < 1:
        raise UsageError(f"--workers {workers}: must be at least 1")
    return faces.run_inline if workers == 1 else faces.process_mapper(workers)


class dask_mapper:  # noqa: N801 (used like the other mappers: a callable)
    """Calls as tasks on the Dask cluster at ``scheduler`` (workers must read the models and photos at
    the same paths); ``close()`` when done."""

    def __init__(self, scheduler: str) -> None:
        from nnasim.sweep.executors import connect_dask

        self.client = connect_dask(scheduler)

    def __call__(self, fn, calls):
        from distributed import as_completed

        futures = {self.client.submit(fn, *args, pure=False): index for index, args in enumerate(calls)}
        try:
            for future in as_completed(futures):
                yield futures[future], future.result()
        finally:
            self.client.cancel(list(futures))

    def close(self) -> None:
        self.client.close()


def run(args: argparse.Namespace) -> int:
    from nnasim.analysis.faces import Models
    from nnasim.analysis.lfw_verify import VerifyRequest, verify

    for option, value, low in (("--limit", args.limit, 1), ("--calib-count", args.calib_count, 1)):
        if value is not None and value < low:
            raise UsageError(f"{option} {value}: must be at least {low}")
    pairs = Path(args.pairs)
    request = VerifyRequest(
        pairs=pairs,
        images=Path(args.images) if args.images else pairs.parent,
        out=Path(args.output),
        models=Models(
            *(
                getattr(args, role) or default_model(role, pairs)
                for role in ("detector", "landmarks", "verifier")
            )
        ),
        combos=parse_combos(args.configs, args.scheme),
        folds=parse_folds(args.folds),
        limit=args.limit,
        calib_count=args.calib_count,
        calib_method=args.calib_method,
        heatmap_people=args.heatmap_people,
        force=args.force,
    )
    mapper = mapper_for(args)
    try:
        result = verify(request, mapper)
    finally:
        if hasattr(mapper, "close"):
            mapper.close()
    for row in result["lfw"]["table"]:
        print(
            f"{row['config']:>16}: accuracy {row['accuracy']:.4f} ± {row['± std']:.4f}  "
            f"TAR@FAR=1e-3 {row['TAR@FAR=1e-3']:.4f}  flips {row['flips']}"
        )
    print(f"run time {result['run_time_s']} s")
    return 0
