"""Start-up: a cold kernel cache under concurrency, no JIT once warm, and a warm ``profile``.

    python benchmarks/startup.py [--concurrent 20] [--model SPEC] [--bits 8]

In a fresh cache folder (``NNASIM_CACHE`` pointed at a temporary directory):

1. ``--concurrent`` ``nnasim run`` processes start at once on the cold cache (they all compile
   and save the same kernels); all must succeed;
2. a fresh process then builds a session and runs one inference, counting Numba compilations
   (``numba:compile`` events) and their seconds: once warm there should be none;
3. ``nnasim profile lffd --hw 3nx --bits 8`` and ``nnasim profile arcface --hw 3nx --bits 8``:
   wall time, cold (the first) and warm (median of 3), and whether onnx was imported.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared"

FIRST_INFERENCE = """
import sys, time, warnings
warnings.simplefilter("ignore")
from numba.core import event
from nnasim.cli.common import _cached_graph
from nnasim.engine.session import build_session, generated_feeds
graph = _cached_graph(sys.argv[1], None, engine=True)
feeds = generated_feeds(graph, 1)
with event.install_recorder("numba:compile") as recorder:
    start = time.perf_counter()
    build_session(graph, int(sys.argv[2]), calib=feeds).run(feeds[0])
    seconds = time.perf_counter() - start
pairs = [ev for _, ev in recorder.buffer]
compiles = sum(1 for ev in pairs if ev.is_start)
print(compiles, f"{seconds:.2f}")
"""

PROFILE = """
import sys
from nnasim.cli import main
main(["profile", sys.argv[1], "--hw", "3nx", "--bits", "8"])
print("onnx imported:", "onnx" in sys.modules, file=sys.stderr)
"""


def timed(command: list[str], env: dict) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    return time.perf_counter() - start, done


def concurrent_runs(count: int, model: str, bits: int, env: dict, tmp: Path) -> str:
    from nnasim.cli.common import _cached_graph

    graph = _cached_graph(model, None, engine=True)
    image = tmp / "input.npy"
    np.save(image, np.zeros(graph.shape(graph.inputs[0]), np.float32))
    command = [sys.executable, "-m", "nnasim", "run", model, "--bits", str(bits), "--input", str(image)]
    start = time.perf_counter()
    processes = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(count)
    ]
    failures = []
    for process in processes:
        _, stderr = process.communicate()
        if process.returncode != 0:
            failures.append(stderr.decode().strip().splitlines()[-1:])
    seconds = time.perf_counter() - start
    return f"{count - len(failures)} of {count} concurrent cold-cache runs succeeded in {seconds:.0f} s" + (
        f"; failures: {failures}" if failures else ""
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrent", type=int, default=20)
    default_model = SHARED / "models" / "mobilefacenet.onnx"
    parser.add_argument("--model", default=str(default_model) if default_model.exists() else "tinynet")
    parser.add_argument("--bits", type=int, default=8)
    args = parser.parse_args()
    print(f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "NNASIM_CACHE": tmp, "NUMBA_NUM_THREADS": "1"}
        env.pop("NUMBA_CACHE_DIR", None)
        os.environ["NNASIM_CACHE"] = tmp
        print(concurrent_runs(args.concurrent, args.model, args.bits, env, Path(tmp)))
        seconds, done = timed([sys.executable, "-c", FIRST_INFERENCE, args.model, str(args.bits)], env)
        compiles, inference = done.stdout.split() if done.returncode == 0 else ("?", done.stderr[-300:])
        print(f"warm process: {compiles} Numba compilations; build + first inference {inference} s")
        for model in ("lffd", "arcface"):
            walls = []
            for _ in range(4):
                wall, done = timed([sys.executable, "-c", PROFILE, model], env)
                walls.append(wall)
            print(
                f"nnasim profile {model} --hw 3nx --bits 8: cold {walls[0]:.2f} s, warm median "
                f"{np.median(walls[1:]):.2f} s ({done.stderr.strip().splitlines()[-1]})"
            )
    print(f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
