"""Sweep plots: the Pareto front, and chosen parameters against inferences/s and MB/inference."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnasim.sweep.spec import SweepSpec

_LABELS = {
    "area_mm2": "area proxy (mm², 45 nm)",
    "macs_per_clock": "MACs per clock",
    "onchip_kib": "on-chip KiB",
}


def _label(column: str) -> str:
    if column in _LABELS:
        return _LABELS[column]
    if column.endswith("_ips"):
        return f"{column[:-4]} inferences/s"
    if column.endswith("_mb"):
        return f"{column[:-3]} MB/inference (10^6 B)"
    return column


def plot_pareto(table: dict[str, np.ndarray], front: np.ndarray, spec: SweepSpec, path: Path) -> None:
    """All points on the first two objectives, one colour per bit width, the front on top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (x_col, x_goal), (y_col, y_goal) = spec.objectives[:2]
    x, y, bits = table[x_col], table[y_col], table["bits"]
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    for b, shade in zip(spec.bits, ("#9ab8d8", "#e0b28c", "#a8d0a0", "#c9b3dd"), strict=False):
        sel = bits == b
        ax.scatter(x[sel], y[sel], s=5, alpha=0.5, color=shade, linewidths=0, label=f"{b}-bit points")
    order = np.argsort(x[front], kind="stable")  # the front drawn last, large and dark, over the cloud
    ax.step(x[front][order], y[front][order], where="post", color="#b2182b", lw=1.6, zorder=4)
    ax.scatter(
        x[front],
        y[front],
        s=42,
        marker="D",
        color="#b2182b",
        edgecolors="black",
        linewidths=0.6,
        zorder=5,
        label=f"Pareto front ({int(front.sum())} points)",
    )
    ax.set_xlabel(f"{_label(x_col)} ({x_goal})")
    ax.set_ylabel(f"{_label(y_col)} ({y_goal})")
    extra = f"; also {', '.join(c for c, _ in spec.objectives[2:])}" if len(spec.objectives) > 2 else ""
    ax.set_title(f"{len(x)} design points on {Path(spec.base).stem}{extra}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_parameter(table: dict[str, np.ndarray], parameter: str, spec: SweepSpec, path: Path) -> None:
    """Best inferences/s and least MB/inference reachable at each value of ``parameter``
    (over all other swept values), one line per model and bit width."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = table[parameter]
    levels = np.unique(values)
    fig, (ax_ips, ax_mb) = plt.subplots(1, 2, figsize=(9, 3.6), dpi=100)
    for label, _ in spec.models:
        for b in spec.bits:
            sel = table["bits"] == b
            best_ips = [table[f"{label}_ips"][sel & (values == v)].max() for v in levels]
            least_mb = [table[f"{label}_mb"][sel & (values == v)].min() for v in levels]
            ax_ips.plot(levels, best_ips, marker="o", ms=3, label=f"{label} {b}-bit")
            ax_mb.plot(levels, least_mb, marker="o", ms=3, label=f"{label} {b}-bit")
    ax_ips.set_ylabel("best inferences/s")
    ax_mb.set_ylabel("least MB/inference (10^6 B)")
    for ax in (ax_ips, ax_mb):
        ax.set_xlabel(_label(parameter))
        ax.grid(alpha=0.3)
    ax_ips.legend(fontsize=7)
    fig.suptitle(
        f"{parameter} against throughput and DRAM traffic (best over the other parameters)", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
