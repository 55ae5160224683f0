"""Reading what users give: one guarded way to open a file, and a YAML loader that cannot explode.

Every input file is opened without blocking (a FIFO or a device is refused at once instead of
waiting forever), checked to be a regular file and measured before anything is read (a 40 GiB
sparse file is refused, not read). Text must be UTF-8. YAML is parsed by PyYAML's safe loader
with a limit on aliases and on the size of the document once aliases are expanded, so a
"billion laughs" file of a few hundred bytes is a one-line error instead of minutes of work.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from nnasim.errors import NnasimError

MAX_TEXT_BYTES = 16 * 2**20  # a profile, a spec or a CSV table of more is not a hand-written input
MAX_YAML_ALIASES = 1000
MAX_YAML_NODES = 1_000_000  # nodes after alias expansion


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def read_bytes(path: str | Path, what: str, max_bytes: int, error: type[NnasimError]) -> bytes:
    """The bytes of the regular file ``path``; ``error`` naming it and ``what`` it should be otherwise."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except IsADirectoryError:
        raise error(f"{path}: is a folder, not {what}") from None
    except OSError as failure:
        raise error(f"{path}: cannot open {what}: {failure.strerror}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise error(f"{path}: is {_kind(info.st_mode)}, not {what}; nnasim reads regular files only")
    with os.fdopen(fd, "rb") as handle:
        if info.st_size > max_bytes:
            raise error(
                f"{path}: {info.st_size / 2**30:,.2f} GiB is more than nnasim reads as {what} "
                f"(limit {max_bytes / 2**30:,.2f} GiB)"
            )
        try:
            data = handle.read(max_bytes + 1)
        except OSError as failure:
            raise error(f"{path}: cannot read {what}: {failure.strerror}") from None
    if len(data) > max_bytes:  # it grew while we read
        raise error(f"{path}: more than {max_bytes:,} bytes, the limit for {what}")
    return data


def read_text(path: str | Path, what: str, error: type[NnasimError], max_bytes: int = MAX_TEXT_BYTES) -> str:
    """A UTF-8 text file (a BOM is allowed), checked as ``read_bytes``."""
    data = read_bytes(path, what, max_bytes, error)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as failure:
        line = data[: failure.start].count(b"\n") + 1
        raise error(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[failure.start]:02x} at offset {failure.start}); "
            f"save {what} as UTF-8"
        ) from None


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing documents with too many aliases or too large once expanded."""

    def __init__(self, stream):
        super().__init__(stream)
        self._aliases = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_YAML_ALIASES:
                raise yaml.YAMLError(f"more than {MAX_YAML_ALIASES} aliases (*name); nnasim refuses it")
        return super().compose_node(parent, index)

    def compose_document(self):
        node = super().compose_document()
        _check_expanded_size(node)
        return node


def _check_expanded_size(root: yaml.Node) -> None:
    """Count the nodes of ``root`` as if every alias were copied out (memoised, so this is linear)."""
    sizes: dict[int, int] = {}
    busy: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in busy:
            raise yaml.YAMLError("an alias refers to the node that contains it (a recursive structure)")
        busy.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(item) for item in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        busy.discard(key)
        if total > MAX_YAML_NODES:
            raise yaml.YAMLError(
                f"aliases expand it to more than {MAX_YAML_NODES:,} values (an alias bomb?); refused"
            )
        sizes[key] = total
        return total

    import sys

    depth = sys.getrecursionlimit()
    sys.setrecursionlimit(max(depth, 20_000))
    try:
        size(root)
    except RecursionError:
        raise yaml.YAMLError("nested too deeply") from None
    finally:
        sys.setrecursionlimit(depth)


def parse_yaml(text: str, path: str | Path, what: str, error: type[NnasimError]) -> Any:
    """YAML text parsed safely and within bounds; ``error`` with the first line of the parser's reason."""
    try:
        return yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise error(f"{path}: cannot read {what}: nested too deeply") from None
    except yaml.YAMLError as failure:
        reason = str(failure).splitlines()[0] if str(failure) else type(failure).__name__
        raise error(f"{path}: cannot read {what}: {reason[:200]}") from None


def read_yaml(path: str | Path, what: str, error: type[NnasimError]) -> Any:
    """A YAML file through ``read_text`` and ``parse_yaml``."""
    return parse_yaml(read_text(path, what, error), path, what, error)
