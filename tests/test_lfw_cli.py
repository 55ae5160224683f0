"""``nnasim verify`` end to end on a few LFW pairs: report, cache reuse, determinism across processes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nnasim.analysis import faces
from nnasim.analysis.lfw_verify import VerifyRequest, verify
from nnasim.cli import main
from nnasim.cli.verify_cmd import dask_mapper, default_model, parse_combos
from nnasim.errors import UsageError


def argv_for(shared_dir, out, *extra):
    models = shared_dir / "models"
    return [
        "verify",
        "--pairs",
        str(shared_dir / "images" / "lfw" / "pairs.txt"),
        "--detector",
        str(models / "ultraface-rfb-320.onnx"),
        "--landmarks",
        str(models / "landmarks-68.onnx"),
        "--verifier",
        str(models / "arcface-mbf-512.onnx"),
        "--calib-count",
        "2",
        "-o",
        str(out),
        *extra,
    ]


def test_verify_reports_every_combination_and_reuses_its_cache(shared_dir, tmp_path, capsys):
    out = tmp_path / "v"
    argv = argv_for(
        shared_dir, out, "--folds", "1", "--limit", "2", "--configs", "8/8,8/32", "--workers", "1"
    )
    assert main(argv) == 0
    report = json.loads((out / "report" / "report.json").read_text())
    assert list(report["lfw"]["configs"]) == ["fp32/fp32", "int8/int8", "int8/fp32"]
    fp32 = report["lfw"]["configs"]["fp32/fp32"]
    assert fp32["|A\\B|"] == fp32["|B\\A|"] == 0 and fp32["flips"] == []
    for entry in report["lfw"]["configs"].values():
        assert entry["|A∩B|"] + entry["|A\\B|"] == fp32["|A|"]
        assert 0.0 <= entry["TAR@FAR=0.001"] <= 1.0
    assert (out / "report" / "lfw_roc.png").exists() and (out / "report" / "lfw_agreement.png").exists()
    assert sorted(p.name for p in (out / "cache").iterdir()) == [
        "embed-fp32_fp32.npz",
        "embed-int8_fp32.npz",
        "embed-int8_int8.npz",
        "frontend-fp32.npz",
        "frontend-int8.npz",
    ]
    capsys.readouterr()
    assert main(argv) == 2
    assert "already exists; use --force" in capsys.readouterr().err

    calls = []

    def counting(fn, batch):
        calls.append(fn.__name__)
        return faces.run_inline(fn, batch)

    request = VerifyRequest(
        pairs=shared_dir / "images" / "lfw" / "pairs.txt",
        images=shared_dir / "images" / "lfw",
        out=out,
        models=faces.Models(*(argv[argv.index(f) + 1] for f in ("--detector", "--landmarks", "--verifier"))),
        combos=parse_combos("8/8,8/32", "pow2"),
        folds=(1,),
        limit=2,
        calib_count=2,
        force=True,
    )
    again = verify(request, counting)
    assert calls == []  # everything came from the cache
    assert again["lfw"]["table"] == report["lfw"]["table"]


def test_verify_is_the_same_over_worker_processes_and_dask(shared_dir, tmp_path):
    models = shared_dir / "models"
    names = ("ultraface-rfb-320.onnx", "landmarks-68.onnx", "arcface-mbf-512.onnx")

    def request(out):
        return VerifyRequest(
            pairs=shared_dir / "images" / "lfw" / "pairs.txt",
            images=shared_dir / "images" / "lfw",
            out=out,
            models=faces.Models(*(str(models / m) for m in names)),
            combos=parse_combos("8/8", "pow2"),
            folds=(2,),
            limit=1,
            calib_count=2,
        )

    verify(request(tmp_path / "inline"))
    verify(request(tmp_path / "pool"), faces.process_mapper(2))
    runs = ["pool"]
    distributed = pytest.importorskip("distributed", reason="dask[distributed] is not installed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True) as cluster:
        mapper = dask_mapper(cluster.scheduler_address)
        verify(request(tmp_path / "dask"), mapper)
        mapper.close()
        runs.append("dask")
    for run in runs:
        for name in ("embed-int8_int8.npz", "frontend-int8.npz"):
            with (
                np.load(tmp_path / "inline" / "cache" / name) as a,
                np.load(tmp_path / run / "cache" / name) as b,
            ):
                assert a.files == b.files
                assert all(np.array_equal(a[k], b[k]) for k in a.files), (run, name)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--configs", "8"], "each item is DETECTOR/VERIFIER"),
        (["--configs", "8/4"], "each width must be one of 32, 16, 8"),
        (["--folds", "0"], "fold numbers start at 1"),
        (["--folds", "9"], "has no pairs in these folds"),
        (["--limit", "0"], "--limit 0: must be at least 1"),
    ],
)
def test_verify_bad_options_are_one_line(shared_dir, tmp_path, capsys, extra, message):
    assert main(argv_for(shared_dir, tmp_path / "v", *extra)) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_verify_finds_the_models_above_the_pairs_file_or_names_the_option(tmp_path):
    shared = tmp_path / "shared"
    (shared / "images" / "lfw").mkdir(parents=True)
    (shared / "models").mkdir()
    pairs = shared / "images" / "lfw" / "pairs.txt"
    (shared / "models" / "ultraface-rfb-320.onnx").write_bytes(b"")
    assert default_model("detector", pairs) == str((shared / "models" / "ultraface-rfb-320.onnx").resolve())
    with pytest.raises(UsageError, match="--verifier: no models/arcface-mbf-512.onnx above"):
        default_model("verifier", pairs)
