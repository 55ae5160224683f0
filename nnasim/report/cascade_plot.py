"""Cascade throughput figure: frames/s and MB/frame against faces per frame."""

from __future__ import annotations

from pathlib import Path

from nnasim.cost.cascade import CascadeCost


def plot_cascade(
    path: str | Path, costs: list[CascadeCost], faces: tuple[int, ...], force: bool = False
) -> None:
    """Frames/s and MB/frame against faces per frame, one line per profile and bit widths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nnasim.io.files import atomic_file

    fig, (ax_fps, ax_mb) = plt.subplots(1, 2, figsize=(9, 3.6), dpi=100)
    for cost in costs:
        label = f"{cost.detector.hw} {cost.label}-bit"
        (line,) = ax_fps.plot(
            faces, [1 / cost.frame_seconds(n) for n in faces], marker="o", ms=3, label=label
        )
        ax_mb.plot(faces, [cost.frame_megabytes(n) for n in faces], marker="o", ms=3, color=line.get_color())
        ax_fps.axvline(cost.time_crossover, color=line.get_color(), lw=0.8, ls=":")
    ax_fps.set_ylabel("frames/s")
    ax_mb.set_ylabel("DRAM MB/frame (10^6 B)")
    for ax in (ax_fps, ax_mb):
        ax.set_xlabel("faces per frame (verifier runs)")
        ax.set_xscale("log", base=2)
        ax.set_xticks([n for n in faces if n > 0], [str(n) for n in faces if n > 0])
        ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
    ax_fps.legend(fontsize=7, title="dotted: verifier time = detector time", title_fontsize=7)
    first = costs[0]
    fig.suptitle(f"{first.detector.model} -> {first.verifier.model} cascade throughput", fontsize=10)
    fig.tight_layout()
    with atomic_file(path, force) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
