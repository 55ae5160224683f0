"""`nnasim profile` end to end: formats, totals that add up, no silent overwrite, roofline plot."""

from __future__ import annotations

import csv
import io
import json

import pytest

from nnasim.cli import main

MODEL = "ultraface-slim-320"


@pytest.fixture(scope="module")
def model_path(shared_dir):
    return str(shared_dir / "models" / f"{MODEL}.onnx")


def test_json_summary_and_layers_add_up(model_path, capsys):
    assert (
        main(["profile", model_path, "--hw", "2nx", "--bits", "8,16", "--per-layer", "--format", "json"]) == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert "10^6 bytes" in report["units"]
    assert [row["bits"] for row in report["rows"]] == [8, 16]
    for summary in report["rows"]:
        layers = [row for row in report["layers"] if row["bits"] == summary["bits"]]
        parts = sum(row["weights MB"] + row["read MB"] + row["write MB"] for row in layers)
        assert parts == pytest.approx(summary["MB/inference"], abs=0.01 + 1e-4 * len(layers))
        assert summary["bound"] in ("compute", "memory")
        assert 0 < summary["MAC utilization"] <= 1
    eight, sixteen = report["rows"]
    assert sixteen["MB/inference"] > 1.9 * eight["MB/inference"]


def test_table_states_units_and_csv_per_layer(model_path, capsys):
    assert main(["profile", model_path, "--hw", "3nx", "--bits", "8"]) == 0
    out = capsys.readouterr().out
    assert "MB = 10^6 bytes" in out and "inferences/s" in out
    assert main(["profile", model_path, "--hw", "3nx", "--bits", "8", "--per-layer", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows and {"layer", "op", "group", "kcycles", "bound"} <= set(rows[0])


def test_output_file_is_not_overwritten_without_force(model_path, tmp_path, capsys):
    out = tmp_path / "report.json"
    args = ["profile", model_path, "--hw", "2nx", "--bits", "8", "--format", "json", "-o", str(out)]
    assert main(args) == 0
    first = out.read_text()
    out.write_text("mine")
    assert main(args) == 2
    assert "--force" in capsys.readouterr().err
    assert out.read_text() == "mine"
    assert main([*args, "--force"]) == 0
    assert out.read_text() == first


def test_roofline_plot_is_a_png(model_path, tmp_path):
    png = tmp_path / "roofline.png"
    assert main(["profile", model_path, "--hw", "2nx", "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("bits", ["12", "8,x", ""])
def test_bad_bits_is_a_usage_error(bits, capsys):
    assert main(["profile", "lffd", "--bits", bits]) == 2
    assert "--bits" in capsys.readouterr().err


@pytest.mark.parametrize("model", ["tinynet", "tinynet+tinynet"])
def test_existing_plot_is_refused_before_anything_is_printed_or_written(model, tmp_path, capsys):
    png, out = tmp_path / "mine.png", tmp_path / "cost.txt"
    png.write_text("mine")
    assert main(["profile", model, "--hw", "2nx", "--bits", "8", "-o", str(out), "--plot", str(png)]) == 2
    captured = capsys.readouterr()
    assert "--force" in captured.err and captured.out == ""
    assert png.read_text() == "mine" and not out.exists()


def test_widths_and_memories_on_an_ethos_profile(capsys):
    """--bits 8,16x8 on the U55: 16x8 moves twice the feature-map bytes (less the burst
    rounding of the channel-last graph outputs, whose shorter 8-bit runs round up more) with
    the same 8-bit weights in flash; each memory's MB adds up to MB/inference (no cache)."""
    assert (
        main(["profile", "lffd@96x96", "--hw", "ethos-u55-256", "--bits", "8,16x8", "--format", "json"]) == 0
    )
    eight, wide = json.loads(capsys.readouterr().out)["rows"]
    assert [eight["bits"], wide["bits"]] == [8, "16x8"]
    for row in (eight, wide):
        assert row["sram MB"] + row["flash MB"] == pytest.approx(row["MB/inference"], abs=0.02)
    assert wide["act write MB"] == pytest.approx(2 * eight["act write MB"], rel=0.03)
    assert wide["flash MB"] == pytest.approx(eight["flash MB"], rel=0.05)


def test_timeline_is_a_png_with_one_bar_series_per_memory(tmp_path):
    from nnasim.cost import build_workload, evaluate, load_profile
    from nnasim.frontend import load_lowered
    from nnasim.report.timeline import layer_series

    png = tmp_path / "timeline.png"
    assert (
        main(["profile", "tinynet", "--hw", "ethos-u65-512", "--bits", "8,16x8", "--timeline", str(png)]) == 0
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cost = evaluate(build_workload(load_lowered("tinynet")), load_profile("ethos-u65-512"), 8)
    names, series, cycles = layer_series(cost)
    assert set(series) == {"compute", "dram", "sram"}
    for i in range(len(names)):  # a layer's cycles are never below what bounds it
        assert cycles[i] >= max(values[i] for values in series.values()) * (1 - 1e-9)
