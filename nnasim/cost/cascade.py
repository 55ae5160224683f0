"""Cascade throughput: a detector runs once per frame, the verifier once per detected face.

Frame time is ``detector + faces x verifier`` and DRAM traffic per frame adds the same way,
so from some number of faces on the verifier costs more than the detector (the talk's
closing point). Each stage may run at its own bit width (``8+16``: detector 8-bit, verifier
16-bit). ``nnasim profile DETECTOR+VERIFIER --faces 1,2,4 ...`` prints this.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from nnasim.cost import NetworkCost, build_workload, evaluate, load_profile
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


def _faces(n: int) -> str:
    return f"{n} face" if n == 1 else f"{n} faces"
