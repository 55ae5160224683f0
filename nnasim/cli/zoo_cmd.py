"""``nnasim zoo``: list the built-in models, or write one to an ONNX file."""

from __future__ import annotations

import argparse
from pathlib import Path

from tabulate import tabulate

from nnasim.errors import UsageError
from nnasim.io.files import refuse_existing
from nnasim.models import zoo


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("zoo", help="list the built-in models or write one to an ONNX file")
    actions = p.add_subparsers(dest="zoo_action", required=True, metavar="ACTION")
    actions.add_parser("list", help="table of the built-in models")
    build = actions.add_parser("build", help="write a built-in model to an ONNX file")
    build.add_argument("name", metavar="NAME", help="zoo name, e.g. lffd, lffd@320x240, arcface")
    build.add_argument("-o", "--output", required=True, type=Path, metavar="FILE", help="ONNX file to write")
    build.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.zoo_action == "list":
        print(models_table())
        return 0
    write_model(args.name, args.output, args.force)
    return 0


def models_table() -> str:
    """The zoo as a text table: name, description, input shape, parameters, version."""
    rows = [
        (
            m.name,
            f"{m.description} (any size: {m.name}@WxH)" if m.resizable else m.description,
            "x".join(map(str, m.input_shape)),
            _in_units(m.params),
            m.version,
        )
        for m in zoo.list_models()
    ]
    return tabulate(
        rows, headers=("name", "description", "input", "params", "version"), disable_numparse=True
    )


def write_model(name: str, output: Path, force: bool) -> None:
    """Copy the (cached) zoo model ``name`` to ``output``; an existing file needs ``force``."""
    if output.is_dir():
        raise UsageError(f"{output} is a folder; give the ONNX file to write with -o")
    refuse_existing(output, force)
    if not output.parent.is_dir():
        raise UsageError(f"cannot write {output}: folder {output.parent} does not exist")
    zoo.write_atomically(output, zoo.resolve(name).read_bytes())


def _in_units(count: int) -> str:
    """A parameter count for people: 2.29 M, 15.0 k."""
    return f"{count / 1e6:.2f} M" if count >= 1e6 else f"{count / 1e3:.1f} k"
