"""Pure metric functions for comparing a quantized network with its fp32 baseline.

Everything here takes numpy arrays and returns numbers or arrays: no files, no models.
Conventions: boxes are ``(N, 4)`` arrays of ``x1, y1, x2, y2`` in any one unit (continuous
coordinates, area = width x height); similarities are "higher means more alike".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# ---------------------------------------------------------------------------------------------
# Set agreement (the talk's A, B, |A∩B|)


@dataclass(frozen=True)
class Agreement:
    """Which samples are right in the reference (A) and in the quantized run (B).

    The index tuples are sorted sample indices; ``overlap`` is |A∩B| / |A∪B|, 1.0 when
    both sets are empty.
    """

    a: tuple[int, ...]
    b: tuple[int, ...]
    both: tuple[int, ...]
    only_a: tuple[int, ...]
    only_b: tuple[int, ...]

    @property
    def overlap(self) -> float:
        union = len(self.a) + len(self.only_b)
        return len(self.both) / union if union else 1.0


def set_agreement(right_a: np.ndarray, right_b: np.ndarray) -> Agreement:
    """Agreement sets of two boolean per-sample "correct" vectors of the same length."""
    right_a, right_b = np.asarray(right_a, bool), np.asarray(right_b, bool)
    if right_a.shape != right_b.shape:
        raise ValueError(f"set_agreement: shapes differ, {right_a.shape} vs {right_b.shape}")

    def indices(mask: np.ndarray) -> tuple[int, ...]:
        return tuple(int(i) for i in np.flatnonzero(mask))

    return Agreement(
        a=indices(right_a),
        b=indices(right_b),
        both=indices(right_a & right_b),
        only_a=indices(right_a & ~right_b),
        only_b=indices(~right_a & right_b),
    )


# ---------------------------------------------------------------------------------------------
# Classification


def topk_correct(logits: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Per sample: is the label among the ``k`` highest scores? Ties go to the lower class index."""
    logits = np.asarray(logits)
    order = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    return (order == np.asarray(labels).reshape(-1, 1)).any(axis=1)


