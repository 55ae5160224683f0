"""`nnasim info`: totals of the talk's networks and the three output formats."""

from __future__ import annotations

import csv
import io
import json

import pytest

from nnasim.cli import main


@pytest.mark.parametrize(
    "model, params_m, gmacs",
    [("lffd", 2.29, 13.4), ("arcface", 65.1, 12.1), ("arcface-r50", 43.6, 6.3)],
)
def test_totals_match_the_published_figures(capsys, model, params_m, gmacs):
    assert main(["info", model, "--format", "json"]) == 0
    totals = json.loads(capsys.readouterr().out)["totals"]
    assert totals["params"] / 1e6 == pytest.approx(params_m, rel=0.01)
    assert totals["MACs"] / 1e9 == pytest.approx(gmacs, rel=0.01)


def test_table_and_csv_agree(capsys):
    assert main(["info", "tinynet"]) == 0
    table = capsys.readouterr().out
    assert "GMACs" in table and "Conv+Relu" in table
    assert main(["info", "tinynet", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["layer"] for r in rows if r["layer"] in table] == [r["layer"] for r in rows]
    assert sum(int(r["MACs"]) for r in rows) > 0


def test_output_file_is_not_overwritten_without_force(tmp_path, capsys):
    out = tmp_path / "info.json"
    out.write_text("mine")
    assert main(["info", "tinynet", "--format", "json", "-o", str(out)]) == 2
    assert out.read_text() == "mine" and "--force" in capsys.readouterr().err
    assert main(["info", "tinynet", "--format", "json", "-o", str(out), "--force"]) == 0
    assert json.loads(out.read_text())["model"] == "tinynet"


def test_written_files_and_folders_get_the_usual_permissions(tmp_path):
    import os

    from nnasim.io.files import atomic_dir, write_text

    mask = os.umask(0o022)
    try:
        path = write_text(tmp_path / "a.txt", "x")
        with atomic_dir(tmp_path / "report") as folder:
            (folder / "r.md").write_text("y")
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "report").stat().st_mode & 0o777 == 0o755
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "report"]


@pytest.mark.parametrize("command", [["info", "tinynet"], ["compare", "tinynet", "--task", "classify"]])
def test_an_output_under_a_file_is_one_error_line(command, tmp_path, capsys):
    """-o below a regular file (a typo'd folder): one error naming the path, the file untouched."""
    from PIL import Image

    (tmp_path / "images" / "cat").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "images" / "cat" / "a.png")
    (tmp_path / "notes").write_text("mine")
    extra = ["--data", str(tmp_path / "images")] if command[0] == "compare" else []
    assert main([*command, *extra, "-o", str(tmp_path / "notes" / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("nnasim: error: cannot write") and "notes" in err[0], err
    assert (tmp_path / "notes").read_text() == "mine"


def test_an_output_file_that_is_a_folder_is_refused_even_with_force(tmp_path, capsys):
    (tmp_path / "report").mkdir()
    assert main(["info", "tinynet", "-o", str(tmp_path / "report"), "--force"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a folder" in err[0], err
    assert (tmp_path / "report").is_dir()


def test_a_qdq_model_lists_the_layers_of_its_float_model(tmp_path, capsys):
    """Q/DQ pairs are formats, not layers: same layers, parameters and MACs as the float model."""
    pytest.importorskip("onnxruntime")
    import numpy as np

    from nnasim.models import zoo
    from nnasim.quant.onnxruntime_qdq import quantize_with_onnxruntime

    feeds = [{"input": np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)}]
    qdq = quantize_with_onnxruntime(zoo.resolve("tinynet"), tmp_path / "tiny_qdq.onnx", feeds)
    tables = []
    for model in ("tinynet", str(qdq)):
        assert main(["info", model, "--format", "json"]) == 0
        report = json.loads(capsys.readouterr().out)
        tables.append(([row["layer"] for row in report["rows"]], report["totals"]))
    assert tables[1] == tables[0]
