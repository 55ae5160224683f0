"""``nnasim sweep SPEC.yaml -o OUT_DIR``: evaluate a grid of hardware designs; results and Pareto front."""

from __future__ import annotations

import argparse

from nnasim.sweep.run import EXECUTORS, run_sweep
from nnasim.sweep.spec import load_spec


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "sweep",
        help="design-space exploration: a grid of profile parameters x models x bit widths",
        description="Evaluate every design point of SPEC (see README 'Design-space exploration') and write "
        "results.csv, pareto.csv, pareto.png and parameter plots to OUT_DIR.",
    )
    parser.add_argument("spec", metavar="SPEC.yaml", help="the sweep specification")
    parser.add_argument("-o", "--output", metavar="OUT_DIR", required=True, help="folder for the results")
    parser.add_argument("--force", action="store_true", help="start again in an existing OUT_DIR")
    parser.add_argument("--resume", action="store_true", help="finish an interrupted sweep in OUT_DIR")
    parser.add_argument("--executor", choices=EXECUTORS, default="local", help="where points are evaluated")
    parser.add_argument("--workers", type=int, metavar="N", help="local processes (default: all cores)")
    parser.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address, e.g. tcp://host:8786")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    done = run_sweep(
        spec,
        args.output,
        executor=args.executor,
        workers=args.workers,
        scheduler=args.scheduler,
        force=args.force,
        resume=args.resume,
        progress=not args.quiet,
    )
    rate = done.evaluated / done.seconds if done.seconds > 0 else 0.0
    objectives = ", ".join(f"{goal} {column}" for column, goal in spec.objectives)
    print(
        f"{spec.n_points} points ({done.resumed} already done, {done.evaluated} evaluated in "
        f"{done.seconds:.1f} s with model loading, {rate:,.0f} points/s); {done.pareto} on the "
        f"Pareto front of {objectives}; results in {args.output}/"
    )
    return 0
