"""A report folder: ``report.md``, ``report.json`` and PNG figures, written atomically.

Analyses return ``Section``s (data for the JSON, text for the Markdown, figures to draw);
``write_report`` renders them into a temporary folder that replaces ``out`` only when
everything has been written, and never replaces an existing folder without ``force``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tabulate import tabulate

from nnasim.io.files import atomic_dir

Figure = Callable[[Path], None]  # draws one PNG at the given path


@dataclass
class Section:
    key: str  # the section's key in report.json
    title: str
    data: dict[str, Any]
    markdown: str
    figures: dict[str, Figure] = field(default_factory=dict)  # file name -> drawing function


def md_table(rows: list[dict[str, Any]], floatfmt: str = ".3g") -> str:
    """GitHub-flavoured Markdown table of ``rows`` (keys of the first row are the headers).

    Floats are formatted with ``floatfmt``; everything else is shown as text, so names that
    look like numbers (tensor "400") stay names.
    """
    if not rows:
        return "(none)\n"
    cells = [{_escape(key): _cell(value, floatfmt) for key, value in row.items()} for row in rows]
    return tabulate(cells, headers="keys", tablefmt="github", disable_numparse=True, missingval="–") + "\n"


def _cell(value: Any, floatfmt: str) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    if isinstance(value, float | np.floating):
        return format(float(value), floatfmt)
    return _escape(str(value))


def _escape(text: str) -> str:
    """A ``|`` inside a cell (the set sizes |A|) would end the cell in Markdown."""
    return text.replace("|", "\\|")


def image_link(file_name: str, caption: str) -> str:
    return f"![{caption}]({file_name})\n"


def plain(value: Any) -> Any:
    """``value`` made JSON-safe: numpy scalars/arrays to Python, non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        return plain(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_report(
    out: str | Path, force: bool, title: str, header: dict[str, Any], sections: list[Section]
) -> Path:
    """Write ``report.md``, ``report.json`` and every section's figures into ``out``."""
    with atomic_dir(out, force) as tmp:
        for section in sections:
            for name, draw in section.figures.items():
                draw(tmp / name)
        document = {**header, **{s.key: s.data for s in sections}}
        (tmp / "report.json").write_text(json.dumps(plain(document), indent=1, allow_nan=False) + "\n")
        lines = [f"# {title}\n", _header_markdown(header)]
        lines += [f"## {s.title}\n\n{s.markdown}" for s in sections]
        (tmp / "report.md").write_text("\n".join(lines))
    return Path(out)


def _header_markdown(header: dict[str, Any]) -> str:
    rows = [f"- **{key}**: {_inline(value)}" for key, value in header.items()]
    return "\n".join(rows) + "\n"


def _inline(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) if value else "none"
    return str(value)
