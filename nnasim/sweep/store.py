"""The sweep's output folder and its append-only record of finished points.

``points.jsonl`` holds one JSON object per finished point, keyed by its id; each chunk is
appended, flushed and fsync'd before the next is recorded, so a killed sweep loses at most
the chunks in flight. A line cut short by the kill is dropped on resume. ``sweep.json``
holds the spec's fingerprint so a resume cannot mix points of two different sweeps.

``--force`` and ``--resume`` only touch a folder nnasim made (its ``.nnasim-output`` marker, see
``nnasim.io.files``); a folder of the user's is refused whatever the options. While a sweep runs it
holds an exclusive lock on ``.nnasim-sweep.lock`` in the folder (``filelock``: an OS lock, ``flock``
on Linux, so a killed sweep never leaves it held), and a second sweep on the same folder is refused.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from nnasim.errors import UsageError
from nnasim.io.files import MARKER, is_nnasim_folder, mark_folder, write_error, write_text
from nnasim.sweep.spec import SweepSpec

RECORD = "points.jsonl"
MANIFEST = "sweep.json"
LOCK = ".nnasim-sweep.lock"


class PointStore:
    def __init__(self, out_dir: Path, spec: SweepSpec):
        self.out_dir = out_dir
        self.spec = spec
        self.path = out_dir / RECORD

        self._lock: FileLock | None = None

    def open(self, force: bool, resume: bool) -> set[int]:
        """Check and lock the folder, then prepare it; the ids already finished (empty unless resuming)."""
        self._check_folder(force, resume)
        self._acquire()
        try:
            return self._prepare(resume)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Release the folder's lock (the lock file stays: deleting it would race a new sweep)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> PointStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _check_folder(self, force: bool, resume: bool) -> None:
        out = self.out_dir
        if out.is_symlink() or (out.exists() and not out.is_dir()):
            kind = "a symbolic link" if out.is_symlink() else "not a folder"
            raise UsageError(f"{out}: exists and is {kind}; give the name of a folder for the sweep")
        if not out.exists() or not any(out.iterdir()):
            return
        if not (force or resume):
            raise UsageError(
                f"{out}: output folder exists; use --resume to finish an interrupted sweep "
                "or --force to start it again"
            )
        if not is_nnasim_folder(out):
            raise UsageError(
                f"{out}: is not a folder nnasim's sweep wrote (no {MARKER} marker); nnasim deletes "
                "nothing in it, even with --force or --resume: name a new or empty folder"
            )

    def _acquire(self) -> None:
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise write_error(self.out_dir, error) from None
        lock = FileLock(self.out_dir / LOCK)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise UsageError(
                f"{self.out_dir}: another nnasim sweep is running in this folder (it holds {LOCK}); "
                "wait for it to finish or name another folder"
            ) from None
        except OSError as error:
            raise write_error(self.out_dir / LOCK, error) from None
        self._lock = lock

    def _prepare(self, resume: bool) -> set[int]:
        manifest = self.out_dir / MANIFEST
        if resume and manifest.is_file():
            found = self._fingerprint(manifest)
            if found != self.spec.fingerprint:
                raise UsageError(
                    f"{self.out_dir}: holds a different sweep (spec fingerprint {found}, this spec "
                    f"{self.spec.fingerprint}); use --force to start again"
                )
            self._drop_cut_line()
            return self._finished_ids()
        self._clear()
        mark_folder(self.out_dir)
        manifest_data = {"fingerprint": self.spec.fingerprint, "points": self.spec.n_points}
        write_text(manifest, json.dumps(manifest_data, indent=1) + "\n", force=True, announce=False)
        write_text(self.out_dir / "spec.yaml", self.spec.text, force=True, announce=False)
        return set()

    def _fingerprint(self, manifest: Path) -> str | None:
        try:
            data = json.loads(manifest.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            data = None
        return data.get("fingerprint") if isinstance(data, dict) else None

    def _clear(self) -> None:
        """Everything in the (nnasim-made, locked) folder but the lock file goes."""
        for entry in self.out_dir.iterdir():
            if entry.name == LOCK:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Record finished points durably (one line each, then fsync)."""
        text = "".join(json.dumps(row, separators=(",", ":")) + "\n" for row in rows)
        try:
            with open(self.path, "a") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as error:  # a full disk: the points recorded so far stay for --resume
            raise write_error(self.path, error) from None

    def rows(self) -> list[dict[str, Any]]:
        """Every recorded point once, by id."""
        by_id: dict[int, dict[str, Any]] = {}
        for row in self._read():
            by_id[row["point"]] = row
        return [by_id[i] for i in sorted(by_id)]

    def _drop_cut_line(self) -> None:
        """Truncate a last line the kill cut short, so the next append starts on a new line."""
        if not self.path.is_file():
            return
        data = self.path.read_bytes()
        keep = data.rfind(b"\n") + 1
        if keep < len(data):
            with open(self.path, "r+b") as handle:
                handle.truncate(keep)

    def _finished_ids(self) -> set[int]:
        return {row["point"] for row in self._read()}

    def _read(self):
        if not self.path.is_file():
            return
        with open(self.path, encoding="utf-8", errors="replace") as handle:  # a damaged line is skipped
            for line in handle:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a kill (dropped on resume)
                if isinstance(row, dict) and "point" in row:
                    yield row
