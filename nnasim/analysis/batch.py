"""Images in parallel: worker processes that build every configuration's session once, then run chunks.

The parent calibrates once and hands each worker the activation ranges, so every process builds
the same integer sessions without the calibration data, and the results equal a serial run's.
Workers are spawned, not forked (a fork after the engine's OpenMP runtime started is unsafe), and
run the engine on one thread each: the processes are the parallelism.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from tqdm import tqdm

from nnasim.analysis.compare import LayerErrors, Runs, Session, SessionSpec, run_all

CHUNKS_PER_WORKER = 4  # enough chunks that a slow one does not leave the other workers idle


class Workers:
    """A pool of ``count`` spawned processes holding ``spec``'s sessions (a context manager)."""

    def __init__(self, spec: SessionSpec, count: int):
        self.spec, self.count = spec, count
        context = multiprocessing.get_context("spawn")
        self.pool = ProcessPoolExecutor(count, mp_context=context, initializer=_start, initargs=(spec,))

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc) -> None:
        self.pool.shutdown(cancel_futures=True)

    def runs(self, feeds: list[dict[str, np.ndarray]], sessions: dict[str, Session], desc: str) -> Runs:
        """``run_all`` over ``feeds``, merged in input order; the saturations the workers counted
        are added to ``sessions`` (the parent's, built from the same spec)."""
        parts = self._map(_run_chunk, feeds, desc)
        for _, saturations in parts:
            for label, counts in saturations.items():
                for layer, count in counts.items():
                    sessions[label].saturations[layer] += count
        return _merged([runs for runs, _ in parts])

    def outputs(
        self, feeds: list[dict[str, np.ndarray]], desc: str
    ) -> dict[str, list[dict[str, np.ndarray]]]:
        """Every session's outputs for every feed, in input order, by configuration label."""
        parts = self._map(_outputs_of_chunk, feeds, desc)
        return {label: [o for part in parts for o in part[label]] for label in parts[0]} if parts else {}

    def _map(self, fn, feeds: list, desc: str) -> list:
        chunks = _chunks(feeds, self.count * CHUNKS_PER_WORKER)
        parts = []
        with tqdm(total=len(feeds), desc=desc, unit="image", disable=None) as bar:
            for chunk, part in zip(chunks, self.pool.map(fn, chunks), strict=True):
                parts.append(part)
                bar.update(len(chunk))
        return parts


def _chunks(feeds: list, count: int) -> list[list]:
    """``feeds`` in at most ``count`` contiguous chunks of nearly equal size."""
    bounds = np.linspace(0, len(feeds), min(count, len(feeds)) + 1).round().astype(int)
    return [feeds[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


_worker: dict = {}


def _start(spec: SessionSpec) -> None:
    from nnasim.engine import set_threads

    set_threads(1)
    _worker["graph"], _worker["sessions"] = spec.graph, spec.sessions()


def _outputs_of_chunk(feeds: list[dict[str, np.ndarray]]) -> dict[str, list[dict[str, np.ndarray]]]:
    return {label: [s.run(feed) for feed in feeds] for label, s in _worker["sessions"].items()}


def _run_chunk(feeds: list[dict[str, np.ndarray]]) -> tuple[Runs, dict[str, dict[str, int]]]:
    """One chunk's runs and the saturations it added to each session."""
    sessions = _worker["sessions"]
    before = {label: dict(s.saturations) for label, s in sessions.items() if hasattr(s, "saturations")}
    runs = run_all(_worker["graph"], sessions, feeds, desc="", progress=False)
    added = {
        label: {layer: sessions[label].saturations[layer] - n for layer, n in counts.items()}
        for label, counts in before.items()
    }
    return runs, added


def _merged(parts: list[Runs]) -> Runs:
    outputs = {label: [o for part in parts for o in part.outputs[label]] for label in parts[0].outputs}
    layers = {label: LayerErrors() for label in parts[0].layers}
    for part in parts:
        for label, errors in part.layers.items():
            layers[label].merge(errors)
    return Runs(outputs, layers)
