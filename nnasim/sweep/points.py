"""Evaluating chunks of design points: the work every executor runs.

``PointEvaluator`` loads each model once, builds its hardware-independent workload once and
keeps the separated costs (``fastcost``) between chunks. ``evaluate_chunk`` is the task an
executor sends to a worker: it finds (or makes) the worker's evaluator for the spec.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnasim.cost import build_workload
from nnasim.sweep.fastcost import SeparableCost
from nnasim.sweep.grid import Grid, field_class
from nnasim.sweep.spec import SweepSpec


class PointEvaluator:
    """Costs of every model of a spec at any of its points."""

    def __init__(self, spec: SweepSpec):
        from nnasim.frontend import load_lowered

        self.spec = spec
        self.grid = Grid(spec)
        self.models = {
            label: SeparableCost(build_workload(load_lowered(model))) for label, model in spec.models
        }
        classes = [{field_class(p) for p in axis.paths} for axis in spec.axes]
        self._plan_axes = [a + 1 for a, c in enumerate(classes) if 2 in c]

    @property
    def evaluations(self) -> int:
        """Calls of the full cost model so far (the rest is the separated form)."""
        return sum(model.evaluations for model in self.models.values())

    def rows(self, ids: list[int] | np.ndarray) -> list[dict[str, Any]]:
        """One results row per point id, in the order given."""
        ids = np.asarray(ids, dtype=np.int64)
        index = self.grid.unravel(ids)
        timing = self.grid.timing(index)
        keys = self.grid.structure_keys(index)
        rows: list[dict[str, Any]] = [{} for _ in ids]
        unique, inverse = np.unique(keys, axis=1, return_inverse=True)
        for s in range(unique.shape[1]):
            members = np.flatnonzero(inverse.ravel() == s)
            self._fill(rows, members, tuple(int(v) for v in unique[:, s]), index, timing, ids)
        return rows

    def _fill(self, rows, members, key, index, timing, ids) -> None:
        hw = self.grid.structure(key)
        bits = self.spec.bits[key[0]]
        plan_key = (key[0], *(key[a] for a in self._plan_axes))
        part = {name: values[members] for name, values in timing.items()}
        costs = {label: model.batch(hw, bits, plan_key, part) for label, model in self.models.items()}
        macs = max(hw.macs_per_clock(b) for b in hw.mac_array)
        onchip = hw.ocm_kib + hw.weight_buffer_kib + hw.line_buffer_kib
        area = self.spec.mm2_per_mac * macs + self.spec.mm2_per_kib * onchip
        total_seconds = sum(1.0 / cost.inferences_per_second for cost in costs.values())
        total_mb = sum(cost.megabytes for cost in costs.values())
        for j, member in enumerate(members):
            row = {"point": int(ids[member]), "bits": bits, **self.grid.assignments(index, member)}
            row.update(macs_per_clock=hw.macs_per_clock(bits), onchip_kib=onchip, area_mm2=area)
            for label, cost in costs.items():
                row[f"{label}_mb"] = float(cost.megabytes[j])
                row[f"{label}_ips"] = float(cost.inferences_per_second[j])
                row[f"{label}_bound"] = "compute" if cost.compute_bound[j] else "memory"
                row[f"{label}_utilization"] = float(cost.utilization[j])
            if len(costs) > 1:
                row["total_mb"] = float(total_mb[j])
                row["total_ips"] = float(1.0 / total_seconds[j])
            rows[member] = row


_WORKER_EVALUATORS: dict[str, PointEvaluator] = {}


def evaluate_chunk(spec: SweepSpec, ids: list[int]) -> list[dict[str, Any]]:
    """Rows for ``ids``; the evaluator (models, workloads, caches) lives on in this process."""
    evaluator = _WORKER_EVALUATORS.get(spec.fingerprint)
    if evaluator is None:
        _WORKER_EVALUATORS.clear()
        evaluator = _WORKER_EVALUATORS[spec.fingerprint] = PointEvaluator(spec)
    return evaluator.rows(ids)
