"""``nnasim cascade``: a face detector feeding a face verifier, each at its own bit width.

For every detector configuration the detector finds faces, which are cropped (a square around
the box, enlarged by a margin, resized to the verifier's input: no landmark alignment); for
every verifier configuration the crops are embedded. Each cell of the detector x verifier grid
is compared with the all-fp32 cascade:

- identity decisions: each face takes the person of its most similar labelled face from
  another photo if that similarity reaches the threshold chosen on the all-fp32 cascade,
  else "unknown"; a decision changes when it differs from the all-fp32 decision for the same
  face (faces correspond by IoU), or the face is missing or new;
- verification (TAR at fixed FAR, AUC) over the labelled faces, pair decisions that flip,
  and how far the embeddings moved (cosine to the all-fp32 embedding of the same face).

The single-stage cells (one network quantized, the other fp32) name the weakest link.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from nnasim.analysis import metrics
from nnasim.analysis.compare import (
    QuantConfig,
    SessionSpec,
    build_sessions,
    input_feeds,
)
from nnasim.analysis.detect import Detections, decoder_for
from nnasim.analysis.verify import Faces, analyse_embeddings, verification_stats
from nnasim.errors import DataError
from nnasim.io.data import ImageSet, Preprocess, load_images, persons_of, preprocessing_for, read_name_table
from nnasim.io.files import refuse_existing
from nnasim.ir import Graph
from nnasim.report import plots
from nnasim.report.document import Section, image_link, md_table, write_report

MATCH_IOU = 0.5
UNKNOWN = "unknown"


@dataclass(frozen=True)
class CascadeRequest:
    detector: str
    verifier: str
    detector_configs: tuple[QuantConfig, ...]
    verifier_configs: tuple[QuantConfig, ...]
    data: Path
    out: Path
    limit: int | None = None
    calib: Path | None = None  # detector calibration images
    calib_verifier: Path | None = None  # verifier calibration face crops
    calib_method: str = "minmax"
    identities: Path | None = None
    score_threshold: float | None = None
    margin: float = 0.2
    force: bool = False
    workers: int = 1  # processes running images (then faces) in parallel (``analysis.batch``)
    detector_preprocess: Preprocess | None = None  # default: the model's own (io.data.preprocessing_for)
    verifier_preprocess: Preprocess | None = None


@dataclass(frozen=True)
class FaceCrops:
    """The faces one detector configuration found: per face its photo, box, person and crop."""

    images: list[str]
    boxes: np.ndarray  # (N, 4) pixels
    persons: list[str | None]
    crops: list[np.ndarray]  # verifier-sized RGB uint8

    @property
    def names(self) -> list[str]:
        counts: dict[str, int] = {}
        names = []
        for image in self.images:
            counts[image] = counts.get(image, 0) + 1
            names.append(f"{image}#{counts[image]}")
        return names


def square_crop(image: np.ndarray, box: np.ndarray, margin: float, size: tuple[int, int]) -> np.ndarray:
    """A square around the box centre, side = mean of box width and height x (1 + margin), resized.

    Parts outside the photo are black.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    half = ((x2 - x1) + (y2 - y1)) / 4 * (1 + margin)
    area = (round(cx - half), round(cy - half), round(cx + half), round(cy + half))
    return np.asarray(Image.fromarray(image).crop(area).resize(size, Image.BILINEAR))


def crop_faces(
    images: ImageSet,
    detections: list[Detections],
    persons: list[str | None],
    margin: float,
    size: tuple[int, int],
) -> FaceCrops:
    """Crop every detected face; the photo's person goes to its largest face, other faces are unknown."""
    names, boxes, who, crops = [], [], [], []
    for sample, dets, person in zip(images.samples, detections, persons, strict=True):
        largest = int(np.argmax(metrics.box_area(dets.boxes))) if len(dets) else -1
        for k, box in enumerate(dets.boxes):
            names.append(sample.name)
            boxes.append(box)
            who.append(person if k == largest else None)
            crops.append(square_crop(sample.image, box, margin, size))
    return FaceCrops(names, np.array(boxes).reshape(-1, 4), who, crops)


