"""LFFD v1 face detector (25 conv layers, 8 detection branches) with synthetic weights.

The structure follows the public LFFD code, ``symbol_10_560_25L_8scales_v1`` (He & al.,
"LFFD: A Light and Fast Face Detector for Edge Devices", 2019): every body conv is 3x3 with
bias and ReLU; the stride-2 convs have no padding; residual adds are taken on the pre-ReLU
tensors; branches tap the ReLU outputs of conv 8, 10, 13, 15, 18, 21, 23 and 25. Each
branch: 1x1 conv to 128 + ReLU, then a score path (1x1 to 128 + ReLU, 1x1 to 2, softmax
over the two channels) and a bbox path (1x1 to 128 + ReLU, 1x1 to 4). Outputs are
``score_1, bbox_1, ..., score_8, bbox_8``. 2.29 M parameters, 13.4 GMACs at 640x640.

Differences from the deploy symbol, on purpose: the input is taken already normalised,
``(pixel - 127.5) / 127.5`` (the symbol does it in-graph), and the score output keeps both
softmax channels (the deploy symbol slices channel 0, the face probability).

Weights: He-uniform, each conv rescaled by one factor so its output has std 1 on a
synthetic 192x192 calibration image (see ``_builder``). The calibration size is fixed,
so every input size gets the same weights.
"""

from __future__ import annotations

import numpy as np
import onnx

from ._builder import NetBuilder, Value, synthetic_images

SEED = 20190410
CALIBRATION_SIZE = 192
DEFAULT_SIZE = (640, 640)  # width, height
BRANCH_TAPS = (8, 10, 13, 15, 18, 21, 23, 25)
# conv index -> index of the earlier conv whose (pre-ReLU) output it adds.
RESIDUALS = {4: 2, 6: 4, 8: 6, 10: 8, 13: 11, 15: 13, 18: 16, 21: 19, 23: 21, 25: 23}
STRIDE_2 = (1, 2, 11, 16, 19)
BRANCH_WIDTH = 128


def _out_channels(index: int) -> int:
    return 64 if index < 16 else 128


def smallest_side() -> int:
    """The smallest input side for which the last stride-2 conv still has one output."""
    side = 1
    for _ in STRIDE_2:
        side = 2 * side + 1
    return side


def _branch(b: NetBuilder, x: Value, prefix: str, index: int) -> tuple[Value, Value]:
    """One detection branch: the score (softmax) and bbox outputs."""
    shared = b.relu(b.conv(x, f"{prefix}_1", BRANCH_WIDTH, 1, unit_std=True), f"relu_{prefix}_1")
    score = b.relu(
        b.conv(shared, f"{prefix}_2_score", BRANCH_WIDTH, 1, unit_std=True), f"relu_{prefix}_2_score"
    )
    score = b.conv(score, f"{prefix}_3_score", 2, 1, unit_std=True)
    bbox = b.relu(b.conv(shared, f"{prefix}_2_bbox", BRANCH_WIDTH, 1, unit_std=True), f"relu_{prefix}_2_bbox")
    bbox = b.conv(bbox, f"bbox_{index}", 4, 1, unit_std=True)
    return b.softmax(score, f"score_{index}"), bbox


def _body(b: NetBuilder, image: Value) -> list[Value]:
    """The 25 body convs; returns the ReLU outputs the branches tap, in order."""
    pre_relu: dict[int, Value] = {}
    x = image
    taps = []
    for i in range(1, 26):
        stride, pad = (2, 0) if i in STRIDE_2 else (1, 1)
        y = b.conv(x, f"conv{i}", _out_channels(i), 3, stride, pad, unit_std=True)
        if i in RESIDUALS:
            y = b.add(pre_relu[RESIDUALS[i]], y, f"conv{i}_add")
        pre_relu[i] = y
        x = b.relu(y, f"relu_conv{i}")
        if i in BRANCH_TAPS:
            taps.append(x)
    return taps


def _populate(b: NetBuilder, calibration: np.ndarray | None) -> list[Value]:
    image = b.input("input", 3, calibration)
    outputs = []
    for index, tap in enumerate(_body(b, image), start=1):
        outputs.extend(_branch(b, tap, tap.name.removeprefix("relu_"), index))
    return outputs


def calibration_input() -> np.ndarray:
    """The synthetic image batch the weights are calibrated on (deterministic)."""
    return synthetic_images(np.random.default_rng(SEED + 1), 1, CALIBRATION_SIZE, CALIBRATION_SIZE)


def build(width: int = DEFAULT_SIZE[0], height: int = DEFAULT_SIZE[1]) -> onnx.ModelProto:
    """LFFD v1 for a 1x3xHxW input, with deterministic calibrated weights."""
    b = NetBuilder(SEED)
    outputs = _populate(b, calibration_input())
    return b.model("lffd_v1_25L_8scales", "input", (1, 3, height, width), outputs)


def param_count() -> int:
    """Parameters (weights and biases) without building the weights."""
    b = NetBuilder(None)
    _populate(b, None)
    return b.param_count
