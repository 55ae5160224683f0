"""The kernel cache (``nnasim.kernels.jit``): outside the package, reused by the next process,
safe when processes compile at the same time, and used by every kernel."""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

from numba.core.dispatcher import Dispatcher

import nnasim.kernels as kernels_package
from nnasim.kernels import jit

KERNELS_DIR = Path(kernels_package.__file__).parent

# Calls three kernels, ``requantize`` with three accumulator types in the order given on the
# command line (different orders in concurrent processes is what interleaves index writes),
# checks each result against plain numpy, and prints "hits misses" over the kernels used.
WORKLOAD = """
import sys
import numpy as np
from nnasim.kernels import requant, conv2d
from nnasim.kernels.requant import make_output_stage, requantize

acc = np.arange(-300, 300, dtype=np.int64).reshape(-1, 4)
stage = make_output_stage(np.full(4, 0.25), "pow2", 0, -128, 127, 32)
expected = np.clip(np.where(acc >= 0, (acc + 2) >> 2, -((-acc + 2) >> 2)), -128, 127)
for dtype in sys.argv[1].split(","):
    out, _ = requantize(acc.astype(dtype), stage)
    assert np.array_equal(out, expected), dtype
fixed = make_output_stage(np.full(4, 0.3), "fixedpoint", 0, -128, 127, 32)
requantize(acc, fixed)
x = np.arange(2 * 5 * 5 * 3, dtype=np.int32).reshape(2, 5, 5, 3) % 7
conv2d.depthwise_conv2d(x, np.int64(1), np.ones((3, 3, 3), np.float32), 1, 1, 1, 1, 1, 1, 5, 5)
used = [requant._requantize_pow2_shift, requant._requantize_int, conv2d.depthwise_conv2d]
hits = sum(sum(d.stats.cache_hits.values()) for d in used)
misses = sum(sum(d.stats.cache_misses.values()) for d in used)
print(hits, misses)
"""


def _run(cache: Path, order: str) -> subprocess.Popen:
    env = {**os.environ, "NNASIM_CACHE": str(cache), "NUMBA_NUM_THREADS": "1"}
    env.pop("NUMBA_CACHE_DIR", None)
    return subprocess.Popen(
        [sys.executable, "-c", WORKLOAD, order],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen) -> tuple[int, int]:
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr
    hits, misses = stdout.split()
    return int(hits), int(misses)


def _index_files(cache: Path) -> dict[Path, int]:
    return {path: path.stat().st_mtime_ns for path in cache.rglob("*.nbi")}


def test_a_second_process_loads_every_kernel_from_the_cache(tmp_path):
    hits, misses = _finish(_run(tmp_path, "int64,float32,float64"))
    assert misses > 0 and hits == 0
    indexes = _index_files(tmp_path / "numba")
    assert indexes, "no cache index written under NNASIM_CACHE/numba"
    hits, misses = _finish(_run(tmp_path, "float64,int64,float32"))
    assert (hits, misses) == (5, 0)
    assert _index_files(tmp_path / "numba") == indexes, "a warm process rewrote a cache index"
    assert not list(KERNELS_DIR.rglob("*.nbi")), "kernel cache written into the package"


def test_processes_compiling_at_once_all_succeed_and_leave_a_consistent_cache(tmp_path):
    orders = ["int64,float32,float64", "float64,float32,int64", "float32,int64,float64"]
    for process in [_run(tmp_path, order) for order in orders]:
        _finish(process)
    assert _finish(_run(tmp_path, "float64,float32,int64"))[1] == 0


def test_every_kernel_uses_the_nnasim_cache():
    """A plain ``njit(cache=True)`` would cache into the package and miss the shared lock."""
    for info in pkgutil.iter_modules([str(KERNELS_DIR)]):
        module = importlib.import_module(f"nnasim.kernels.{info.name}")
        for name, value in inspect.getmembers(module, lambda v: isinstance(v, Dispatcher)):
            if value.py_func.__module__ == module.__name__:
                assert isinstance(value._cache, jit._KernelCache), f"{module.__name__}.{name}"
