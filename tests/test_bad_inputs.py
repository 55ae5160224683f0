"""Every case of the bad-input catalogue: exit code 2 and one line with its message, no traceback."""

from __future__ import annotations

import contextlib
import os
import re
import signal
from pathlib import Path

import pytest

from nnasim.cli import main
from tests.bad_inputs import ALL_CASES, Case
from tests.bad_inputs.cases_signals import (
    DEADLINE,
    POINTS,
    ROOT,
    SIGNAL_CASES,
    ProcessCase,
    group_is_gone,
    recorded,
    start_sweep,
    wait_until_recording,
)

HERE = Path(__file__).resolve().parent / "bad_inputs"
CASES = ALL_CASES


def test_the_catalogue_has_at_least_100_distinct_cases():
    names = [c.name for c in [*CASES, *SIGNAL_CASES]]
    assert len(names) >= 100 and len(set(names)) == len(names)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_gets_its_message_and_exit_code_2(case: Case, tmp_path, capsys, monkeypatch):
    if case.make is not None:
        case.make(tmp_path)
    if case.patch is not None:
        case.patch(monkeypatch, tmp_path)
    argv = [a.format(dir=tmp_path, here=HERE) for a in case.argv]
    code = main(argv)
    monkeypatch.undo()
    err = "".join(
        line for line in capsys.readouterr().err.splitlines(True) if not line.startswith("nnasim: wrote ")
    )
    assert code == case.code, err
    if case.code == 2:
        *warnings, error = err.splitlines()
        assert error.startswith("nnasim: error: ") and err.endswith("\n"), err
        assert all(line.startswith("nnasim: warning: ") for line in warnings), err
        assert re.search(case.message, error), f"{case.name}: {error!r} does not match {case.message!r}"
    else:
        lines = err.splitlines()
        assert all(line.startswith("nnasim: warning: ") for line in lines), err
        matched = not case.message or any(re.search(case.message, line) for line in lines)
        assert matched, f"{case.name}: {err!r}"
    if case.check is not None:
        case.check(tmp_path)


def test_usage_errors_are_one_line_with_exit_code_2(capsys):
    assert main(["info", "tinynet", "--format", "xml"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid choice: 'xml'" in err and "nnasim info --help" in err


def test_warnings_are_one_line(capsys):
    import warnings

    from nnasim.cli import _show_warning
    from nnasim.errors import NnasimWarning

    _show_warning(NnasimWarning("layer conv1 saturated 3 times"), NnasimWarning, "x.py", 1)
    assert capsys.readouterr().err == "nnasim: warning: layer conv1 saturated 3 times\n"
    assert warnings.showwarning is not _show_warning


@pytest.mark.parametrize("case", SIGNAL_CASES, ids=[c.name for c in SIGNAL_CASES])
def test_a_signal_ends_a_sweep_cleanly_leaving_no_worker(case: ProcessCase, tmp_path):
    """Exit code and message as promised, no traceback, no worker left running, and the points
    recorded before the signal are kept for --resume."""
    process = start_sweep(tmp_path)
    try:
        wait_until_recording(process, tmp_path)
        case.act(process, tmp_path)
        _, err = process.communicate(timeout=DEADLINE)
        assert process.returncode == case.code, err
        assert err == case.stderr
        assert group_is_gone(process.pid), "worker processes outlived the sweep"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    kept = recorded(tmp_path)
    assert 20 <= kept < POINTS
    resumed = main(["sweep", str(tmp_path / "spec.yaml"), "-o", str(tmp_path / "out"), "--resume", "--quiet"])
    assert resumed == 0 and (tmp_path / "out" / "results.csv").read_text().count("\n") == POINTS + 1


def test_a_second_sweep_with_force_on_a_running_sweeps_folder_is_refused(tmp_path, capsys):
    """The lock: the intruder exits 2 with one line, the running sweep finishes with every point."""
    process = start_sweep(tmp_path)
    try:
        wait_until_recording(process, tmp_path)
        before = recorded(tmp_path)
        code = main(["sweep", str(tmp_path / "spec.yaml"), "-o", str(tmp_path / "out"), "--force", "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and "another nnasim sweep is running in this folder" in err, err
        assert recorded(tmp_path) >= before  # nothing of the running sweep was cleared
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    assert f"{POINTS} points (0 already done, {POINTS} evaluated" in out
    assert (tmp_path / "out" / "results.csv").read_text().count("\n") == POINTS + 1


def test_a_killed_run_dump_leaves_a_part_folder_the_next_run_removes(tmp_path):
    """SIGKILL in the middle of ``run --dump``: its hidden .part folder stays (nothing can run), and
    the next write beside it removes it, since its process is gone."""
    import subprocess
    import sys
    import time

    import numpy as np

    (tmp_path / "inputs").mkdir()
    for index in range(400):
        np.save(tmp_path / "inputs" / f"{index:03d}.npy", np.zeros((1, 3, 32, 32), np.float32))
    command = ["run", "tinynet", "--input", str(tmp_path / "inputs"), "--dump", str(tmp_path / "dump")]
    process = subprocess.Popen([sys.executable, "-m", "nnasim", *command], cwd=ROOT, stderr=subprocess.PIPE)
    deadline = time.monotonic() + DEADLINE
    try:
        while not any(len(list(p.glob("0*"))) >= 3 for p in tmp_path.glob(".dump.*.part")):
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=DEADLINE)
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    assert list(tmp_path.glob(".dump.*.part")), "the kill came too late"
    np.save(tmp_path / "one.npy", np.zeros((1, 3, 32, 32), np.float32))
    assert (
        main(["run", "tinynet", "--input", str(tmp_path / "one.npy"), "--dump", str(tmp_path / "dump")]) == 0
    )
    assert not list(tmp_path.glob(".dump.*.part")) and (tmp_path / "dump" / "index.json").is_file()
