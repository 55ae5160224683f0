"""Regression: the 16 figures of the talk's table as nnasim computes them today.

The pinned values are nnasim's own (``benchmarks/talk_table.py``), so any change to the cost
model or the profiles that moves a figure shows up here; the talk's own values and the errors
are in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "talk_table.py"

PINNED = {
    ("2nx", "LFFD", "MB/inference", 16): 256.4,
    ("2nx", "LFFD", "MB/inference", 8): 115.8,
    ("2nx", "LFFD", "inferences/s", 16): 59.6,
    ("2nx", "LFFD", "inferences/s", 8): 77.2,
    ("2nx", "ArcFace", "MB/inference", 16): 206.6,
    ("2nx", "ArcFace", "MB/inference", 8): 93.1,
    ("2nx", "ArcFace", "inferences/s", 16): 68.8,
    ("2nx", "ArcFace", "inferences/s", 8): 131.1,
    ("3nx", "LFFD", "MB/inference", 16): 210.1,
    ("3nx", "LFFD", "MB/inference", 8): 102.4,
    ("3nx", "LFFD", "inferences/s", 16): 71.2,
    ("3nx", "LFFD", "inferences/s", 8): 145.4,
    ("3nx", "ArcFace", "MB/inference", 16): 166.9,
    ("3nx", "ArcFace", "MB/inference", 8): 67.1,
    ("3nx", "ArcFace", "inferences/s", 16): 88.9,
    ("3nx", "ArcFace", "inferences/s", 8): 218.2,
}


@pytest.fixture(scope="module")
def rows():
    spec = importlib.util.spec_from_file_location("talk_table", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {(r["profile"], r["network"], r["figure"], r["bits"]): r for r in module.talk_comparison()}


def test_figures_match_pinned_values(rows):
    assert set(rows) == set(PINNED)
    for key, value in PINNED.items():
        assert rows[key]["nnasim"] == pytest.approx(value, abs=0.11), key


def test_errors_against_the_talk(rows):
    for key, row in rows.items():
        error = abs(row["nnasim"] / row["talk"] - 1)
        assert error <= 0.10, (key, row)
