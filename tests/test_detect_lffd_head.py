"""The trained LFFD head detector's decoding (four branches, official predict.py) on hand-made maps."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nnasim.analysis.detect import LFFD_HEAD, decode_lffd_head, decoder_for, official_lffd_nms
from nnasim.cli import main
from nnasim.ir import Graph

# branch 0 of the head model: receptive field 20 (constant 10), stride 4, first centre at 3
SHAPES = {0: (3, 4), 1: (2, 2), 2: (1, 1), 3: (1, 1)}


def empty_outputs() -> dict[str, np.ndarray]:
    outputs = {}
    for branch, (h, w) in SHAPES.items():
        outputs[f"score_{branch}"] = np.zeros((1, 1, h, w), np.float32)
        outputs[f"bbox_{branch}"] = np.zeros((1, 4, h, w), np.float32)
    return outputs


def with_cell(outputs, branch, row, col, score, offsets):
    outputs[f"score_{branch}"][0, 0, row, col] = score
    outputs[f"bbox_{branch}"][0, :, row, col] = offsets
    return outputs


def test_one_cell_decodes_to_the_receptive_field_box():
    # centre (3 + 4*2, 3 + 4*1) = (11, 7); x1 = 11 - 0.5*10, y1 = 7 - 0.4*10, x2 = 11 + 5, y2 = 7 + 6
    outputs = with_cell(empty_outputs(), 0, 1, 2, 0.9, [0.5, 0.4, -0.5, -0.6])
    dets = decode_lffd_head(outputs, (64, 48), (64, 48), 0.5)
    np.testing.assert_allclose(dets.boxes, [[6.0, 3.0, 16.0, 13.0]], atol=1e-6)
    np.testing.assert_allclose(dets.scores, [0.9], atol=1e-6)


def test_branch_constants_and_scaling_to_the_image():
    # branch 2: RF 80 (constant 40), stride 16, start 15 -> centre (15, 15); box (15-40, 15-20, 15+40, 15+20)
    outputs = with_cell(empty_outputs(), 2, 0, 0, 0.8, [1.0, 0.5, -1.0, -0.5])
    dets = decode_lffd_head(outputs, (64, 48), (128, 96), 0.5)  # image twice the input
    # corners scaled by 2, then clipped one by one: x1 -50 -> 0, y1 -10 -> 0, x2 110, y2 70
    np.testing.assert_allclose(dets.boxes, [[0.0, 0.0, 110.0, 70.0]], atol=1e-6)


def test_threshold_is_strict_and_clipping_keeps_the_far_corners():
    outputs = with_cell(empty_outputs(), 0, 0, 0, 0.5, [0.1, 0.1, -0.1, -0.1])
    outputs = with_cell(outputs, 1, 1, 1, 0.7, [0.1, 0.1, -3.0, -3.0])  # centre (15, 15), RF 40
    dets = decode_lffd_head(outputs, (64, 48), (64, 48), 0.5)
    assert len(dets) == 1  # the 0.5 cell is not above 0.5
    np.testing.assert_allclose(dets.boxes, [[13.0, 13.0, 64.0, 48.0]], atol=1e-6)  # x2 = 75 -> 64, y2 -> 48


def test_official_nms_divides_by_the_lower_box_area():
    boxes = np.array(
        [
            [0, 0, 10, 10],  # A, kept
            [1, 1, 11, 11],  # B: intersection 10x10 (+1 convention) / area 100 = 1.0 -> suppressed
            [2, 2, 4, 4],  # C inside A: 3x3 / 4 = 2.25 -> suppressed, although its IoU with A is 0.04
            [5, 0, 15, 10],  # D: 6x11 / 100 = 0.66 > 0.6 -> suppressed
            [7, 0, 17, 10],  # E: 4x11 / 100 = 0.44 -> kept
            [40, 40, 50, 50],  # F: far away, kept
        ],
        np.float64,
    )
    scores = np.array([0.9, 0.8, 0.7, 0.65, 0.6, 0.5])
    assert official_lffd_nms(boxes, scores, 0.6).tolist() == [0, 4, 5]
    # order by score, not by index
    assert official_lffd_nms(boxes[[5, 0]], np.array([0.5, 0.9]), 0.6).tolist() == [1, 0]


def test_decoder_is_recognised_by_output_names():
    outputs = [f"{k}_{i}" for i in range(4) for k in ("score", "bbox")]
    graph = Graph(name="head", nodes=(), tensors={}, inputs=("input",), outputs=tuple(outputs))
    assert decoder_for(graph) is LFFD_HEAD
    assert LFFD_HEAD.default_threshold == 0.5


def test_compare_detect_runs_the_trained_head_model(shared_dir, tmp_path):
    """fp32 through nnasim's executor decodes to onnxruntime's boxes; compare writes the 8-bit analysis."""
    from oracles import ort_run
    from PIL import Image

    from nnasim.io.data import preprocessing_for
    from nnasim.ir.execute import run_float
    from nnasim.quant.qdq import load_any

    model = shared_dir / "models" / "lffd-head-240x320.onnx"
    photo = np.asarray(Image.open(shared_dir / "images" / "heads" / "342.jpg").convert("RGB"))
    graph = load_any(str(model))
    feed = {graph.inputs[0]: preprocessing_for(model)(photo, graph.shape(graph.inputs[0]))}
    ours = decode_lffd_head(run_float(graph, feed), (320, 240), (640, 480), 0.5)
    names = [f"{k}_{i}" for i in range(4) for k in ("score", "bbox")]
    theirs = decode_lffd_head(
        dict(zip(names, ort_run(model, feed), strict=True)), (320, 240), (640, 480), 0.5
    )
    assert len(ours) == len(theirs) > 0
    np.testing.assert_allclose(ours.boxes, theirs.boxes, atol=1e-3)
    out = tmp_path / "heads"
    argv = ["compare", str(model), "--task", "detect", "--data", str(shared_dir / "images" / "heads")]
    assert main([*argv, "--bits", "32,8", "--limit", "3", "-o", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["detect"]["decoder"] == "lffd-head"
    assert report["preprocessing"].startswith("BGR, (x-0)*1")
    summary = report["detect"]["summary"]["int8"]
    assert summary["matched"] + summary["missed"] == report["detect"]["summary"]["fp32"]["detections"]
    assert 0.0 <= summary["AP vs fp32"] <= 1.0
    assert (out / "relative_error.png").exists()


@pytest.mark.parametrize("bad", ["score_0", "bbox_3"])
def test_missing_branch_is_not_taken_for_a_head_model(bad):
    from nnasim.errors import ModelError

    outputs = [n for n in (f"{k}_{i}" for i in range(4) for k in ("score", "bbox")) if n != bad]
    graph = Graph(name="head", nodes=(), tensors={}, inputs=("input",), outputs=tuple(outputs))
    with pytest.raises(ModelError, match="score_0..score_3"):
        decoder_for(graph)
