"""`nnasim compare` on the trained models and real photos of ../shared (skipped when absent)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from oracles import ort_run, shared_model
from report_checks import assert_nontrivial_png

from nnasim.cli import main
from nnasim.io.data import load_images, persons_of, preprocessing_for


@pytest.fixture(scope="module")
def embed_report(tmp_path_factory, shared_dir):
    model = shared_model("mobilefacenet")
    out = tmp_path_factory.mktemp("embed") / "report"
    data = shared_dir / "images" / "aligned"
    assert (
        main(
            ["compare", str(model), "--task", "embed", "--data", str(data), "--bits", "32,8", "-o", str(out)]
        )
        == 0
    )
    return {"out": out, "model": model, "data": data, "json": json.loads((out / "report.json").read_text())}


def test_fp32_embeddings_separate_people_as_sources_md_says(embed_report):
    fp32 = embed_report["json"]["embed"]["configs"]["fp32"]["verification"]
    assert fp32["pairs_same"] == 12 and fp32["pairs_different"] == 66  # 5 people, 13 photos
    assert fp32["same_min"] >= 0.55, "same person: cosine about 0.6 and above"
    assert fp32["different_max"] <= 0.25, "different people: about 0.2 and below"
    assert fp32["TAR@FAR=0.001"] == 1.0 and fp32["AUC"] == 1.0


def test_fp32_similarities_match_onnxruntime(embed_report):
    samples = load_images(embed_report["data"]).samples
    preprocess = preprocessing_for(embed_report["model"])
    rows = [
        ort_run(embed_report["model"], {"input": preprocess(s.image, (1, 3, 112, 112))})[0][0]
        for s in samples
    ]
    unit = np.array(rows) / np.linalg.norm(rows, axis=1, keepdims=True)
    reported = np.array(embed_report["json"]["embed"]["configs"]["fp32"]["similarity"])
    np.testing.assert_allclose(reported, unit @ unit.T, atol=1e-4)
    names = [s.name for s in samples]
    assert embed_report["json"]["embed"]["persons"] == persons_of(names)


def test_int8_embeddings_move_but_stay_recognisable(embed_report):
    int8 = embed_report["json"]["embed"]["configs"]["int8"]
    cosines = np.array(int8["cosine_to_fp32"])
    assert np.all(cosines < 0.9999) and np.all(cosines > 0.5)
    layers = embed_report["json"]["layers"]["int8"]
    assert [row["sqnr_db"] for row in layers] == sorted(
        row["sqnr_db"] for row in layers
    )  # ranked, worst first


def test_embed_figures_exist_and_are_not_blank(embed_report):
    for name in ("heatmap_fp32.png", "heatmap_int8.png", "roc.png", "layer_sqnr.png"):
        assert_nontrivial_png(embed_report["out"] / name)
    text = (embed_report["out"] / "report.md").read_text()
    assert "![heatmap_int8](heatmap_int8.png)" in text and "TAR@FAR=0.01" in text


def test_detection_report_on_crowds(tmp_path, shared_dir):
    model = shared_model("ultraface-rfb-320")
    out = tmp_path / "report"
    data = shared_dir / "images" / "crowds"
    args = ["compare", str(model), "--task", "detect", "--data", str(data), "--limit", "2", "--bits", "32,16"]
    assert main([*args, "-o", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())["detect"]
    faces = report["faces"]
    assert len(faces) == report["summary"]["fp32"]["detections"] > 10
    assert all(f["score"]["fp32"] >= 0.7 for f in faces)
    int16 = report["summary"]["int16"]
    assert int16["matched"] + int16["missed"] == len(faces)
    assert int16["conf rel err mean"] < 1e-2  # 16 bits barely moves the confidences
    assert int16["AP vs fp32"] > 0.95
    assert_nontrivial_png(out / "relative_error.png")
    assert "relative error graph" in (out / "report.md").read_text()
