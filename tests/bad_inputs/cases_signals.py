"""Signals and concurrency, run as real processes: each case starts ``nnasim sweep`` (two worker
processes, in a session of its own), waits until points are being recorded, then acts on it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 60.0  # seconds any wait may take before the case fails

SPEC = {
    "base": "2nx",
    "parameters": {"dram_gbps": {"start": 1, "stop": 400, "step": 1}, "clock_mhz": [500, 1000]},
    "models": {"tiny": "tinynet"},
    "bits": [8],
    "area": {"mm2_per_mac": 0.00042, "mm2_per_kib": 0.004},
    "objectives": {"area_mm2": "min", "tiny_ips": "max"},
    "chunk_points": 1,
}
POINTS = 800


@dataclass(frozen=True)
class ProcessCase:
    name: str
    act: Callable[[subprocess.Popen, Path], None]  # what to do to the running sweep
    code: int  # its exit code
    stderr: str  # its whole standard error


def start_sweep(folder: Path, *extra: str) -> subprocess.Popen:
    (folder / "spec.yaml").write_text(yaml.safe_dump(SPEC, sort_keys=False))
    command = [sys.executable, "-m", "nnasim", "sweep", str(folder / "spec.yaml"), "-o", str(folder / "out")]
    return subprocess.Popen(
        [*command, "--quiet", "--workers", "2", *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the workers can be found (and must go)
    )


def recorded(folder: Path) -> int:
    record = folder / "out" / "points.jsonl"
    return record.read_bytes().count(b"\n") if record.is_file() else 0


def wait_until_recording(process: subprocess.Popen, folder: Path, points: int = 20) -> None:
    deadline = time.monotonic() + DEADLINE
    while recorded(folder) < points:
        assert process.poll() is None, f"the sweep ended early: {process.communicate()}"
        assert time.monotonic() < deadline, "the sweep recorded no points in time"
        time.sleep(0.02)


def group_is_gone(group: int, within: float = 10.0) -> bool:
    """Whether every process of ``group`` (the sweep and its workers) has exited within ``within`` s."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not live_members(group):
            return True
        time.sleep(0.05)
    return False


def live_members(group: int) -> list[int]:
    """Process ids in ``group`` that are not zombies (an orphaned worker that exited may stay a
    zombie until a container's init reaps it; it runs nothing)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def ctrl_c(process: subprocess.Popen, folder: Path) -> None:
    """Ctrl-C at a terminal: SIGINT to the whole foreground process group."""
    os.killpg(process.pid, signal.SIGINT)


def sigterm(process: subprocess.Popen, folder: Path) -> None:
    os.kill(process.pid, signal.SIGTERM)


def sigkill(process: subprocess.Popen, folder: Path) -> None:
    os.kill(process.pid, signal.SIGKILL)


SIGNAL_CASES = [
    ProcessCase("Ctrl-C during a sweep", ctrl_c, 130, "nnasim: interrupted\n"),
    ProcessCase("SIGTERM to a sweep", sigterm, 143, "nnasim: terminated\n"),
    ProcessCase("SIGKILL to a sweep", sigkill, -signal.SIGKILL, ""),
]
