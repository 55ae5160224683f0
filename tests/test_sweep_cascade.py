"""Cascade throughput (``nnasim profile DETECTOR+VERIFIER --faces``) against the single-model
profiles it is made of, and the crossover arithmetic on hand-made costs."""

from __future__ import annotations

import json

import pytest

from nnasim.cli import main
from nnasim.cli.profile_cascade import parse_stage_bits
from nnasim.cost.cascade import CascadeCost
from nnasim.cost.model import LayerCost, NetworkCost


def network(cycles: float, megabytes: float, bits: int = 8) -> NetworkCost:
    total = LayerCost(name="total", cycles=cycles, weight_bytes=megabytes * 1e6)
    return NetworkCost("m", "hw", bits, clock_mhz=1000.0, peak_macs_per_clock=1, layers=(), total=total)


@pytest.mark.parametrize(
    ("detector", "verifier", "time_from", "traffic_from"),
    [
        ((10e6, 100.0), (2.5e6, 20.0), 4, 5),
        ((10e6, 100.0), (3e6, 40.0), 4, 3),
        ((1e6, 1.0), (5e6, 9.0), 1, 1),
    ],
)
def test_crossover_is_the_first_face_count_where_the_verifier_costs_more(
    detector, verifier, time_from, traffic_from
):
    cost = CascadeCost(network(*detector), network(*verifier))
    assert cost.time_crossover == time_from and cost.traffic_crossover == traffic_from
    n = cost.time_crossover
    assert n * cost.verifier.seconds >= cost.detector.seconds
    assert n == 1 or (n - 1) * cost.verifier.seconds < cost.detector.seconds
    assert cost.frame_seconds(3) == pytest.approx(detector[0] / 1e9 + 3 * verifier[0] / 1e9)
    assert cost.frame_megabytes(3) == pytest.approx(detector[1] + 3 * verifier[1])


def test_stage_bits():
    assert parse_stage_bits("8") == ((8, 8),)
    assert parse_stage_bits("8,16,8+16") == ((8, 8), (16, 16), (8, 16))


def profile_json(capsys, *args) -> dict:
    assert main(["profile", *args, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_cascade_adds_up_the_single_model_profiles(capsys):
    """frames/s and MB/frame from the cascade equal 1/(t_det + n t_ver) and MB_det + n MB_ver
    computed from the two single-model profiles."""
    det = profile_json(capsys, "tinynet", "--hw", "2nx", "--bits", "8")["rows"][0]
    ver = profile_json(capsys, "lffd@64x64", "--hw", "2nx", "--bits", "16")["rows"][0]
    rows = profile_json(capsys, "tinynet+lffd@64x64", "--hw", "2nx", "--bits", "8+16", "--faces", "0,1,5")[
        "rows"
    ]
    assert [r["faces"] for r in rows] == [0, 1, 5] and {r["bits"] for r in rows} == {"8+16"}
    for row in rows:
        n = row["faces"]
        seconds = 1 / det["inferences/s"] + n / ver["inferences/s"]
        assert row["frames/s"] == pytest.approx(1 / seconds, rel=2e-3)
        assert row["MB/frame"] == pytest.approx(det["MB/inference"] + n * ver["MB/inference"], abs=0.02)


def test_cascade_plot_and_errors(tmp_path, capsys):
    png = tmp_path / "cascade.png"
    args = ["profile", "tinynet+tinynet", "--hw", "3nx", "--bits", "8,16", "--plot", str(png)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert png.read_bytes()[:4] == b"\x89PNG" and "verifier takes more time" in out
    assert main(args) == 2  # the plot exists: not overwritten without --force
    assert "--force" in capsys.readouterr().err
    assert main(["profile", "tinynet", "--faces", "1,2"]) == 2
    assert "DETECTOR+VERIFIER" in capsys.readouterr().err
    assert main(["profile", "tinynet+tinynet", "--bits", "8+12"]) == 2
    assert "--bits" in capsys.readouterr().err
