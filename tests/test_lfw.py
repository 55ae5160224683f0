"""LFW protocol pieces on hand-made cases: pairs.txt, folds and thresholds, alignment."""

from __future__ import annotations

import numpy as np
import pytest

from nnasim.analysis import lfw
from nnasim.analysis.align import (
    ARCFACE_TEMPLATE_112,
    align_face,
    five_points,
    similarity_transform,
    warp_affine,
)
from nnasim.errors import DataError

PAIRS = """2\t2
Ann\t1\t2
Bob\t1\t3
Ann\t1\tBob\t2
Cy\t4\tAnn\t2
Cy\t1\t2
Dee\t2\t3
Bob\t1\tDee\t1
Ann\t2\tCy\t3
"""


def write(tmp_path, text: str):
    path = tmp_path / "pairs.txt"
    path.write_text(text)
    return path


def test_read_pairs_official_format(tmp_path):
    pairs = lfw.read_pairs(write(tmp_path, PAIRS))
    assert [p.fold for p in pairs] == [1, 1, 1, 1, 2, 2, 2, 2]
    assert [p.same for p in pairs] == [True, True, False, False] * 2
    assert pairs[0] == lfw.Pair(1, "Ann_0001.jpg", "Ann_0002.jpg", True)
    assert pairs[3] == lfw.Pair(1, "Cy_0004.jpg", "Ann_0002.jpg", False)
    assert pairs[7] == lfw.Pair(2, "Ann_0002.jpg", "Cy_0003.jpg", False)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("two folds\n", r"pairs.txt:1: expected the header"),
        ("2\t2\nAnn\t1\t2\n", r"promises 2 folds x 2 x 2 = 8 pairs, found 1"),
        (PAIRS.replace("Bob\t1\t3", "Bob\t1\tEve\t3"), r"pairs.txt:3: expected 'name i j' \(same person\)"),
        (PAIRS.replace("Cy\t4\tAnn\t2", "Cy\t4\t2"), r"pairs.txt:5: expected 'name1 i name2 j'"),
        (PAIRS.replace("Dee\t2\t3", "Dee\t0\t3"), r"pairs.txt:7:"),
    ],
)
def test_read_pairs_names_file_and_line(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        lfw.read_pairs(write(tmp_path, text))


def test_select_pairs_keeps_both_kinds_per_fold(tmp_path):
    pairs = lfw.read_pairs(write(tmp_path, PAIRS))
    chosen = lfw.select_pairs(pairs, folds=[2], limit=1)
    assert [(p.fold, p.same, p.first) for p in chosen] == [
        (2, True, "Cy_0001.jpg"),
        (2, False, "Bob_0001.jpg"),
    ]
    assert len(lfw.select_pairs(pairs)) == 8


def test_locate_image_flat_or_per_person(tmp_path):
    (tmp_path / "Ann").mkdir()
    (tmp_path / "Ann" / "Ann_0001.jpg").write_bytes(b"")
    (tmp_path / "Bob_0001.jpg").write_bytes(b"")
    assert lfw.locate_image(tmp_path, "Ann_0001.jpg") == "Ann/Ann_0001.jpg"
    assert lfw.locate_image(tmp_path, "Bob_0001.jpg") == "Bob_0001.jpg"
    with pytest.raises(DataError, match="no image Cy_0001.jpg"):
        lfw.locate_image(tmp_path, "Cy_0001.jpg")


def test_accuracy_threshold_is_the_midpoint_of_the_best_gap():
    scores = np.array([0.1, 0.2, 0.8, 0.9])
    same = np.array([False, False, True, True])
    assert lfw.accuracy_threshold(scores, same) == pytest.approx(0.5)
    # one different pair above two same pairs: best is to accept 0.7 and up (3/4 right), lowest wins the tie
    scores = np.array([0.1, 0.9, 0.7, 0.8])
    same = np.array([False, False, True, True])
    assert lfw.accuracy_threshold(scores, same) == pytest.approx(0.4)


def test_fold_threshold_comes_from_the_other_folds():
    # fold 1 separates at 0.5 (midpoint of 0.4 and 0.6); fold 2 at 0.3 (of 0.25 and 0.35).
    scores = np.array([0.6, 0.7, 0.2, 0.4, 0.35, 0.5, 0.1, 0.25])
    same = np.array([True, True, False, False] * 2)
    folds = np.array([1, 1, 1, 1, 2, 2, 2, 2])
    result = lfw.fold_accuracy(scores, same, folds)
    assert result.thresholds == pytest.approx((0.3, 0.5))  # each fold gets the other one's
    # fold 1 at 0.3: 0.4 (different) accepted -> 3/4; fold 2 at 0.5: 0.35 (same) rejected -> 3/4
    assert result.accuracies == (0.75, 0.75)
    assert result.accepted.tolist() == [True, True, False, True, False, True, False, False]
    one = lfw.fold_accuracy(scores[:4], same[:4], folds[:4])
    assert one.accuracies == (1.0,)


def test_verification_summary_tar_at_far():
    scores = np.array([0.9, 0.8, 0.3, 0.7, 0.2, 0.1])
    same = np.array([True, True, True, False, False, False])
    folds = np.ones(6, int)
    summary = lfw.verification_summary(scores, same, folds)
    # FAR <= 1e-2 admits no different pair: threshold above 0.7 accepts 0.9, 0.8 -> TAR 2/3
    assert summary["TAR@FAR=0.01"] == pytest.approx(2 / 3)
    assert summary["accuracy"] == pytest.approx(5 / 6)


# ---------------------------------------------------------------------------------------------
# Alignment


def similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx], [scale * np.sin(a), scale * np.cos(a), ty]])


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def test_similarity_transform_recovers_a_known_similarity():
    truth = similarity(12.0, 1.37, -20.5, 8.25)
    source = np.array([[100.0, 120.0], [150.0, 118.0], [126.0, 150.0], [105.0, 175.0], [148.0, 176.0]])
    matrix = similarity_transform(source, apply(truth, source))
    np.testing.assert_allclose(matrix, truth, atol=1e-9)


