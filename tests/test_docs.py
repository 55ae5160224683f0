"""Every `nnasim` command in a ```sh block of the README and docs/ runs and exits 0.

Blocks fenced as ```sh are commands a reader can paste; templates with placeholders are fenced
```text and not run. Commands run in a fresh folder per page, in order (a later command may read
what an earlier one wrote), with ``../shared`` read as the shared folder (the page is skipped
where it is absent) and on small inputs: commands that read a data folder take ``--limit 2``.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from oracles import SHARED

from nnasim.cli import main

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```sh\n(.*?)^```", re.S | re.M)
LIMITED = {"compare", "cascade", "verify", "mixed"}  # commands over a data set: two images are enough


def page_commands(page: Path) -> list[list[str]]:
    """The nnasim commands of ``page``'s sh blocks, as argument lists (comments and `&&` chains split)."""
    found = []
    for block in BLOCK.findall(page.read_text()):
        for line in block.replace("\\\n", " ").splitlines():
            for part in re.split(r"&&|;", line):
                words = shlex.split(part, comments=True)
                if words[:1] == ["nnasim"]:
                    found.append(words[1:])
    return found


def small(argv: list[str]) -> list[str]:
    """The command on small inputs: ``--limit 2`` for commands over a data set, unless one is given."""
    if argv and argv[0] in LIMITED and "--limit" not in argv:
        return [*argv, "--limit", "2"]
    return argv


def test_every_page_has_its_commands_found():
    assert page_commands(ROOT / "README.md"), "the README shows no runnable nnasim command"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_the_commands_of_a_page_run(page, tmp_path, monkeypatch):
    commands = page_commands(page)
    if not commands:
        pytest.skip(f"{page.name} has no nnasim command")
    text = " ".join(" ".join(c) for c in commands)
    if "../shared" in text and not (SHARED / "models").is_dir():
        pytest.skip(f"{page.name} uses ../shared, which is absent here")
    monkeypatch.chdir(tmp_path)
    for argv in commands:
        code = main(small([arg.replace("../shared", str(SHARED)) for arg in argv]))
        assert code == 0, f"{page.name}: `nnasim {shlex.join(argv)}` exited {code}"
