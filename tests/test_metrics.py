"""Metric functions against cases worked out by hand (the numbers in comments are the working)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnasim.analysis import metrics as m


def test_set_agreement_splits_samples_into_the_talks_sets():
    right_fp32 = np.array([1, 1, 0, 1, 0], bool)
    right_int8 = np.array([1, 0, 1, 1, 0], bool)
    agree = m.set_agreement(right_fp32, right_int8)
    assert agree.a == (0, 1, 3)
    assert agree.b == (0, 2, 3)
    assert agree.both == (0, 3)
    assert agree.only_a == (1,)
    assert agree.only_b == (2,)
    assert agree.overlap == pytest.approx(2 / 4)  # |A∩B| / |A∪B| = 2 / {0,1,2,3}


def test_set_agreement_of_two_empty_sets_is_full_overlap():
    assert m.set_agreement(np.zeros(3, bool), np.zeros(3, bool)).overlap == 1.0


def test_topk_correct_by_hand_and_ties_go_to_lower_index():
    logits = np.array([[0.1, 0.5, 0.4], [0.3, 0.2, 0.5]])
    labels = np.array([2, 0])
    assert m.topk_correct(logits, labels, 1).tolist() == [False, False]  # argmax 1 and 2
    assert m.topk_correct(logits, labels, 2).tolist() == [True, True]  # {1,2} and {2,0}
    assert m.topk_accuracy(logits, labels, 2) == 1.0
    assert m.topk_correct(np.array([[1.0, 1.0, 0.0]]), np.array([1]), 1).tolist() == [False]


def test_iou_matrix_by_hand():
    a = np.array([[0, 0, 2, 2], [0, 0, 1, 1]])
    b = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6]])
    expected = np.array([[1 / 7, 1.0, 0.0], [0.0, 1 / 4, 0.0]])  # 1/(4+4-1); 1/4 for nested box
    np.testing.assert_allclose(m.iou_matrix(a, b), expected)
    assert m.iou_matrix(np.zeros((1, 4)), np.zeros((1, 4)))[0, 0] == 0.0  # empty union
    assert m.iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)


def test_match_boxes_is_greedy_on_iou_not_on_reference_order():
    ref = np.array([[0, 0, 10, 10], [3, 0, 13, 10]])
    test = np.array([[0, 0, 10, 6], [2, 0, 12, 10], [50, 50, 60, 60]])
    # IoUs: ref0-test0 60/100 = .6, ref0-test1 80/120 = .667, ref1-test1 90/110 = .818,
    # ref1-test0 42/118 = .356. Greedy takes (1,1) first, so ref0 must settle for test0.
    match = m.match_boxes(ref, test, iou_threshold=0.5)
    assert match.pairs == ((1, 1), (0, 0))
    np.testing.assert_allclose(match.ious, [90 / 110, 0.6])
    assert match.unmatched_ref == ()
    assert match.unmatched_test == (2,)


def test_match_boxes_respects_threshold():
    match = m.match_boxes(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 6]]), iou_threshold=0.7)
    assert match.pairs == () and match.unmatched_ref == (0,) and match.unmatched_test == (0,)


def _box(x: float) -> list[float]:
    return [x, 0, x + 10, 10]


def test_average_precision_all_point_interpolation_by_hand():
    gt = [np.array([_box(0), _box(100)])]
    dets = [np.array([_box(0), _box(1), _box(100)])]  # TP, duplicate of the first (FP), TP
    scores = [np.array([0.9, 0.8, 0.7])]
    # precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1; envelope 1 then 2/3 -> .5*1 + .5*2/3
    assert m.average_precision(dets, scores, gt) == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_average_precision_ranks_across_images_and_counts_unfound_truth():
    gt = [np.array([_box(0), _box(100)]), np.array([_box(0)]), np.zeros((0, 4))]
    dets = [np.array([_box(0), _box(100)]), np.zeros((0, 4)), np.array([_box(0)])]
    scores = [np.array([0.9, 0.7]), np.zeros(0), np.array([0.8])]
    # ranked: TP(.9), FP(.8, image without truth), TP(.7); 3 truths -> recall 1/3, 1/3, 2/3
    # precision 1, 1/2, 2/3 -> AP = 1/3 * 1 + 1/3 * 2/3
    assert m.average_precision(dets, scores, gt) == pytest.approx(1 / 3 + 2 / 9)


def test_average_precision_perfect_and_empty_cases():
    gt = [np.array([_box(0), _box(50)])]
    assert m.average_precision(gt, [np.array([0.5, 0.6])], gt) == pytest.approx(1.0)
    assert math.isnan(m.average_precision([np.zeros((0, 4))], [np.zeros(0)], [np.zeros((0, 4))]))
    assert m.average_precision([np.zeros((0, 4))], [np.zeros(0)], gt) == 0.0


SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
SAME = np.array([1, 0, 1, 0, 0], bool)


def test_roc_curve_by_hand():
    far, tar, thresholds = m.roc_curve(SCORES, SAME)
    np.testing.assert_allclose(thresholds, [np.inf, 0.9, 0.8, 0.7, 0.6, 0.5])
    np.testing.assert_allclose(tar, [0, 0.5, 0.5, 1, 1, 1])
    np.testing.assert_allclose(far, [0, 0, 1 / 3, 1 / 3, 2 / 3, 1])


@pytest.mark.parametrize("seed", range(20))
def test_roc_curve_counts_the_pairs_at_or_above_each_threshold(seed):
    """Against the definition, one threshold at a time: ties, repeated scores, one class empty."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    scores = np.round(rng.standard_normal(n), int(rng.integers(0, 3)))
    same = rng.random(n) < (0.0 if seed == 0 else 1.0 if seed == 1 else rng.random())
    far, tar, thresholds = m.roc_curve(scores, same)
    assert thresholds[0] == np.inf and np.all(np.diff(thresholds) < 0)
    for f, t, threshold in zip(far, tar, thresholds, strict=True):
        accepted = scores >= threshold
        expected_tar = accepted[same].sum() / same.sum() if same.any() else np.nan
        expected_far = accepted[~same].sum() / (~same).sum() if (~same).any() else np.nan
        assert np.array_equal([t, f], [expected_tar, expected_far], equal_nan=True)


