"""Face detector decoders: network outputs -> boxes in image pixels, with non-maximum suppression.

Three output conventions are understood, recognised by the graph's output names:

- **ultraface** (``scores`` 1xNx2 softmax, face = channel 1; ``boxes`` 1xNx4 corner form
  normalised to [0, 1]): the anchor decoding is inside the graph, so boxes only need scaling
  to the image size (Linzaer's ``detect_imgs_onnx.py``: threshold 0.7, hard NMS at IoU 0.3).
- **LFFD** (``score_i`` 1x{1,2}xHxW, face = channel 0, and ``bbox_i`` 1x4xHxW for the eight
  branches): each output pixel is the centre of a receptive field; the four bbox values are
  offsets of the box corners from that centre in units of half the branch's receptive-field
  size (the public LFFD ``predict.py``: threshold 0.8, NMS at 0.3; its NMS divides the
  intersection by the lower-scored box's area, ours uses IoU for both families).
- **LFFD head** (``score_0..score_3`` 1x1xHxW and ``bbox_0..bbox_3``: the trained four-branch
  ``10_160_17L_4scales_v1`` head detector, raw BGR input): the same receptive-field decoding with
  its own constants, and the official ``head_detection/accuracy_evaluation/predict.py`` after it:
  scores strictly above the threshold (0.5 for the Brainwash evaluation), corners clipped to the
  image one by one, the ``top_k`` best, then its NMS, which suppresses a lower-scored box when the
  intersection (``+1`` pixel convention) over *that box's* area exceeds 0.6.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nnasim.analysis.metrics import iou_matrix
from nnasim.errors import ModelError
from nnasim.ir import Graph

NMS_IOU = 0.3  # both families' authors suppress at IoU 0.3


@dataclass(frozen=True)
class Detections:
    """Boxes ``x1, y1, x2, y2`` in pixels of the original image, sorted by decreasing score."""

    boxes: np.ndarray  # (N, 4) float64
    scores: np.ndarray  # (N,) float64

    def __len__(self) -> int:
        return len(self.scores)

    def above(self, threshold: float) -> Detections:
        keep = self.scores >= threshold
        return Detections(self.boxes[keep], self.scores[keep])

    @staticmethod
    def empty() -> Detections:
        return Detections(np.zeros((0, 4)), np.zeros(0))


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices kept by hard non-maximum suppression, in decreasing score order.

    A box is dropped when its IoU with an already kept, higher-scoring box exceeds
    ``iou_threshold``; equal scores keep the lower index first.
    """
    order = np.argsort(-np.asarray(scores), kind="stable")
    ious = iou_matrix(boxes[order], boxes[order])
    suppressed = np.zeros(len(order), bool)
    keep = []
    for rank in range(len(order)):
        if suppressed[rank]:
            continue
        keep.append(order[rank])
        suppressed |= ious[rank] > iou_threshold
    return np.asarray(keep, dtype=np.int64)


def finish(boxes: np.ndarray, scores: np.ndarray, image_size: tuple[int, int], iou: float) -> Detections:
    """Clip boxes to the image, drop empty ones, run NMS."""
    width, height = image_size
    boxes = np.clip(np.asarray(boxes, np.float64), 0, [width, height, width, height])
    scores = np.asarray(scores, np.float64)
    valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    boxes, scores = boxes[valid], scores[valid]
    keep = nms(boxes, scores, iou)
    return Detections(boxes[keep], scores[keep])


@dataclass(frozen=True)
class Decoder:
    """A model family's decoder: ``decode(outputs, input_size, image_size, min_score)``.

    Sizes are ``(width, height)``; only detections scoring at least ``min_score`` are kept.
    """

    family: str
    default_threshold: float  # the operating point of the model's authors
    decode: Callable[[dict[str, np.ndarray], tuple[int, int], tuple[int, int], float], Detections]


