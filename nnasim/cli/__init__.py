"""The ``nnasim`` command line: one module per sub-command, registered in ``COMMANDS``.

Each command module exposes ``add_parser(subparsers)`` and ``run(args) -> int``.
Bad input raises ``NnasimError``; it is printed on one line and the exit code is 2, as is any
OSError (disk full, permission denied) or MemoryError. Ctrl-C exits with 130 and SIGTERM with 143,
after the commands' clean-up (temporary outputs removed, worker processes stopped) has run.
See docs/errors.md.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
import warnings

from nnasim import __version__
from nnasim.errors import NnasimError

COMMANDS = ("info", "zoo", "profile", "hw", "compare", "cascade", "verify", "mixed", "sweep", "run")


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


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that ``finally`` clean-up runs as for Ctrl-C."""


def _terminate(signum, frame) -> None:
    raise Terminated


def _os_error_line(error: OSError) -> str:
    where = f": {error.filename}" if error.filename else ""
    return f"{error.strerror or error}{where}"


MAX_MESSAGE = 1000


def _one_line(message: str) -> str:
    """The message on one line, cut at ``MAX_MESSAGE`` characters (a value quoted in it may be huge)."""
    line = " ".join(message.split("\n"))
    return line if len(line) <= MAX_MESSAGE else f"{line[:MAX_MESSAGE]}... (cut at {MAX_MESSAGE} characters)"


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
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    from nnasim.io.files import written_files_to

    try:
        with warnings.catch_warnings(), written_files_to(_name_written):
            warnings.showwarning = _show_warning
            return args.run(args)
    except (NnasimError, OSError, MemoryError) as error:
        if args.debug:
            raise
        if isinstance(error, OSError) and not isinstance(error, NnasimError):
            message = _os_error_line(error)
        elif isinstance(error, MemoryError):
            message = "out of memory (try a smaller --input-shape, --limit or fewer points)"
        else:
            message = str(error)
        print(f"nnasim: error: {_one_line(message)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nnasim: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("nnasim: terminated", file=sys.stderr)
        return 143
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