def test_tar_at_far_picks_the_best_allowed_point():
    assert m.tar_at_far(SCORES, SAME, 1e-2) == (0.5, 0.9)  # only FAR 0 allowed
    assert m.tar_at_far(SCORES, SAME, 0.34) == (1.0, 0.7)  # FAR 1/3 allowed


def test_roc_auc_is_the_probability_same_beats_different():
    # same 0.9 beats 3 different pairs, same 0.7 beats 2 of 3 -> 5/6
    assert m.roc_auc(SCORES, SAME) == pytest.approx(5 / 6)


def test_best_threshold_maximises_tar_minus_far_between_scores():
    # TAR - FAR: 0, .5, .17, .67, .33, 0 -> accept down to 0.7; midpoint with 0.6
    assert m.best_threshold(SCORES, SAME) == pytest.approx(0.65)


def test_sqnr_by_hand_and_extremes():
    assert m.sqnr_db(np.array([3.0, 4.0]), np.array([3.0, 5.0])) == pytest.approx(10 * math.log10(25))
    assert m.sqnr_db(np.ones(3), np.ones(3)) == math.inf
    assert m.sqnr_db(np.zeros(3), np.ones(3)) == -math.inf


def test_error_measures_by_hand():
    ref, test = np.array([3.0, 4.0]), np.array([3.0, 5.0])
    assert m.max_abs_error(ref, test) == 1.0
    assert m.relative_l2_error(ref, test) == pytest.approx(1 / 5)
    assert m.relative_l2_error(ref, ref) == 0.0


def test_cosine_similarity_and_pairwise():
    assert float(m.cosine_similarity(np.array([1.0, 0.0]), np.array([1.0, 1.0]))) == pytest.approx(
        1 / math.sqrt(2)
    )
    rows = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    h = 1 / math.sqrt(2)
    np.testing.assert_allclose(m.pairwise_cosine(rows), [[1, 0, h], [0, 1, h], [h, h, 1]])
    i, j = m.upper_pairs(3)
    assert list(zip(i.tolist(), j.tolist(), strict=True)) == [(0, 1), (0, 2), (1, 2)]
