"""The sweep specification: a YAML file naming a base profile, the parameters to vary, the
models, the bit widths, the objectives and the plots. Loading checks every key and names the
file and the key in any error.

```yaml
base: 3nx                         # a built-in profile name or a path (relative to this file)
parameters:                       # dotted paths into the profile; one axis each
  ocm_kib: [0, 512, 1024]         # a list of values
  dram_gbps: {start: 4, stop: 32, step: 4}          # an arithmetic range, stop included
  mac_array.8.out_channels:                         # a geometric range, stop included ...
    {start: 16, stop: 128, factor: 2,
     with: {mac_array.16.out_channels: [8, 16, 32, 64]}}   # ... and paths that move in step
models: [lffd, arcface]           # zoo names or ONNX paths; or a mapping label: model
bits: [8, 16]
area: {mm2_per_mac: 0.00042, mm2_per_kib: 0.004}    # the area proxy's coefficients
objectives: {area_mm2: min, total_ips: max}         # results.csv columns to minimise/maximise
plots: [ocm_kib, dram_gbps]       # parameters drawn against inferences/s and MB/inference
chunk_points: 512                 # optional: points per task (the unit of progress and resume)
```
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nnasim.cost.profile import SUPPORTED_BITS
from nnasim.errors import UsageError

_KEYS = ("base", "parameters", "models", "bits", "area", "objectives", "plots", "chunk_points")
_REQUIRED = ("base", "parameters", "models", "bits", "area", "objectives")
_GOALS = ("min", "max")
_RESERVED_LABELS = ("total",)
MAX_POINTS = 10_000_000


@dataclass(frozen=True)
class Axis:
    """One swept dimension: ``values[i]`` is set at ``paths[0]``; ``linked[p][i]`` at the others."""

    path: str
    values: tuple[Any, ...]
    linked: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    @property
    def paths(self) -> tuple[str, ...]:
        return (self.path, *(path for path, _ in self.linked))

    def assignment(self, index: int) -> dict[str, Any]:
        """Profile path -> value for this axis's ``index``-th value."""
        return {self.path: self.values[index], **{path: values[index] for path, values in self.linked}}


