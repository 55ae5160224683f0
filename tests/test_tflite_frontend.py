"""TFLite frontend: float models against the interpreter, clear errors, every command on .tflite."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tflite_builders import Op, T, write_model
from tflite_oracle import interpreter, shared_tflite

from nnasim.cli import main
from nnasim.errors import ModelError
from nnasim.frontend import load_lowered
from nnasim.ir.execute import run_float


@pytest.mark.parametrize(
    "name", ["blazeface-short-range", "mtcnn-rnet", "mtcnn-onet", "mobilefacenet-192", "blazeface-full-range"]
)
def test_float_model_matches_interpreter(name):
    """fp16-weight (DEQUANTIZE) and float32 files: every output within 1e-5 of the largest value."""
    path = shared_tflite(f"{name}.tflite")
    graph = load_lowered(path)
    it = interpreter(path, reference=False)
    rng = np.random.default_rng(0)
    detail = it.get_input_details()[0]
    x = rng.standard_normal(detail["shape"]).astype(np.float32)
    it.set_tensor(detail["index"], x)
    it.invoke()
    ours = run_float(graph, {graph.inputs[0]: x.transpose(0, 3, 1, 2)})
    for out, name_ir in zip(it.get_output_details(), graph.outputs, strict=True):
        want = it.get_tensor(out["index"])
        got = ours[name_ir]
        got = got.transpose(0, 2, 3, 1) if got.ndim == 4 else got
        assert got.shape == want.shape
        assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


def test_unsupported_ops_are_all_reported_with_file_index_and_tensor(tmp_path):
    tensors = [
        T((1, 4, 4, 3), "FLOAT32"),
        T((1, 4, 4, 3), "FLOAT32", name="squashed"),
        T((1, 4, 4, 3), "FLOAT32"),
    ]
    tensors.append(T((1, 4, 4, 3), "FLOAT32", name="rooted"))
    ops = [Op("TANH", [0], [1]), Op("RELU", [1], [2]), Op("SQRT", [2], [3])]
    path = tmp_path / "two_unsupported.tflite"
    path.write_bytes(write_model(tensors, ops, [0], [3]))
    with pytest.raises(ModelError) as error:
        load_lowered(path)
    message = str(error.value)
    assert str(path) in message and "2 TFLite op(s)" in message
    assert "op 0 TANH (output 'squashed')" in message
    assert "op 2 SQRT (output 'rooted')" in message


def test_a_file_that_is_not_tflite_names_the_file(tmp_path):
    path = tmp_path / "broken.tflite"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError, match="broken.tflite: not a TFLite file"):
        load_lowered(path)


def test_requant_choices_are_the_engine_rules():
    from nnasim.cli.run_cmd import REQUANT_RULES
    from nnasim.kernels.requant import RULES

    assert REQUANT_RULES == RULES


def _tiny_int8_model(tmp_path):
    rng = np.random.default_rng(0)
    weight = rng.integers(-127, 127, (4, 3, 3, 3)).astype(np.int8)
    tensors = [
        T((1, 8, 8, 3), "INT8", 0.05, -3, name="image"),
        T((4, 3, 3, 3), "INT8", [0.01, 0.02, 0.015, 0.03], 0, data=weight),
        T((4,), "INT32", [0.0005, 0.001, 0.00075, 0.0015], 0, data=np.array([10, -20, 30, 0], np.int32)),
        T((1, 8, 8, 4), "INT8", 0.07, 5, name="features"),
    ]
    fields = dict(
        Padding=0, StrideH=1, StrideW=1, DilationHFactor=1, DilationWFactor=1, FusedActivationFunction=1
    )
    path = tmp_path / "tiny_int8.tflite"
    path.write_bytes(write_model(tensors, [Op("CONV_2D", [0, 1, 2], [3], "Conv2DOptions", fields)], [0], [3]))
    return path


def test_cli_info_run_profile_on_tflite(tmp_path, capsys):
    path = _tiny_int8_model(tmp_path)
    assert main(["info", str(path)]) == 0
    assert "conv_2d_0" in capsys.readouterr().out
    x = np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    dump = tmp_path / "dump"
    assert (
        main(
            [
                "run",
                str(path),
                "--input",
                str(tmp_path / "x.npy"),
                "--requant",
                "xnnpack",
                "--dump",
                str(dump),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "requantization rule 'xnnpack'" in out and "its own scales" in out
    assert main(["profile", str(path), "--hw", "3nx", "--bits", "8", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report


def test_cli_compare_on_a_shared_int8_tflite(tmp_path, capsys):
    model = shared_tflite("tflite-int/mobilefacenet_int8.tflite")
    images = shared_tflite("../images/aligned")
    out = tmp_path / "report"
    argv = ["compare", str(model), "--task", "embed", "--data", str(images), "--limit", "2", "-o", str(out)]
    assert main(argv) == 0
    assert out.is_dir() and any(out.iterdir())
