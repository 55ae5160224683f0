"""``nnasim run``: inputs (.npy, .npz, images), summaries, golden dumps equal to the session's
integers, refusal to overwrite, errors as one-line messages, QDQ files keeping their formats."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from nnasim.cli import main
from nnasim.engine.session import build_session
from nnasim.frontend import load_lowered
from nnasim.kernels.layout import to_onnx_layout


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(5)
    np.save(folder / "a.npy", rng.standard_normal((3, 32, 32)).astype(np.float32))
    np.savez(folder / "b.npz", input=rng.standard_normal((1, 3, 32, 32)).astype(np.float32))
    return folder


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(6)
    for index in range(3):
        Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(folder / f"img{index}.png")
    return folder


def test_dump_holds_the_sessions_integers(inputs, tmp_path, capsys):
    dump = tmp_path / "golden"
    argv = ["run", "tinynet", "--bits", "16", "--input", str(inputs), "--calib", str(inputs)]
    assert main([*argv, "--scheme", "affine", "--per-channel", "--dump", f"{dump}/"]) == 0  # as in the README
    printed = capsys.readouterr()
    assert (
        "a.npy:" in printed.out and "b.npz:" in printed.out and "probabilities: shape [1, 10]" in printed.out
    )
    assert printed.err.count(f"nnasim: wrote {dump}") == 1  # the folder named once, on stderr
    index = json.loads((dump / "index.json").read_text())
    assert (index["bits"], index["rule"], index["scheme"]) == (16, "fixedpoint", "affine")
    graph = load_lowered("tinynet")
    calib = [{"input": np.load(inputs / "a.npy")[None]}, {"input": np.load(inputs / "b.npz")["input"]}]
    session = build_session(graph, 16, "affine", per_channel=True, calib=calib)
    expected = session.run_integers(calib[0], keep_all=True)
    sample = index["samples"][0]
    assert sample["input"] == "a.npy"
    assert [e["tensor"] for e in sample["tensors"]] == list(expected)
    for entry in sample["tensors"]:
        stored = np.load(dump / entry["file"])
        assert stored["q"].dtype == np.int16
        assert np.array_equal(stored["q"], to_onnx_layout(expected[entry["tensor"]]))
        assert np.array_equal(stored["scale"], session.quant(entry["tensor"]).scale)


def test_existing_dump_is_refused_without_force(inputs, tmp_path, capsys):
    dump = tmp_path / "golden"
    dump.mkdir()
    (dump / "mine.txt").write_text("keep me")
    argv = ["run", "tinynet", "--input", str(inputs / "a.npy"), "--calib", str(inputs), "--dump", str(dump)]
    assert main(argv) == 2
    assert "already exists" in capsys.readouterr().err
    assert (dump / "mine.txt").read_text() == "keep me"
    assert main([*argv, "--force"]) == 0
    assert not (dump / "mine.txt").exists() and (dump / "index.json").exists()


def test_images_and_generated_calibration(images, capsys):
    assert (
        main(["run", "tinynet", "--bits", "8", "--input", str(images), "--mean", "128", "--std", "64"]) == 0
    )
    printed = capsys.readouterr()
    assert printed.out.count("probabilities: shape [1, 10]") == 3
    assert printed.err.count("generated") == 1  # calibration on generated inputs is announced, once


def test_fp32_matches_the_float_executor(inputs, capsys):
    assert main(["run", "tinynet", "--bits", "32", "--input", str(inputs / "b.npz")]) == 0
    from nnasim.ir.execute import run_float

    probabilities = run_float(load_lowered("tinynet"), {"input": np.load(inputs / "b.npz")["input"]})
    line = next(x for x in capsys.readouterr().out.splitlines() if "probabilities" in x)
    assert f"max {probabilities['probabilities'].max():.6g}" in line


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--mean", "1"], "--mean and --std go together"),
        (["--std", "0", "--mean", "1"], "--std must be positive"),
        (["--limit", "0"], "--limit"),
    ],
)
def test_bad_options_are_one_line_errors(inputs, capsys, extra, message):
    assert main(["run", "tinynet", "--input", str(inputs), *extra]) == 2
    assert message in capsys.readouterr().err


def test_wrong_input_shape_names_the_file(tmp_path, capsys):
    np.save(tmp_path / "bad.npy", np.zeros((3, 8, 8), np.float32))
    assert main(["run", "tinynet", "--input", str(tmp_path / "bad.npy")]) == 2
    err = capsys.readouterr().err
    assert "bad.npy" in err and "[1, 3, 32, 32]" in err


def test_qdq_file_runs_with_its_own_formats(inputs, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from nnasim.models import zoo
    from nnasim.quant.onnxruntime_qdq import quantize_with_onnxruntime

    feeds = [{"input": np.load(inputs / "a.npy")[None]}]
    qdq = quantize_with_onnxruntime(zoo.resolve("tinynet"), tmp_path / "tiny_qdq.onnx", feeds)
    dump = tmp_path / "golden"
    assert main(["run", str(qdq), "--bits", "8", "--input", str(inputs / "a.npy"), "--dump", str(dump)]) == 0
    out = capsys.readouterr().out
    assert "QDQ model" in out and "'float32'" in out
    index = json.loads((dump / "index.json").read_text())
    assert index["rule"] == "float32"
    # the model's own formats (quantized per channel above), not the defaults of --scheme/--per-channel
    assert index["scheme"] == "qdq" and index["per_channel"] is True


def test_profile_sets_the_accumulator_width(inputs, capsys):
    argv = ["run", "tinynet", "--bits", "16", "--input", str(inputs / "a.npy"), "--calib", str(inputs)]
    assert main([*argv, "--profile", "2nx"]) == 0
    assert "48-bit saturating accumulators" in capsys.readouterr().out
    assert main(argv) == 0
    assert "64-bit saturating accumulators" in capsys.readouterr().out


def test_an_unreadable_input_image_is_one_error_not_a_skip_warning(tmp_path, capsys):
    """run refuses an unreadable input (compare skips them): one line, no 'skipping' warning before it."""
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "good.png")
    (tmp_path / "broken.png").write_bytes(b"junk")
    assert main(["run", "tinynet", "--input", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("nnasim: error:") and "broken.png" in err[0], err