def decode_ultraface(
    outputs: dict[str, np.ndarray], input_size: tuple[int, int], image_size: tuple[int, int], min_score: float
) -> Detections:
    """ultraface: face probability in channel 1, normalised corner boxes scaled to the image."""
    scores = outputs["scores"].reshape(-1, 2)[:, 1]
    boxes = outputs["boxes"].reshape(-1, 4).astype(np.float64)
    keep = scores >= min_score
    width, height = image_size
    return finish(boxes[keep] * [width, height, width, height], scores[keep], image_size, NMS_IOU)


# LFFD v1 (configuration_10_560_25L_8scales_v1): per branch, the receptive-field size used to
# normalise the regression (= the largest face of the branch), its stride, and the centre of
# the first receptive field, all in input pixels.
LFFD_V1_RF_SIZE = (15, 20, 40, 70, 110, 250, 400, 560)
LFFD_V1_RF_STRIDE = (4, 4, 8, 8, 16, 32, 32, 32)
LFFD_V1_RF_START = (3, 3, 7, 7, 15, 31, 31, 31)


def lffd_branch_boxes(
    score: np.ndarray,
    bbox: np.ndarray,
    branch: int,
    constants: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """All boxes of one LFFD branch in input pixels: ``(H*W, 4)`` boxes and ``(H*W,)`` scores.

    ``constants`` are the family's (receptive-field sizes, strides, centre starts); default LFFD v1.
    """
    rf_size, rf_stride, rf_start = constants or (LFFD_V1_RF_SIZE, LFFD_V1_RF_STRIDE, LFFD_V1_RF_START)
    face = score.reshape(score.shape[-3], *score.shape[-2:])[0]
    offsets = bbox.reshape(4, *bbox.shape[-2:]).astype(np.float64)
    height, width = face.shape
    stride, start, half_rf = rf_stride[branch], rf_start[branch], rf_size[branch] / 2
    cx = np.broadcast_to(start + stride * np.arange(width, dtype=np.float64), (height, width))
    cy = np.broadcast_to((start + stride * np.arange(height, dtype=np.float64))[:, None], (height, width))
    boxes = np.stack(
        [
            cx - offsets[0] * half_rf,
            cy - offsets[1] * half_rf,
            cx - offsets[2] * half_rf,
            cy - offsets[3] * half_rf,
        ],
        axis=-1,
    )
    return boxes.reshape(-1, 4), face.reshape(-1).astype(np.float64)


def decode_lffd(
    outputs: dict[str, np.ndarray], input_size: tuple[int, int], image_size: tuple[int, int], min_score: float
) -> Detections:
    """LFFD v1: decode the eight branches, scale from the input to the image, NMS at 0.3."""
    scale = np.array([image_size[0] / input_size[0], image_size[1] / input_size[1]] * 2)
    all_boxes, all_scores = [], []
    for branch in range(len(LFFD_V1_RF_SIZE)):
        boxes, scores = lffd_branch_boxes(
            outputs[f"score_{branch + 1}"], outputs[f"bbox_{branch + 1}"], branch
        )
        keep = scores >= min_score
        all_boxes.append(boxes[keep] * scale)
        all_scores.append(scores[keep])
    return finish(np.concatenate(all_boxes), np.concatenate(all_scores), image_size, NMS_IOU)


# LFFD head detector (configuration_10_160_17L_4scales_v1, ../shared/models/SOURCES.md): four
# branches, constant = RF / 2; the official Brainwash evaluation keeps scores > 0.5, NMS 0.6, top 10000.
LFFD_HEAD_CONSTANTS = ((20, 40, 80, 160), (4, 8, 16, 32), (3, 7, 15, 31))
LFFD_HEAD_NMS = 0.6
LFFD_HEAD_TOP_K = 10000


def official_lffd_nms(boxes: np.ndarray, scores: np.ndarray, overlap_threshold: float) -> np.ndarray:
    """Indices kept by the NMS of LFFD's ``predict.py``, highest score first.

    The best remaining box is kept; a remaining box goes when ``(w+1)(h+1)`` of its intersection with
    the kept one, divided by its own area ``w*h``, exceeds ``overlap_threshold``. Equal scores keep
    the lower index first.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    remaining = list(np.argsort(-np.asarray(scores), kind="stable"))
    keep = []
    while remaining:
        best, rest = remaining[0], np.array(remaining[1:], dtype=np.int64)
        keep.append(best)
        if not len(rest):
            break
        w = np.maximum(
            0.0, np.minimum(boxes[best, 2], boxes[rest, 2]) - np.maximum(boxes[best, 0], boxes[rest, 0]) + 1
        )
        h = np.maximum(
            0.0, np.minimum(boxes[best, 3], boxes[rest, 3]) - np.maximum(boxes[best, 1], boxes[rest, 1]) + 1
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            overlap = w * h / area[rest]
        remaining = [int(i) for i, o in zip(rest, overlap, strict=True) if not o > overlap_threshold]
    return np.asarray(keep, dtype=np.int64)


def decode_lffd_head(
    outputs: dict[str, np.ndarray], input_size: tuple[int, int], image_size: tuple[int, int], min_score: float
) -> Detections:
    """The trained LFFD head model, decoded as its authors' ``predict.py`` does (see the module doc)."""
    width, height = image_size
    scale = np.array([input_size[0] / width, input_size[1] / height] * 2)
    all_boxes, all_scores = [], []
    for branch in range(len(LFFD_HEAD_CONSTANTS[0])):
        boxes, scores = lffd_branch_boxes(
            outputs[f"score_{branch}"], outputs[f"bbox_{branch}"], branch, LFFD_HEAD_CONSTANTS
        )
        boxes = boxes / scale
        boxes[:, :2] = np.maximum(boxes[:, :2], 0.0)
        boxes[:, 2] = np.minimum(boxes[:, 2], width)
        boxes[:, 3] = np.minimum(boxes[:, 3], height)
        keep = scores > min_score
        all_boxes.append(boxes[keep])
        all_scores.append(scores[keep])
    boxes, scores = np.concatenate(all_boxes), np.concatenate(all_scores)
    order = np.argsort(-scores, kind="stable")[:LFFD_HEAD_TOP_K]
    boxes, scores = boxes[order], scores[order]
    keep = official_lffd_nms(boxes, scores, LFFD_HEAD_NMS)
    return Detections(boxes[keep].reshape(-1, 4), scores[keep])


ULTRAFACE = Decoder("ultraface", 0.7, decode_ultraface)
LFFD = Decoder("lffd", 0.8, decode_lffd)
LFFD_HEAD = Decoder("lffd-head", 0.5, decode_lffd_head)


def decoder_for(graph: Graph) -> Decoder:
    """The decoder matching the graph's outputs, or a ModelError saying what is expected."""
    outputs = set(graph.outputs)
    if {"scores", "boxes"} <= outputs:
        return ULTRAFACE
    branches = len(LFFD_V1_RF_SIZE)
    lffd_names = {f"{kind}_{i}" for kind in ("score", "bbox") for i in range(1, branches + 1)}
    if lffd_names <= outputs:
        return LFFD
    head_names = {f"{kind}_{i}" for kind in ("score", "bbox") for i in range(len(LFFD_HEAD_CONSTANTS[0]))}
    if head_names <= outputs:
        return LFFD_HEAD
    numbered = sorted(n for n in outputs if re.fullmatch(r"(score|bbox)_\d+", n))
    hint = (
        f" (found {len(numbered) // 2} LFFD-style branches; only v1 with {branches} is known)"
        if numbered
        else ""
    )
    raise ModelError(
        f"{graph.name}: no detection decoder for outputs {sorted(outputs)}{hint}; expected "
        "'scores' and 'boxes' (ultraface), score_1..score_8 and bbox_1..bbox_8 (LFFD v1) or score_0..score_3 "
        "and bbox_0..bbox_3 (LFFD head)"
    )
