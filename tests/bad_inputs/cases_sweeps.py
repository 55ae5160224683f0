"""Sweep folders: nothing of the user's deleted, a running sweep's folder locked, full disks."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import yaml
from filelock import FileLock

from tests.bad_inputs.cases_yaml import SPEC
from tests.bad_inputs.catalogue import Case

SWEEP = ("sweep", "{dir}/spec.yaml", "-o", "{dir}/out", "--quiet", "--workers", "1")


def _spec(folder: Path) -> None:
    (folder / "spec.yaml").write_text(yaml.safe_dump(SPEC, sort_keys=False))


def _users_folder(folder: Path) -> None:
    _spec(folder)
    (folder / "out").mkdir()
    (folder / "out" / "thesis.tex").write_text("years of work")
    (folder / "out" / "sweep.json").write_text('{"fingerprint": "mine"}')


def _users_folder_kept(folder: Path) -> None:
    assert (folder / "out" / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in (folder / "out").iterdir()) == ["sweep.json", "thesis.tex"]


def _sweep_folder(folder: Path) -> None:
    """A folder a sweep of this spec made (marker and manifest), with one point recorded."""
    _spec(folder)
    out = folder / "out"
    out.mkdir()
    (out / ".nnasim-output").write_text("written by nnasim")
    (out / "sweep.json").write_text(json.dumps({"fingerprint": "0", "points": 2}))
    (out / "points.jsonl").write_text('{"point": 0}\n')


_HELD: dict[Path, FileLock] = {}


def _locked(monkeypatch, folder: Path) -> None:
    """Another sweep holds the folder's lock (an OS lock: a second open file description)."""
    lock = FileLock(folder / "out" / ".nnasim-sweep.lock")
    lock.acquire()
    _HELD[folder] = lock  # released by the check


def _record_kept(folder: Path) -> None:
    _HELD.pop(folder).release()
    assert (folder / "out" / "points.jsonl").read_text() == '{"point": 0}\n'


def _link(folder: Path) -> None:
    _spec(folder)
    (folder / "mine").mkdir()
    (folder / "mine" / "a.txt").write_text("keep")
    (folder / "out").symlink_to(folder / "mine")


def _disk_full_on_record(monkeypatch, folder: Path) -> None:
    real = os.fsync

    def fsync(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").endswith("points.jsonl"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


SWEEP_FOLDER_CASES = [
    Case(
        "sweep --resume on a folder that is not a sweep",
        (*SWEEP, "--resume"),
        r"out: is not a folder nnasim's sweep wrote \(no \.nnasim-output marker\); nnasim deletes nothing",
        _users_folder,
        check=_users_folder_kept,
    ),
    Case(
        "sweep --force on a folder that is not a sweep",
        (*SWEEP, "--force"),
        r"out: is not a folder nnasim's sweep wrote",
        _users_folder,
        check=_users_folder_kept,
    ),
    Case(
        "sweep -o a folder that exists",
        SWEEP,
        r"out: output folder exists; use --resume .* or --force",
        _users_folder,
        check=_users_folder_kept,
    ),
    Case(
        "sweep -o a symbolic link with --force",
        (*SWEEP, "--force"),
        r"out: exists and is a symbolic link",
        _link,
        check=lambda folder: (folder / "mine" / "a.txt").read_text() == "keep" or 1 / 0,
    ),
    Case(
        "sweep -o a file",
        (*SWEEP, "--force"),
        r"out: exists and is not a folder",
        lambda folder: (_spec(folder), (folder / "out").write_text("mine")),
        check=lambda folder: (folder / "out").read_text() == "mine" or 1 / 0,
    ),
    Case(
        "sweep --force on a folder another sweep holds",
        (*SWEEP, "--force"),
        r"out: another nnasim sweep is running in this folder \(it holds \.nnasim-sweep\.lock\)",
        _sweep_folder,
        _locked,
        _record_kept,
    ),
    Case(
        "sweep --resume on a folder another sweep holds",
        (*SWEEP, "--resume"),
        r"another nnasim sweep is running in this folder",
        _sweep_folder,
        _locked,
        _record_kept,
    ),
    Case(
        "sweep disk full while recording points",
        SWEEP,
        r"cannot write .*points\.jsonl: No space left on device",
        _spec,
        _disk_full_on_record,
    ),
]
