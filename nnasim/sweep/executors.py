"""Where chunks of points are evaluated: this process, local worker processes, or Dask.

Every executor yields ``(chunk, rows)`` as chunks finish, in any order; the caller records
them. Workers load the models themselves (a model named by path must be readable there).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import threading
import time
from collections.abc import Iterator
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
    """A pool of local processes (each loads the models once, then takes chunk after chunk).

    Workers ignore Ctrl-C (the main process handles it) and die with the main process, even when
    it is killed with SIGKILL (see ``_worker_start``); when the stream is closed or fails, the
    pool is terminated rather than drained, so an interrupted sweep ends at once.
    """
    import multiprocessing

    pool = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn").Pool(
        workers, initializer=_worker_start, initargs=(os.getpid(), spec)
    )
    try:
        yield from pool.imap_unordered(_evaluate_in_worker, chunks)
        pool.close()
    finally:
        pool.terminate()
        pool.join()


_WORKER_SPEC: list[SweepSpec] = []


def _worker_start(parent: int, spec: SweepSpec) -> None:
    """In each worker: default SIGTERM, no SIGINT, and exit when the main process ``parent`` is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent(parent)
    _WORKER_SPEC[:] = [spec]


def _die_with_parent(parent: int) -> None:
    """Linux: the kernel sends SIGKILL when the parent dies (prctl PR_SET_PDEATHSIG); elsewhere, and as a
    second guard, a daemon thread exits once the parent process id changes (the worker was re-parented)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the guard was in place
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="nnasim-parent-watch", daemon=True).start()


_PR_SET_PDEATHSIG = 1


def _evaluate_in_worker(chunk: Chunk) -> tuple[Chunk, list[dict[str, Any]]]:
    return chunk, evaluate_chunk(_WORKER_SPEC[0], chunk)


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
