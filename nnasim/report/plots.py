"""The report figures, drawn with matplotlib's object API on the Agg canvas (no pyplot state).

Each function draws one PNG at ``path``; configurations keep one colour across all figures.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

DPI = 90
COLOURS = {"fp32": "#333333"}
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def colour(label: str, order: list[str]) -> str:
    """A stable colour for a configuration label (fp32 is always dark grey)."""
    if label in COLOURS:
        return COLOURS[label]
    others = [name for name in order if name not in COLOURS]
    return PALETTE[others.index(label) % len(PALETTE)]


def _save(figure: Figure, path: Path) -> None:
    FigureCanvasAgg(figure)
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)


def layer_sqnr_bars(path: Path, sqnr: dict[str, dict[str, float]], worst: int = 20) -> None:
    """Horizontal bars: SQNR (dB) of the ``worst`` layers, ranked by the lowest-precision config.

    ``sqnr`` maps config label -> {tensor name: dB}; the last (most lossy) config ranks the layers.
    """
    labels = list(sqnr)
    ranking = sqnr[labels[-1]]
    names = sorted(ranking, key=lambda n: _finite(ranking[n]))[:worst]
    figure = Figure(figsize=(8.5, 0.42 * len(names) + 1.4))
    axes = figure.add_subplot()
    height = 0.8 / len(labels)
    for k, label in enumerate(labels):
        values = [_finite(sqnr[label].get(n, np.nan)) for n in names]
        axes.barh(
            np.arange(len(names)) + k * height, values, height, label=label, color=colour(label, labels)
        )
    axes.set_yticks(np.arange(len(names)) + height * (len(labels) - 1) / 2)
    axes.set_yticklabels([_short(n) for n in names], fontsize=7)
    axes.invert_yaxis()
    axes.set_xlabel("SQNR vs fp32 (dB, higher is better)")
    axes.set_title(f"{len(names)} layers with the lowest SQNR at {labels[-1]}")
    axes.legend(fontsize=8, loc="lower right")
    axes.grid(axis="x", alpha=0.3)
    _save(figure, path)


def relative_error_graph(path: Path, errors: dict[str, np.ndarray], sizes: np.ndarray) -> None:
    """The talk's relative error graph: confidence error per face, faces ordered by size.

    ``sizes`` are the fp32 face sizes (pixels); face ID 1 is the largest (closest) face.
    """
    order = np.argsort(-np.asarray(sizes), kind="stable")
    labels = list(errors)
    figure = Figure(figsize=(8, 3.6))
    axes = figure.add_subplot()
    face_id = np.arange(1, len(order) + 1)
    for label in labels:
        axes.plot(
            face_id,
            np.asarray(errors[label])[order],
            "o-",
            ms=3,
            lw=0.8,
            label=label,
            color=colour(label, labels),
        )
    axes.set_xlabel("face ID (sorted by fp32 box size, 1 = largest / closest)")
    axes.set_ylabel("|conf - conf_fp32| / conf_fp32")
    axes.set_title("Relative error of the detection confidence against fp32")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    _save(figure, path)


def similarity_heatmap(
    path: Path, matrix: np.ndarray, names: list[str], persons: list[str], title: str
) -> None:
    """Pairwise cosine similarity of all faces, already ordered by person; lines separate people."""
    n = len(names)
    side = min(2.0 + 0.32 * n, 14.0)
    figure = Figure(figsize=(side + 1.2, side))
    axes = figure.add_subplot()
    image = axes.imshow(matrix, vmin=-0.2, vmax=1.0, cmap="viridis")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="cosine similarity")
    positions, ticks = _heatmap_ticks(names, persons)
    font = 7 if len(ticks) <= 40 else 5
    axes.set_xticks(positions)
    axes.set_xticklabels(ticks, rotation=90, fontsize=font)
    axes.set_yticks(positions)
    axes.set_yticklabels(ticks, fontsize=font)
    for boundary in [i for i in range(1, n) if persons[i] != persons[i - 1]]:
        axes.axhline(boundary - 0.5, color="white", lw=1.2)
        axes.axvline(boundary - 0.5, color="white", lw=1.2)
    if n <= 20:  # cell values, sized to the cell and dark on bright cells, light on dark ones
        size = max(5.0, min(9.0, 72 * side / (n + 2) / 3.2))
        for i in range(n):
            for j in range(n):
                bright = image.norm(matrix[i, j]) > 0.6
                axes.text(
                    j,
                    i,
                    f"{matrix[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=size,
                    color="black" if bright else "white",
                )
    axes.set_title(title)
    _save(figure, path)


FACE_TICKS_UP_TO = 60  # beyond this many faces, one tick per person (face names would overlap)


def _heatmap_ticks(names: list[str], persons: list[str]) -> tuple[list[float], list[str]]:
    """A tick per face (its name), or for many faces one per person at the middle of its block."""
    if len(names) <= FACE_TICKS_UP_TO:
        return list(range(len(names))), [_short(name, 28) for name in names]
    starts = [i for i in range(len(persons)) if i == 0 or persons[i] != persons[i - 1]]
    ends = [*starts[1:], len(persons)]
    middles = [(a + b - 1) / 2 for a, b in zip(starts, ends, strict=True)]
    return middles, [_short(persons[a], 28) for a in starts]


def roc_curves(path: Path, curves: dict[str, tuple[np.ndarray, np.ndarray]], floor: float) -> None:
    """ROC (TAR vs FAR, log FAR axis) of each configuration; FAR 0 is drawn at ``floor``."""
    labels = list(curves)
    figure = Figure(figsize=(5.5, 4.2))
    axes = figure.add_subplot()
    for label in labels:
        far, tar = curves[label]
        wide = label == labels[0]  # the reference is drawn wide underneath, so equal curves stay visible
        axes.step(
            np.maximum(far, floor),
            tar,
            where="post",
            label=label,
            color=colour(label, labels),
            lw=4 if wide else 1.5,
            alpha=0.45 if wide else 1.0,
        )
    for target in (1e-3, 1e-2):
        axes.axvline(target, color="grey", ls=":", lw=0.8)
    axes.set_xscale("log")
    axes.set_xlim(floor, 1.0)
    axes.set_ylim(_tar_floor(curves, floor), 1.005)
    axes.set_xlabel("false accept rate (FAR, log scale; FAR 0 at the left edge)")
    axes.set_ylabel("true accept rate (TAR)")
    axes.set_title("Verification ROC over same/different pairs")
    axes.legend(fontsize=8, loc="lower right")
    axes.grid(alpha=0.3, which="both")
    _save(figure, path)


def _tar_floor(curves: dict[str, tuple[np.ndarray, np.ndarray]], floor: float) -> float:
    """The TAR axis starts just below the lowest TAR any curve shows at the left edge (FAR ``floor``
    or less), in steps of 0.05, so curves a few pairs apart near TAR 1 are told apart."""
    starts = [float(tar[far <= floor].max(initial=tar.min())) for far, tar in curves.values()]
    return max(0.0, np.floor((min(starts, default=0.0) - 0.01) / 0.05) * 0.05)


def agreement_bars(path: Path, rows: list[dict]) -> None:
    """Stacked bars per configuration: right in both, only in fp32 (A\\B), only quantized (B\\A)."""
    labels = [row["config"] for row in rows]
    figure = Figure(figsize=(5.5, 3.2))
    axes = figure.add_subplot()
    bottom = np.zeros(len(rows))
    for key, name, shade in (
        ("both", "|A∩B|", "#4c72b0"),
        ("only_a", "A\\B", "#dd8452"),
        ("only_b", "B\\A", "#55a868"),
    ):
        values = np.array([row[key] for row in rows], float)
        axes.bar(labels, values, bottom=bottom, label=name, color=shade)
        bottom += values
    axes.set_ylabel("samples")
    axes.set_title("Top-1 agreement with fp32 (A: right in fp32, B: right quantized)")
    axes.legend(fontsize=8)
    _save(figure, path)


def agreement_changes(path: Path, rows: list[dict], what: str = "pairs") -> None:
    """Per configuration, the two sets that change against fp32, as horizontal bars: A\\B (right in
    fp32 only: lost) to the left, B\\A (right quantized only: gained) to the right; |A∩B| is written
    beside each bar, so sets of a few among thousands stay visible."""
    labels = [row["config"] for row in rows]
    figure = Figure(figsize=(6.4, 0.9 + 0.42 * len(rows)))
    axes = figure.add_subplot()
    y = np.arange(len(rows))[::-1]
    lost = np.array([row["only_a"] for row in rows], float)
    gained = np.array([row["only_b"] for row in rows], float)
    axes.barh(y, -lost, color="#dd8452", label="A\\B: right in fp32 only")
    axes.barh(y, gained, color="#55a868", label="B\\A: right quantized only")
    reach = max(float(lost.max(initial=0)), float(gained.max(initial=0)), 1.0)
    for k, row in enumerate(rows):
        axes.text(reach * 1.05, y[k], f"|A∩B| {row['both']}", va="center", fontsize=7)
    axes.axvline(0, color="black", lw=0.8)
    axes.set_xlim(-reach * 1.1, reach * 1.55)
    axes.set_yticks(y)
    axes.set_yticklabels(labels, fontsize=8)
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{abs(value):g}"))
    axes.set_xlabel(f"{what} that change sides against fp32 (A: right in fp32, B: right quantized)")
    axes.legend(fontsize=7, loc="upper left")
    axes.grid(alpha=0.3, axis="x")
    _save(figure, path)


def grid_heatmap(
    path: Path, grid: np.ndarray, rows: list[str], cols: list[str], title: str, fmt: str
) -> None:
    """A small annotated matrix, e.g. the cascade's detector x verifier grid."""
    figure = Figure(figsize=(1.3 * len(cols) + 2.2, 1.0 * len(rows) + 1.4))
    axes = figure.add_subplot()
    image = axes.imshow(grid, cmap="magma_r")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    axes.set_xticks(range(len(cols)))
    axes.set_xticklabels([f"verifier {c}" for c in cols], fontsize=8)
    axes.set_yticks(range(len(rows)))
    axes.set_yticklabels([f"detector {r}" for r in rows], fontsize=8)
    high = np.nanmax(grid) if np.isfinite(grid).any() else 0
    for i in range(len(rows)):
        for j in range(len(cols)):
            dark = grid[i, j] > high / 2
            axes.text(
                j, i, format(grid[i, j], fmt), ha="center", va="center", color="white" if dark else "black"
            )
    axes.set_title(title, fontsize=10)
    _save(figure, path)


def _finite(value: float) -> float:
    """Bars need finite lengths: an exact layer (SQNR +inf) is drawn at 150 dB."""
    return 150.0 if value == np.inf else (-50.0 if value == -np.inf else value)


def _short(name: str, width: int = 32, lines: int = 2) -> str:
    """A tensor name wrapped at its separators onto at most ``lines`` lines of ``width``; what does not
    fit is cut from the right (``features.0`` and ``features.10`` stay apart: the start is kept)."""
    pieces = re.split(r"(?<=[/._:-])", name)
    wrapped = [""]
    for piece in pieces:
        if wrapped[-1] and len(wrapped[-1]) + len(piece) > width:
            wrapped.append("")
        wrapped[-1] += piece
    wrapped = [line[i : i + width] for line in wrapped for i in range(0, len(line), width)]
    if len(wrapped) > lines:
        wrapped = wrapped[:lines]
        wrapped[-1] = wrapped[-1][: width - 1] + "…"
    return "\n".join(wrapped)
