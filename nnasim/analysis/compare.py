"""``nnasim compare``: the same inputs through fp32 and each quantized configuration.

Every configuration runs every image; each tensor is compared with its fp32 value (per-layer
SQNR and max error, so the layers that hurt stand out), the outputs are compared, and a
task analysis (classify, detect, embed) shows what the aggregate metrics hide.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from nnasim.analysis import metrics
from nnasim.analysis.detect import decoder_for
from nnasim.errors import UsageError
from nnasim.io.data import ImageSet, Preprocess, load_images, preprocessing_for
from nnasim.io.files import refuse_existing
from nnasim.ir import Graph
from nnasim.report import plots
from nnasim.report.document import Section, image_link, md_table, write_report

TASKS = ("classify", "detect", "embed")
BIT_WIDTHS = (32, 16, 8)
SCHEMES = ("pow2", "affine")
CALIB_METHODS = ("minmax", "percentile", "mse")


class Session(Protocol):
    """What the fp32 executor and the integer engine's sessions both offer."""

    saturations: dict[str, int]
    notes: list[str]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def run_layers(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


@dataclass(frozen=True)
class QuantConfig:
    """One way to run the network: fp32, or ``bits``-bit fixed point with a scheme."""

    bits: int
    scheme: str = "pow2"
    per_channel: bool = False

    @property
    def label(self) -> str:
        if self.bits == 32:
            return "fp32"
        return f"int{self.bits}" + ("-pc" if self.per_channel else "")


def parse_configs(
    bits: str, scheme: str = "pow2", per_channel: bool = False, option: str = "--bits"
) -> list[QuantConfig]:
    """``"8,16,8pc"`` -> fp32, int16, int8-pc, int8 (errors name ``option``).

    A width may end in ``pc`` for per-channel weights (``per_channel`` makes every width so).
    fp32 comes first (added if missing: it is the reference), then narrowing widths with
    per-channel before per-tensor, so figures and tables read from least to most lossy.
    """
    if scheme not in SCHEMES:
        raise UsageError(f"--scheme {scheme!r}: expected one of {', '.join(SCHEMES)}")
    tokens = [t.strip().lower() for t in bits.split(",") if t.strip()]
    widths = {(32, False)}
    for token in tokens:
        width = token.removesuffix("pc")
        if not width.isdigit() or int(width) not in BIT_WIDTHS or (token != width and width == "32"):
            raise UsageError(
                f"{option} {bits!r}: each width must be one of {', '.join(map(str, BIT_WIDTHS))}; "
                "16 and 8 may end in 'pc' for per-channel weights (e.g. 32,16,8pc,8)"
            )
        widths.add((int(width), (token != width or per_channel) and width != "32"))
    if not tokens:
        raise UsageError(f"{option} {bits!r}: give at least one width, e.g. 32,16,8")
    ordered = sorted(widths, key=lambda w: (-w[0], not w[1]))
    return [QuantConfig(b, scheme, pc) for b, pc in ordered]


def make_session(
    graph: Graph, config: QuantConfig, calib: list[dict[str, np.ndarray]], calib_method: str
) -> Session:
    """The integer engine calibrated on ``calib`` (the fp32 executor for 32 bits)."""
    from nnasim.engine.session import build_session

    return build_session(
        graph,
        config.bits,
        scheme=config.scheme,
        per_channel=config.per_channel,
        calib=calib,
        calib_method=calib_method,
    )


@dataclass(frozen=True)
class SessionSpec:
    """What a process needs to build the sessions (picklable): the graph, configs and their ranges."""

    graph: Graph
    configs: tuple[QuantConfig, ...]
    ranges: tuple[dict | None, ...]

    @classmethod
    def calibrated(cls, graph: Graph, configs, calib: list[dict[str, np.ndarray]], calib_method: str):
        """Ranges calibrated once per distinct calibration (min-max ranges serve every width and scheme)."""
        from nnasim.engine.session import session_ranges

        def key(c: QuantConfig) -> tuple:
            return (c.bits == 32,) if calib_method == "minmax" else (c.bits == 32, c.bits, c.scheme)

        found: dict[tuple, dict | None] = {}
        for c in tqdm(configs, desc="calibrate", disable=None):
            if key(c) not in found:
                found[key(c)] = session_ranges(graph, c.bits, c.scheme, calib, calib_method)
        return cls(graph, tuple(configs), tuple(found[key(c)] for c in configs))

    def sessions(self) -> dict[str, Session]:
        from nnasim.engine.session import build_session

        return {
            c.label: build_session(self.graph, c.bits, scheme=c.scheme, per_channel=c.per_channel, ranges=r)
            for c, r in zip(self.configs, self.ranges, strict=True)
        }


def build_sessions(
    graph: Graph, configs: list[QuantConfig], calib: list[dict[str, np.ndarray]], calib_method: str
) -> dict[str, Session]:
    return SessionSpec.calibrated(graph, configs, calib, calib_method).sessions()


def input_feeds(graph: Graph, images: ImageSet, preprocess: Preprocess) -> list[dict[str, np.ndarray]]:
    """One feed dict per image for a single-input image model."""
    if len(graph.inputs) != 1:
        raise UsageError(
            f"{graph.name}: compare needs a model with one image input, it has {list(graph.inputs)}"
        )
    name = graph.inputs[0]
    shape = graph.shape(name)
    return [{name: preprocess(sample.image, shape)} for sample in images.samples]


# ---------------------------------------------------------------------------------------------
# Per-layer and output errors


class LayerErrors:
    """Signal and noise energy and max |error| of every tensor, accumulated over samples.

    Energies are kept per sample and summed exactly (``math.fsum``), so the figures do not depend
    on the order the samples were added in (serial, or merged from worker processes).
    """

    def __init__(self) -> None:
        self.signal: dict[str, list[float]] = {}
        self.noise: dict[str, list[float]] = {}
        self.max_error: dict[str, float] = {}

    def add(self, reference: dict[str, np.ndarray], test: dict[str, np.ndarray]) -> None:
        for name, ref in reference.items():
            value = test.get(name)
            if value is None or np.shape(value) != np.shape(ref):
                continue
            ref64, diff = ref.astype(np.float64), value.astype(np.float64) - ref
            self.signal.setdefault(name, []).append(float(np.sum(ref64**2)))
            self.noise.setdefault(name, []).append(float(np.sum(diff**2)))
            self.max_error[name] = max(
                self.max_error.get(name, 0.0), float(np.max(np.abs(diff), initial=0.0))
            )

    def merge(self, other: LayerErrors) -> None:
        """Add ``other``'s samples (errors of another share of the same images)."""
        for name, signal in other.signal.items():
            self.signal.setdefault(name, []).extend(signal)
            self.noise.setdefault(name, []).extend(other.noise[name])
            self.max_error[name] = max(self.max_error.get(name, 0.0), other.max_error[name])

    def sqnr(self) -> dict[str, float]:
        return {
            name: metrics.sqnr_from_sums(math.fsum(self.signal[name]), math.fsum(self.noise[name]))
            for name in self.signal
        }


@dataclass
class Runs:
    """Outputs of every configuration for every sample, and the per-layer errors against fp32."""

    outputs: dict[str, list[dict[str, np.ndarray]]]  # config -> per sample -> output name -> value
    layers: dict[str, LayerErrors]  # quantized config -> errors against fp32


def run_all(
    graph: Graph,
    sessions: dict[str, Session],
    feeds: list[dict[str, np.ndarray]],
    desc: str,
    progress: bool = True,
) -> Runs:
    """Run every sample through every session, keeping outputs and per-layer errors."""
    labels = list(sessions)
    outputs: dict[str, list] = {label: [] for label in labels}
    layers = {label: LayerErrors() for label in labels[1:]}
    for feed in tqdm(feeds, desc=desc, unit="image", disable=None if progress else True):
        reference = sessions[labels[0]].run_layers(feed)
        outputs[labels[0]].append({name: reference[name] for name in graph.outputs})
        for label in labels[1:]:
            values = sessions[label].run_layers(feed)
            layers[label].add(reference, values)
            outputs[label].append({name: values[name] for name in graph.outputs})
    return Runs(outputs, layers)


def layer_section(graph: Graph, runs: Runs, top: int = 15) -> Section:
    """Per-layer SQNR ranked from worst, as a table and a bar plot."""
    producers = {out: node for node in graph.nodes for out in node.outputs}
    sqnr = {label: errors.sqnr() for label, errors in runs.layers.items()}
    data: dict[str, Any] = {}
    for label, errors in runs.layers.items():
        ranked = sorted(sqnr[label], key=lambda n: (sqnr[label][n], n))
        data[label] = [
            {
                "tensor": name,
                "op": producers[name].op.value if name in producers else "input",
                "sqnr_db": sqnr[label][name],
                "max_abs_error": errors.max_error[name],
            }
            for name in ranked
        ]
    figures = {"layer_sqnr.png": lambda path: plots.layer_sqnr_bars(path, sqnr)} if sqnr else {}
    text = [
        "SQNR = 10 log10(sum fp32^2 / sum (quantized - fp32)^2) over all images, per tensor; "
        "each quantized tensor is dequantized and compared with its fp32 value. "
        f"The {top} lowest per configuration (all of them in report.json):\n"
    ]
    for label, rows in data.items():
        text.append(f"\n**{label}**\n\n" + md_table(rows[:top]))
    text += ["\n" + image_link(name, "per-layer SQNR") for name in figures]
    return Section("layers", "Per-layer SQNR against fp32", data, "".join(text), figures)


def output_section(graph: Graph, runs: Runs) -> Section:
    """Relative L2 error of each graph output per sample, summarised per configuration."""
    labels = list(runs.outputs)
    rows, data = [], {}
    for label in labels[1:]:
        for name in graph.outputs:
            ref = [o[name] for o in runs.outputs[labels[0]]]
            test = [o[name] for o in runs.outputs[label]]
            rel = np.array([metrics.relative_l2_error(r, t) for r, t in zip(ref, test, strict=True)])
            entry = {
                "config": label,
                "output": name,
                "rel_error_mean": float(rel.mean()),
                "rel_error_median": float(np.median(rel)),
                "rel_error_max": float(rel.max()),
                "sqnr_db": metrics.sqnr_db(np.stack(ref), np.stack(test)),
                "max_abs_error": max(metrics.max_abs_error(r, t) for r, t in zip(ref, test, strict=True)),
            }
            rows.append(entry)
            data.setdefault(label, {})[name] = {**entry, "rel_error_per_sample": rel}
    text = "Relative error per image = ||quantized - fp32|| / ||fp32|| of the whole output tensor.\n\n"
    return Section("outputs", "Output error", data, text + md_table(rows))


def engine_section(sessions: dict[str, Session]) -> Section:
    """Saturation counts and the engine's own notes (e.g. float islands, LUT ops)."""
    data, rows, notes = {}, [], []
    for label, session in sessions.items():
        saturations = dict(getattr(session, "saturations", {}) or {})
        data[label] = {"saturations": saturations, "notes": list(getattr(session, "notes", []) or [])}
        worst = sorted(saturations.items(), key=lambda item: -item[1])[:10]
        rows += [
            {"config": label, "layer": name, "saturated values": count} for name, count in worst if count
        ]
        notes += [f"- {label}: {note}" for note in data[label]["notes"]]
    text = "Values clipped to the integer range (most first):\n\n" + md_table(rows)
    if notes:
        text += "\nEngine notes:\n\n" + "\n".join(notes) + "\n"
    return Section("engine", "Saturation and engine notes", data, text)


# ---------------------------------------------------------------------------------------------
# The command


@dataclass(frozen=True)
class CompareRequest:
    model: str
    task: str
    data: Path
    out: Path
    configs: tuple[QuantConfig, ...]
    limit: int | None = None
    calib: Path | None = None
    calib_method: str = "minmax"
    labels: Path | None = None
    identities: Path | None = None
    score_threshold: float | None = None
    preprocess: Preprocess | None = None
    input_shape: Any = None
    force: bool = False
    workers: int = 1  # processes running images in parallel (see ``analysis.batch``)


def compare(request: CompareRequest) -> dict[str, Any]:
    """Run the comparison and write the report folder; returns what report.json holds."""
    from nnasim.quant.qdq import load_any

    if request.task not in TASKS:
        raise UsageError(f"--task {request.task!r}: expected one of {', '.join(TASKS)}")
    refuse_existing(Path(request.out), request.force)
    graph = load_any(request.model, request.input_shape)
    if request.task == "detect":
        decoder_for(graph)  # fail before the long runs if the outputs cannot be decoded
    preprocess = request.preprocess or preprocessing_for(request.model)
    images = load_images(request.data, request.limit)
    feeds = input_feeds(graph, images, preprocess)
    calib = input_feeds(graph, load_images(request.calib), preprocess) if request.calib else feeds
    if request.workers > 1 and len(feeds) > 1:
        from nnasim.analysis.batch import Workers

        spec = SessionSpec.calibrated(graph, request.configs, calib, request.calib_method)
        sessions = spec.sessions()
        with Workers(spec, request.workers) as workers:
            runs = workers.runs(feeds, sessions, "compare")
    else:
        sessions = build_sessions(graph, list(request.configs), calib, request.calib_method)
        runs = run_all(graph, sessions, feeds, "compare")
    task_section = _task_section(request, graph, images, runs)
    sections = [
        task_section,
        layer_section(graph, runs),
        output_section(graph, runs),
        engine_section(sessions),
    ]
    header = {
        "model": request.model,
        "task": request.task,
        "data": str(request.data),
        "images": len(images.samples),
        "skipped_images": list(images.skipped),
        "configs": [c.label for c in request.configs],
        "scheme": request.configs[-1].scheme if len(request.configs) > 1 else "none",
        "calibration": f"{request.calib or 'the data itself'} ({request.calib_method}, {len(calib)} images)",
        "preprocessing": preprocess.describe(graph.shape(graph.inputs[0])[1]),
    }
    write_report(request.out, request.force, f"nnasim compare: {Path(request.model).name}", header, sections)
    return {**header, **{s.key: s.data for s in sections}}


def _task_section(request: CompareRequest, graph: Graph, images: ImageSet, runs: Runs) -> Section:
    names = [s.name for s in images.samples]
    if request.task == "classify":
        from nnasim.analysis.classify import classify_section
        from nnasim.io.data import class_labels, read_name_table

        table = read_name_table(request.labels, "label") if request.labels else None
        scores = {
            label: np.stack([o[graph.outputs[0]].reshape(-1) for o in outs])
            for label, outs in runs.outputs.items()
        }
        labels = class_labels(names, scores["fp32"].shape[1], table)
        return classify_section(names, labels, scores)
    if request.task == "detect":
        from nnasim.analysis.detection import detection_section

        return detection_section(graph, images, runs.outputs, request.score_threshold, request.labels)
    from nnasim.analysis.verify import Faces, analyse_embeddings
    from nnasim.io.data import persons_of, read_name_table

    table = read_name_table(request.identities, "person") if request.identities else None
    faces = Faces(names, persons_of(names, table))
    embeddings = {
        label: np.stack([o[graph.outputs[0]].reshape(-1) for o in outs])
        for label, outs in runs.outputs.items()
    }
    return analyse_embeddings(embeddings, faces)
