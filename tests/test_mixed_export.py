"""QDQ export of mixed-precision graphs: onnxruntime runs the file and its outputs are close to
nnasim's; ``nnasim mixed`` writes the report and the chosen assignment's QDQ model."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from oracles import ort_run
from PIL import Image
from test_mixed_engine import _branchy_model, _feeds, _random_assignments

from models import tinynet
from nnasim.analysis.compare import input_feeds
from nnasim.cli import main
from nnasim.engine.session import build_session
from nnasim.frontend import load_lowered
from nnasim.io.data import load_images, preprocessing_for
from nnasim.quant.calibrate import calibrate
from nnasim.quant.export_qdq import export_qdq
from nnasim.quant.widths import weighted_layers


def _sqnr(reference, value) -> float:
    noise = float(np.sum((reference.astype(np.float64) - value) ** 2))
    return 10 * np.log10(float(np.sum(reference.astype(np.float64) ** 2)) / max(noise, 1e-30))


@pytest.mark.parametrize(
    ("scheme", "rule"), [("pow2", "pow2"), ("affine", "float32"), ("affine", "fixedpoint")]
)
def test_onnxruntime_runs_the_exported_mixed_graph_close_to_nnasim(tmp_path, scheme, rule):
    graph = load_lowered(_branchy_model())
    feeds = _feeds((1, 3, 8, 8), 3, 2)
    ranges = calibrate(graph, feeds)
    for index, layer_bits in enumerate(_random_assignments(weighted_layers(graph), 3, seed=11)):
        session = build_session(graph, 8, scheme, requant=rule, ranges=ranges, layer_bits=layer_bits)
        path = export_qdq(session.graph, tmp_path / f"mixed{index}.onnx")
        model = onnx.load(str(path))
        int16 = {i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.INT16}
        assert bool(int16) == any(w.startswith("16") for w in layer_bits.values())
        for feed in feeds:
            ours = session.run(feed)["y"]
            theirs = ort_run(model, feed)[0]
            assert _sqnr(ours, theirs) > 40, layer_bits


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(6)
    for index in range(3):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"img{index}.png")
    return folder


def test_mixed_cli_writes_front_and_an_export_onnxruntime_runs(images, tmp_path, capsys):
    out, onnx_path = tmp_path / "report", tmp_path / "chosen.onnx"
    argv = ["mixed", "tinynet", "--hw", "2nx", "--data", str(images), "-o", str(out)]
    assert main([*argv, "--widths", "16,8pc", "--scheme", "affine", "--export", str(onnx_path)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert (out / "mixed_front.png").stat().st_size > 0 and "Pareto front" in (out / "report.md").read_text()
    chosen = report["chosen"]
    assert (
        chosen["sqnr_db"]
        >= 0.9 * next(p for p in report["front"]["points"] if p["label"] == "all 16")["sqnr_db"]
    )
    # the export holds the chosen assignment: rebuilt here from the JSON and the same calibration
    graph = load_lowered(tinynet.build())
    feeds = input_feeds(graph, load_images(images), preprocessing_for("tinynet"))
    session = build_session(graph, 16, "affine", calib=feeds, layer_bits=chosen["layer_bits"])
    for feed in feeds:
        assert _sqnr(session.run(feed)["probabilities"], ort_run(onnx.load(str(onnx_path)), feed)[0]) > 40
    assert main([*argv]) == 2 and "already exists" in capsys.readouterr().err
    assert main([*argv, "-o", str(tmp_path / "r2"), "--widths", "16,12"]) == 2
    assert "unknown layer width '12'" in capsys.readouterr().err
