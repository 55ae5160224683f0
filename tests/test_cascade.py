"""`nnasim cascade`: crop, identification, correspondence and weakest link by hand; a small real run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from oracles import shared_model
from report_checks import assert_nontrivial_png

from nnasim.analysis.cascade import (
    UNKNOWN,
    FaceCrops,
    Reference,
    correspond,
    grid_cell,
    identify,
    square_crop,
    weakest_link,
)
from nnasim.analysis.verify import Faces, analyse_embeddings
from nnasim.cli import main

GRADIENT = (np.arange(100).reshape(10, 10, 1) * np.ones((1, 1, 3))).astype(np.uint8)


def test_square_crop_by_hand():
    np.testing.assert_array_equal(
        square_crop(GRADIENT, np.array([2, 2, 6, 6]), 0.0, (4, 4)), GRADIENT[2:6, 2:6]
    )
    # margin 1 doubles the side around the centre (4, 4): pixels 0..7
    np.testing.assert_array_equal(
        square_crop(GRADIENT, np.array([2, 2, 6, 6]), 1.0, (8, 8)), GRADIENT[0:8, 0:8]
    )
    # a non-square box uses the mean side: 2x6 box -> side 4 around (5, 5)
    np.testing.assert_array_equal(
        square_crop(GRADIENT, np.array([4, 2, 6, 8]), 0.0, (4, 4)), GRADIENT[3:7, 3:7]
    )
    outside = square_crop(GRADIENT, np.array([8, 8, 12, 12]), 0.0, (4, 4))
    np.testing.assert_array_equal(outside[:2, :2], GRADIENT[8:10, 8:10])
    assert not outside[2:].any() and not outside[:, 2:].any()  # beyond the photo: black


def _faces(images, persons, boxes=None) -> FaceCrops:
    boxes = np.array(boxes if boxes is not None else [[0, 0, 10, 10]] * len(images), float)
    return FaceCrops(list(images), boxes, list(persons), [np.zeros((2, 2, 3), np.uint8)] * len(images))


FACES = _faces(["a1.jpg", "a2.jpg", "b1.jpg", "group.jpg"], ["alice", "alice", "bob", None])
SIMILARITY = np.array(
    [
        [1.0, 0.8, 0.3, 0.4],
        [0.8, 1.0, 0.2, 0.45],
        [0.3, 0.2, 1.0, 0.6],
        [0.4, 0.45, 0.6, 1.0],
    ]
)


def test_identify_takes_the_best_labelled_face_of_another_photo():
    # a1 -> a2 (.8); a2 -> a1 (.8); b1's best other labelled face is a1 (.3) < .5; group -> b1 (.6)
    assert identify(SIMILARITY, FACES, 0.5) == ["alice", "alice", UNKNOWN, "bob"]
    assert identify(SIMILARITY, FACES, 0.25) == ["alice", "alice", "alice", "bob"]


def test_faces_of_the_same_photo_are_not_each_others_gallery():
    faces = _faces(["p.jpg", "p.jpg"], ["alice", "alice"])
    assert identify(np.ones((2, 2)), faces, 0.0) == [UNKNOWN, UNKNOWN]


def test_correspond_matches_faces_within_each_photo_by_iou():
    ref = _faces(["x.jpg", "x.jpg", "y.jpg"], [None] * 3, [[0, 0, 10, 10], [50, 0, 60, 10], [0, 0, 10, 10]])
    now = _faces(["x.jpg", "y.jpg", "x.jpg"], [None] * 3, [[51, 0, 61, 10], [30, 30, 40, 40], [0, 0, 10, 9]])
    assert correspond(ref, now) == {0: 2, 1: 0}  # y.jpg's face moved away: no match


def test_grid_cell_counts_changed_decisions_lost_and_new_faces():
    embeddings = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    ref_faces = _faces(["a1.jpg", "a2.jpg", "b1.jpg"], ["alice", "alice", "bob"])
    ref = Reference.of(ref_faces, embeddings)
    # fp32 decisions: a1 <-> a2 alike (cos .99), b1 alone: alice, alice, unknown
    assert ref.decisions == ["alice", "alice", UNKNOWN]
    same = grid_cell(ref, ref_faces, embeddings, {0: 0, 1: 1, 2: 2})
    assert same["decisions_changed"] == 0 and same["cos_to_fp32_mean"] == pytest.approx(1.0)
    # now a2's face is lost, and a new face appears in b1.jpg looking like a1
    now = _faces(
        ["a1.jpg", "b1.jpg", "b1.jpg"], ["alice", "bob", None], [[0, 0, 10, 10], [0, 0, 10, 10], [50] * 4]
    )
    moved = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.05]])
    cell = grid_cell(ref, now, moved, {0: 0, 2: 1})
    changes = {(c["face"], c["fp32 cascade"], c["now"]) for c in cell["changes"]}
    assert changes == {
        ("a1.jpg#1", "alice", UNKNOWN),  # its only match (a2) is gone; the b1.jpg look-alike is unlabelled
        ("a2.jpg#1", "alice", "(face not detected)"),
        ("b1.jpg#2", "(no such face)", "alice"),
    }
    assert cell["decisions_changed"] == 3
    assert cell["pair_flips"] == 1  # a1-a2 was accepted; a2 is lost


def test_weakest_link_is_the_single_stage_that_changes_most():
    def cell(changed, cos):
        return {"decisions_changed": changed, "cos_to_fp32_mean": cos}

    cells = {
        "fp32/fp32": cell(0, 1.0),
        "fp32/int8": cell(3, 0.85),
        "int8/fp32": cell(1, 0.95),
        "int8/int8": cell(5, 0.8),
    }
    weak = weakest_link(cells, ["fp32", "int8"], ["fp32", "int8"])
    assert (weak["stage"], weak["config"], weak["cell"]) == ("verifier", "int8", "fp32/int8")
    cells["int8/fp32"] = cell(3, 0.7)  # a tie on decisions goes to the lower cosine
    assert weakest_link(cells, ["fp32", "int8"], ["fp32", "int8"])["stage"] == "detector"
    assert weakest_link({"fp32/fp32": cell(0, 1)}, ["fp32"], ["fp32"])["stage"] is None


def test_small_real_cascade_writes_the_grid_report(tmp_path, shared_dir):
    detector, verifier = shared_model("ultraface-rfb-320"), shared_model("mobilefacenet")
    out = tmp_path / "report"
    args = ["cascade", "--detector", str(detector), "--verifier", str(verifier), "--data"]
    args += [str(shared_dir / "images" / "faces"), "--limit", "4", "--bits-detector", "32,8"]
    assert main([*args, "--bits-verifier", "32,8", "-o", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    cells = report["grid"]["cells"]
    assert sorted(cells) == ["fp32/fp32", "fp32/int8", "int8/fp32", "int8/int8"]
    reference = cells["fp32/fp32"]
    assert reference["decisions_changed"] == 0 and reference["cos_to_fp32_mean"] == pytest.approx(1.0)
    assert reference["faces"] >= 4  # every portrait has a face
    assert 0.3 < cells["fp32/int8"]["cos_to_fp32_mean"] < 0.9999
    assert report["grid"]["weakest_link"]["stage"] in ("detector", "verifier")
    text = (out / "report.md").read_text()
    assert "Weakest link" in text
    for name in ("cascade_decisions.png", "det-int8_heatmap_int8.png", "det-fp32_roc.png"):
        assert_nontrivial_png(out / name)
    parallel = tmp_path / "parallel"  # images, then faces, in two worker processes: the same report
    assert main([*args, "--bits-verifier", "32,8", "-o", str(parallel), "--workers", "2"]) == 0
    assert json.loads((parallel / "report.json").read_text()) == report


def test_a_detector_that_finds_no_face_gives_an_empty_section_not_a_crash():
    empty = np.zeros((0, 128), np.float32)
    section = analyse_embeddings({"fp32": empty, "int8": empty}, Faces([], []))
    assert section.figures == {} and section.markdown == "No faces to compare.\n"


@pytest.mark.parametrize(("option", "message"), [("--margin=-1", "--margin -1"), ("--limit=0", "--limit 0")])
def test_cascade_rejects_bad_options_before_loading_anything(tmp_path, capsys, option, message):
    args = ["cascade", "--detector", "missing.onnx", "--verifier", "missing.onnx", "--data", str(tmp_path)]
    assert main([*args, option, "-o", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("option", ["--bits-detector", "--bits-verifier"])
def test_a_bad_stage_width_names_its_option(option, tmp_path, capsys):
    args = ["cascade", "--detector", "tinynet", "--verifier", "tinynet", "--data", str(tmp_path)]
    assert main([*args, option, "32,4", "-o", str(tmp_path / "report")]) == 2
    assert f"{option} '32,4'" in capsys.readouterr().err