def identify(similarity: np.ndarray, faces: FaceCrops, threshold: float) -> list[str]:
    """Each face's identity: the person of its most similar labelled face in another photo, if
    that similarity reaches ``threshold``; else unknown."""
    decisions = []
    for k in range(len(faces.images)):
        gallery = [
            g for g in range(len(faces.images)) if faces.persons[g] and faces.images[g] != faces.images[k]
        ]
        if not gallery:
            decisions.append(UNKNOWN)
            continue
        best = max(gallery, key=lambda g: (similarity[k, g], -g))
        decisions.append(faces.persons[best] if similarity[k, best] >= threshold else UNKNOWN)
    return decisions


def correspond(reference: FaceCrops, faces: FaceCrops) -> dict[int, int]:
    """Reference face index -> index of the same face in ``faces`` (same photo, IoU >= 0.5)."""
    pairs = {}
    for image in dict.fromkeys(reference.images):
        ref_idx = [k for k, n in enumerate(reference.images) if n == image]
        idx = [k for k, n in enumerate(faces.images) if n == image]
        match = metrics.match_boxes(reference.boxes[ref_idx], faces.boxes[idx], MATCH_IOU)
        pairs.update({ref_idx[i]: idx[j] for i, j in match.pairs})
    return pairs


def embed_all(session, graph: Graph, crops: list[np.ndarray], preprocess, desc: str) -> np.ndarray:
    name = graph.inputs[0]
    shape = graph.shape(name)
    rows = [
        session.run({name: preprocess(crop, shape)})[graph.outputs[0]].reshape(-1)
        for crop in tqdm(crops, desc=desc, unit="face", disable=None)
    ]
    return np.stack(rows) if rows else np.zeros((0, 1), np.float32)


def cascade(request: CascadeRequest) -> dict[str, Any]:
    """Run the detector x verifier grid and write the report folder; returns report.json's content."""
    from nnasim.quant.qdq import load_any

    refuse_existing(Path(request.out), request.force)
    det_graph, ver_graph = load_any(request.detector), load_any(request.verifier)
    det_pre = request.detector_preprocess or preprocessing_for(request.detector)
    ver_pre = request.verifier_preprocess or preprocessing_for(request.verifier)
    images = load_images(request.data, request.limit)
    table = read_name_table(request.identities, "person") if request.identities else None
    persons = persons_of([s.name for s in images.samples], table)
    faces = detect_faces(request, det_graph, det_pre, images, persons, ver_graph)
    reference_crops = faces[request.detector_configs[0].label].crops
    if not reference_crops:
        raise DataError(f"the fp32 detector found no face in {request.data}; nothing to verify")
    ver_calib = _verifier_calibration(request, ver_graph, ver_pre, reference_crops)
    if request.workers > 1:
        ver_sessions, embeddings = _embed_in_workers(request, ver_graph, ver_pre, ver_calib, faces)
    else:
        ver_sessions = build_sessions(
            ver_graph, list(request.verifier_configs), ver_calib, request.calib_method
        )
        embeddings = {
            (d, v): embed_all(session, ver_graph, faces[d].crops, ver_pre, f"verify det={d} ver={v}")
            for d in faces
            for v, session in ver_sessions.items()
        }
    grid = grid_analysis(faces, embeddings, list(faces), list(ver_sessions))
    sections = [grid_section(grid, list(faces), list(ver_sessions))]
    threshold = (grid["threshold"], "of the all-fp32 cascade")
    for d in faces:
        row = {v: embeddings[(d, v)] for v in ver_sessions}
        crops = Faces(faces[d].names, faces[d].persons)
        section = analyse_embeddings(row, crops, prefix=f"det-{d}_", threshold=threshold)
        section.key, section.title = f"detector_{d}", f"Detector {d}: verifier configurations"
        sections.append(section)
    header = {
        "detector": request.detector,
        "verifier": request.verifier,
        "data": str(request.data),
        "images": len(images.samples),
        "skipped_images": list(images.skipped),
        "detector_configs": list(faces),
        "verifier_configs": list(ver_sessions),
        "scheme": request.detector_configs[-1].scheme,
        "calibration": f"detector: {request.calib or 'the data itself'}; verifier: "
        f"{request.calib_verifier or 'faces found by the fp32 detector'} ({request.calib_method})",
        "crop": f"square, side = mean(box w, h) x {1 + request.margin:g}, resized, no alignment",
        "preprocessing": f"detector: {det_pre.describe(det_graph.shape(det_graph.inputs[0])[1])}; "
        f"verifier: {ver_pre.describe(ver_graph.shape(ver_graph.inputs[0])[1])}",
    }
    title = f"nnasim cascade: {Path(request.detector).name} -> {Path(request.verifier).name}"
    write_report(request.out, request.force, title, header, sections)
    return {**header, **{s.key: s.data for s in sections}}


