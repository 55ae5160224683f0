"""`nnasim compare --task classify` end to end on the zoo's tinynet with generated images.

fp32 results are checked against onnxruntime on the same inputs; the quantized sets against
the integer engine's own predictions; the sets must partition the samples as the talk defines.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from oracles import ort_run
from PIL import Image
from report_checks import assert_nontrivial_png

from nnasim.cli import main
from nnasim.engine.session import build_session
from nnasim.frontend import load_lowered
from nnasim.io.data import load_images, preprocessing_for
from nnasim.models import zoo

IMAGES = 12


@pytest.fixture(scope="module")
def tinynet(tmp_path_factory):
    """tinynet as an ONNX file, generated images in class folders, and onnxruntime's predictions."""
    root = tmp_path_factory.mktemp("tinynet")
    model_path = root / "tinynet.onnx"
    onnx.save(zoo.build("tinynet"), model_path)
    rng = np.random.default_rng(5)
    images = []
    for _ in range(IMAGES):
        tint = rng.integers(0, 256, 3)
        images.append(np.clip(tint + rng.normal(0, 60, (32, 32, 3)), 0, 255).astype(np.uint8))
    preprocess = preprocessing_for(model_path)
    predicted = [
        int(np.argmax(ort_run(model_path, {"input": preprocess(im, (1, 3, 32, 32))})[0])) for im in images
    ]
    # label most images with onnxruntime's class, three with another one: fp32 Top-1 must be 9/12
    labels = [p if k % 4 else (p + 1) % 10 for k, p in enumerate(predicted)]
    data = root / "data"
    for k, (image, label) in enumerate(zip(images, labels, strict=True)):
        (data / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(data / str(label) / f"img{k:02d}.png")
    return {"model": model_path, "data": data}


def images_names(data) -> list[str]:
    return [s.name for s in load_images(data).samples]


def run_compare(tinynet, out, *extra) -> int:
    args = [
        "compare",
        str(tinynet["model"]),
        "--task",
        "classify",
        "--data",
        str(tinynet["data"]),
        "-o",
        str(out),
    ]
    return main([*args, "--bits", "32,8", *extra])


def test_classify_report_matches_onnxruntime_and_the_sets_partition_the_images(tinynet, tmp_path):
    out = tmp_path / "report"
    assert run_compare(tinynet, out) == 0
    report = json.loads((out / "report.json").read_text())
    fp32, int8 = report["classify"]["fp32"], report["classify"]["int8"]
    assert fp32["top1"] == pytest.approx(9 / IMAGES)
    assert fp32["|A|"] == 9 and fp32["|A\\B|"] == 0 and fp32["|B\\A|"] == 0

    samples = load_images(tinynet["data"]).samples
    graph = load_lowered(tinynet["model"])
    preprocess = preprocessing_for(tinynet["model"])
    feeds = [{"input": preprocess(s.image, (1, 3, 32, 32))} for s in samples]
    session = build_session(graph, 8, calib=feeds)
    labels = [int(s.name.split("/")[0]) for s in samples]
    quantized = [int(np.argmax(session.run(f)["probabilities"])) for f in feeds]
    reference = [int(np.argmax(ort_run(tinynet["model"], f)[0])) for f in feeds]
    right_a = {s.name for s, p, y in zip(samples, reference, labels, strict=True) if p == y}
    right_b = {s.name for s, p, y in zip(samples, quantized, labels, strict=True) if p == y}
    assert int8["|B|"] == len(right_b)
    assert int8["|A∩B|"] == len(right_a & right_b)
    assert set(int8["only_fp32_right"]) == right_a - right_b
    assert set(int8["only_quantized_right"]) == right_b - right_a
    assert int8["|A∩B|"] + int8["|A\\B|"] == int8["|A|"] == 9
    changed = {s.name for s, q, r in zip(samples, quantized, reference, strict=True) if q != r}
    assert {f["image"] for f in int8["flipped"]} == changed
    assert_nontrivial_png(out / "agreement.png")
    assert_nontrivial_png(out / "layer_sqnr.png")
    text = (out / "report.md").read_text()
    assert "\\|A∩B\\|" in text and "Per-layer SQNR" in text  # pipes escaped inside the table


def test_labels_csv_takes_precedence_over_folder_names(tinynet, tmp_path):
    names = images_names(tinynet["data"])
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label\n" + "".join(f"{n},0\n" for n in names))
    out = tmp_path / "report"
    assert run_compare(tinynet, out, "--labels", str(labels), "--bits", "32") == 0
    fp32 = json.loads((out / "report.json").read_text())["classify"]["fp32"]
    assert fp32["|A|"] == sum(1 for n in names if n.startswith("0/"))  # only class-0 images are right


def test_existing_report_is_refused_without_force_and_replaced_with_it(tinynet, tmp_path, capsys):
    out = tmp_path / "report"
    assert run_compare(tinynet, out, "--bits", "32") == 0
    (out / "mine.txt").write_text("keep me")
    assert run_compare(tinynet, out, "--bits", "32") == 2
    assert "already exists; use --force" in capsys.readouterr().err
    assert (out / "mine.txt").read_text() == "keep me"
    assert run_compare(tinynet, out, "--bits", "32", "--force") == 0  # nnasim's own folder (its marker)
    names = sorted(p.name for p in out.iterdir())
    assert names == [".nnasim-output", "agreement.png", "report.json", "report.md"]
    assert [p.name for p in tmp_path.iterdir()] == ["report"]  # no temporary folder left behind


def test_limit_and_bad_options_fail_cleanly(tinynet, tmp_path, capsys):
    out = tmp_path / "report"
    assert run_compare(tinynet, out, "--bits", "32", "--limit", "3") == 0
    assert json.loads((out / "report.json").read_text())["images"] == 3
    assert run_compare(tinynet, tmp_path / "r2", "--bits", "32,4") == 2
    assert "--bits" in capsys.readouterr().err
    args = ["compare", str(tinynet["model"]), "--task", "classify", "--data", str(tmp_path / "none")]
    assert main([*args, "-o", str(tmp_path / "r3")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "r2").exists() and not (tmp_path / "r3").exists()


def test_same_inputs_and_options_give_the_same_report(tinynet, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    assert run_compare(tinynet, first) == 0
    assert run_compare(tinynet, second) == 0
    assert (first / "report.json").read_bytes() == (second / "report.json").read_bytes()
    assert (first / "report.md").read_bytes() == (second / "report.md").read_bytes()


def test_detect_task_on_a_model_without_detector_outputs_fails_before_running(tinynet, tmp_path, capsys):
    args = ["compare", str(tinynet["model"]), "--task", "detect", "--data", str(tinynet["data"])]
    assert main([*args, "-o", str(tmp_path / "r")]) == 2
    assert "no detection decoder" in capsys.readouterr().err


def test_lffd_outputs_of_the_zoo_model_are_decoded(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (120, 160, 3)).astype(np.uint8)
    (tmp_path / "data").mkdir()
    Image.fromarray(image).save(tmp_path / "data" / "noise.png")
    out = tmp_path / "report"
    args = ["compare", "lffd@64x64", "--task", "detect", "--data", str(tmp_path / "data"), "--bits", "32"]
    assert main([*args, "--score-threshold", "0.5", "-o", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())["detect"]
    assert report["decoder"] == "lffd" and report["faces"]  # synthetic weights find "faces" in noise
    for face in report["faces"]:
        x1, y1, x2, y2 = face["box"]
        assert face["score"]["fp32"] >= 0.5 and 0 <= x1 < x2 <= 160 and 0 <= y1 < y2 <= 120


def test_terminal_summary_states_the_reports_headline_numbers(tinynet, tmp_path, capsys):
    out = tmp_path / "report"
    assert run_compare(tinynet, out) == 0
    printed = capsys.readouterr()
    report = json.loads((out / "report.json").read_text())
    int8 = report["classify"]["int8"]
    sqnr = report["outputs"]["int8"]["probabilities"]["sqnr_db"]
    line = next(ln for ln in printed.out.splitlines() if ln.strip().startswith("int8:"))
    assert f"output SQNR probabilities {sqnr:.1f} dB" in line
    assert f"top1 {int8['top1']:.3f}" in line and f"{int8['top1 changed']} top-1 flips" in line
    assert printed.err.count(f"nnasim: wrote {out}") == 1  # the report folder named once, on stderr


def test_images_in_worker_processes_give_the_serial_report(tinynet, tmp_path):
    """--workers 2 runs the images in two spawned processes from the parent's calibrated ranges:
    every per-layer error, output figure and saturation count equals the serial run's."""
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    assert run_compare(tinynet, serial, "--bits", "32,16,8") == 0
    assert run_compare(tinynet, parallel, "--bits", "32,16,8", "--workers", "2") == 0
    report = json.loads((serial / "report.json").read_text())
    assert report == json.loads((parallel / "report.json").read_text())
    assert run_compare(tinynet, tmp_path / "bad", "--workers", "0") == 2
