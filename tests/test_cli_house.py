"""What a new user meets first: defaults in --help, every written file named once, runs that need no file."""

from __future__ import annotations

import pytest

from nnasim.cli import main
from nnasim.sweep.spec import builtin_specs, load_spec


@pytest.mark.parametrize(
    "command,expected",
    [
        (["profile"], "(default: 3nx)"),
        (["run"], "(default: 8)"),
        (["compare"], "(default: minmax)"),
    ],
)
def test_help_states_the_defaults(command, expected, capsys):
    assert main([*command, "--help"]) == 0
    assert expected in " ".join(capsys.readouterr().out.split())


def test_a_written_file_is_named_once_on_stderr(tmp_path, capsys):
    out = tmp_path / "profile.csv"
    assert main(["profile", "tinynet", "--format", "csv", "-o", str(out)]) == 0
    printed = capsys.readouterr()
    assert printed.err.count(f"nnasim: wrote {out}") == 1 and out.read_text().startswith(printed.out or "")
    assert "zoo" not in printed.err  # building the zoo's cached file is not an output


def test_run_without_input_uses_one_generated_input_and_says_so_once(capsys):
    assert main(["run", "tinynet", "--bits", "8"]) == 0
    printed = capsys.readouterr()
    assert printed.out.startswith("generated:") and "probabilities: shape [1, 10]" in printed.out
    assert printed.err.count("no --input given") == 1
    assert (printed.out + printed.err).count("no calibration data given") == 1


def test_the_example_sweep_spec_is_installed_and_named():
    assert "example" in builtin_specs()
    spec = load_spec("example")
    assert spec.path == builtin_specs()["example"] and spec.n_points == load_spec(spec.path).n_points > 1


def test_tables_name_the_model_as_typed_not_by_its_graph_name(tmp_path, capsys):
    import onnx

    from nnasim.models import zoo

    model = zoo.build("tinynet")
    model.graph.name = "torch-jit-export"
    onnx.save(model, tmp_path / "my-net.onnx")
    assert main(["profile", str(tmp_path / "my-net.onnx"), "--bits", "8"]) == 0
    printed = capsys.readouterr().out
    assert "my-net.onnx on 3nx" in printed and "torch-jit-export" not in printed
    assert main(["profile", "lffd@64x64", "--bits", "8"]) == 0
    assert "lffd@64x64 on 3nx" in capsys.readouterr().out
