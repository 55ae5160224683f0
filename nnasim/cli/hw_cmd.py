"""``nnasim hw list``: the built-in hardware profiles and their main parameters."""

from __future__ import annotations

import argparse

from nnasim.cli.common import add_output_arguments, emit
from nnasim.cost import builtin_profiles, load_profile
from nnasim.report.tables import render


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("hw", help="list the built-in hardware profiles")
    parser.add_argument("action", choices=("list",), help="list: one row per profile in hwprofiles/")
    add_output_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    rows = []
    for name in builtin_profiles():
        hw = load_profile(name)
        rows.append(
            {
                "name": name,
                "clock MHz": hw.clock_mhz,
                "MACs/clk 8-bit": hw.macs_per_clock(8),
                "MACs/clk 16-bit": hw.macs_per_clock(16),
                "OCM KiB": hw.ocm_kib,
                "feature maps GB/s": hw.memory_map()[hw.fm_memory].gbps,
                "feature maps in": hw.fm_memory,
                "weights in": hw.weight_memory,
                "fusion": hw.fusion,
                "weight compression": hw.weight_compression,
                "description": hw.description,
            }
        )
    emit(render(rows, args.format), args)
    return 0