def detect_faces(request, det_graph, det_pre, images, persons, ver_graph) -> dict[str, FaceCrops]:
    """Run each detector configuration on every photo and crop the faces it finds."""
    decoder = decoder_for(det_graph)
    threshold = decoder.default_threshold if request.score_threshold is None else request.score_threshold
    feeds = input_feeds(det_graph, images, det_pre)
    calib = input_feeds(det_graph, load_images(request.calib), det_pre) if request.calib else feeds
    _, _, height, width = det_graph.shape(det_graph.inputs[0])
    _, _, ver_h, ver_w = ver_graph.shape(ver_graph.inputs[0])
    if request.workers > 1:
        from nnasim.analysis.batch import Workers

        spec = SessionSpec.calibrated(det_graph, request.detector_configs, calib, request.calib_method)
        with Workers(spec, request.workers) as workers:
            outputs = workers.outputs(feeds, "detect")
    else:
        sessions = build_sessions(det_graph, list(request.detector_configs), calib, request.calib_method)
        outputs = {label: _outputs_of(s, feeds, f"detect {label}") for label, s in sessions.items()}
    faces = {}
    for label, results in outputs.items():
        detections = [
            decoder.decode(result, (width, height), sample.size, threshold)
            for result, sample in zip(results, images.samples, strict=True)
        ]
        faces[label] = crop_faces(images, detections, persons, request.margin, (ver_w, ver_h))
    return faces


def _outputs_of(session, feeds: list[dict[str, np.ndarray]], desc: str):
    """``session``'s outputs for each feed, lazily: each photo's are decoded, then dropped."""
    for feed in tqdm(feeds, desc=desc, unit="image", disable=None):
        yield session.run(feed)


def _embed_in_workers(request, ver_graph, ver_pre, ver_calib, faces):
    """The verifier sessions (the parent's, for their notes) and every (detector, verifier)
    configuration's embeddings, computed by ``request.workers`` processes."""
    from nnasim.analysis.batch import Workers

    spec = SessionSpec.calibrated(ver_graph, request.verifier_configs, ver_calib, request.calib_method)
    name, shape, out = ver_graph.inputs[0], ver_graph.shape(ver_graph.inputs[0]), ver_graph.outputs[0]
    embeddings = {}
    with Workers(spec, request.workers) as workers:
        for d, found in faces.items():
            outputs = workers.outputs(
                [{name: ver_pre(crop, shape)} for crop in found.crops], f"verify det={d}"
            )
            for v in (c.label for c in request.verifier_configs):
                rows = [o[out].reshape(-1) for o in outputs.get(v, [])]
                embeddings[(d, v)] = np.stack(rows) if rows else np.zeros((0, 1), np.float32)
    return spec.sessions(), embeddings


def _verifier_calibration(request, ver_graph, ver_pre, crops) -> list[dict[str, np.ndarray]]:
    name, shape = ver_graph.inputs[0], ver_graph.shape(ver_graph.inputs[0])
    if request.calib_verifier:
        return input_feeds(ver_graph, load_images(request.calib_verifier), ver_pre)
    return [{name: ver_pre(crop, shape)} for crop in crops]


