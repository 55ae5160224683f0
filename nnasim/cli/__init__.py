"""The ``nnasim`` command line: one module per sub-command, registered in ``COMMANDS``.

Each command module exposes ``add_parser(subparsers)`` and ``run(args) -> int``.
Bad input raises ``NnasimError``; it is printed on one line and the exit code is 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from nnasim import __version__
from nnasim.errors import NnasimError

COMMANDS = ("info", "zoo", "profile", "hw", "compare", "cascade", "sweep", "run")


DESCRIPTION = (
    "nnasim, an embedded NPU simulator: a hardware cost model (MB and inferences per second) and a "
    "bit-exact fixed-point integer engine, from one ONNX file."
)


class DefaultsInHelp(argparse.HelpFormatter):
    """``--help`` states each option's default, unless its text already does or there is none."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "default" in text or default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


class OneLineErrorParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (with a hint to --help) and exit code 2;
    its ``--help`` states the defaults."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", DefaultsInHelp)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        where = self.prog.removeprefix("nnasim").strip()
        where = f"{where}: " if where else ""
        print(f"nnasim: error: {where}{message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser, or with ``only`` the parser of that one command (imports only its module)."""
    parser = OneLineErrorParser(prog="nnasim", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"nnasim {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in (only,) if only else COMMANDS:
        importlib.import_module(f"nnasim.cli.{name}_cmd").add_parser(subparsers)
    return parser


def _command_named(argv: list[str]) -> str | None:
    """The sub-command in ``argv`` when it is a known one, so only its module need be imported."""
    words = [a for a in argv if not a.startswith("-")]
    return words[0] if words and words[0] in COMMANDS else None


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings on one line each, as ``nnasim: warning: ...``, without source lines."""
    print(f"nnasim: warning: {message}", file=sys.stderr)


def _name_written(path) -> None:
    """Every file or folder a command writes is named once, on stderr (stdout stays the result)."""
    print(f"nnasim: wrote {path}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(_command_named(argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    from nnasim.io.files import written_files_to

    try:
        with warnings.catch_warnings(), written_files_to(_name_written):
            warnings.showwarning = _show_warning
            return args.run(args)
    except NnasimError as error:
        if args.debug:
            raise
        print(f"nnasim: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nnasim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