def test_similarity_transform_least_squares_against_umeyama():
    """Noisy points: the linear least-squares fit equals Umeyama's closed form (no reflection)."""
    rng = np.random.default_rng(5)
    source = rng.uniform(50, 200, (5, 2))
    target = ARCFACE_TEMPLATE_112 + rng.normal(0, 2.0, (5, 2))
    matrix = similarity_transform(source, target)
    mu_s, mu_t = source.mean(0), target.mean(0)
    s_c, t_c = source - mu_s, target - mu_t
    u, d, vt = np.linalg.svd(t_c.T @ s_c / len(source))
    sign = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ sign @ vt
    scale = np.trace(np.diag(d) @ sign) / (s_c**2).sum(axis=1).mean()
    expected = np.column_stack([scale * rotation, mu_t - scale * rotation @ mu_s])
    np.testing.assert_allclose(matrix, expected, atol=1e-9)


def test_five_points_from_68():
    points = np.zeros((68, 2))
    points[36:42] = [[10, 20], [12, 20], [14, 20], [10, 22], [12, 22], [14, 22]]
    points[42:48] = [[30, 20]] * 6
    points[30], points[48], points[54] = [22, 30], [15, 40], [29, 41]
    np.testing.assert_array_equal(five_points(points), [[12, 21], [30, 20], [22, 30], [15, 40], [29, 41]])


def test_warp_identity_and_integer_shift_are_exact():
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    identity = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    assert np.array_equal(warp_affine(image, identity, (24, 20)), image)
    shift = np.array([[1.0, 0.0, -3.0], [0.0, 1.0, -2.0]])  # output(x, y) = input(x + 3, y + 2)
    shifted = warp_affine(image, shift, (21, 18))
    assert np.array_equal(shifted[:, :21][:18], image[2:20, 3:24])


def test_align_face_puts_the_landmarks_on_the_template():
    """Dots drawn at the five points of a rotated, scaled face land on the 112x112 template."""
    truth = similarity(-15.0, 2.1, 40.0, 30.0)  # template -> photo
    points5 = apply(truth, ARCFACE_TEMPLATE_112)
    landmarks = np.zeros((68, 2))
    landmarks[36:42], landmarks[42:48] = points5[0], points5[1]
    landmarks[30], landmarks[48], landmarks[54] = points5[2], points5[3], points5[4]
    photo = np.zeros((320, 320, 3), np.uint8)
    for x, y in np.rint(points5).astype(int):
        photo[y - 2 : y + 3, x - 2 : x + 3] = 255
    aligned = align_face(photo, landmarks)
    assert aligned.shape == (112, 112, 3)
    for x, y in ARCFACE_TEMPLATE_112:
        assert aligned[int(round(y)), int(round(x)), 0] > 100
    assert aligned[5, 5, 0] == 0 and aligned[100, 56, 0] == 0
