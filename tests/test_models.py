"""The built-in model zoo: sizes against the published figures, sane activations, cache, CLI.

Parameter and MAC counts are computed here from the ONNX graph after onnx shape inference,
independently of nnasim; the expected figures are the published ones (design.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import onnx
import pytest
from onnx import helper, shape_inference
from oracles import ort_run

from nnasim.cli import main
from nnasim.errors import UsageError
from nnasim.models import iresnet, lffd, zoo

PUBLISHED = {  # name: (parameters, MACs)
    "lffd": (2.29e6, 13.4e9),
    "arcface": (65.1e6, 12.1e9),
    "arcface-r50": (43.6e6, 6.3e9),
}


@pytest.fixture(scope="module")
def built() -> dict[str, onnx.ModelProto]:
    """Each large zoo model built once for this module."""
    return {name: zoo.build(name) for name in PUBLISHED}


def graph_counts(model: onnx.ModelProto) -> tuple[int, int]:
    """(parameters, MACs): initializer sizes; Conv and Gemm MACs from inferred shapes."""
    weights = {t.name: list(t.dims) for t in model.graph.initializer}
    declared = [
        helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, dims) for name, dims in weights.items()
    ]
    skeleton = helper.make_model(  # weights as typed inputs: the same shapes, without copying 260 MB
        helper.make_graph(model.graph.node, "skeleton", [*model.graph.input, *declared], model.graph.output),
        opset_imports=model.opset_import,
    )
    graph = shape_inference.infer_shapes(skeleton, strict_mode=True).graph
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in [*graph.value_info, *graph.output, *graph.input]
    }
    macs = 0
    for node in graph.node:
        if node.op_type == "Conv":  # every output element: Cin/group * kh * kw products
            macs += int(np.prod(shapes[node.output[0]])) * int(np.prod(weights[node.input[1]][1:]))
        elif node.op_type == "Gemm":  # transB=1: weight is (N, K), output (M, N)
            macs += shapes[node.output[0]][0] * int(np.prod(weights[node.input[1]]))
    return sum(int(np.prod(dims)) for dims in weights.values()), macs


def every_value(model: onnx.ModelProto) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """An onnxruntime runner for ``model`` returning every node output by name."""
    import onnxruntime as ort

    names = [node.output[0] for node in model.graph.node]
    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    del exposed.graph.output[:]
    exposed.graph.output.extend(helper.make_empty_tensor_value_info(name) for name in names)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(exposed.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return lambda image: dict(zip(names, session.run(None, {"input": image}), strict=True))


@pytest.fixture(scope="module")
def arcface_values(built) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    return every_value(built["arcface"])


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_parameters_and_macs_match_published_figures(built, name):
    params, macs = graph_counts(built[name])
    expected_params, expected_macs = PUBLISHED[name]
    assert params == pytest.approx(expected_params, rel=0.01)
    assert macs == pytest.approx(expected_macs, rel=0.01)
    assert params == zoo.parse(name).model.count_params()  # the dry count list_models shows


def test_models_pass_the_onnx_checker(built):
    for model in built.values():
        onnx.checker.check_model(model)


def test_arcface_structure_follows_arcface_torch(built):
    graph = built["arcface"].graph
    ops = [node.op_type for node in graph.node]
    assert ops.count("Conv") == 1 + 2 * sum(iresnet.BLOCKS["iresnet100"]) + 4  # stem, blocks, downsamples
    assert all(len(node.input) == 2 for node in graph.node if node.op_type == "Conv")  # no bias
    assert ops[-5:] == ["BatchNormalization", "Flatten", "Dropout", "Gemm", "BatchNormalization"]
    assert [(o.name, [d.dim_value for d in o.type.tensor_type.shape.dim]) for o in graph.output] == [
        ("embedding", [1, 512])
    ]


def test_arcface_activations_stay_sane_through_all_layers(arcface_values):
    rng = np.random.default_rng(7)
    first, second = (
        arcface_values(rng.standard_normal((1, 3, 112, 112), dtype=np.float32)) for _ in range(2)
    )
    for name, value in first.items():
        assert 1e-2 <= float(value.std()) <= 1e2, f"{name}: std {value.std():.3g}"
    embedding = first["embedding"]
    assert np.isfinite(embedding).all() and embedding.std() > 0.1
    assert np.abs(embedding - second["embedding"]).max() > 0.1  # the embedding depends on the input


def test_arcface_batchnorms_normalise_their_calibration_input(built, arcface_values):
    """Checks the build-time numpy forward pass against onnxruntime, layer by layer."""
    model = built["arcface"]
    values = arcface_values(iresnet.calibration_input())
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    bn_nodes = [
        n for n in model.graph.node if n.op_type == "BatchNormalization" and n.output[0] != "embedding"
    ]
    assert (
        len(bn_nodes) == 1 + 3 * sum(iresnet.BLOCKS["iresnet100"]) + 4 + 1
    )  # stem, blocks, downsamples, head
    for node in bn_nodes:
        out = values[node.output[0]]
        gamma, beta = weights[node.input[1]], weights[node.input[2]]
        np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), beta, atol=2e-2, err_msg=node.name)
        np.testing.assert_allclose(out.std(axis=(0, 2, 3)), np.abs(gamma), rtol=2e-2, err_msg=node.name)


def test_lffd_convs_have_unit_std_on_their_calibration_input():
    side = lffd.CALIBRATION_SIZE
    model = zoo.build(f"lffd@{side}x{side}")
    values = every_value(model)(lffd.calibration_input())
    convs = [n.output[0] for n in model.graph.node if n.op_type == "Conv"]
    assert len(convs) == 25 + 8 * 5
    for name in convs:
        assert values[name].std() == pytest.approx(1.0, rel=1e-3), name


def lffd_branch_sides(side: int) -> list[int]:
    """Branch map sides along one axis: stride-2 unpadded 3x3 convs before taps 1, 3, 5, 6."""

    def down(n: int) -> int:
        return (n - 3) // 2 + 1

    s1 = down(down(side))
    s3 = down(s1)
    s5 = down(s3)
    s6 = down(s5)
    return [s1, s1, s3, s3, s5, s6, s6, s6]


def test_lffd_at_320x240_has_sane_per_branch_outputs_of_the_right_shapes():
    model = zoo.build("lffd@320x240")
    assert [o.name for o in model.graph.output] == [
        f"{kind}_{i}" for i in range(1, 9) for kind in ("score", "bbox")
    ]
    values = every_value(model)(np.random.default_rng(3).uniform(-1, 1, (1, 3, 240, 320)).astype(np.float32))
    for name, value in values.items():
        assert 1e-2 <= float(value.std()) <= 1e2, f"{name}: std {value.std():.3g}"
    for i, (h, w) in enumerate(zip(lffd_branch_sides(240), lffd_branch_sides(320), strict=True), start=1):
        assert values[f"score_{i}"].shape == (1, 2, h, w) and values[f"bbox_{i}"].shape == (1, 4, h, w)
        np.testing.assert_allclose(values[f"score_{i}"].sum(axis=1), 1.0, rtol=1e-5)
        declared = [d.dim_value for d in model.graph.output[2 * i - 2].type.tensor_type.shape.dim]
        assert declared == [1, 2, h, w]


def test_builds_are_deterministic():
    for name in ("lffd@160x128", "tinynet"):
        assert zoo.build(name).SerializeToString() == zoo.build(name).SerializeToString()


def test_tinynet_classifies_into_ten_probabilities():
    model = zoo.build("tinynet")
    (probabilities,) = ort_run(
        model, {"input": np.random.default_rng(5).uniform(-1, 1, (1, 3, 32, 32)).astype(np.float32)}
    )
    assert probabilities.shape == (1, 10)
    assert probabilities.sum() == pytest.approx(1.0, rel=1e-5)
    assert probabilities.max() < 0.999  # not saturated


# ---------------------------------------------------------------------------- names
@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nosuchnet", "lffd, arcface, arcface-r50, tinynet"),
        ("arcface@112x112", "fixed 112x112"),
        ("lffd@320", "WIDTHxHEIGHT"),
        ("lffd@32x32", "between 63"),
    ],
)
def test_bad_zoo_names_raise_usage_errors_that_say_why(spec, message):
    with pytest.raises(UsageError, match=message):
        zoo.parse(spec)


def test_parse_reads_width_then_height():
    spec = zoo.parse("lffd@320x240")
    assert spec.input_shape == (1, 3, 240, 320)
    assert zoo.parse("lffd").input_shape == (1, 3, 640, 640)
    assert zoo.is_zoo_name("lffd@320x240") and zoo.is_zoo_name("arcface-r50")
    assert not zoo.is_zoo_name("model.onnx") and not zoo.is_zoo_name("lffd.onnx")


def test_list_models_reports_every_model_at_its_default_size():
    infos = {m.name: m for m in zoo.list_models()}
    assert list(infos) == ["lffd", "arcface", "arcface-r50", "tinynet"]
    assert infos["lffd"].input_shape == (1, 3, 640, 640) and infos["lffd"].resizable
    assert infos["arcface"].params == pytest.approx(65.1e6, rel=0.01)


# ---------------------------------------------------------------------------- cache
@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("NNASIM_CACHE", str(folder))
    return folder


def test_cache_folder_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NNASIM_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert zoo.cache_dir() == tmp_path / "home" / ".cache" / "nnasim"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert zoo.cache_dir() == tmp_path / "xdg" / "nnasim"
    monkeypatch.setenv("NNASIM_CACHE", str(tmp_path / "mine"))
    assert zoo.cache_dir() == tmp_path / "mine"


def test_resolve_builds_once_keyed_by_name_size_and_version(cache, monkeypatch):
    path = zoo.resolve("lffd@100x80")
    assert path.parent == cache / "zoo" and path.name == "lffd-100x80-v1.onnx"
    assert path.read_bytes() == zoo.build("lffd@100x80").SerializeToString()

    def no_build(spec):
        raise AssertionError(f"rebuilt {spec}")

    monkeypatch.setattr(zoo, "build", no_build)
    assert zoo.resolve("lffd@100x80") == path  # served from the cache
    with pytest.raises(AssertionError, match="rebuilt lffd@80x100"):
        zoo.resolve("lffd@80x100")  # another size is another entry
    assert sorted(p.name for p in path.parent.iterdir()) == ["lffd-100x80-v1.onnx"]


def test_interrupted_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "model.onnx"

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        zoo.write_atomically(target, b"new contents")
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temporary file

    target.write_bytes(b"old contents")
    with pytest.raises(KeyboardInterrupt):
        zoo.write_atomically(target, b"new contents")
    assert target.read_bytes() == b"old contents" and list(tmp_path.iterdir()) == [target]


def test_interrupted_build_leaves_the_cache_empty(cache, monkeypatch):
    def interrupted_build(spec):
        raise KeyboardInterrupt

    monkeypatch.setattr(zoo, "build", interrupted_build)
    with pytest.raises(KeyboardInterrupt):
        zoo.resolve("tinynet")
    assert not any((cache / "zoo").iterdir())


# ------------------------------------------------------------------------------ CLI
def test_zoo_list_prints_a_table_of_all_models(capsys):
    assert main(["zoo", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "description", "input", "params", "version"]
    rows = {line.split()[0]: line for line in lines[2:]}
    assert list(rows) == ["lffd", "arcface", "arcface-r50", "tinynet"]
    assert "1x3x640x640" in rows["lffd"] and "2.29 M" in rows["lffd"]
    assert "1x3x112x112" in rows["arcface"] and "65.23 M" in rows["arcface"]


def test_zoo_build_writes_the_model_and_refuses_to_overwrite(cache, tmp_path, capsys):
    out = tmp_path / "tiny.onnx"
    assert main(["zoo", "build", "tinynet", "-o", str(out)]) == 0
    assert out.read_bytes() == zoo.build("tinynet").SerializeToString()
    assert oct(os.stat(out).st_mode & 0o777) == oct(0o644)

    out.write_bytes(b"mine")
    assert main(["zoo", "build", "tinynet", "-o", str(out)]) == 2
    assert str(out) in capsys.readouterr().err and out.read_bytes() == b"mine"

    assert main(["zoo", "build", "tinynet", "-o", str(out), "--force"]) == 0
    onnx.checker.check_model(onnx.load(out))


def test_zoo_build_of_an_unknown_name_lists_the_zoo(cache, tmp_path, capsys):
    assert main(["zoo", "build", "lffdd", "-o", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'lffdd'" in err and "arcface-r50" in err
    assert not (tmp_path / "x.onnx").exists()
