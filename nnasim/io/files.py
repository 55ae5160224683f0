"""Writing what users keep: atomically, and never over an existing file unless asked."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from nnasim.errors import UsageError

_write_listeners: list[Callable[[Path], None]] = []


@contextmanager
def written_files_to(listener: Callable[[Path], None]) -> Iterator[None]:
    """Call ``listener`` with each file or folder the atomic writers put in place (the CLI names them)."""
    _write_listeners.append(listener)
    try:
        yield
    finally:
        _write_listeners.remove(listener)


def _announce(path: Path) -> None:
    if not any(part.endswith(".part") for part in path.parent.parts):  # not a file inside a folder being made
        for listener in _write_listeners:
            listener(path)


def _umask() -> int:
    """The process umask (read by setting and restoring it): temp files get the modes a plain open would."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def refuse_existing(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise UsageError(f"{path}: already exists; use --force to overwrite it")


def _temporary_beside(path: Path, folder: bool) -> Path:
    """A new temporary file (or folder) in ``path``'s folder, created if needed; a UsageError naming
    ``path`` where that folder cannot be made or written (a file in the way, no permission)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if folder:
            return Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        os.close(fd)
        return Path(tmp)
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror} ({error.filename})") from None


def write_text(path: str | Path, text: str, force: bool = False) -> Path:
    """Write ``text`` to ``path`` through a temporary file renamed into place."""
    with atomic_file(path, force) as tmp:
        tmp.write_text(text)
    return Path(path)


@contextmanager
def atomic_file(path: str | Path, force: bool = False, announce: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on failure it goes.

    ``announce=False`` keeps a cache file out of the written-files listeners (it is not an output)."""
    path = Path(path)
    refuse_existing(path, force)
    if path.is_dir():  # --force replaces files, never a folder of the user's
        raise UsageError(f"{path}: is a folder; give the name of a file to write")
    tmp = _temporary_beside(path, folder=False)
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        yield tmp
        with open(tmp, "rb+") as written:
            os.fsync(written.fileno())  # on disk before the rename makes it visible
        os.replace(tmp, path)
        if announce:
            _announce(path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def atomic_dir(path: str | Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it becomes ``path`` (replacing it with force)."""
    path = Path(path)
    refuse_existing(path, force)
    tmp = _temporary_beside(path, folder=True)
    tmp.chmod(0o777 & ~_umask())
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        os.replace(tmp, path)
        _announce(path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
