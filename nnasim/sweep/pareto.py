"""The Pareto front: the points no other point beats on every objective."""

from __future__ import annotations

import numpy as np


def pareto_mask(values: np.ndarray, goals: list[str]) -> np.ndarray:
    """Which rows of ``values`` (points x objectives) are not dominated.

    A point is dominated when another is at least as good on every objective and strictly
    better on one; ``goals`` says per column whether lower ("min") or higher ("max") is better.
    Points with equal objective values are all kept.
    """
    cost = np.asarray(values, dtype=np.float64) * np.array([1.0 if g == "min" else -1.0 for g in goals])
    order = np.lexsort(cost.T[::-1])
    front: list[int] = []
    for i in order:
        if front:
            kept = cost[front]
            if np.any(np.all(kept <= cost[i], axis=1) & np.any(kept < cost[i], axis=1)):
                continue
        front.append(int(i))
    mask = np.zeros(len(cost), dtype=bool)
    mask[front] = True
    return mask
