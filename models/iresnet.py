"""IResNet (ArcFace backbones) with synthetic weights and data-calibrated BatchNorm.

The structure follows insightface's ``recognition/arcface_torch/backbones/iresnet.py``:
stem conv3x3 3->64 (stride 1) + BN + PReLU; four stages of IBasicBlocks (64, 128, 256,
512 channels); block = BN, conv3x3, BN, PReLU, conv3x3 (stride s), BN, + shortcut, where
the first block of every stage has stride 2 and a 1x1 stride-2 conv + BN shortcut; head
BN2d, flatten 512x7x7, dropout, FC 25088->512, BN1d (BatchNormalization on the 2-D
tensor, gamma fixed to 1 as in arcface_torch). Convs have no bias. Input 1x3x112x112
(normalised, ``(pixel - 127.5) / 127.5``), output ``embedding`` 1x512.

IResNet100 (blocks 3, 13, 30, 3): 65.1 M parameters, 12.1 GMACs.
IResNet50 (blocks 3, 4, 14, 3): 43.6 M parameters, 6.3 GMACs.

Weights: He-uniform convs; every BatchNorm's running mean and variance are measured on
its input for a synthetic calibration image (see ``_builder``), gamma drawn from
[0.8, 1.2] (the residual branch's last BN from [0.2, 0.6], as trained IResNets keep
their residual branches small), beta from [-0.1, 0.1], PReLU slopes from [0.05, 0.35].
"""

from __future__ import annotations

import numpy as np
import onnx

from ._builder import NetBuilder, Value, synthetic_images

SEED = 20200917
INPUT_SIDE = 112
STAGE_WIDTHS = (64, 128, 256, 512)
BLOCKS = {"iresnet100": (3, 13, 30, 3), "iresnet50": (3, 4, 14, 3)}
EMBEDDING = 512
RESIDUAL_BRANCH_GAMMA = (0.2, 0.6)


def _block(b: NetBuilder, x: Value, name: str, planes: int, first_in_stage: bool) -> Value:
    """One IBasicBlock; the first block of a stage downsamples (stride 2, 1x1 conv shortcut)."""
    stride = 2 if first_in_stage else 1
    out = b.batchnorm(x, f"{name}.bn1")
    out = b.conv(out, f"{name}.conv1", planes, 3, 1, 1, bias=False)
    out = b.batchnorm(out, f"{name}.bn2")
    out = b.prelu(out, f"{name}.prelu")
    out = b.conv(out, f"{name}.conv2", planes, 3, stride, 1, bias=False)
    out = b.batchnorm(out, f"{name}.bn3", gamma=RESIDUAL_BRANCH_GAMMA)
    shortcut = x
    if first_in_stage:
        shortcut = b.conv(x, f"{name}.downsample.0", planes, 1, stride, 0, bias=False)
        shortcut = b.batchnorm(shortcut, f"{name}.downsample.1")
    return b.add(out, shortcut, f"{name}.add")


def _populate(b: NetBuilder, blocks: tuple[int, ...], calibration: np.ndarray | None) -> Value:
    x = b.input("input", 3, calibration)
    x = b.conv(x, "conv1", STAGE_WIDTHS[0], 3, 1, 1, bias=False)
    x = b.prelu(b.batchnorm(x, "bn1"), "prelu")
    for stage, (planes, count) in enumerate(zip(STAGE_WIDTHS, blocks, strict=True), start=1):
        for index in range(count):
            x = _block(b, x, f"layer{stage}.{index}", planes, first_in_stage=index == 0)
    x = b.batchnorm(x, "bn2")
    x = b.dropout(b.flatten(x, "flatten"), "dropout")
    side = INPUT_SIDE // 2 ** len(STAGE_WIDTHS)
    x = b.gemm(x, "fc", EMBEDDING, STAGE_WIDTHS[-1] * side * side)
    return b.batchnorm(x, "embedding", gamma=(1.0, 1.0))


def calibration_input() -> np.ndarray:
    """The synthetic image batch the weights are calibrated on (deterministic)."""
    return synthetic_images(np.random.default_rng(SEED + 1), 1, INPUT_SIDE, INPUT_SIDE)


def build(variant: str = "iresnet100") -> onnx.ModelProto:
    """The IResNet ``variant`` ('iresnet100' or 'iresnet50') with calibrated weights."""
    b = NetBuilder(SEED)
    embedding = _populate(b, BLOCKS[variant], calibration_input())
    return b.model(variant, "input", (1, 3, INPUT_SIDE, INPUT_SIDE), [embedding])


def param_count(variant: str = "iresnet100") -> int:
    """Parameters (including BatchNorm statistics) without building the weights."""
    b = NetBuilder(None)
    _populate(b, BLOCKS[variant], None)
    return b.param_count