# ---------------------------------------------------------------------------------------------
# The grid


def grid_analysis(
    faces: dict[str, FaceCrops],
    embeddings: dict[tuple[str, str], np.ndarray],
    detectors: list[str],
    verifiers: list[str],
) -> dict[str, Any]:
    """Every grid cell against the all-fp32 cascade (the first detector and verifier)."""
    ref = Reference.of(faces[detectors[0]], embeddings[(detectors[0], verifiers[0])])
    cells = {}
    for d in detectors:
        link = correspond(ref.faces, faces[d])
        for v in verifiers:
            cells[f"{d}/{v}"] = grid_cell(ref, faces[d], embeddings[(d, v)], link)
    return {
        "threshold": ref.threshold,
        "reference_decisions": dict(zip(ref.faces.names, ref.decisions, strict=True)),
        "cells": cells,
        "weakest_link": weakest_link(cells, detectors, verifiers),
    }


@dataclass(frozen=True)
class Reference:
    """The all-fp32 cascade: its faces, embeddings, similarities, threshold and decisions."""

    faces: FaceCrops
    embeddings: np.ndarray
    similarity: np.ndarray
    threshold: float
    decisions: list[str]

    @staticmethod
    def of(faces: FaceCrops, embeddings: np.ndarray) -> Reference:
        similarity = metrics.pairwise_cosine(embeddings)
        i, j, same = Faces(faces.names, faces.persons).labelled_pairs()
        separable = same.any() and not same.all()
        threshold = metrics.best_threshold(similarity[i, j], same) if separable else 0.5
        return Reference(faces, embeddings, similarity, threshold, identify(similarity, faces, threshold))


def grid_cell(
    ref: Reference, faces: FaceCrops, embeddings: np.ndarray, link: dict[int, int]
) -> dict[str, Any]:
    """One detector/verifier combination against the all-fp32 cascade."""
    similarity = metrics.pairwise_cosine(embeddings)
    decisions = identify(similarity, faces, ref.threshold)
    labelled = [k for k, p in enumerate(faces.persons) if p]
    stats = verification_stats(similarity, Faces(faces.names, faces.persons))
    cosines = [float(metrics.cosine_similarity(embeddings[k], ref.embeddings[r])) for r, k in link.items()]
    return {
        "faces": len(faces.images),
        "decisions_changed": len(changes := decision_changes(ref, faces, decisions, link)),
        "changes": changes,
        "identified_right": sum(decisions[k] == faces.persons[k] for k in labelled),
        "labelled_faces": len(labelled),
        "cos_to_fp32_mean": float(np.mean(cosines)) if cosines else float("nan"),
        "pair_flips": pair_flips(ref, similarity, link),
        **{k: stats[k] for k in ("TAR@FAR=0.01", "TAR@FAR=0.001", "AUC") if k in stats},
    }


def decision_changes(
    ref: Reference, faces: FaceCrops, decisions: list[str], link: dict[int, int]
) -> list[dict]:
    """Faces whose identity decision differs from the all-fp32 cascade, plus lost and new faces."""
    changes = []
    for r, before in enumerate(ref.decisions):
        now = decisions[link[r]] if r in link else "(face not detected)"
        if now != before:
            changes.append({"face": ref.faces.names[r], "fp32 cascade": before, "now": now})
    new_faces = sorted(set(range(len(faces.images))) - set(link.values()))
    changes += [
        {"face": faces.names[k], "fp32 cascade": "(no such face)", "now": decisions[k]} for k in new_faces
    ]
    return changes


def pair_flips(ref: Reference, similarity: np.ndarray, link: dict[int, int]) -> int:
    """Labelled pairs whose accept/reject decision differs from all-fp32 (a lost face rejects)."""
    i, j, _ = Faces(ref.faces.names, ref.faces.persons).labelled_pairs()
    flips = 0
    for a, b in zip(i, j, strict=True):
        before = ref.similarity[a, b] >= ref.threshold
        now = a in link and b in link and similarity[link[a], link[b]] >= ref.threshold
        flips += int(before != now)
    return flips


