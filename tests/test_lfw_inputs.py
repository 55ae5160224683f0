"""Image inputs: channel order, grayscale models, --normalize, and the 1-input-channel Conv they need."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx_builders import single_op_model, weight
from oracles import ort_run

from nnasim.cli import main
from nnasim.errors import UsageError
from nnasim.io.data import grayscale, parse_normalize, preprocessing_for

# a 2x3 image whose three channels differ everywhere
IMAGE = np.stack(
    [np.arange(6).reshape(2, 3) * 40, np.arange(6).reshape(2, 3) * 7 + 1, 255 - np.arange(6).reshape(2, 3)],
    axis=-1,
).astype(np.uint8)


def luma_reference(image: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma in Pillow's fixed point: (19595 R + 38470 G + 7471 B + 2^15) >> 16."""
    r, g, b = (image[..., k].astype(np.int64) for k in range(3))
    return ((19595 * r + 38470 * g + 7471 * b + (1 << 15)) >> 16).astype(np.uint8)


def test_bgr_model_gets_reversed_channels_raw():
    x = preprocessing_for("/m/lffd-head-480x640.onnx")(IMAGE, (1, 3, 2, 3))
    assert x.shape == (1, 3, 2, 3) and x.dtype == np.float32
    assert np.array_equal(x[0], IMAGE[..., ::-1].transpose(2, 0, 1).astype(np.float32))


def test_channel_order_option_overrides_the_default():
    rgb = preprocessing_for("/m/lffd-head-480x640.onnx", channel_order="rgb")(IMAGE, (1, 3, 2, 3))
    assert np.array_equal(rgb[0], IMAGE.transpose(2, 0, 1).astype(np.float32))
    bgr = preprocessing_for("other.onnx", channel_order="bgr")
    expected = (IMAGE[..., ::-1].astype(np.float32) - 127.5) * np.float32(1 / 127.5)
    assert np.array_equal(bgr(IMAGE, (1, 3, 2, 3))[0], expected.transpose(2, 0, 1))
    assert "given" in bgr.source


def test_one_channel_model_gets_luma():
    assert np.array_equal(grayscale(IMAGE), luma_reference(IMAGE))
    x = preprocessing_for("landmarks-68.onnx")(IMAGE, (1, 1, 2, 3))
    assert x.shape == (1, 1, 2, 3)
    assert np.array_equal(x[0, 0], luma_reference(IMAGE).astype(np.float32) * np.float32(1 / 256))


def test_describe_states_what_the_model_gets():
    assert preprocessing_for("lffd-head-240x320.onnx").describe(3).startswith("BGR, (x-0)*1 ")
    assert preprocessing_for("landmarks-68.onnx").describe(1).startswith("grayscale")
    assert preprocessing_for("arcface-mbf-512.onnx").describe(3).startswith("RGB, (x-127)*0.0078125")


def test_parse_normalize():
    assert parse_normalize("raw") == (0.0, 1.0)
    assert parse_normalize("unit") == (0.0, 1 / 255)
    assert parse_normalize("127.5,0.0078125") == (127.5, 0.0078125)
    for bad in ("127.5", "a,b", "1,2,3"):
        with pytest.raises(UsageError, match="--normalize"):
            parse_normalize(bad)


def test_four_channel_model_is_refused_with_a_message():
    from nnasim.errors import DataError

    with pytest.raises(DataError, match="4 input channels"):
        preprocessing_for("x.onnx")(IMAGE, (1, 4, 2, 3))


def _gray_conv_model() -> onnx.ModelProto:
    """A grayscale model: Conv from 1 input channel to 4 (once crashed as a 'depthwise' conv)."""
    consts = {"w": weight(4, 1, 3, 3), "b": weight(4)}
    return single_op_model("Conv", (1, 1, 8, 8), consts, kernel_shape=[3, 3], pads=[1, 1, 1, 1])


def test_one_input_channel_conv_fp32_matches_onnxruntime(tmp_path):
    from nnasim.ir.execute import run_float
    from nnasim.quant.qdq import load_any

    path, model = tmp_path / "gray.onnx", _gray_conv_model()
    onnx.save(model, path)
    x = np.random.default_rng(3).normal(size=(1, 1, 8, 8)).astype(np.float32)
    ours = run_float(load_any(str(path)), {"x": x})["y"]
    np.testing.assert_allclose(ours, ort_run(model, {"x": x})[0], rtol=1e-5, atol=1e-5)


def test_run_cli_on_a_grayscale_model_with_an_image(tmp_path, capsys):
    from PIL import Image

    path = tmp_path / "gray.onnx"
    onnx.save(_gray_conv_model(), path)
    Image.fromarray(np.repeat(np.repeat(IMAGE, 4, 0), 3, 1)).save(tmp_path / "face.png")
    for bits in ("32", "16"):
        argv = [
            "run",
            str(path),
            "--bits",
            bits,
            "--input",
            str(tmp_path / "face.png"),
            "--normalize",
            "unit",
        ]
        assert main(argv) == 0
    out = capsys.readouterr().out
    assert "image input 'x': grayscale (ITU-R 601 luma), (x-0)*0.00392157" in out
    assert main(["run", str(path), "--input", str(tmp_path), "--normalize", "bad"]) == 2
    assert "--normalize 'bad'" in capsys.readouterr().err
