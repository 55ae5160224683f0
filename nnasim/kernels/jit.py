"""How every kernel is compiled: ``@kernel`` is ``numba.njit`` with a cache that hits and is safe.

Numba's own ``cache=True`` writes next to the source (into an installed package), keys a
kernel's cache on its own file only (an edited helper it inlines leaves it stale) and lets
concurrent processes interleave their index and data writes. ``@kernel`` keeps Numba's cache
format but:

- puts it under the user's cache folder, ``nnasim.cache_dir() / "numba"`` (``NUMBA_CACHE_DIR``
  wins when set);
- stamps every kernel with a hash of all of ``nnasim/kernels/*.py``, so editing any kernel
  file recompiles them all;
- takes a file lock around each load (shared) and save (exclusive), so a process never reads
  an index entry whose data file another process has not yet written.

Kernels must take no function-typed arguments: a function's type names its address, so such
signatures never hit the cache across processes (specialise per rule instead).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

from numba import njit
from numba.core import caching, config

from nnasim import cache_dir

_KERNELS = Path(__file__).resolve().parent
_LOCK_NAME = ".nnasim.lock"
_Locator = getattr(caching, "UserProvidedCacheLocator", None) or caching._UserProvidedCacheLocator

try:
    import fcntl
except ImportError:  # Windows: Numba's own atomic renames only
    fcntl = None


def numba_cache_dir() -> Path:
    """Where compiled kernels live: ``$NUMBA_CACHE_DIR`` if set, else the nnasim cache's ``numba/``."""
    return Path(config.CACHE_DIR) if config.CACHE_DIR else cache_dir() / "numba"


def _kernels_stamp() -> str:
    digest = hashlib.sha256()
    for path in sorted(_KERNELS.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


_STAMP = _kernels_stamp()


class _KernelLocator(_Locator):
    """Numba's user-directory locator, pointed at ``numba_cache_dir()`` and stamped by all kernels."""

    def __init__(self, py_func, py_file):
        super().__init__(py_func, py_file)
        self._cache_path = str(numba_cache_dir() / self.get_suitable_cache_subpath(py_file))

    def get_source_stamp(self):
        return _STAMP

    @classmethod
    def from_function(cls, py_func, py_file):
        return super(_Locator, cls).from_function(py_func, py_file)


class _KernelCacheImpl(caching.CompileResultCacheImpl):
    _locator_classes = [_KernelLocator]


class _KernelCache(caching.FunctionCache):
    """Numba's function cache with loads and saves serialised across processes by a file lock."""

    _impl_class = _KernelCacheImpl

    def load_overload(self, sig, target_context):
        with self._locked(shared=True):
            return super().load_overload(sig, target_context)

    def save_overload(self, sig, data):
        with self._locked(shared=False):
            return super().save_overload(sig, data)

    @contextlib.contextmanager
    def _locked(self, shared: bool):
        if fcntl is None:
            yield
            return
        try:
            handle = open(os.path.join(self._cache_path, _LOCK_NAME), "a+b")  # noqa: SIM115
        except OSError:  # no writable cache folder: Numba then neither loads nor saves
            yield
            return
        with handle:
            fcntl.flock(handle, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def kernel(function=None, **options):
    """``numba.njit(**options)`` with the nnasim kernel cache (see the module docstring)."""

    def compile_lazily(py_func):
        dispatcher = njit(**options)(py_func)
        with contextlib.suppress(RuntimeError):  # no writable cache folder: compile every time
            dispatcher._cache = _KernelCache(py_func)  # what ``cache=True`` does, with our cache
        return dispatcher

    return compile_lazily if function is None else compile_lazily(function)
