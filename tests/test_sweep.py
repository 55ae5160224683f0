"""nnasim sweep: spec checks, the separated cost against evaluate(), Pareto front against brute
force, resuming an interrupted sweep, and the same results from every executor."""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from nnasim.cli import main
from nnasim.cost import build_workload, evaluate, load_profile, profile_from_dict
from nnasim.errors import UsageError
from nnasim.frontend import load_lowered
from nnasim.sweep import load_spec, pareto_mask, run_sweep
from nnasim.sweep import points as sweep_points
from nnasim.sweep.grid import profile_dict, set_path

MODELS = {"tiny": "tinynet", "det": "lffd@96x96"}
SPEC = {
    "base": "3nx",
    "parameters": {
        "ocm_kib": [0, 64, 1536],
        "dram_gbps": {"start": 4, "stop": 16, "step": 6},
        "mac_array.8.out_channels": {"values": [32, 128], "with": {"mac_array.16.out_channels": [16, 64]}},
    },
    "models": MODELS,
    "bits": [8, 16],
    "area": {"mm2_per_mac": 0.00042, "mm2_per_kib": 0.004},
    "objectives": {"area_mm2": "min", "total_ips": "max"},
    "plots": ["ocm_kib"],
    "chunk_points": 8,
}


def write_spec(folder: Path, data: dict, name: str = "spec.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def changed(**keys) -> dict:
    data = copy.deepcopy(SPEC)
    for key, value in keys.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    return data


def params(parameters: dict) -> dict:
    return changed(parameters=parameters, plots=[])


# --- the spec ------------------------------------------------------------------------------


def test_ranges_and_linked_paths(tmp_path):
    spec = load_spec(
        write_spec(
            tmp_path,
            changed(
                parameters={
                    "dram_gbps": {"start": 4, "stop": 16, "step": 6},
                    "ocm_kib": {"start": 64, "stop": 1024, "factor": 2},
                    "clock_mhz": {"start": 0.5, "stop": 1.0, "step": 0.25},
                    "mac_array.8.pixels": {"values": [4, 8], "with": {"mac_array.16.pixels": [2, 4]}},
                }
            ),
        )
    )
    values = {axis.path: axis.values for axis in spec.axes}
    assert values["dram_gbps"] == (4, 10, 16)
    assert values["ocm_kib"] == (64, 128, 256, 512, 1024)
    assert values["clock_mhz"] == (0.5, 0.75, 1.0)
    assert spec.axes[3].assignment(1) == {"mac_array.8.pixels": 8, "mac_array.16.pixels": 4}
    assert spec.n_points == 3 * 5 * 3 * 2 * 2


@pytest.mark.parametrize(
    ("data", "key"),
    [
        (changed(colour="red"), "colour"),
        (changed(models=None), "models"),
        (changed(bits=[8, 12]), "bits"),
        (params({"dram_gbps": {"start": 4, "stop": 2, "step": 1}}), "parameters.dram_gbps.step"),
        (params({"dram_gbps": {"start": 4, "stop": 8}}), "parameters.dram_gbps"),
        (
            params({"ocm_kib": {"values": [1, 2], "with": {"line_buffer_kib": [3]}}}),
            "parameters.ocm_kib.with.line_buffer_kib",
        ),
        (params({"ocm_mb": [1, 2]}), "parameters.ocm_mb"),
        (params({"mac_array.8.lanes": [1, 2]}), "parameters.mac_array.8.lanes"),
        (params({"dram_gbps": [4, -1]}), "dram_gbps"),
        (changed(objectives={"area_mm2": "min", "speed": "max"}), "objectives.speed"),
        (changed(objectives={"area_mm2": "least", "total_ips": "max"}), "objectives.area_mm2"),
        (changed(plots=["clock_mhz"]), "plots.clock_mhz"),
        (changed(area={"mm2_per_mac": -1, "mm2_per_kib": 0}), "area.mm2_per_mac"),
        (changed(models=["lffd", "lffd@64x64"]), "models.lffd"),
        (changed(base="nosuch"), "base"),
        (changed(models={"face": "missing.onnx"}), "models.face"),
        (
            changed(
                parameters={"fusion": ["none", "layers"]},
                objectives={"fusion": "min", "tiny_ips": "max"},
                plots=[],
            ),
            "objectives.fusion",
        ),
    ],
)
def test_malformed_spec_names_file_and_key(tmp_path, capsys, data, key):
    path = write_spec(tmp_path, data)
    assert main(["sweep", str(path), "-o", str(tmp_path / "out")]) == 2
    message = capsys.readouterr().err.strip()
    assert "\n" not in message
    assert str(path) in message and key in message, message
    assert not (tmp_path / "out").exists()


def test_invalid_yaml_is_one_line(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("base: [3nx\n")
    assert main(["sweep", str(path), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(path) in err


# --- the separated cost against the cost model --------------------------------------------


def reference_costs(spec, row) -> dict:
    """Costs of one results row from a profile built independently and ``evaluate`` itself."""
    data = profile_dict(load_profile(spec.base))
    for axis in spec.axes:
        for path in axis.paths:
            set_path(data, path, row[path])
    hw = profile_from_dict(data)
    return {label: evaluate(_workload(model), hw, row["bits"]) for label, model in spec.models}


_WORKLOADS: dict = {}


def _workload(model: str):
    if model not in _WORKLOADS:
        _WORKLOADS[model] = build_workload(load_lowered(model))
    return _WORKLOADS[model]


@pytest.mark.parametrize("base", ["2nx", "3nx"])
def test_every_point_equals_evaluate(tmp_path, base):
    """Points varying plan, compute and timing fields together match the full cost model."""
    parameters = {
        "ocm_kib": [0, 96, 2048],
        "weight_buffer_kib": [16, 512],
        "fusion": ["none", "layers"],
        "mac_array.8.in_channels": {"values": [3, 16], "with": {"mac_array.16.in_channels": [2, 8]}},
        "eltwise_per_clock.8": [8, 64],
        "dram_gbps": [2, 30],
        "weight_dram_gbps": [0.5, 8],
        "clock_mhz": [400, 1500],
        "pass_overhead_cycles": [0, 5000],
        "weight_compression": ["none", "ratio"],
    }
    spec = load_spec(write_spec(tmp_path, changed(base=base, parameters=parameters, plots=[])))
    evaluator = sweep_points.PointEvaluator(spec)
    rng = np.random.default_rng(7)
    ids = rng.choice(spec.n_points, size=40, replace=False)
    for row in evaluator.rows(ids):
        for label, cost in reference_costs(spec, row).items():
            assert row[f"{label}_mb"] == pytest.approx(cost.megabytes, rel=1e-12)
            assert row[f"{label}_ips"] == pytest.approx(cost.inferences_per_second, rel=1e-9)
            assert row[f"{label}_utilization"] == pytest.approx(cost.utilization, rel=1e-9)
            assert row[f"{label}_bound"] == cost.bound
    assert evaluator.evaluations < 2 * len(ids), "the separated form should reuse plans and compute"


def test_area_proxy_and_totals(tmp_path):
    spec = load_spec(write_spec(tmp_path, SPEC))
    row = sweep_points.PointEvaluator(spec).rows([spec.n_points - 1])[0]
    hw = load_profile("3nx")
    onchip = row["ocm_kib"] + hw.weight_buffer_kib + hw.line_buffer_kib
    a8, a16 = hw.mac_array[8], hw.mac_array[16]  # the point has 128 and 64 output-channel lanes
    macs = max(a8.in_channels * 128 * a8.pixels, a16.in_channels * 64 * a16.pixels)
    assert row["area_mm2"] == pytest.approx(0.00042 * macs + 0.004 * onchip)
    assert row["total_mb"] == pytest.approx(row["tiny_mb"] + row["det_mb"])
    assert 1 / row["total_ips"] == pytest.approx(1 / row["tiny_ips"] + 1 / row["det_ips"])


# --- the Pareto front ----------------------------------------------------------------------


def brute_force_front(values: np.ndarray, goals: list[str]) -> np.ndarray:
    signs = np.array([1 if g == "min" else -1 for g in goals])
    cost = values * signs
    return np.array([not any(np.all(o <= c) and np.any(o < c) for o in cost) for c in cost])


@pytest.mark.parametrize("seed", range(5))
def test_pareto_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 6, size=(60, 2 + seed % 2)).astype(float)  # many ties
    goals = ["min", "max", "min"][: values.shape[1]]
    assert np.array_equal(pareto_mask(values, goals), brute_force_front(values, goals))


# --- running, resuming, executors ----------------------------------------------------------


class Interrupt(Exception):
    pass


def count_evaluated(monkeypatch) -> list[int]:
    seen: list[int] = []
    original = sweep_points.PointEvaluator.rows

    def rows(self, ids):
        seen.extend(int(i) for i in ids)
        return original(self, ids)

    monkeypatch.setattr(sweep_points.PointEvaluator, "rows", rows)
    return seen


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sweep")
    spec = load_spec(write_spec(folder, SPEC))
    run_sweep(spec, folder / "out", workers=1, progress=False)
    return folder / "out"


def test_outputs(uninterrupted):
    spec = load_spec(uninterrupted / "spec.yaml")
    lines = (uninterrupted / "results.csv").read_text().splitlines()
    assert len(lines) == spec.n_points + 1
    header = lines[0].split(",")
    assert header[:3] == ["point", "bits", "ocm_kib"] and "det_bound" in header
    pareto = (uninterrupted / "pareto.csv").read_text().splitlines()
    assert 1 < len(pareto) < len(lines)
    for name in ("pareto.png", "ocm_kib.png"):
        assert (uninterrupted / name).read_bytes()[:4] == b"\x89PNG"


def test_killed_sweep_resumes_without_recomputing(tmp_path, monkeypatch, uninterrupted):
    spec = load_spec(write_spec(tmp_path, SPEC))
    out = tmp_path / "out"
    seen = count_evaluated(monkeypatch)

    def stop_after_three_chunks(done: int) -> None:
        if done >= 3 * spec.chunk_points:
            raise Interrupt

    with pytest.raises(Interrupt):
        run_sweep(spec, out, workers=1, progress=False, on_chunk=stop_after_three_chunks)
    first = set(seen)
    assert len(first) == 3 * spec.chunk_points and not (out / "results.csv").exists()
    with open(out / "points.jsonl", "a") as handle:  # a kill in the middle of a line
        handle.write('{"point": 99, "bits"')
    seen.clear()
    again = run_sweep(spec, out, workers=1, progress=False, resume=True)
    assert again.resumed == len(first) and again.evaluated == spec.n_points - len(first)
    assert not first & set(seen) and len(seen) == spec.n_points - len(first)
    assert (out / "results.csv").read_text() == (uninterrupted / "results.csv").read_text()


def test_existing_output_needs_force_or_resume(tmp_path, capsys, uninterrupted):
    other = changed(bits=[8])
    path = write_spec(tmp_path, other)
    assert main(["sweep", str(path), "-o", str(uninterrupted), "--quiet"]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["sweep", str(path), "-o", str(uninterrupted), "--resume", "--quiet"]) == 2
    assert "different sweep" in capsys.readouterr().err


def test_output_under_a_file_is_one_error_line(tmp_path, capsys):
    (tmp_path / "notes").write_text("mine")
    path = write_spec(tmp_path, SPEC)
    assert main(["sweep", str(path), "-o", str(tmp_path / "notes" / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("nnasim: error: cannot write") and "notes" in err[0], err


def test_local_processes_give_the_same_results(tmp_path, uninterrupted):
    spec = load_spec(write_spec(tmp_path, SPEC))
    run_sweep(spec, tmp_path / "out", workers=2, progress=False)
    assert (tmp_path / "out/results.csv").read_text() == (uninterrupted / "results.csv").read_text()


def test_dask_cluster_gives_the_same_results(tmp_path, uninterrupted):
    distributed = pytest.importorskip("distributed", reason="dask[distributed] is not installed")
    spec_path = write_spec(tmp_path, SPEC)
    # a worker process of its own: it loads the models itself, as on a real cluster
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True) as cluster:
        args = ["sweep", str(spec_path), "-o", str(tmp_path / "out"), "--quiet"]
        assert main([*args, "--executor", "dask", "--scheduler", cluster.scheduler_address]) == 0
    assert (tmp_path / "out/results.csv").read_text() == (uninterrupted / "results.csv").read_text()
    assert json.loads((tmp_path / "out/sweep.json").read_text())["points"] == 36


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"executor": "dask"}, "--scheduler"),
        ({"workers": 0}, "--workers"),
        ({"force": True, "resume": True}, "one"),
    ],
)
def test_contradictory_options(tmp_path, options, message):
    spec = load_spec(write_spec(tmp_path, SPEC))
    with pytest.raises(UsageError, match=message):
        run_sweep(spec, tmp_path / "out", **options)
    assert not (tmp_path / "out").exists()


def test_grid_is_the_full_product(tmp_path):
    spec = load_spec(write_spec(tmp_path, SPEC))
    rows = sweep_points.PointEvaluator(spec).rows(range(spec.n_points))
    seen = {(r["bits"], r["ocm_kib"], r["dram_gbps"], r["mac_array.8.out_channels"]) for r in rows}
    expected = set(itertools.product([8, 16], [0, 64, 1536], [4, 10, 16], [32, 128]))
    assert seen == expected and len(rows) == len(expected)


def test_dask_missing_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(__import__("sys").modules, "distributed", None)  # import fails as if absent
    path = write_spec(tmp_path, SPEC)
    args = ["sweep", str(path), "-o", str(tmp_path / "out"), "--executor", "dask", "--scheduler", "tcp://x:1"]
    assert main([*args, "--quiet"]) == 2
    assert "pip install 'nnasim[dask]'" in capsys.readouterr().err


def test_sigkilled_sweep_resumes_where_it_stopped(tmp_path):
    """A real kill (SIGKILL, mid-run): the rerun evaluates exactly the points not on disk."""
    import os
    import signal
    import subprocess
    import sys
    import time

    spec = changed(
        models={"tiny": "tinynet"},
        parameters={"dram_gbps": {"start": 1, "stop": 300, "step": 1}, "clock_mhz": [500, 1000]},
        objectives={"area_mm2": "min", "tiny_ips": "max"},
        plots=[],
        chunk_points=1,
    )
    path = write_spec(tmp_path, spec)
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "nnasim",
        "sweep",
        str(path),
        "-o",
        str(out),
        "--workers",
        "1",
        "--quiet",
    ]
    root = Path(__file__).resolve().parents[1]
    process = subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    record = out / "points.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if record.is_file() and record.read_bytes().count(b"\n") >= 50:
            os.kill(process.pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the sweep finished before it could be killed"
    finished = {json.loads(line)["point"] for line in record.read_text().splitlines() if line.endswith("}")}
    total = 300 * 2 * 2
    assert 50 <= len(finished) < total
    write_spec(tmp_path, {**spec, "chunk_points": 256})  # same sweep, larger chunks: a faster rerun
    result = subprocess.run([*command, "--resume"], cwd=root, capture_output=True, text=True, check=True)
    assert f"({len(finished)} already done, {total - len(finished)} evaluated" in result.stdout
    rows = (out / "results.csv").read_text().splitlines()
    assert len(rows) == total + 1 and len({r.split(",")[0] for r in rows[1:]}) == total


def test_16x8_and_blocked_profiles_equal_evaluate(tmp_path):
    """A sweep over an Ethos-U base (blocked: costed by evaluate per point) at 8 and 16x8."""
    parameters = {"ocm_kib": [64, 384], "clock_mhz": [500, 1000], "memories.dram.gbps": [4, 12]}
    data = changed(base="ethos-u65-512", parameters=parameters, plots=[], bits=[8, "16x8"])
    spec = load_spec(write_spec(tmp_path, data))
    evaluator = sweep_points.PointEvaluator(spec)
    for row in evaluator.rows(range(spec.n_points)):
        for label, cost in reference_costs(spec, row).items():
            assert row[f"{label}_mb"] == pytest.approx(cost.megabytes, rel=1e-12)
            assert row[f"{label}_ips"] == pytest.approx(cost.inferences_per_second, rel=1e-12)
            assert row[f"{label}_bound"] == cost.bound