@dataclass(frozen=True)
class SweepSpec:
    path: Path
    base: str
    axes: tuple[Axis, ...]
    models: tuple[tuple[str, str], ...]  # (label, model spec)
    bits: tuple[int, ...]
    mm2_per_mac: float
    mm2_per_kib: float
    objectives: tuple[tuple[str, str], ...]  # (results.csv column, "min" | "max")
    plots: tuple[str, ...]
    chunk_points: int
    text: str

    @property
    def n_points(self) -> int:
        return math.prod(len(axis.values) for axis in self.axes) * len(self.bits)

    @property
    def fingerprint(self) -> str:
        """Identifies what the sweep computes; a resumed sweep must have the same one."""
        data = {
            "base": self.base,
            "axes": [[a.path, list(a.values), [[p, list(v)] for p, v in a.linked]] for a in self.axes],
            "models": [list(m) for m in self.models],
            "bits": list(self.bits),
            "area": [self.mm2_per_mac, self.mm2_per_kib],
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


BUILTIN_SPECS = Path(__file__).with_name("specs")


def builtin_specs() -> dict[str, Path]:
    """Sweep specs installed with nnasim, by name (``example``: the README's sweep)."""
    return {p.stem: p for p in sorted(BUILTIN_SPECS.glob("*.yaml"))}


def load_spec(path: str | Path) -> SweepSpec:
    """Read and check a sweep spec (a YAML file or a built-in name); ``UsageError`` names the file and key."""
    if str(path) in builtin_specs() and not Path(path).exists():
        path = builtin_specs()[str(path)]
    path = Path(path)
    try:
        text = path.read_text()
        data = yaml.safe_load(text)
    except OSError as error:
        raise UsageError(f"{path}: cannot read sweep spec: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise UsageError(f"{path}: not valid YAML: {str(error).splitlines()[0]}") from None
    return parse_spec(data, path, text)


def parse_spec(data: Any, path: Path, text: str = "") -> SweepSpec:
    """Check the spec given as parsed YAML (``path`` names it in errors; relative paths resolve there)."""
    check = _Checker(path)
    if not isinstance(data, dict):
        check.fail(None, "a sweep spec must be a mapping of keys to values")
    for key in data:
        if key not in _KEYS:
            check.fail(key, f"unknown key (allowed: {', '.join(_KEYS)})")
    for key in _REQUIRED:
        if key not in data:
            check.fail(key, "missing")
    spec = SweepSpec(
        path=path,
        base=_base(data["base"], path, check),
        axes=_axes(data["parameters"], check),
        models=_models(data["models"], path, check),
        bits=_bits(data["bits"], check),
        mm2_per_mac=_area(data["area"], "mm2_per_mac", check),
        mm2_per_kib=_area(data["area"], "mm2_per_kib", check),
        objectives=_objectives(data["objectives"], check),
        plots=_plots(data.get("plots", []), check),
        chunk_points=_chunk(data.get("chunk_points", 512), check),
        text=text,
    )
    if spec.n_points > MAX_POINTS:
        check.fail("parameters", f"{spec.n_points:,} points is more than the limit of {MAX_POINTS:,}")
    plotted = {axis.path for axis in spec.axes}
    for name in spec.plots:
        if name not in plotted:
            check.fail(f"plots.{name}", f"not a swept parameter (swept: {', '.join(sorted(plotted))})")
    columns = set(result_columns(spec))
    swept = {path: values for axis in spec.axes for path, values in ((axis.path, axis.values), *axis.linked)}
    for column, _ in spec.objectives:
        if column in swept and not all(_is_number(v) for v in swept[column]):
            check.fail(
                f"objectives.{column}", "an objective must be numeric; this parameter has other values"
            )
        if column not in columns:
            check.fail(
                f"objectives.{column}", f"not a numeric results.csv column ({', '.join(sorted(columns))})"
            )
    return spec


def result_columns(spec: SweepSpec) -> list[str]:
    """The numeric columns of ``results.csv`` that objectives may name (besides the parameters)."""
    columns = [
        "bits",
        *[p for axis in spec.axes for p in axis.paths],
        "macs_per_clock",
        "onchip_kib",
        "area_mm2",
    ]
    labels = [label for label, _ in spec.models] + (["total"] if len(spec.models) > 1 else [])
    for label in labels:
        columns += [f"{label}_mb", f"{label}_ips"]
        if label != "total":
            columns.append(f"{label}_utilization")
    return columns


class _Checker:
    def __init__(self, path: Path):
        self.path = path

    def fail(self, key: str | None, message: str):
        where = f"key {key!r}: " if key else ""
        raise UsageError(f"{self.path}: {where}{message}")


def _base(value: Any, path: Path, check: _Checker) -> str:
    if not isinstance(value, str) or not value:
        check.fail("base", f"must be a profile name or a path to a YAML profile, got {value!r}")
    if value.endswith((".yaml", ".yml")) and not Path(value).is_absolute():
        return str(path.parent / value)
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _values(value: Any, key: str, check: _Checker) -> tuple[Any, ...]:
    """A list, or a range ``{start, stop, step}`` / ``{start, stop, factor}`` with stop included."""
    if isinstance(value, list):
        if not value:
            check.fail(key, "an empty list of values")
        return tuple(value)
    if not isinstance(value, dict):
        check.fail(key, f"must be a list of values or a range {{start, stop, step|factor}}, got {value!r}")
    extra = set(value) - {"start", "stop", "step", "factor", "values", "with"}
    if extra:
        check.fail(
            f"{key}.{sorted(extra)[0]}", "unknown key (allowed: start, stop, step, factor, values, with)"
        )
    if "values" in value:
        return _values(value["values"], f"{key}.values", check)
    for name in ("start", "stop"):
        if not _is_number(value.get(name)):
            check.fail(f"{key}.{name}", f"must be a number, got {value.get(name)!r}")
    start, stop = value["start"], value["stop"]
    if ("step" in value) == ("factor" in value):
        check.fail(key, "a range needs exactly one of 'step' (arithmetic) or 'factor' (geometric)")
    if "step" in value:
        return _arithmetic(start, stop, value["step"], f"{key}.step", check)
    return _geometric(start, stop, value["factor"], f"{key}.factor", check)


def _arithmetic(start, stop, step, key: str, check: _Checker) -> tuple[Any, ...]:
    if not _is_number(step) or step <= 0 or stop < start:
        check.fail(key, f"must be a positive number with start <= stop, got step {step!r}")
    count = int(math.floor((stop - start) / step + 1e-9)) + 1
    if count > MAX_POINTS:
        check.fail(key, f"the range has {count:,} values")
    exact = all(isinstance(v, int) for v in (start, step))
    return tuple(start + i * step if exact else round(start + i * step, 12) for i in range(count))


def _geometric(start, stop, factor, key: str, check: _Checker) -> tuple[Any, ...]:
    if not _is_number(factor) or factor <= 1 or start <= 0 or stop < start:
        check.fail(key, f"must be a number > 1 with 0 < start <= stop, got factor {factor!r}")
    values, value = [], start
    while value <= stop * (1 + 1e-12):
        values.append(value if isinstance(value, int) else round(value, 12))
        value *= factor
    return tuple(values)


def _axes(value: Any, check: _Checker) -> tuple[Axis, ...]:
    if not isinstance(value, dict) or not value:
        check.fail("parameters", "must map profile fields (dotted paths) to lists or ranges of values")
    axes, seen = [], set()
    for path, spec in value.items():
        key = f"parameters.{path}"
        if not isinstance(path, str) or not path:
            check.fail(key, "a parameter must be a profile field name or dotted path")
        values = _values(spec, key, check)
        linked = []
        if isinstance(spec, dict) and "with" in spec:
            if not isinstance(spec["with"], dict):
                check.fail(f"{key}.with", "must map dotted paths to lists of the same length")
            for other, other_spec in spec["with"].items():
                other_values = _values(other_spec, f"{key}.with.{other}", check)
                if len(other_values) != len(values):
                    check.fail(
                        f"{key}.with.{other}", f"has {len(other_values)} values, {path!r} has {len(values)}"
                    )
                linked.append((str(other), other_values))
        axis = Axis(path, values, tuple(linked))
        for name in axis.paths:
            if name in seen:
                check.fail(key, f"the field {name!r} is swept twice")
            seen.add(name)
        axes.append(axis)
    return tuple(axes)


def _models(value: Any, path: Path, check: _Checker) -> tuple[tuple[str, str], ...]:
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        items = [(_label(v), v) for v in value]
    elif isinstance(value, dict) and value and all(isinstance(v, str) for v in value.values()):
        items = [(str(k), v) for k, v in value.items()]
    else:
        check.fail("models", "must be a list of zoo names / ONNX paths, or a mapping label: model")
    labels = [label for label, _ in items]
    for label in labels:
        if labels.count(label) > 1 or label in _RESERVED_LABELS or not label.isidentifier():
            check.fail(f"models.{label}", "labels must be distinct identifiers other than 'total'")
    models = tuple((label, _model_path(spec, path)) for label, spec in items)
    for label, model in models:
        if model.endswith(".onnx") and not Path(model).is_file():
            check.fail(f"models.{label}", f"ONNX file not found: {model}")
    return models


def _label(spec: str) -> str:
    name = Path(spec).stem if spec.endswith(".onnx") else spec.split("@")[0]
    return name.replace("-", "_").replace(".", "_")


def _model_path(spec: str, path: Path) -> str:
    """ONNX paths are relative to the spec file; zoo names stay as they are."""
    if spec.endswith(".onnx") and not Path(spec).is_absolute():
        return str(path.parent / spec)
    return spec


def _bits(value: Any, check: _Checker) -> tuple[int, ...]:
    values = value if isinstance(value, list) else [value]
    if not values or any(v not in SUPPORTED_BITS or isinstance(v, bool) for v in values):
        check.fail("bits", f"must be a list of bit widths from {list(SUPPORTED_BITS)}, got {value!r}")
    return tuple(dict.fromkeys(values))


def _area(value: Any, name: str, check: _Checker) -> float:
    if not isinstance(value, dict) or set(value) - {"mm2_per_mac", "mm2_per_kib"}:
        check.fail("area", "must be a mapping with exactly mm2_per_mac and mm2_per_kib")
    if not _is_number(value.get(name)) or value[name] < 0:
        check.fail(f"area.{name}", f"must be a non-negative number (mm^2), got {value.get(name)!r}")
    return float(value[name])


def _objectives(value: Any, check: _Checker) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict) or len(value) < 2:
        check.fail("objectives", "must map at least two results.csv columns to 'min' or 'max'")
    for column, goal in value.items():
        if goal not in _GOALS:
            check.fail(f"objectives.{column}", f"must be 'min' or 'max', got {goal!r}")
    return tuple((str(c), g) for c, g in value.items())


def _plots(value: Any, check: _Checker) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        check.fail("plots", "must be a list of swept parameter paths")
    return tuple(value)


def _chunk(value: Any, check: _Checker) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        check.fail("chunk_points", f"must be a positive integer, got {value!r}")
    return value
