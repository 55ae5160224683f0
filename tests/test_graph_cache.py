"""The lowered-graph cache (``nnasim.io.cache`` through ``cli.common``): a warm ``profile``
imports no onnx and prints the same figures; a changed model file is lowered again."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper, save

from nnasim.cli.common import _cached_graph
from nnasim.io import cache

PROFILE = """
import sys
from nnasim.cli import main
assert main(["profile", "tinynet", "--hw", "3nx", "--bits", "8"]) == 0
print("onnx imported" if "onnx" in sys.modules else "onnx not imported")
"""


def _profile(tmp_path) -> list[str]:
    env = {**os.environ, "NNASIM_CACHE": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", PROFILE], env=env, capture_output=True, text=True, timeout=300, check=True
    )
    return result.stdout.splitlines()


def test_a_warm_profile_reads_the_cached_graph_without_onnx(tmp_path):
    cold = _profile(tmp_path)
    warm = _profile(tmp_path)
    assert cold[-1] == "onnx imported" and warm[-1] == "onnx not imported"
    assert warm[:-1] == cold[:-1]
    assert list((tmp_path / cache.FOLDER).glob("*.pickle"))


def _one_conv_model(path, scale: float) -> None:
    weight = numpy_helper.from_array(np.full((2, 1, 1, 1), scale, np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 4])],
        [weight],
    )
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def test_a_changed_model_file_is_lowered_again(tmp_path, monkeypatch):
    monkeypatch.setenv("NNASIM_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "m.onnx"
    _one_conv_model(path, 1.0)
    first = _cached_graph(str(path), None, engine=False)
    _one_conv_model(path, 2.0)
    os.utime(path, ns=(1, 1))  # a different modification time, whatever the clock's resolution
    second = _cached_graph(str(path), None, engine=False)
    weights = [name for name, tensor in second.tensors.items() if tensor.is_const]
    assert [float(first.const(n).max()) for n in weights] == [1.0]
    assert [float(second.const(n).max()) for n in weights] == [2.0]
