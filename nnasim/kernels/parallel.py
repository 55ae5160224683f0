"""Threads for the kernels: one count for Numba and the block pool, BLAS kept to one thread.

Two thread pools that both spin while waiting (Numba's OpenMP workers, OpenBLAS's) fight for
the same cores: on 2 cores two threads each made MobileFaceNet 24x slower than one. So BLAS
runs single-threaded, always. The integer kernels share each block of work among Numba's
OpenMP threads (``prange``); float products, which BLAS computes, split their rows into blocks
that the pool here runs (NumPy's matmul releases the GIL).

Waking a sleeping thread costs about 40 us on a virtual machine (a 2-core AMD EPYC), as much as
a small layer's whole work, so OpenMP's workers spin between parallel regions, which keeps a
region at about 1 us. ``OMP_WAIT_POLICY=ACTIVE`` with ``GOMP_SPINCOUNT`` 300000 (about 10 ms of
spinning, then sleep): without ACTIVE, libgomp throttles the spinning to almost nothing once
other threads (onnxruntime's, the block pool) have run, and MobileFaceNet int8 at two threads
took 12.8 ms instead of 2.4; without a finite count, ACTIVE would spin for ever.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("OMP_WAIT_POLICY", "ACTIVE")  # both read when Numba first loads OpenMP
os.environ.setdefault("GOMP_SPINCOUNT", "300000")

import numba  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

_state: dict = {"threads": None, "pool": None, "blas": None}


def set_threads(count: int | None = None) -> int:
    """Use ``count`` threads (None: ``NUMBA_NUM_THREADS``, which defaults to every core); Numba's
    share is capped by ``NUMBA_NUM_THREADS``, fixed when it starts."""
    count = numba.config.NUMBA_NUM_THREADS if count is None else count
    if count < 1:
        raise ValueError(f"thread count must be at least 1, got {count}")
    numba.set_num_threads(min(count, numba.config.NUMBA_NUM_THREADS))
    if _state["blas"] is None:
        _state["blas"] = threadpool_limits(1, user_api="blas")
    if _state["pool"] is not None:
        _state["pool"].shutdown()
    _state["pool"] = ThreadPoolExecutor(count, thread_name_prefix="nnasim") if count > 1 else None
    _state["threads"] = count
    return count


def threads() -> int:
    """The thread count in use (configuring the default on first use)."""
    return _state["threads"] or set_threads()


def for_blocks(work: Callable[[int, int], int], total: int, block: int) -> int:
    """Run ``work(start, stop)`` over ``range(total)`` in blocks of ``block``; sum the results.

    Blocks run on the pool when more than one thread is in use (and there is more than one block).
    """
    starts = range(0, total, max(1, block))
    if threads() == 1 or len(starts) == 1:
        return sum(work(start, min(start + block, total)) for start in starts)
    futures = [_state["pool"].submit(work, start, min(start + block, total)) for start in starts]
    return sum(future.result() for future in futures)
