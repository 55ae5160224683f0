"""Cascade throughput: a detector runs once per frame, the verifier once per detected face.

Frame time is ``detector + faces x verifier`` and DRAM traffic per frame adds the same way,
so from some number of faces on the verifier costs more than the detector (the talk's
closing point). Each stage may run at its own bit width (``8+16``: detector 8-bit, verifier
16-bit). ``nnasim profile DETECTOR+VERIFIER --faces 1,2,4 ...`` prints this.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

from nnasim.cost import NetworkCost, build_workload, evaluate, load_profile
from nnasim.cost.profile import SUPPORTED_BITS
from nnasim.errors import UsageError

DEFAULT_FACES = (1, 2, 4, 8, 16, 32)


@dataclass(frozen=True)
class CascadeCost:
    """Costs of both stages on one profile, with the stages' bit widths."""

    detector: NetworkCost
    verifier: NetworkCost

    @property
    def label(self) -> str:
        bits = (self.detector.bits, self.verifier.bits)
        return f"{bits[0]}" if bits[0] == bits[1] else f"{bits[0]}+{bits[1]}"

    def frame_seconds(self, faces: int) -> float:
        return self.detector.seconds + faces * self.verifier.seconds

    def frame_megabytes(self, faces: int) -> float:
        return self.detector.megabytes + faces * self.verifier.megabytes

    @property
    def time_crossover(self) -> int:
        """Fewest faces per frame at which the verifier takes at least the detector's time."""
        return _crossover(self.detector.seconds, self.verifier.seconds)

    @property
    def traffic_crossover(self) -> int:
        """Fewest faces per frame at which the verifier moves at least the detector's DRAM bytes."""
        return _crossover(self.detector.megabytes, self.verifier.megabytes)


def _crossover(detector: float, per_face: float) -> int:
    return max(1, math.ceil(detector / per_face)) if per_face > 0 else math.inf


def split_cascade(model: str) -> tuple[str, str] | None:
    """``lffd+arcface`` -> (``lffd``, ``arcface``); None for a single model (or a file named with +)."""
    if "+" not in model or Path(model).exists():
        return None
    parts = model.split("+")
    if len(parts) != 2 or not all(parts):
        raise UsageError(f"{model!r}: a cascade is DETECTOR+VERIFIER, e.g. lffd+arcface")
    return parts[0], parts[1]


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


def parse_faces(text: str | None) -> tuple[int, ...]:
    if not text:
        return DEFAULT_FACES
    try:
        faces = tuple(int(v) for v in text.split(","))
    except ValueError:
        faces = ()
    if not faces or any(f < 0 for f in faces):
        raise UsageError(f"--faces {text!r}: expected non-negative integers like 1,2,4,8")
    return faces


def cascade_costs(
    detector: str, verifier: str, hw_spec: str, stage_bits, input_shape=None
) -> list[CascadeCost]:
    """Both stages costed on one profile for every (detector bits, verifier bits) pair."""
    from nnasim.frontend import load_lowered

    hw = load_profile(hw_spec)
    det = build_workload(load_lowered(detector, input_shape))
    ver = build_workload(load_lowered(verifier))
    return [CascadeCost(evaluate(det, hw, d), evaluate(ver, hw, v)) for d, v in stage_bits]


def cascade_rows(cost: CascadeCost, faces: tuple[int, ...]) -> list[dict]:
    return [
        {
            "hw": cost.detector.hw,
            "bits": cost.label,
            "faces": n,
            "ms/frame": round(cost.frame_seconds(n) * 1e3, 3),
            "frames/s": round(1.0 / cost.frame_seconds(n), 2),
            "MB/frame": round(cost.frame_megabytes(n), 3),
            "verifier time %": round(100 * n * cost.verifier.seconds / cost.frame_seconds(n), 1),
        }
        for n in faces
    ]


def crossover_sentence(cost: CascadeCost) -> str:
    det, ver = cost.detector, cost.verifier
    detector = f"{det.model} {det.seconds * 1e3:.2f} ms and {det.megabytes:.1f} MB per frame"
    verifier = f"{ver.model} {ver.seconds * 1e3:.2f} ms and {ver.megabytes:.1f} MB per face"
    return (
        f"{det.hw} {cost.label}-bit: {detector}, {verifier}; the verifier takes more time than the "
        f"detector from {_faces(cost.time_crossover)} per frame on, more DRAM traffic from "
        f"{_faces(cost.traffic_crossover)} on."
    )


def plot_cascade(
    path: str | Path, costs: list[CascadeCost], faces: tuple[int, ...], force: bool = False
) -> None:
    """Frames/s and MB/frame against faces per frame, one line per profile and bit widths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nnasim.report.files import atomic_file

    fig, (ax_fps, ax_mb) = plt.subplots(1, 2, figsize=(9, 3.6), dpi=100)
    for cost in costs:
        label = f"{cost.detector.hw} {cost.label}-bit"
        (line,) = ax_fps.plot(
            faces, [1 / cost.frame_seconds(n) for n in faces], marker="o", ms=3, label=label
        )
        ax_mb.plot(faces, [cost.frame_megabytes(n) for n in faces], marker="o", ms=3, color=line.get_color())
        ax_fps.axvline(cost.time_crossover, color=line.get_color(), lw=0.8, ls=":")
    ax_fps.set_ylabel("frames/s")
    ax_mb.set_ylabel("DRAM MB/frame (10^6 B)")
    for ax in (ax_fps, ax_mb):
        ax.set_xlabel("faces per frame (verifier runs)")
        ax.set_xscale("log", base=2)
        ax.set_xticks([n for n in faces if n > 0], [str(n) for n in faces if n > 0])
        ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
    ax_fps.legend(fontsize=7, title="dotted: verifier time = detector time", title_fontsize=7)
    first = costs[0]
    fig.suptitle(f"{first.detector.model} -> {first.verifier.model} cascade throughput", fontsize=10)
    fig.tight_layout()
    with atomic_file(path, force) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def run_profile(args: argparse.Namespace, stages: tuple[str, str]) -> int:
    """``nnasim profile DETECTOR+VERIFIER``: the cascade table, the crossovers and ``--plot``."""
    from nnasim.cli.common import emit, parse_input_shape
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


def _faces(n: int) -> str:
    return f"{n} face" if n == 1 else f"{n} faces"
