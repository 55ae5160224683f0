"""The catalogue of bad inputs: each case, the files it needs and the message it must produce.

ONNX cases are generated into the test's folder (model files are not committed); YAML
profile cases are the files beside this one. ``{dir}`` in a command stands for the
test's folder, ``{here}`` for this folder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

X = [1, 3, 8, 8]


@dataclass(frozen=True)
class Case:
    name: str
    argv: tuple[str, ...]
    message: str  # a regular expression the one-line error must match
    make: Callable[[Path], None] | None = None


def _model(nodes, inits=(), input_dims=X, opset: int = 17, domains=()) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "bad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_dims)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        list(inits),
    )
    opsets = [helper.make_opsetid("", opset), *(helper.make_opsetid(d, 1) for d in domains)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    return model


def _relu_model(**kwargs) -> onnx.ModelProto:
    return _model([helper.make_node("Relu", ["x"], ["y"], name="relu")], **kwargs)


def _conv_model() -> onnx.ModelProto:
    weight = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    return _model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv")], [weight])


def _writer(name: str, build: Callable[[], onnx.ModelProto]) -> Callable[[Path], None]:
    return lambda folder: onnx.save(build(), folder / name)


def _bytes(name: str, data: Callable[[], bytes]) -> Callable[[Path], None]:
    return lambda folder: (folder / name).write_bytes(data())


MODEL_CASES = [
    Case("empty file", ("info", "{dir}/empty.onnx"), r"empty\.onnx: empty file", _bytes("empty.onnx", bytes)),
    Case(
        "truncated ONNX",
        ("info", "{dir}/cut.onnx"),
        r"cut\.onnx: not a valid ONNX file",
        _bytes("cut.onnx", lambda: _conv_model().SerializeToString()[:150]),
    ),
    Case(
        "not ONNX",
        ("info", "{dir}/photo.onnx"),
        r"photo\.onnx: not",
        _bytes("photo.onnx", lambda: b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4),
    ),
    Case(
        "unsupported op",
        ("info", "{dir}/cos.onnx"),
        r"cos\.onnx: node 'wave' uses op Cos, which nnasim does not support; supported ops: Add, ",
        _writer("cos.onnx", lambda: _model([helper.make_node("Cos", ["x"], ["y"], name="wave")])),
    ),
    Case(
        "custom domain op",
        ("info", "{dir}/custom.onnx"),
        r"node 'magic' uses op com\.acme::Magic",
        _writer(
            "custom.onnx",
            lambda: _model(
                [helper.make_node("Magic", ["x"], ["y"], name="magic", domain="com.acme")],
                domains=["com.acme"],
            ),
        ),
    ),
    Case(
        "dynamic input without --input-shape",
        ("info", "{dir}/dyn.onnx"),
        r"input 'x' has dynamic or non-positive shape \['N', 3, 'H', 'W'\]; fix it with --input-shape",
        _writer("dyn.onnx", lambda: _relu_model(input_dims=["N", 3, "H", "W"])),
    ),
    Case(
        "zero dimension",
        ("info", "{dir}/zero.onnx"),
        r"input 'x' has dynamic or non-positive shape \[1, 3, 0, 8\]",
        _writer("zero.onnx", lambda: _relu_model(input_dims=[1, 3, 0, 8])),
    ),
    Case(
        "negative --input-shape",
        ("info", "{dir}/dyn.onnx", "--input-shape", "1,3,-4,8"),
        r"--input-shape for 'x' must be positive integers",
        _writer("dyn.onnx", lambda: _relu_model(input_dims=["N", 3, "H", "W"])),
    ),
    Case(
        "huge dimension",
        ("info", "{dir}/huge.onnx"),
        r"tensor '[xy]' of shape \[1, 3, 1000000, 1000000\] alone needs 11,175\.9 GiB",
        _writer("huge.onnx", lambda: _relu_model(input_dims=[1, 3, 1_000_000, 1_000_000])),
    ),
    Case(
        "cycle",
        ("info", "{dir}/cycle.onnx"),
        r"node 'a' \(Add\) reads 'b', which no earlier node, input or initializer provides \(missing",
        _writer(
            "cycle.onnx",
            lambda: _model(
                [
                    helper.make_node("Add", ["x", "b"], ["a"], name="a"),
                    helper.make_node("Relu", ["a"], ["b"], name="b"),
                    helper.make_node("Relu", ["b"], ["y"], name="c"),
                ]
            ),
        ),
    ),
    Case(
        "missing initializer",
        ("info", "{dir}/noweight.onnx"),
        r"node 'conv' \(Conv\) reads 'w'",
        _writer("noweight.onnx", lambda: _model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv")])),
    ),
    Case(
        "opset older than supported",
        ("info", "{dir}/old.onnx"),
        r"old\.onnx: opset 5 is older than the oldest supported, 7",
        _writer("old.onnx", lambda: _relu_model(opset=5)),
    ),
    Case("missing file", ("info", "{dir}/nothere.onnx"), r"nothere\.onnx: no such file"),
    Case("unknown zoo name", ("info", "lffd2"), r"lffd2.*lffd"),
    Case("bad zoo size", ("info", "lffd@big"), r"lffd@big"),
    Case("bad --input-shape text", ("info", "tinynet", "--input-shape", "1,3,x"), r"--input-shape '1,3,x'"),
]


def _profile_case(name: str, file: str, message: str) -> Case:
    return Case(name, ("profile", "tinynet", "--hw", f"{{here}}/{file}"), rf"{file}: {message}")


PROFILE_CASES = [
    _profile_case("profile not YAML", "not_yaml.yaml", r"cannot read profile"),
    _profile_case("profile missing key", "missing_key.yaml", r"missing key 'clock_mhz'"),
    _profile_case(
        "profile wrong type", "wrong_type.yaml", r"key 'clock_mhz': must be a positive number \(MHz\)"
    ),
    _profile_case("profile unknown key", "unknown_key.yaml", r"unknown key 'extra_speed' \(allowed: "),
    _profile_case(
        "profile negative rate", "negative_rate.yaml", r"key 'dram_gbps': must be a positive number"
    ),
    _profile_case(
        "profile zero rate", "zero_rate.yaml", r"key 'dram_gbps': must be a positive number.*got 0"
    ),
    _profile_case(
        "profile inherits missing", "inherits_missing.yaml", r"key 'inherits': unknown hardware profile"
    ),
    _profile_case(
        "profile inherits cycle",
        "inherits_cycle_a.yaml",
        r"key .inherits.: inheritance cycle inherits_cycle_a\.yaml -> inherits_cycle_b\.yaml",
    ),
]


def _images(folder: Path, readable: int, unreadable: int) -> None:
    from PIL import Image

    (folder / "data" / "cat").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index in range(readable):
        pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / "data" / "cat" / f"ok{index}.png")
    for index in range(unreadable):
        (folder / "data" / "cat" / f"broken{index}.png").write_bytes(b"not a picture")


OPTION_CASES = [
    Case(
        "--bits 7 (profile)",
        ("profile", "tinynet", "--hw", "2nx", "--bits", "7"),
        r"--bits '7': supported widths",
    ),
    Case("--bits 7 (run)", ("run", "tinynet", "--bits", "7"), r"argument --bits: invalid choice: 7"),
    Case(
        "unknown --hw",
        ("profile", "tinynet", "--hw", "9nx"),
        r"unknown hardware profile '9nx' \(built-in: 2nx",
    ),
    Case(
        "data folder empty",
        ("compare", "tinynet", "--task", "classify", "--data", "{dir}/data", "-o", "{dir}/out"),
        r"no images \(.*\) in .*data",
        lambda folder: (folder / "data").mkdir(),
    ),
    Case(
        "data folder of unreadable images",
        ("compare", "tinynet", "--task", "classify", "--data", "{dir}/data", "-o", "{dir}/out"),
        r"none of the images in .*data could be read \(2 skipped\)",
        lambda folder: _images(folder, 0, 2),
    ),
    Case(
        "output folder exists",
        ("compare", "tinynet", "--task", "classify", "--data", "{dir}/data", "-o", "{dir}/data"),
        r"data: already exists; use --force",
        lambda folder: _images(folder, 1, 0),
    ),
]
