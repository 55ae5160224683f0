"""``nnasim info MODEL``: per-layer op, shapes, parameters and MACs of the lowered graph."""

from __future__ import annotations

import argparse

from nnasim.cli.common import add_model_argument, add_output_arguments, emit, load_engine_graph
from nnasim.report.info import layer_table, totals
from nnasim.report.tables import render


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("info", help="per-layer shapes, parameters and MACs of a model")
    add_model_argument(parser)
    add_output_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    graph = load_engine_graph(args)  # a QDQ model's Q/DQ pairs are formats, not layers
    rows = layer_table(graph)
    total = totals(rows)
    if args.format != "table":
        emit(render(rows, args.format, extra={"model": args.model, "totals": total}), args)
        return 0
    summary = (
        f"{args.model}: {total['layers']} layers, {total['params'] / 1e6:,.2f} M parameters, "
        f"{total['MACs'] / 1e9:,.2f} GMACs (1 G = 10^9), inputs "
        + ", ".join(f"{n} {'x'.join(map(str, graph.shape(n)))}" for n in graph.inputs)
    )
    emit(render(rows, "table") + "\n" + summary + "\n", args)
    return 0
