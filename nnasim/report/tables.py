"""Render rows of dicts as a text table, JSON or CSV (the formats every command offers)."""

from __future__ import annotations

import csv
import io
import json

from tabulate import tabulate

FORMATS = ("table", "json", "csv")


def render(rows: list[dict], fmt: str, title: str = "", extra: dict | None = None) -> str:
    """``rows`` as ``fmt``; JSON carries ``extra`` (e.g. totals) beside the rows."""
    if fmt == "json":
        return json.dumps({**(extra or {}), "rows": rows}, indent=2, default=_plain) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()
    body = tabulate(rows, headers="keys", tablefmt="simple", intfmt=",", floatfmt=",.3f")
    return f"{title}\n{body}\n" if title else body + "\n"


def _plain(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
