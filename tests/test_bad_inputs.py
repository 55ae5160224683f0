"""Every case of the bad-input catalogue: exit code 2 and one line with its message, no traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nnasim.cli import main
from tests.bad_inputs import ALL_CASES, Case

HERE = Path(__file__).resolve().parent / "bad_inputs"
CASES = ALL_CASES


def test_the_catalogue_has_at_least_100_distinct_cases():
    assert len(CASES) >= 100 and len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_gets_its_message_and_exit_code_2(case: Case, tmp_path, capsys, monkeypatch):
    if case.make is not None:
        case.make(tmp_path)
    if case.patch is not None:
        case.patch(monkeypatch, tmp_path)
    argv = [a.format(dir=tmp_path, here=HERE) for a in case.argv]
    code = main(argv)
    monkeypatch.undo()
    err = capsys.readouterr().err
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