def topk_accuracy(logits: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of samples whose label is in the top ``k``."""
    return float(topk_correct(logits, labels, k).mean()) if len(labels) else float("nan")


# ---------------------------------------------------------------------------------------------
# Boxes


def box_area(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """``(len(a), len(b))`` intersection over union; 0 where the union is empty."""
    a = np.asarray(boxes_a, np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


@dataclass(frozen=True)
class Matching:
    """Result of matching reference boxes to test boxes: pairs ``(ref, test)`` and the leftovers."""

    pairs: tuple[tuple[int, int], ...]
    ious: tuple[float, ...]
    unmatched_ref: tuple[int, ...]
    unmatched_test: tuple[int, ...]


def match_boxes(ref: np.ndarray, test: np.ndarray, iou_threshold: float = 0.5) -> Matching:
    """Greedy one-to-one matching: repeatedly pair the two unmatched boxes of highest IoU.

    Pairs below ``iou_threshold`` are never made. Ties are broken by the lower reference
    index, then the lower test index, so the result is deterministic.
    """
    ious = iou_matrix(ref, test)
    n_ref, n_test = ious.shape
    rows, cols = np.nonzero(ious >= iou_threshold)
    candidates = [(-ious[i, j], int(i), int(j)) for i, j in zip(rows, cols, strict=True)]
    used_ref, used_test, pairs, pair_ious = set(), set(), [], []
    for neg_iou, i, j in sorted(candidates):
        if i in used_ref or j in used_test:
            continue
        used_ref.add(i)
        used_test.add(j)
        pairs.append((i, j))
        pair_ious.append(-neg_iou)
    return Matching(
        pairs=tuple(pairs),
        ious=tuple(float(v) for v in pair_ious),
        unmatched_ref=tuple(i for i in range(n_ref) if i not in used_ref),
        unmatched_test=tuple(j for j in range(n_test) if j not in used_test),
    )


def average_precision(
    det_boxes: list[np.ndarray],
    det_scores: list[np.ndarray],
    gt_boxes: list[np.ndarray],
    iou_threshold: float = 0.5,
) -> float:
    """VOC-style average precision (all-point interpolation) of one class over several images.

    Detections of all images are ranked by score (stable, so equal scores keep image then box
    order); each is a true positive if its best-overlapping ground-truth box in its image has
    IoU >= ``iou_threshold`` and was not already taken by a higher-ranked detection. AP is the
    area under the precision envelope (precision made non-increasing from the right) over the
    recall steps. No ground truth at all gives NaN.
    """
    n_gt = sum(len(np.asarray(g).reshape(-1, 4)) for g in gt_boxes)
    if n_gt == 0:
        return float("nan")
    ranked = sorted(
        ((float(s), img, k) for img, scores in enumerate(det_scores) for k, s in enumerate(np.ravel(scores))),
        key=lambda item: -item[0],
    )
    ious = [iou_matrix(d, g) for d, g in zip(det_boxes, gt_boxes, strict=True)]
    taken = [np.zeros(iou.shape[1], bool) for iou in ious]
    hits = np.zeros(len(ranked))
    for rank, (_, img, k) in enumerate(ranked):
        if ious[img].shape[1] == 0:
            continue
        best = int(np.argmax(ious[img][k]))
        if ious[img][k, best] >= iou_threshold and not taken[img][best]:
            taken[img][best] = True
            hits[rank] = 1
    return _area_under_envelope(hits, n_gt)


def _area_under_envelope(hits: np.ndarray, n_gt: int) -> float:
    true_pos = np.cumsum(hits)
    recall = np.concatenate([[0.0], true_pos / n_gt, [1.0]])
    precision = np.concatenate([[0.0], true_pos / np.arange(1, len(hits) + 1), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


# ---------------------------------------------------------------------------------------------
# Verification (same / different pairs)


def roc_curve(scores: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False accept rate, true accept rate and threshold, accepting pairs with ``score >= threshold``.

    One point per distinct score, from the highest threshold down, preceded by the point
    (0, 0) at threshold +inf. A class with no pairs gives a rate of NaN.
    """
    scores, same = np.asarray(scores, np.float64), np.asarray(same, bool)
    distinct = np.unique(scores)[::-1]
    order = np.argsort(-scores, kind="stable")
    # pairs accepted at each distinct threshold: those scoring at least it, in descending order
    accepted = np.concatenate([[0], np.searchsorted(-scores[order], -distinct, side="right")])
    true_accepts = np.concatenate([[0], np.cumsum(same[order])])[accepted]
    with np.errstate(invalid="ignore", divide="ignore"):
        tar = true_accepts / same.sum()
        far = (accepted - true_accepts) / (~same).sum()
    return far, tar, np.concatenate([[np.inf], distinct])


def tar_at_far(scores: np.ndarray, same: np.ndarray, far_target: float) -> tuple[float, float]:
    """Highest true accept rate with false accept rate <= ``far_target``, and its threshold.

    With ``m`` different pairs, FAR can only take the values 0, 1/m, ...; a target below
    1/m therefore means no false accept at all.
    """
    far, tar, thresholds = roc_curve(scores, same)
    allowed = np.flatnonzero(far <= far_target + 1e-12)
    best = allowed[np.argmax(tar[allowed])]
    return float(tar[best]), float(thresholds[best])


def roc_auc(scores: np.ndarray, same: np.ndarray) -> float:
    """Area under the ROC curve (trapezoids), i.e. P(same pair scores above a different pair)."""
    far, tar, _ = roc_curve(scores, same)
    far, tar = np.append(far, 1.0), np.append(tar, 1.0)
    return float(np.sum(np.diff(far) * (tar[1:] + tar[:-1]) / 2))


def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """The threshold that best separates same from different pairs: maximises TAR - FAR (Youden).

    Among equally good thresholds, the midpoint between the accepted score and the next
    lower one, so that small perturbations of the scores do not flip the decision.
    """
    far, tar, thresholds = roc_curve(scores, same)
    best = int(np.argmax(tar - far))
    lower = thresholds[best + 1] if best + 1 < len(thresholds) else thresholds[best] - 1.0
    upper = thresholds[best]
    return float(lower + 1.0) if np.isinf(upper) else float((upper + lower) / 2)


# ---------------------------------------------------------------------------------------------
# Tensors and embeddings


def sqnr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio, 10 log10(sum ref^2 / sum (test - ref)^2), in dB.

    +inf when the two are identical; -inf when the reference is all zero but the test is not.
    """
    ref = np.asarray(reference, np.float64)
    noise = float(np.sum((np.asarray(test, np.float64) - ref) ** 2))
    signal = float(np.sum(ref**2))
    return sqnr_from_sums(signal, noise)


def sqnr_from_sums(signal: float, noise: float) -> float:
    """SQNR in dB from accumulated signal and noise energies (see ``sqnr_db``)."""
    if noise == 0:
        return float("inf")
    if signal == 0:
        return float("-inf")
    return float(10 * np.log10(signal / noise))


def max_abs_error(reference: np.ndarray, test: np.ndarray) -> float:
    diff = np.asarray(test, np.float64) - np.asarray(reference, np.float64)
    return float(np.max(np.abs(diff))) if diff.size else 0.0


def relative_l2_error(reference: np.ndarray, test: np.ndarray) -> float:
    """||test - ref|| / ||ref||; +inf if the reference is zero and the test is not."""
    ref = np.asarray(reference, np.float64)
    norm = float(np.linalg.norm(ref))
    diff = float(np.linalg.norm(np.asarray(test, np.float64) - ref))
    if diff == 0:
        return 0.0
    return diff / norm if norm else float("inf")


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two ``(N, D)`` arrays (a 1-D pair gives a 0-d array)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    num = np.sum(a * b, axis=-1)
    den = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def pairwise_cosine(embeddings: np.ndarray) -> np.ndarray:
    """``(N, N)`` cosine similarity between all rows of ``embeddings``."""
    e = np.asarray(embeddings, np.float64)
    norms = np.linalg.norm(e, axis=1, keepdims=True)
    unit = np.divide(e, norms, out=np.zeros_like(e), where=norms > 0)
    return unit @ unit.T


def upper_pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays ``(i, j)`` of all unordered pairs ``i < j`` of ``n`` items, row-major."""
    return np.triu_indices(n, k=1)
