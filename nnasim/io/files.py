"""Writing what users keep: atomically, and never over anything nnasim did not write.

- A file or folder is written under a temporary ``.NAME.PID.XXXX.part`` name beside its target
  and renamed into place when complete; a write error (disk full, no permission) is one line
  naming the target.
- An existing output is replaced only with ``--force``, and an existing folder only when it holds
  the marker ``.nnasim-output`` that nnasim puts in every folder it writes: ``--force`` never
  deletes a folder of the user's. Symbolic links are never written through or replaced.
- ``.part`` leftovers of a killed run (their process is gone) are removed by the next write
  beside them.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from nnasim.errors import UsageError

MARKER = ".nnasim-output"
MARKER_TEXT = "written by nnasim; --force and --resume may replace this folder\n"
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


def write_error(path: Path, error: OSError) -> UsageError:
    """One line naming the output and the system's reason (disk full, permission denied...)."""
    reason = error.strerror or type(error).__name__
    return UsageError(f"cannot write {path}: {reason}" + (f" ({error.filename})" if error.filename else ""))


def refuse_existing(path: Path, force: bool) -> None:
    """Refuse an existing output without ``force``; a link or a foreign folder even with it."""
    path = Path(path)
    if path.is_symlink():
        raise UsageError(
            f"{path}: is a symbolic link; nnasim does not write through links "
            "(remove it or name another output)"
        )
    if path.exists() and not force:
        raise UsageError(f"{path}: already exists; use --force to overwrite it")


def is_nnasim_folder(path: Path) -> bool:
    """Whether ``path`` is a real folder holding nnasim's marker (so nnasim may replace it)."""
    return path.is_dir() and not path.is_symlink() and (path / MARKER).is_file()


def refuse_foreign_folder(path: Path) -> None:
    """Refuse to delete a folder nnasim did not write (no marker), whatever the options say."""
    if path.exists() and not is_nnasim_folder(path):
        what = "a folder" if path.is_dir() else "a file"
        raise UsageError(
            f"{path}: is {what} nnasim did not write (no {MARKER} marker); nnasim never deletes it, "
            "even with --force: remove it yourself or name another output"
        )


def mark_folder(folder: Path) -> None:
    (folder / MARKER).write_text(MARKER_TEXT)


def _part_prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}."


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_parts(path: Path) -> list[Path]:
    """Remove ``.NAME.PID.*.part`` leftovers beside ``path`` whose process is gone; return them."""
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(\d+)\.[^/]*\.part$")
    removed = []
    with contextlib.suppress(OSError):
        for entry in path.parent.iterdir():
            match = pattern.match(entry.name)
            if not match or _process_alive(int(match.group(1))) or entry.is_symlink():
                continue
            if entry.is_dir() and (entry / MARKER).is_file():
                shutil.rmtree(entry, ignore_errors=True)
            elif entry.is_file():
                entry.unlink(missing_ok=True)
            else:
                continue
            removed.append(entry)
    return removed


def _temporary_beside(path: Path, folder: bool) -> Path:
    """A new temporary file (or folder) in ``path``'s folder, created if needed; a UsageError naming
    ``path`` where that folder cannot be made or written (a file in the way, no permission)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_parts(path)
        if folder:
            tmp = Path(tempfile.mkdtemp(prefix=_part_prefix(path), suffix=".part", dir=path.parent))
            mark_folder(tmp)
            return tmp
        fd, tmp = tempfile.mkstemp(prefix=_part_prefix(path), suffix=".part", dir=path.parent)
        os.close(fd)
        return Path(tmp)
    except OSError as error:
        raise write_error(path, error) from None


def write_text(path: str | Path, text: str, force: bool = False, announce: bool = True) -> Path:
    """Write ``text`` to ``path`` through a temporary file renamed into place."""
    with atomic_file(path, force, announce) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_bytes(path: str | Path, data: bytes, force: bool = False) -> Path:
    """Write ``data`` to ``path`` through a temporary file renamed into place."""
    with atomic_file(path, force) as tmp:
        tmp.write_bytes(data)
    return Path(path)


@contextmanager
def atomic_file(path: str | Path, force: bool = False, announce: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on failure it goes.

    An OSError while writing, syncing or renaming (ENOSPC, EACCES) becomes one UsageError line.
    ``announce=False`` keeps a cache file out of the written-files listeners (it is not an output)."""
    path = Path(path)
    refuse_existing(path, force)
    if path.is_dir():  # --force replaces files, never a folder of the user's
        raise UsageError(f"{path}: is a folder; give the name of a file to write")
    tmp = _temporary_beside(path, folder=False)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        yield tmp
        with open(tmp, "rb+") as written:
            os.fsync(written.fileno())  # on disk before the rename makes it visible
        os.replace(tmp, path)
        if announce:
            _announce(path)
    except OSError as error:
        raise write_error(path, error) from None
    finally:
        with contextlib.suppress(OSError):
            if os.path.lexists(tmp):
                os.unlink(tmp)


@contextmanager
def atomic_dir(path: str | Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it becomes ``path``.

    With ``force`` an existing ``path`` is replaced only if nnasim wrote it (its marker).
    """
    path = Path(path)
    refuse_existing(path, force)
    refuse_foreign_folder(path)
    tmp = _temporary_beside(path, folder=True)
    try:
        tmp.chmod(0o777 & ~_umask())
        yield tmp
        _replace_folder(tmp, path)
        _announce(path)
    except OSError as error:
        raise write_error(path, error) from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _sync_files(folder: Path) -> None:
    """Every file under ``folder`` on disk (a full disk shows here) before the rename makes it visible."""
    for root, _, names in os.walk(folder):
        for name in names:
            with open(os.path.join(root, name), "rb+") as written:
                os.fsync(written.fileno())


def _replace_folder(tmp: Path, path: Path) -> None:
    """Move the finished ``tmp`` to ``path``; an old nnasim folder there is renamed aside, then deleted."""
    _sync_files(tmp)
    if not path.exists():
        os.replace(tmp, path)
        return
    refuse_foreign_folder(path)  # it may have appeared while we wrote
    old = Path(tempfile.mkdtemp(prefix=_part_prefix(path), suffix=".part", dir=path.parent))
    os.replace(path, old)  # an empty folder is replaced by a rename
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)
