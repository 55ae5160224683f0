"""Where chunks of points are evaluated: this process, local worker processes, or Dask.

Every executor yields ``(chunk, rows)`` as chunks finish, in any order; the caller records
them. Workers load the models themselves (a model named by path must be readable there).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from nnasim.errors import UsageError
from nnasim.sweep.points import evaluate_chunk
from nnasim.sweep.spec import SweepSpec

Chunk = list[int]
Done = Iterator[tuple[Chunk, list[dict[str, Any]]]]


def run_inline(spec: SweepSpec, chunks: list[Chunk]) -> Done:
    """One process, no pool: for one worker, and for tests that count evaluations."""
    for chunk in chunks:
        yield chunk, evaluate_chunk(spec, chunk)


def run_processes(spec: SweepSpec, chunks: list[Chunk], workers: int) -> Done:
    """A pool of local processes (each loads the models once, then takes chunk after chunk)."""
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(evaluate_chunk, spec, chunk): chunk for chunk in chunks}
        try:
            for future in as_completed(futures):
                yield futures[future], future.result()
        finally:
            for future in futures:
                future.cancel()


def connect_dask(scheduler: str):
    """A client of the Dask cluster at ``scheduler`` (``tcp://host:8786``); connects now, so a
    wrong address fails before anything is written."""
    try:
        from distributed import Client
    except ImportError:
        raise UsageError(
            "--executor dask needs the optional dependency dask[distributed]: pip install 'nnasim[dask]'"
        ) from None
    try:
        return Client(scheduler, timeout="10s")
    except (OSError, TimeoutError) as error:
        raise UsageError(f"--scheduler {scheduler}: cannot reach the Dask scheduler: {error}") from None


def run_dask(spec: SweepSpec, chunks: list[Chunk], client) -> Done:
    """Chunks as tasks on the cluster of ``client`` (closed when done)."""
    from distributed import as_completed as dask_completed

    with client:
        spec_future = client.scatter(spec, broadcast=True)
        futures = {
            client.submit(evaluate_chunk, spec_future, chunk, pure=False): i for i, chunk in enumerate(chunks)
        }
        try:
            for future in dask_completed(futures):
                yield chunks[futures[future]], future.result()
        finally:
            client.cancel(list(futures))


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
