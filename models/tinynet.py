"""tinynet: a small CIFAR-sized classifier for fast tests of the whole tool chain.

Input 1x3x32x32; conv3x3 3->16, BN, ReLU; conv3x3 16->32, BN, ReLU; maxpool 2x2;
conv3x3 32->32, BN, ReLU; global average pool; flatten; Gemm 32->10; softmax
(output ``probabilities``, 1x10). Convs have bias, so BN folding has a bias to update.
BatchNorm statistics are measured on a batch of synthetic images (see ``_builder``).
"""

from __future__ import annotations

import numpy as np
import onnx

from ._builder import NetBuilder, Value, synthetic_images

SEED = 32
INPUT_SIDE = 32
CALIBRATION_BATCH = 8
CLASSES = 10
STAGES = ((16, False), (32, True), (32, False))  # (channels, max pool after it)


def _populate(b: NetBuilder, calibration: np.ndarray | None) -> Value:
    x = b.input("input", 3, calibration)
    for index, (channels, pool) in enumerate(STAGES, start=1):
        x = b.conv(x, f"conv{index}", channels, 3, 1, 1)
        x = b.relu(b.batchnorm(x, f"bn{index}"), f"relu{index}")
        if pool:
            x = b.maxpool(x, f"pool{index}", 2)
    x = b.flatten(b.global_average_pool(x, "gap"), "flatten")
    logits = b.gemm(x, "fc", CLASSES, STAGES[-1][0])
    return b.softmax(logits, "probabilities")


def calibration_input() -> np.ndarray:
    """The synthetic image batch the weights are calibrated on (deterministic)."""
    return synthetic_images(np.random.default_rng(SEED + 1), CALIBRATION_BATCH, INPUT_SIDE, INPUT_SIDE)


def build() -> onnx.ModelProto:
    """tinynet with calibrated weights."""
    b = NetBuilder(SEED)
    probabilities = _populate(b, calibration_input())
    return b.model("tinynet", "input", (1, 3, INPUT_SIDE, INPUT_SIDE), [probabilities])


def param_count() -> int:
    """Parameters (including BatchNorm statistics) without building the weights."""
    b = NetBuilder(None)
    _populate(b, None)
    return b.param_count
