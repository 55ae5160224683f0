"""Running a sweep end to end: enumerate, evaluate (resumably), then write the results.

Outputs in the folder: ``results.csv`` (one row per point), ``pareto.csv`` (the points on
the Pareto front of the spec's objectives), ``pareto.png``, one ``<parameter>.png`` per
plotted parameter, plus ``points.jsonl``/``sweep.json``/``spec.yaml`` that make it resumable.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnasim.errors import UsageError
from nnasim.sweep import executors
from nnasim.sweep.grid import Grid
from nnasim.sweep.pareto import pareto_mask
from nnasim.sweep.plots import plot_parameter, plot_pareto
from nnasim.sweep.spec import SweepSpec
from nnasim.sweep.store import PointStore

EXECUTORS = ("local", "dask")


@dataclass(frozen=True)
class SweepRun:
    """What one invocation did: points evaluated now, points found finished, seconds taken."""

    evaluated: int
    resumed: int
    seconds: float
    pareto: int


def run_sweep(
    spec: SweepSpec,
    out_dir: str | Path,
    *,
    executor: str = "local",
    workers: int | None = None,
    scheduler: str | None = None,
    force: bool = False,
    resume: bool = False,
    progress: bool = True,
    on_chunk: Callable[[int], None] | None = None,
) -> SweepRun:
    """Evaluate every point of ``spec`` not yet recorded in ``out_dir`` and write the outputs.

    ``on_chunk(points recorded so far)`` runs after each chunk is durably recorded.
    """
    if executor not in EXECUTORS:
        raise UsageError(f"--executor {executor!r}: must be one of {', '.join(EXECUTORS)}")
    if force and resume:
        raise UsageError("--force starts the sweep again, --resume continues it: give one of them")
    if workers is not None and workers < 1:
        raise UsageError(f"--workers {workers}: must be at least 1")
    if executor == "dask" and not scheduler:
        raise UsageError("--executor dask needs --scheduler ADDRESS (e.g. tcp://10.0.0.5:8786)")
    grid = Grid(spec)
    client = executors.connect_dask(scheduler) if executor == "dask" else None
    store = PointStore(Path(out_dir), spec)
    try:
        finished = store.open(force=force, resume=resume)
    except BaseException:
        if client is not None:
            client.close()
        raise
    with store:  # the folder stays locked until its outputs are written
        chunks = _chunks(grid, finished, spec.chunk_points)
        start = time.perf_counter()
        done_now = _evaluate(spec, chunks, store, client, workers, progress, on_chunk, len(finished))
        seconds = time.perf_counter() - start
        front = write_outputs(spec, store.rows(), Path(out_dir))
    return SweepRun(evaluated=done_now, resumed=len(finished), seconds=seconds, pareto=front)


def _chunks(grid: Grid, finished: set[int], size: int) -> list[list[int]]:
    """Pending point ids, ordered so that points sharing a memory plan sit in the same chunks."""
    ids = np.arange(grid.n_points, dtype=np.int64)
    if finished:
        ids = np.setdiff1d(ids, np.fromiter(finished, dtype=np.int64))
    if not len(ids):
        return []
    keys = grid.structure_keys(grid.unravel(ids))
    ids = ids[np.lexsort(keys[::-1])]
    return [ids[i : i + size].tolist() for i in range(0, len(ids), size)]


def _evaluate(spec, chunks, store, client, workers, progress, on_chunk, already) -> int:
    from tqdm import tqdm

    if client is not None:
        stream = executors.run_dask(spec, chunks, client)
    else:
        workers = workers or executors.default_workers()
        workers = min(workers, max(len(chunks), 1))
        if workers <= 1:
            stream = executors.run_inline(spec, chunks)
        else:
            stream = executors.run_processes(spec, chunks, workers)
    count = 0
    with tqdm(total=spec.n_points, initial=already, unit="pt", disable=not progress, desc="sweep") as bar:
        try:
            for chunk, rows in stream:
                store.append(rows)
                count += len(chunk)
                bar.update(len(chunk))
                if on_chunk is not None:
                    on_chunk(already + count)
        finally:
            stream.close()
    return count


def write_outputs(spec: SweepSpec, rows: list[dict[str, Any]], out_dir: Path) -> int:
    """results.csv, pareto.csv and the plots; the number of Pareto points."""
    from nnasim.io.files import write_text

    if len(rows) != spec.n_points:
        raise UsageError(
            f"{out_dir}: {len(rows)} of {spec.n_points} points recorded; run again with --resume"
        )
    columns = list(rows[0])
    write_text(out_dir / "results.csv", _csv(rows, columns), force=True)
    table = {c: np.array([row[c] for row in rows]) for c in columns}
    objectives = np.column_stack([table[c].astype(np.float64) for c, _ in spec.objectives])
    front = pareto_mask(objectives, [goal for _, goal in spec.objectives])
    first = spec.objectives[0][0]
    pareto_rows = sorted((row for row, keep in zip(rows, front, strict=True) if keep), key=lambda r: r[first])
    write_text(out_dir / "pareto.csv", _csv(pareto_rows, columns), force=True)
    plot_pareto(table, front, spec, out_dir / "pareto.png")
    for parameter in spec.plots:
        plot_parameter(table, parameter, spec, out_dir / f"{parameter}.png")
    return int(front.sum())


def _csv(rows: list[dict[str, Any]], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
