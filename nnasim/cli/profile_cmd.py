"""``nnasim profile MODEL --hw NAME --bits 8,16``: DRAM MB and inferences/s on an NPU profile."""

from __future__ import annotations

import argparse
from pathlib import Path

from nnasim.cli.common import add_model_argument, add_output_arguments, emit, load_engine_graph
from nnasim.cost import NetworkCost, build_workload, evaluate, load_profile
from nnasim.errors import UsageError
from nnasim.io.files import refuse_existing
from nnasim.quant.widths import WIDTHS
from nnasim.report.tables import render

UNITS_NOTE = (
    "MB = 10^6 bytes per inference moved in the memories outside the NPU's cache (each memory's "
    "MB listed); GMAC = 10^9 multiply-accumulates."
)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "profile", help="DRAM bandwidth and inferences/s of a model on a hardware profile"
    )
    add_model_argument(parser)
    parser.add_argument("--hw", default="3nx", help="a profile name (see `nnasim hw list`) or a YAML file")
    parser.add_argument(
        "--bits",
        default="8,16",
        help="widths: 8, 8pc, 16, 16pc, 16x8 (16-bit activations, 8-bit weights) or a list (default 8,16)",
    )
    parser.add_argument("--per-layer", action="store_true", help="also print the per-layer table")
    parser.add_argument("--plot", metavar="PNG", help="draw the per-layer roofline to PNG")
    parser.add_argument(
        "--timeline", metavar="PNG", help="draw per layer compute vs each memory's transfer time to PNG"
    )
    parser.add_argument(
        "--faces", metavar="N,...", help="for DETECTOR+VERIFIER: faces per frame (default 1,2,4,8,16,32)"
    )
    add_output_arguments(parser)
    parser.set_defaults(run=run)


def parse_bits(text: str) -> tuple[int | str, ...]:
    """``"8,16x8"`` -> (8, '16x8'): plain widths as numbers, the others ('8pc', '16x8'...) as text."""
    parts = [part.strip() for part in text.split(",")]
    if not parts or any(part not in WIDTHS for part in parts):
        raise UsageError(f"--bits {text!r}: supported widths are {', '.join(WIDTHS)} (e.g. 8,16x8)")
    return tuple(dict.fromkeys(int(p) if p.isdigit() else p for p in parts))


def summary_row(cost: NetworkCost) -> dict:
    total = cost.total
    return {
        "model": cost.model,
        "hw": cost.hw,
        "bits": cost.bits,
        "MB/inference": round(cost.megabytes, 2),
        "weights MB": round(total.weight_bytes / 1e6, 2),
        "act read MB": round(total.act_read_bytes / 1e6, 2),
        "act write MB": round(total.act_write_bytes / 1e6, 2),
        **{
            f"{memory} MB": round(sum(kinds.values()) / 1e6, 2)
            for memory, kinds in cost.memory_traffic().items()
        },
        "inferences/s": round(cost.inferences_per_second, 1),
        "ms/inference": round(cost.seconds * 1e3, 3),
        "GMACs": round(total.macs / 1e9, 3),
        "MAC utilization": round(cost.utilization, 3),
        "bound": cost.bound,
    }


def layer_rows(cost: NetworkCost) -> list[dict]:
    """One row per layer; a fused group's cycles are shared by its layers, so utilization is
    given per group (``group util``)."""
    group_macs: dict[int, float] = {}
    group_cycles: dict[int, float] = {}
    for c in cost.layers:
        group_macs[c.group] = group_macs.get(c.group, 0) + c.macs
        group_cycles[c.group] = group_cycles.get(c.group, 0.0) + c.cycles
    peak = cost.peak_macs_per_clock
    return [
        {
            "bits": cost.bits,
            "layer": c.name,
            "op": c.op,
            "group": c.group,
            "MMACs": round(c.macs / 1e6, 3),
            "weights MB": round(c.weight_bytes / 1e6, 4),
            "read MB": round(c.act_read_bytes / 1e6, 4),
            "write MB": round(c.act_write_bytes / 1e6, 4),
            "compute kcyc": round(c.compute_cycles / 1e3, 2),
            "memory kcyc": round(c.memory_cycles / 1e3, 2),
            **{f"{m} kcyc": round(v / 1e3, 2) for m, v in sorted(c.transfer_cycles.items())},
            "kcycles": round(c.cycles / 1e3, 2),
            "group util": round(group_macs[c.group] / (group_cycles[c.group] * peak), 3)
            if group_cycles[c.group]
            else 0.0,
            "bound": c.bound,
        }
        for c in cost.layers
        if c.op not in ("Reshape", "Identity", "Dropout", "Concat")
    ]


def run(args: argparse.Namespace) -> int:
    from nnasim.cli.profile_cascade import cascade_stages, run_profile

    for path in (args.output, args.plot, args.timeline):  # refused before any work, not after the table
        if path:
            refuse_existing(Path(path), args.force)
    stages = cascade_stages(args)  # DETECTOR+VERIFIER: frames/s against faces per frame
    if stages:
        return run_profile(args, stages)
    bits = parse_bits(args.bits)
    hw = load_profile(args.hw)
    workload = build_workload(load_engine_graph(args))  # QDQ: its own integer weights
    costs = [evaluate(workload, hw, b) for b in bits]
    summary = [summary_row(cost) for cost in costs]
    layers = [row for cost in costs for row in layer_rows(cost)] if args.per_layer else []
    if args.format == "json":
        extra = {"units": UNITS_NOTE, "profile": hw.source, "layers": layers}
        emit(render(summary, "json", extra=extra), args)
    elif args.format == "csv":
        emit(render(layers or summary, "csv"), args)
    else:
        text = render(layers, "table") + "\n" if layers else ""
        text += render(summary, "table", title=f"{workload.name} on {hw.name} ({hw.source})")
        emit(text + UNITS_NOTE + "\n", args)
    if args.plot:
        from nnasim.report.roofline import roofline_plot

        roofline_plot(args.plot, costs, hw, force=args.force)
    if args.timeline:
        from nnasim.report.timeline import timeline_plot

        timeline_plot(args.timeline, costs, force=args.force)
    return 0
