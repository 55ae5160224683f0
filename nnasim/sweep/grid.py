"""The grid of design points: every combination of the swept values, at every bit width.

A point is an integer id; ``unravel`` turns ids into the index of each axis's value, so a
chunk of points is a few integer arrays, not a list of profiles. Each axis is classed by
what its fields change in the cost model (see ``fastcost``):

- *timing* fields (DRAM bandwidths, clock, pass overhead) only rescale the final sum;
- *compute* fields (the MAC array, the element engine) change per-layer compute cycles;
- every other field may change the memory plan (which layers fuse, what stays on chip).

Points that share the compute and plan values share a *structure*: one validated
``HwProfile`` with the timing fields at their base values.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import numpy as np

from nnasim.cost import HwProfile, load_profile, profile_from_dict
from nnasim.errors import NnasimError, ProfileError, UsageError
from nnasim.sweep.spec import Axis, SweepSpec

TIMING_FIELDS = ("dram_gbps", "weight_dram_gbps", "clock_mhz", "pass_overhead_cycles")
COMPUTE_FIELDS = ("mac_array", "eltwise_per_clock")
_METADATA_FIELDS = ("name", "source")
_OPTIONAL_FIELDS = tuple(f.name for f in dataclasses.fields(HwProfile) if f.default is None)


def profile_dict(hw: HwProfile) -> dict[str, Any]:
    """A profile as the plain mapping its YAML would give (after inheritance)."""
    data = dataclasses.asdict(hw)
    for key in _METADATA_FIELDS:
        data.pop(key, None)
    return {key: value for key, value in data.items() if value is not None or key not in _OPTIONAL_FIELDS}


def timing_value(value: float | None) -> float:
    """A timing value per point; NaN for an optional field that is absent (see ``fastcost``)."""
    return np.nan if value is None else float(value)


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``data[a][b][c] = value`` for ``path`` ``a.b.c``; integer keys (bit widths) match digits."""
    keys = path.split(".")
    node = data
    for depth, key in enumerate(keys):
        if not isinstance(node, dict):
            raise KeyError(".".join(keys[:depth]))
        if key not in node and key.isdigit() and int(key) in node:
            key = int(key)
        if key not in node and not (depth == 0 and key in _OPTIONAL_FIELDS):
            raise KeyError(".".join(keys[: depth + 1]))
        if depth == len(keys) - 1:
            node[key] = value
        else:
            node = node[key]


def field_class(path: str) -> int:
    """0 timing, 1 compute, 2 plan: how deep into the cost model a field reaches."""
    top = path.split(".")[0]
    return 0 if top in TIMING_FIELDS else 1 if top in COMPUTE_FIELDS else 2


class Grid:
    """The design points of a spec over its base profile."""

    def __init__(self, spec: SweepSpec):
        self.spec = spec
        try:
            self.base = load_profile(spec.base)
        except ProfileError as error:
            raise UsageError(f"{spec.path}: key 'base': {error}") from None
        self.base_data = profile_dict(self.base)
        self.shape = (len(spec.bits), *(len(axis.values) for axis in spec.axes))
        self.axis_class = tuple(max(field_class(p) for p in axis.paths) for axis in spec.axes)
        self._structures: dict[tuple[int, ...], HwProfile] = {}
        self._check_values()

    @property
    def n_points(self) -> int:
        return int(np.prod(self.shape))

    def unravel(self, ids: np.ndarray) -> np.ndarray:
        """Rows: bit-width index, then one value index per axis; one column per point."""
        return np.stack(np.unravel_index(np.asarray(ids, dtype=np.int64), self.shape))

    def structure_keys(self, index: np.ndarray) -> np.ndarray:
        """Per point: bit-width index, then the value index of every non-timing axis (else 0)."""
        keys = index.copy()
        for a, cls in enumerate(self.axis_class):
            if cls == 0:
                keys[a + 1] = 0
        return keys

    def structure(self, key: tuple[int, ...]) -> HwProfile:
        """The validated profile of a structure key (timing fields at the base values)."""
        if key not in self._structures:
            data = copy.deepcopy(self.base_data)
            for axis, value_index in zip(self.spec.axes, key[1:], strict=True):
                for path, value in axis.assignment(value_index).items():
                    if field_class(path) > 0:
                        set_path(data, path, value)
            self._structures[key] = self._build(data, "a combination of the swept values")
        return self._structures[key]

    def timing(self, index: np.ndarray) -> dict[str, np.ndarray]:
        """Per point: the value of each timing field (swept or from the base profile; NaN if absent)."""
        values = {
            name: np.full(index.shape[1], timing_value(getattr(self.base, name))) for name in TIMING_FIELDS
        }
        for a, axis in enumerate(self.spec.axes):
            for path in axis.paths:
                if field_class(path) == 0:
                    column = axis.values if path == axis.path else dict(axis.linked)[path]
                    values[path] = np.asarray(column, dtype=np.float64)[index[a + 1]]
        return values

    def assignments(self, index: np.ndarray, column: int) -> dict[str, Any]:
        """Path -> value of every swept field at one point (a column of ``index``)."""
        values: dict[str, Any] = {}
        for a, axis in enumerate(self.spec.axes):
            values.update(axis.assignment(int(index[a + 1, column])))
        return values

    def _check_values(self) -> None:
        """Every swept value, set alone on the base profile, must give a valid profile."""
        for axis in self.spec.axes:
            for i in range(len(axis.values)):
                data = copy.deepcopy(self.base_data)
                for path, value in axis.assignment(i).items():
                    if len(path.split(".")) > 1 and path.split(".")[0] in TIMING_FIELDS:
                        self._fail(axis, path, "is a number; it has no sub-fields")
                    try:
                        set_path(data, path, value)
                    except KeyError as error:
                        self._fail(axis, path, f"the profile has no field {error.args[0]!r}")
                self._build(data, f"parameters.{axis.path} = {axis.values[i]!r}")

    def _fail(self, axis: Axis, path: str, message: str):
        key = f"parameters.{axis.path}" + (f".with.{path}" if path != axis.path else "")
        raise UsageError(f"{self.spec.path}: key {key!r}: {message}")

    def _build(self, data: dict[str, Any], what: str) -> HwProfile:
        try:
            return profile_from_dict(data, label=f"{self.base.name}+sweep")
        except NnasimError as error:
            raise UsageError(f"{self.spec.path}: {what}: {error}") from None
