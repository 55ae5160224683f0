"""A per-user cache of Python objects (lowered graphs) keyed by what they were made from.

A key names its sources: files by path, size and modification time, and the code that made
the object by a stamp of its package folders (every ``.py`` file's name, size and modification
time, a few hundred ``stat`` calls). Entries are pickles written atomically under
``nnasim.cache_dir() / "graphs"``; an unreadable or stale entry is a miss, never an error.
The folder is kept under ``LIMIT_BYTES`` by dropping the least recently used entries.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

from nnasim import __version__, cache_dir

FOLDER = "graphs"
LIMIT_BYTES = 4 << 30


def file_stamp(path: Path) -> tuple:
    stat = path.stat()
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def code_stamp(folders: list[Path]) -> tuple:
    """The name, size and modification time of every Python file under ``folders``."""
    return tuple(file_stamp(path) for folder in folders for path in sorted(folder.rglob("*.py")))


def key_of(*parts) -> str:
    return hashlib.sha256(repr((__version__, *parts)).encode()).hexdigest()[:32]


def _path(key: str) -> Path:
    return cache_dir() / FOLDER / f"{key}.pickle"


def load(key: str):
    """The cached object of ``key``, or None."""
    try:
        with open(_path(key), "rb") as handle:
            value = pickle.load(handle)
        os.utime(_path(key))  # recently used
        return value
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        return None


def store(key: str, value) -> None:
    """Keep ``value`` under ``key`` (atomically); a cache that cannot be written is skipped."""
    from nnasim.io.files import atomic_file

    try:
        with atomic_file(_path(key), force=True) as temporary, open(temporary, "wb") as handle:
            pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)
        _trim(_path(key).parent)
    except Exception:  # a cache is an optimisation: never fail the command for it
        return


def _trim(folder: Path) -> None:
    entries = sorted(folder.glob("*.pickle"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    total = 0
    for path in entries:
        total += path.stat().st_size
        if total > LIMIT_BYTES:
            path.unlink(missing_ok=True)
