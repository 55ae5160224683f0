"""Mixed-precision figure: output SQNR against MB/inference and against inferences/s.

Handed plain numbers (one dict per measured point), so ``report`` stays a renderer.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

MARKERS = {"uniform": ("s", "#d62728"), "sensitivity": (".", "#bbbbbb"), "greedy": ("o", "#1f77b4")}


def plot_mixed_front(
    path: Path,
    points: list[dict],
    fronts: dict[str, list[dict]],
    chosen: dict,
    title: str,
    target_db: float,
    budget_mb: float,
) -> None:
    """Two panels (MB/inference, inferences/s), every point by kind, each panel's Pareto front
    as a line, the uniform widths labelled, the chosen assignment circled; dashed guides at the
    SQNR target and (MB panel) the traffic budget."""
    figure = Figure(figsize=(10, 4))
    panels = (("megabytes", "DRAM MB/inference (10^6 B)"), ("inferences_per_second", "inferences/s"))
    for column, (key, xlabel) in enumerate(panels, start=1):
        ax = figure.add_subplot(1, 2, column)
        for kind, (marker, colour) in MARKERS.items():
            chosen_kind = [p for p in points if p["kind"] == kind]
            ax.scatter(
                [p[key] for p in chosen_kind],
                [p["sqnr_db"] for p in chosen_kind],
                marker=marker,
                color=colour,
                s=18 if kind != "sensitivity" else 10,
                label=f"{kind} ({len(chosen_kind)})",
                zorder=3 if kind == "uniform" else 2,
            )
        front = fronts[key]
        ax.step(
            [p[key] for p in front],
            [p["sqnr_db"] for p in front],
            where="post",
            color="#2ca02c",
            lw=1,
            label="Pareto front",
        )
        for p in points:
            if p["kind"] == "uniform":
                ax.annotate(
                    p["label"],
                    (p[key], p["sqnr_db"]),
                    fontsize=7,
                    xytext=(4, -10),
                    textcoords="offset points",
                )
        ax.scatter(
            [chosen[key]],
            [chosen["sqnr_db"]],
            s=120,
            facecolors="none",
            edgecolors="black",
            label="chosen",
            zorder=4,
        )
        ax.axhline(target_db, color="#7f7f7f", ls="--", lw=0.8, label=f"SQNR target {target_db:.1f} dB")
        if key == "megabytes":
            ax.axvline(budget_mb, color="#7f7f7f", ls=":", lw=0.8, label=f"traffic budget {budget_mb:.2f} MB")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("output SQNR vs fp32 (dB)")
        ax.grid(alpha=0.3)
        if column == 1:
            ax.legend(fontsize=7)
    figure.suptitle(title, fontsize=10)
    FigureCanvasAgg(figure)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