def weakest_link(cells: dict[str, dict], detectors: list[str], verifiers: list[str]) -> dict[str, Any]:
    """The single quantized stage that changes most decisions (ties: the lower embedding cosine)."""
    candidates = [("detector", d, f"{d}/{verifiers[0]}") for d in detectors[1:]]
    candidates += [("verifier", v, f"{detectors[0]}/{v}") for v in verifiers[1:]]
    if not candidates:
        return {"stage": None, "reason": "no quantized configuration in the grid"}

    def badness(item):
        cell = cells[item[2]]
        return (cell["decisions_changed"], -np.nan_to_num(cell["cos_to_fp32_mean"], nan=1.0))

    stage, config, key = max(candidates, key=badness)
    cell = cells[key]
    others = [
        f"{s} {c}: {cells[k]['decisions_changed']} changed, cosine {cells[k]['cos_to_fp32_mean']:.3f}"
        for s, c, k in candidates
    ]
    return {
        "stage": stage,
        "config": config,
        "cell": key,
        "decisions_changed": cell["decisions_changed"],
        "cos_to_fp32_mean": cell["cos_to_fp32_mean"],
        "single_stage_cells": others,
    }


def grid_section(grid: dict[str, Any], detectors: list[str], verifiers: list[str]) -> Section:
    cells = grid["cells"]

    def matrix(key: str) -> np.ndarray:
        return np.array([[float(cells[f"{d}/{v}"].get(key, np.nan)) for v in verifiers] for d in detectors])

    figures = {
        "cascade_decisions.png": lambda path: plots.grid_heatmap(
            path,
            matrix("decisions_changed"),
            detectors,
            verifiers,
            "identity decisions changed vs all-fp32",
            ".0f",
        ),
        "cascade_cosine.png": lambda path: plots.grid_heatmap(
            path,
            1 - matrix("cos_to_fp32_mean"),
            detectors,
            verifiers,
            "1 - cosine to all-fp32 embedding",
            ".3f",
        ),
    }
    return Section(
        "grid",
        "Cascade grid (detector x verifier)",
        grid,
        _grid_markdown(grid, detectors, verifiers, figures),
        figures,
    )


def _grid_markdown(grid, detectors, verifiers, figures) -> str:
    cells = grid["cells"]
    weak = grid["weakest_link"]
    text = []
    if weak.get("stage"):
        text.append(
            f"**Weakest link: the {weak['stage']} at {weak['config']}** — quantizing it alone (the other "
            f"network fp32) changes {weak['decisions_changed']} identity decision(s) and leaves the "
            f"embeddings at mean cosine {weak['cos_to_fp32_mean']:.3f} to the all-fp32 cascade. "
            "Single-stage cells: " + "; ".join(weak["single_stage_cells"]) + ".\n\n"
        )
    text.append(
        f"Identity threshold chosen on the all-fp32 cascade: **{grid['threshold']:.3f}**. Rows: detector "
        "configuration; columns: verifier configuration.\n\n"
    )
    for key, title in (
        ("decisions_changed", "Identity decisions changed against the all-fp32 cascade"),
        ("identified_right", "Labelled faces identified as the right person"),
        ("cos_to_fp32_mean", "Mean cosine of each face's embedding to its all-fp32 embedding"),
        ("pair_flips", "Labelled pairs whose accept/reject decision differs from the all-fp32 cascade"),
        ("TAR@FAR=0.01", "TAR at FAR 1e-2 over labelled faces"),
        ("AUC", "ROC AUC over labelled faces"),
    ):
        rows = [
            {"detector": d, **{f"verifier {v}": cells[f"{d}/{v}"].get(key) for v in verifiers}}
            for d in detectors
        ]
        text.append(f"{title}:\n\n" + md_table(rows) + "\n")
    for name in figures:
        text.append(image_link(name, name.removesuffix(".png")))
    for key, cell in cells.items():
        if cell["changes"]:
            text.append(f"\nDecisions that change at {key}:\n\n" + md_table(cell["changes"]))
    return "".join(text)
