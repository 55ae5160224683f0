"""The cost model, evaluated for many design points at once.

``nnasim.cost.evaluate`` runs a group of fused layers as one pass taking
``max(compute, memory) + pass overhead`` cycles, where compute is the larger of the MAC
array's and the element engine's cycles (they run side by side) and memory is the group's
DRAM bytes over the bytes moved per cycle. So a network's cost separates into

- per-layer DRAM bytes and group membership: the memory plan (plan fields and bit width);
- per-layer compute cycles: the MAC array and the element engine (compute fields);
- DRAM bandwidths (feature maps; weights when they have a memory of their own, which then
  runs in parallel: a pass waits for the slower of the two), clock and pass overhead, which
  only enter the final sum.

Profiles with a ``blocks`` section (Ethos-U style) do not separate: their per-block command
cost ties compute cycles to bandwidth and clock. Their points are costed by ``evaluate``
itself, one call per point (cached per distinct profile).

The memory plan comes from one call of ``evaluate`` per distinct plan; MAC-array cycles from
the cost model's own ``mac_cycles`` per distinct array; element-engine cycles from the
``evaluate`` call of their distinct rate. All are cached, so a whole batch of points then
costs a few numpy operations. Every ``evaluate`` call is also a check: its own totals must
equal what the separated form gives for the same profile, so a change in the cost model
that breaks the separation stops the sweep instead of skewing it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnasim.cost import HwProfile, NetworkCost, Workload, evaluate, mac_cycles
from nnasim.cost.workload import MAC
from nnasim.errors import NnasimError
from nnasim.sweep.grid import TIMING_FIELDS, timing_value

_TOLERANCE = 1e-9


@dataclass(frozen=True)
class _Plan:
    group: np.ndarray  # group id of each layer
    activation_bytes: np.ndarray  # per group: feature maps read and written
    weight_bytes: np.ndarray  # per group


@dataclass(frozen=True)
class BatchCost:
    """Costs of one network at many points (arrays with one entry per point)."""

    megabytes: np.ndarray
    inferences_per_second: np.ndarray
    utilization: np.ndarray
    compute_bound: np.ndarray  # bool


class SeparableCost:
    """Evaluates one workload at batches of points; caches plans and compute cycles."""

    def __init__(self, workload: Workload):
        self.workload = workload
        self.is_mac = np.array([layer.kind == MAC for layer in workload.layers])
        self.macs = float(workload.macs)
        self._plans: dict[tuple, _Plan] = {}
        self._mac: dict[tuple, np.ndarray] = {}
        self._vector: dict[tuple, np.ndarray] = {}
        self._points: dict[tuple, NetworkCost] = {}
        self.evaluations = 0

    def batch(self, hw: HwProfile, bits: int, plan_key: tuple, timing: dict[str, np.ndarray]) -> BatchCost:
        """Costs at the points that share ``hw``'s plan and compute fields; ``plan_key`` names
        the plan fields' values and ``timing`` holds every ``grid.TIMING_FIELDS`` per point."""
        if hw.blocks:
            return self._full(hw, bits, timing)
        vector_key = (
            bits,
            hw.at(hw.eltwise_per_clock, bits),
            None if hw.element_cycles is None else repr(hw.element_cycles),
        )
        if plan_key not in self._plans or vector_key not in self._vector:
            self._evaluate(hw, bits, plan_key, vector_key)
        cycles = np.where(self.is_mac, self._mac_cycles(hw, bits), self._vector[vector_key])
        return self._combine(self._plans[plan_key], cycles, hw.macs_per_clock(bits), timing)

    def _full(self, hw: HwProfile, bits, timing: dict[str, np.ndarray]) -> BatchCost:
        """Blocked profiles: the full cost model at each point (timing fields set per point)."""
        costs = []
        for j in range(len(timing["clock_mhz"])):
            changes = {name: timing[name][j] for name in TIMING_FIELDS if not np.isnan(timing[name][j])}
            changes = {k: v for k, v in changes.items() if getattr(hw, k) is not None}
            key = (bits, id(hw), tuple(sorted(changes.items())))
            if key not in self._points:
                self._points[key] = evaluate(self.workload, hw.replace(**changes), bits)
                self.evaluations += 1
            costs.append(self._points[key])
        return BatchCost(
            megabytes=np.array([c.megabytes for c in costs]),
            inferences_per_second=np.array([c.inferences_per_second for c in costs]),
            utilization=np.array([c.utilization for c in costs]),
            compute_bound=np.array([c.bound == "compute" for c in costs]),
        )

    def _mac_cycles(self, hw: HwProfile, bits: int) -> np.ndarray:
        array = hw.mac_array[hw.table_key(bits)]
        key = (bits, array)
        if key not in self._mac:
            self._mac[key] = np.array(
                [mac_cycles(layer, hw, bits) if layer.kind == MAC else 0.0 for layer in self.workload.layers],
                dtype=np.float64,
            )
        return self._mac[key]

    def _evaluate(self, hw: HwProfile, bits: int, plan_key: tuple, vector_key: tuple) -> None:
        cost = evaluate(self.workload, hw, bits)
        self.evaluations += 1
        group = np.array([layer.group for layer in cost.layers], dtype=np.int64)
        n_groups = int(group.max()) + 1 if len(group) else 0
        weights = np.array([layer.weight_bytes for layer in cost.layers])
        activations = np.array([layer.act_read_bytes + layer.act_write_bytes for layer in cost.layers])
        cycles = np.array([layer.compute_cycles for layer in cost.layers])
        plan = _Plan(
            group,
            np.bincount(group, activations, minlength=n_groups),
            np.bincount(group, weights, minlength=n_groups),
        )
        self._plans.setdefault(plan_key, plan)
        self._vector.setdefault(vector_key, np.where(self.is_mac, 0.0, cycles))
        self._check(cost, hw, bits, plan_key)

    def _combine(self, plan: _Plan, layer_cycles: np.ndarray, peak: int, timing: dict) -> BatchCost:
        n_groups = len(plan.weight_bytes)
        mac = np.bincount(plan.group, np.where(self.is_mac, layer_cycles, 0.0), minlength=n_groups)
        vector = np.bincount(plan.group, np.where(self.is_mac, 0.0, layer_cycles), minlength=n_groups)
        compute = np.maximum(mac, vector)
        clock_hz = timing["clock_mhz"] * 1e6
        weight_gbps = np.where(
            np.isnan(timing["weight_dram_gbps"]), timing["dram_gbps"], timing["weight_dram_gbps"]
        )
        activation_per_cycle = (timing["dram_gbps"] * 1e9 / clock_hz)[:, None]
        weight_per_cycle = (weight_gbps * 1e9 / clock_hz)[:, None]
        shared = np.isnan(timing["weight_dram_gbps"])[:, None]  # weights in the feature-map DRAM
        fm_cycles = plan.activation_bytes[None, :] / activation_per_cycle
        weight_cycles = plan.weight_bytes[None, :] / weight_per_cycle
        memory = np.where(shared, fm_cycles + weight_cycles, np.maximum(fm_cycles, weight_cycles))
        group_cycles = np.maximum(compute[None, :], memory) + timing["pass_overhead_cycles"][:, None]
        total = group_cycles.sum(axis=1)
        compute_cycles = np.where(compute[None, :] >= memory, group_cycles, 0.0).sum(axis=1)
        with np.errstate(divide="ignore"):
            ips = np.where(total > 0, clock_hz / np.where(total > 0, total, 1.0), np.inf)
            utilization = np.where(total > 0, self.macs / (np.where(total > 0, total, 1.0) * peak), 0.0)
        return BatchCost(
            megabytes=np.full(len(total), (plan.activation_bytes.sum() + plan.weight_bytes.sum()) / 1e6),
            inferences_per_second=ips,
            utilization=utilization,
            compute_bound=compute_cycles >= total - compute_cycles,
        )

    def _check(self, cost: NetworkCost, hw: HwProfile, bits: int, plan_key: tuple):
        timing = {name: np.array([timing_value(getattr(hw, name))]) for name in TIMING_FIELDS}
        fast = self.batch(hw, bits, plan_key, timing)
        pairs = {
            "MB/inference": (fast.megabytes[0], cost.megabytes),
            "inferences/s": (fast.inferences_per_second[0], cost.inferences_per_second),
            "utilization": (fast.utilization[0], cost.utilization),
        }
        for what, (got, want) in pairs.items():
            if abs(got - want) > _TOLERANCE * max(abs(want), 1.0):
                raise NnasimError(
                    f"sweep: the separated cost of {self.workload.name} on {hw.name} at {bits} bits gives "
                    f"{what} {got:.6g}, nnasim.cost.evaluate {want:.6g}; the cost model no longer separates "
                    "as nnasim/sweep/fastcost.py assumes"
                )
        if bool(fast.compute_bound[0]) != (cost.bound == "compute"):
            raise NnasimError(f"sweep: the separated cost of {self.workload.name} disagrees on the bound")
