"""The sweep's output folder and its append-only record of finished points.

``points.jsonl`` holds one JSON object per finished point, keyed by its id; each chunk is
appended, flushed and fsync'd before the next is recorded, so a killed sweep loses at most
the chunks in flight. A line cut short by the kill is dropped on resume. ``sweep.json``
holds the spec's fingerprint so a resume cannot mix points of two different sweeps.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from nnasim.errors import UsageError
from nnasim.sweep.spec import SweepSpec

RECORD = "points.jsonl"
MANIFEST = "sweep.json"


class PointStore:
    def __init__(self, out_dir: Path, spec: SweepSpec):
        self.out_dir = out_dir
        self.spec = spec
        self.path = out_dir / RECORD

    def open(self, force: bool, resume: bool) -> set[int]:
        """Prepare the folder; the ids already finished (empty unless resuming)."""
        manifest = self.out_dir / MANIFEST
        if self.out_dir.exists() and not (force or resume):
            raise UsageError(
                f"{self.out_dir}: output folder exists; use --resume to finish an interrupted sweep "
                "or --force to start it again"
            )
        if resume and manifest.is_file():
            found = json.loads(manifest.read_text()).get("fingerprint")
            if found != self.spec.fingerprint:
                raise UsageError(
                    f"{self.out_dir}: holds a different sweep (spec fingerprint {found}, this spec "
                    f"{self.spec.fingerprint}); use --force to start again"
                )
            self._drop_cut_line()
            return self._finished_ids()
        if self.out_dir.exists():
            if not self.out_dir.is_dir():
                raise UsageError(f"{self.out_dir}: exists and is not a folder")
            shutil.rmtree(self.out_dir)
        try:
            self.out_dir.mkdir(parents=True)
        except OSError as error:
            raise UsageError(f"cannot write {self.out_dir}: {error.strerror} ({error.filename})") from None
        manifest.write_text(
            json.dumps({"fingerprint": self.spec.fingerprint, "points": self.spec.n_points}, indent=1) + "\n"
        )
        (self.out_dir / "spec.yaml").write_text(self.spec.text)
        return set()

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Record finished points durably (one line each, then fsync)."""
        text = "".join(json.dumps(row, separators=(",", ":")) + "\n" for row in rows)
        with open(self.path, "a") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())

    def rows(self) -> list[dict[str, Any]]:
        """Every recorded point once, by id."""
        by_id: dict[int, dict[str, Any]] = {}
        for row in self._read():
            by_id[row["point"]] = row
        return [by_id[i] for i in sorted(by_id)]

    def _drop_cut_line(self) -> None:
        """Truncate a last line the kill cut short, so the next append starts on a new line."""
        if not self.path.is_file():
            return
        data = self.path.read_bytes()
        keep = data.rfind(b"\n") + 1
        if keep < len(data):
            with open(self.path, "r+b") as handle:
                handle.truncate(keep)

    def _finished_ids(self) -> set[int]:
        return {row["point"] for row in self._read()}

    def _read(self):
        if not self.path.is_file():
            return
        with open(self.path) as handle:
            for line in handle:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a kill (dropped on resume)
                if isinstance(row, dict) and "point" in row:
                    yield row
