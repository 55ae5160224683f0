"""``nnasim profile DETECTOR+VERIFIER``: parsing the stage widths and faces, printing the cascade."""

from __future__ import annotations

import argparse

from nnasim.cost.cascade import DEFAULT_FACES, cascade_costs, cascade_rows, crossover_sentence, split_cascade
from nnasim.cost.profile import SUPPORTED_BITS
from nnasim.errors import UsageError


def cascade_stages(args: argparse.Namespace) -> tuple[str, str] | None:
    """The two stages when ``nnasim profile`` is given DETECTOR+VERIFIER; ``--faces`` needs them."""
    stages = split_cascade(args.model)
    if stages is None and args.faces:
        raise UsageError("--faces: give a cascade DETECTOR+VERIFIER as the model, e.g. lffd+arcface")
    return stages


def parse_stage_bits(text: str) -> tuple[tuple[int, int], ...]:
    """``8``, ``8,16`` (both stages at each), ``8+16`` (detector 8, verifier 16), or a mix."""
    configs = []
    for item in text.split(","):
        parts = item.split("+")
        try:
            bits = tuple(int(p) for p in parts)
        except ValueError:
            bits = ()
        if len(bits) not in (1, 2) or any(b not in SUPPORTED_BITS for b in bits):
            raise UsageError(
                f"--bits {text!r}: expected widths from {list(SUPPORTED_BITS)} as 8, 8,16 or 8+16 "
                "(detector+verifier)"
            )
        configs.append((bits[0], bits[-1]))
    return tuple(dict.fromkeys(configs))


MAX_FACES = 1_000_000  # faces per frame


def parse_faces(text: str | None) -> tuple[int, ...]:
    if not text:
        return DEFAULT_FACES
    try:
        faces = tuple(int(v) for v in text.split(","))
    except ValueError:
        faces = ()
    if not faces or any(not 0 <= f <= MAX_FACES for f in faces):
        raise UsageError(f"--faces {text[:40]!r}: expected integers from 0 to {MAX_FACES:,} like 1,2,4,8")
    return faces


def run_profile(args: argparse.Namespace, stages: tuple[str, str]) -> int:
    """``nnasim profile DETECTOR+VERIFIER``: the cascade table, the crossovers and ``--plot``."""
    from nnasim.cli.common import emit, parse_input_shape
    from nnasim.report.cascade_plot import plot_cascade
    from nnasim.report.tables import render

    if getattr(args, "per_layer", False):
        raise UsageError("--per-layer: profile each stage on its own for a per-layer table")
    faces = parse_faces(args.faces)
    costs = cascade_costs(*stages, args.hw, parse_stage_bits(args.bits), parse_input_shape(args.input_shape))
    rows = [row for cost in costs for row in cascade_rows(cost, faces)]
    notes = [crossover_sentence(cost) for cost in costs]
    if args.format == "table":
        title = f"{stages[0]} (once per frame) + {stages[1]} (once per face) on {args.hw}"
        emit(
            render(rows, "table", title=title) + "\n".join(notes) + "\nMB = 10^6 bytes of DRAM traffic.\n",
            args,
        )
    else:
        emit(render(rows, args.format, extra={"notes": notes, "units": "MB = 10^6 bytes"}), args)
    if args.plot:
        plot_cascade(args.plot, costs, faces, force=args.force)
    return 0
