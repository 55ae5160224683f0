"""Outputs: full disks, symbolic links, folders nnasim did not write, leftovers of killed runs."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np

from tests.bad_inputs.catalogue import Case, _images


def _disk_full(monkeypatch, folder: Path) -> None:
    """ENOSPC from the sync that every atomic output into ``folder`` does before its rename (other
    files, such as a zoo model built into a cold cache on the way, are written as usual)."""
    real = os.fsync

    def full(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(folder)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    monkeypatch.setattr(os, "fsync", full)


def _nothing_left(folder: Path) -> None:
    leftovers = [p.name for p in folder.iterdir() if p.name.endswith(".part")]
    assert not leftovers, leftovers


def _mine(folder: Path) -> None:
    (folder / "mine").mkdir()
    (folder / "mine" / "thesis.tex").write_text("years of work")


def _mine_kept(folder: Path) -> None:
    assert (folder / "mine" / "thesis.tex").read_text() == "years of work"


def _link_to_mine(folder: Path) -> None:
    _mine(folder)
    (folder / "link").symlink_to(folder / "mine")


def _file_link(folder: Path) -> None:
    (folder / "notes.txt").write_text("mine")
    (folder / "out.json").symlink_to(folder / "notes.txt")


def _notes_kept(folder: Path) -> None:
    assert (folder / "notes.txt").read_text() == "mine" and (folder / "out.json").is_symlink()


def _stale_dump(folder: Path) -> None:
    """A ``run --dump`` killed by SIGKILL: its .part folder (marked, process gone) is left behind."""
    stale = folder / ".dump.999999999.abcd.part"
    stale.mkdir()
    (stale / ".nnasim-output").write_text("written by nnasim")
    (stale / "big.npz").write_bytes(bytes(1000))
    np.save(folder / "x.npy", np.zeros((1, 3, 32, 32), np.float32))


def _stale_cleaned(folder: Path) -> None:
    assert not (folder / ".dump.999999999.abcd.part").exists()


OUTPUT_CASES = [
    Case(
        "disk full writing -o",
        ("info", "tinynet", "-o", "{dir}/info.txt"),
        r"cannot write .*info\.txt: No space left on device",
        patch=_disk_full,
        check=_nothing_left,
    ),
    Case(
        "disk full writing a report folder",
        ("compare", "tinynet", "--task", "classify", "--data", "{dir}/data", "-o", "{dir}/out"),
        r"cannot write .*out: No space left on device",
        make=lambda folder: _images(folder, 1, 0),
        patch=_disk_full,
        check=_nothing_left,
    ),
    Case(
        "disk full writing a roofline plot",
        ("profile", "tinynet", "--hw", "2nx", "--plot", "{dir}/roof.png"),
        r"cannot write .*roof\.png: No space left on device",
        patch=_disk_full,
        check=_nothing_left,
    ),
    Case(
        "-o a symbolic link with --force",
        ("info", "tinynet", "-o", "{dir}/out.json", "--force"),
        r"out\.json: is a symbolic link; nnasim does not write through links",
        make=_file_link,
        check=_notes_kept,
    ),
    Case(
        "report -o a symbolic link to a folder with --force",
        ("compare", "tinynet", "--task", "classify", "--data", "{dir}/data", "-o", "{dir}/link", "--force"),
        r"link: is a symbolic link",
        make=lambda folder: (_images(folder, 1, 0), _link_to_mine(folder)),
        check=_mine_kept,
    ),
    Case(
        "report --force over a folder nnasim did not write",
        ("compare", "tinynet", "--task", "classify", "--data", "{dir}/data", "-o", "{dir}/mine", "--force"),
        r"mine: is a folder nnasim did not write \(no \.nnasim-output marker\)",
        make=lambda folder: (_images(folder, 1, 0), _mine(folder)),
        check=_mine_kept,
    ),
    Case(
        "run --dump --force over a folder nnasim did not write",
        ("run", "tinynet", "--input", "{dir}/data", "--dump", "{dir}/mine", "--force"),
        r"mine: is a folder nnasim did not write",
        make=lambda folder: (_images(folder, 1, 0), _mine(folder)),
        check=_mine_kept,
    ),
    Case(
        "stale .part folder of a killed run --dump is cleaned by the next run",
        ("run", "tinynet", "--input", "{dir}/x.npy", "--dump", "{dir}/dump"),
        "",
        make=_stale_dump,
        check=_stale_cleaned,
        code=0,
    ),
]
