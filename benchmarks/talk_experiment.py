"""The talk's experiment on real data: regenerate docs/lfw.md's figures from ../shared and time it.

1. LFW View 2 (3,000 pairs) through ultraface -> landmarks-68 -> ArcFace alignment -> arcface-mbf-512 at
   every detector/verifier width combination (``nnasim verify``): ROC, agreement sets, heatmaps.
2. The trained LFFD head detector on the Brainwash frames at 32/16/8 bits (``nnasim compare --task
   detect``): relative confidence error by head size, false positives against fp32.
3. ultraface (RFB and slim) on the hand-labelled VOC face boxes at 32/16/8 bits: AP against the labels.

Run from the repository root: ``python benchmarks/talk_experiment.py`` (``--folds 1 --limit 50`` for a
quick look). Results go to ``out/talk_experiment/`` (the LFW embeddings are cached there, so a rerun only
redraws), figures to ``docs/img/``. The script prints its run time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from nnasim.cli import main as nnasim

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FIGURES = ROOT / "docs" / "img"
LFW_FIGURES = {  # report figure -> docs/img name
    "lfw_roc.png": "lfw_roc.png",
    "lfw_agreement.png": "lfw_agreement.png",
    "lfw_heatmap_fp32_fp32.png": "lfw_heatmap_fp32.png",
    "lfw_heatmap_int8_int8.png": "lfw_heatmap_int8.png",
    "lfw_heatmap_int8-pc_int8-pc.png": "lfw_heatmap_int8pc.png",
}


def run(argv: list[str]) -> None:
    code = nnasim(argv)
    if code != 0:
        sys.exit(f"nnasim {' '.join(argv)} failed with exit code {code}")


def lfw(out: Path, args: argparse.Namespace) -> dict:
    argv = [
        "verify",
        "--pairs",
        str(SHARED / "images" / "lfw" / "pairs.txt"),
        "-o",
        str(out / "lfw"),
        "--force",
    ]
    argv += ["--workers", str(args.workers)] if args.workers else []
    argv += ["--folds", args.folds] if args.folds else []
    argv += ["--limit", str(args.limit)] if args.limit else []
    run(argv)
    for name, target in LFW_FIGURES.items():
        shutil.copyfile(out / "lfw" / "report" / name, FIGURES / target)
    return json.loads((out / "lfw" / "report" / "report.json").read_text())


def detect(out: Path, model: str, data: str, figure: str, labels: str | None, reuse: bool) -> dict:
    report = out / Path(model).stem
    if not (reuse and (report / "report.json").exists()):
        run(detect_argv(report, model, data, labels))
    shutil.copyfile(report / "relative_error.png", FIGURES / figure)
    return json.loads((report / "report.json").read_text())["detect"]["summary"]


def detect_argv(report: Path, model: str, data: str, labels: str | None) -> list[str]:
    argv = [
        "compare",
        str(SHARED / "models" / model),
        "--task",
        "detect",
        "--data",
        str(SHARED / "images" / data),
    ]
    argv += ["--bits", "32,16,8", "-o", str(report), "--force"]
    return argv + (["--labels", str(SHARED / "images" / data / labels)] if labels else [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, help="worker processes for LFW (default: all cores)")
    parser.add_argument("--folds", help="LFW folds, e.g. 1 (default: all five)")
    parser.add_argument("--limit", type=int, help="LFW: same and different pairs per fold")
    parser.add_argument("--out", default=str(ROOT / "out" / "talk_experiment"), help="results folder")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep detection reports already in --out (only redraw the figures)",
    )
    args = parser.parse_args()
    if not (SHARED / "models").is_dir():
        sys.exit(f"needs {SHARED} (models and photos)")
    out = Path(args.out)
    FIGURES.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    heads = detect(out, "lffd-head-480x640.onnx", "heads", "lffd_head_relative_error.png", None, args.reuse)
    boxes = detect(
        out,
        "ultraface-rfb-320.onnx",
        "face-boxes",
        "ultraface_faceboxes_relative_error.png",
        "labels.csv",
        args.reuse,
    )
    verification = lfw(out, args)
    print("\nLFW (detector/verifier):")
    for row in verification["lfw"]["table"]:
        both, only_a, only_b = row["|A∩B|"], row["|A\\B|"], row["|B\\A|"]
        print(
            f"  {row['config']:>16}  acc {row['accuracy']:.4f} ± {row['± std']:.4f}  "
            f"TAR@1e-3 {row['TAR@FAR=1e-3']:.4f}  TAR@1e-2 {row['TAR@FAR=1e-2']:.4f}  "
            f"flips {row['flips']:>3}  |A∩B| {both:>4}  |A-B| {only_a:>3}  |B-A| {only_b:>3}  "
            f"cos {row['cos to fp32']:.3f}"
        )
    print("LFFD head on Brainwash frames:", json.dumps(heads, indent=None, default=str))
    for model, summary in boxes.items():
        print(f"{model} on VOC face boxes:", json.dumps(summary, indent=None, default=str))
    total = time.perf_counter() - started
    print(f"\ntalk_experiment: {total:.0f} s (LFW verify itself: {verification['run_time_s']} s)")


if __name__ == "__main__":
    main()
