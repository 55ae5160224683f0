"""Golden data: every layer's tensor and its quantization format, one ``.npz`` per tensor, plus a JSON index.

Layout of a dump folder::

    index.json                        what was run (model, bits, rule...) and, per input, its tensors
    <NNN>_<input>/<MMM>_<tensor>.npz  q (integers, ONNX layout, the format's integer type) with
                                      scale, zero_point, bits, axis (-1: per tensor); fp32 runs
                                      store ``value`` (float32) instead

The folder is written under a temporary name and renamed into place when complete.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from nnasim.io.files import atomic_dir
from nnasim.ir import Graph, QuantParams
from nnasim.kernels import layout

INDEX = "index.json"


def storage_dtype(params: QuantParams) -> np.dtype:
    """The natural integer type of a format (int8, uint8, int16, uint16)."""
    return np.dtype(f"{'' if params.signed else 'u'}int{8 if params.bits <= 8 else 16}")


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "tensor"


def _producers(graph: Graph) -> dict[str, tuple[str, str]]:
    return {node.outputs[0]: (node.name, node.op.value) for node in graph.nodes}


def write_sample(
    folder: Path, graph: Graph, tensors: dict[str, np.ndarray], integer: bool
) -> list[dict[str, Any]]:
    """Write one input's tensors into ``folder``; return their index entries in execution order."""
    folder.mkdir(parents=True)
    producers = _producers(graph)
    order = [*graph.inputs, *(node.outputs[0] for node in graph.nodes)]
    entries = []
    for index, name in enumerate(n for n in order if n in tensors):
        file = folder / f"{index:03d}_{safe_name(name)}.npz"
        layer, op = producers.get(name, (None, "input"))
        entry = {"tensor": name, "layer": layer, "op": op, "file": f"{folder.name}/{file.name}"}
        params = graph.tensors[name].quant
        if integer:
            q = layout.to_onnx_layout(tensors[name]).astype(storage_dtype(params))
            np.savez(
                file,
                q=q,
                scale=np.asarray(params.scale, np.float32),
                zero_point=np.asarray(params.zero_point, np.int32),
                bits=np.int32(params.bits),
                axis=np.int32(-1 if params.axis is None else params.axis),
            )
            entry |= {
                "shape": list(q.shape),
                "dtype": str(q.dtype),
                "bits": params.bits,
                "scheme": params.scheme,
            }
            entry |= {
                "scale": np.asarray(params.scale).tolist(),
                "zero_point": np.asarray(params.zero_point).tolist(),
            }
        else:
            np.savez(file, value=np.asarray(tensors[name], np.float32))
            entry |= {"shape": list(tensors[name].shape), "dtype": "float32"}
        entries.append(entry)
    return entries


class DumpWriter:
    """Collects samples into a temporary folder; ``close`` writes the index and renames it into place."""

    def __init__(self, path: str | Path, force: bool, header: dict[str, Any]):
        self._context = atomic_dir(path, force)
        self.root = self._context.__enter__()
        self.index: dict[str, Any] = {**header, "samples": []}

    def add(self, input_name: str, graph: Graph, tensors: dict[str, np.ndarray], integer: bool) -> None:
        folder = self.root / f"{len(self.index['samples']):03d}_{safe_name(Path(input_name).stem)}"
        entries = write_sample(folder, graph, tensors, integer)
        self.index["samples"].append({"input": input_name, "tensors": entries})

    def close(self, saturations: dict[str, int]) -> None:
        self.index["saturations"] = saturations
        (self.root / INDEX).write_text(json.dumps(self.index, indent=1) + "\n")
        self._context.__exit__(None, None, None)

    def abort(self, error: BaseException) -> None:
        self._context.__exit__(type(error), error, error.__traceback__)
