"""Detection analysis: quantized detections against fp32 ones (and against labels when given).

The fp32 detections at the operating threshold are the reference faces. For each quantized
configuration: its detections are matched to them by IoU; each reference face gets the
quantized confidence of its match among all candidates (down to a low floor, so a face that
fell below the threshold still shows how far it fell), which gives the talk's per-face
relative error graph; unmatched detections are misses and extras ("false positives relative
to fp32"); AP uses the fp32 faces as ground truth.
"""

from __future__ import annotations

import numpy as np

from nnasim.analysis import metrics
from nnasim.analysis.detect import Detections, decoder_for
from nnasim.io.data import ImageSet, read_box_labels
from nnasim.ir import Graph
from nnasim.report import plots
from nnasim.report.document import Section, image_link, md_table

CANDIDATE_FLOOR = 0.1  # lowest score decoded: AP ranks these, and relative errors see faces that fell
MATCH_IOU = 0.5  # a detection is the same face (for misses, extras, AP)
CONFIDENCE_IOU = 0.3  # looser, for the confidence graph: a shifted box still reports its face's score
LISTED = 25  # rows of long lists shown in report.md (all are in report.json)


def detect_all(
    graph: Graph, images: ImageSet, outputs: dict[str, list[dict[str, np.ndarray]]], floor: float
) -> dict[str, list[Detections]]:
    """Decode every configuration's outputs for every image, keeping scores >= ``floor``."""
    decoder = decoder_for(graph)
    _, _, height, width = graph.shape(graph.inputs[0])
    return {
        label: [
            decoder.decode(o, (width, height), sample.size, floor)
            for o, sample in zip(outs, images.samples, strict=True)
        ]
        for label, outs in outputs.items()
    }


def detection_section(
    graph: Graph,
    images: ImageSet,
    outputs: dict[str, list[dict[str, np.ndarray]]],
    threshold: float | None,
    labels_path=None,
) -> Section:
    decoder = decoder_for(graph)
    threshold = decoder.default_threshold if threshold is None else threshold
    candidates = detect_all(graph, images, outputs, min(CANDIDATE_FLOOR, threshold))
    kept = {label: [d.above(threshold) for d in dets] for label, dets in candidates.items()}
    names = [s.name for s in images.samples]
    configs = list(candidates)
    faces = reference_faces(names, kept[configs[0]])
    extras, misses, summary = {}, {}, {}
    for label in configs[1:]:
        faces_conf = confidence_of_reference_faces(kept[configs[0]], candidates[label])
        for face, (score, iou) in zip(faces, faces_conf, strict=True):
            face["score"][label] = score
            face["iou"][label] = iou
            face["rel_error"][label] = abs(score - face["score"]["fp32"]) / face["score"]["fp32"]
        summary[label], extras[label], misses[label] = against_reference(
            names, kept[configs[0]], kept[label], candidates[label]
        )
    mark_shared_extras(extras)
    for label in configs[1:]:
        summary[label]["extra shared"] = sum(1 for e in extras[label] if e["also_in"])
        summary[label].update(_confidence_summary(faces, label))
    summary = {configs[0]: {"detections": sum(len(d) for d in kept[configs[0]])}, **summary}
    truth = _truth(labels_path, names)
    if truth is not None:
        against_labels(truth, kept, candidates, summary)
    data = {
        "decoder": decoder.family,
        "threshold": threshold,
        "summary": summary,
        "faces": faces,
        "extras": extras,
        "misses": misses,
    }
    figures = _figures(faces, configs)
    return Section("detect", "Detection against fp32", data, _markdown(data, configs, figures), figures)


def reference_faces(names: list[str], kept: list[Detections]) -> list[dict]:
    """The fp32 faces, one record each: image, box, size (sqrt of area, pixels), fp32 score."""
    faces = []
    for name, dets in zip(names, kept, strict=True):
        for box, score in zip(dets.boxes, dets.scores, strict=True):
            size = float(np.sqrt(metrics.box_area(box)[0]))
            faces.append(
                {
                    "image": name,
                    "box": [round(float(v), 1) for v in box],
                    "size_px": size,
                    "score": {"fp32": float(score)},
                    "iou": {},
                    "rel_error": {},
                }
            )
    return faces


def confidence_of_reference_faces(
    reference: list[Detections], candidates: list[Detections]
) -> list[tuple[float, float]]:
    """Per reference face (image order): (score, IoU) of its matched candidate, (0, 0) if none.

    Matching is one-to-one at IoU >= ``CONFIDENCE_IOU``.
    """
    result = []
    for ref, cand in zip(reference, candidates, strict=True):
        match = metrics.match_boxes(ref.boxes, cand.boxes, CONFIDENCE_IOU)
        found = {i: (float(cand.scores[j]), iou) for (i, j), iou in zip(match.pairs, match.ious, strict=True)}
        result += [found.get(i, (0.0, 0.0)) for i in range(len(ref))]
    return result


def against_reference(
    names: list[str], reference: list[Detections], kept: list[Detections], candidates: list[Detections]
) -> tuple[dict, list[dict], list[dict]]:
    """Counts of matched, missed and extra detections against fp32, AP with fp32 as the truth.

    Returns the summary counts, the extra detections and the missed fp32 faces.
    """
    matched, ious, misses, extras = 0, [], [], []
    for name, ref, dets in zip(names, reference, kept, strict=True):
        match = metrics.match_boxes(ref.boxes, dets.boxes, MATCH_IOU)
        matched += len(match.pairs)
        ious += list(match.ious)
        misses += [_box_record(name, ref, i) for i in match.unmatched_ref]
        extras += [{**_box_record(name, dets, j), "also_in": []} for j in match.unmatched_test]
    summary = {
        "detections": sum(len(d) for d in kept),
        "matched": matched,
        "missed": len(misses),
        "extra": len(extras),
        "mean IoU": float(np.mean(ious)) if ious else float("nan"),
        "AP vs fp32": metrics.average_precision(
            [c.boxes for c in candidates],
            [c.scores for c in candidates],
            [r.boxes for r in reference],
            MATCH_IOU,
        ),
    }
    return summary, extras, misses


def _box_record(name: str, dets: Detections, index: int) -> dict:
    return {
        "image": name,
        "box": [round(float(v), 1) for v in dets.boxes[index]],
        "score": float(dets.scores[index]),
    }


def mark_shared_extras(extras: dict[str, list[dict]]) -> None:
    """For each extra detection, list the other configurations with an extra at the same place."""
    for label, mine in extras.items():
        for other, theirs in extras.items():
            if other == label:
                continue
            for record in mine:
                boxes = np.array([t["box"] for t in theirs if t["image"] == record["image"]]).reshape(-1, 4)
                if len(boxes) and metrics.iou_matrix(np.array([record["box"]]), boxes).max() >= MATCH_IOU:
                    record["also_in"].append(other)


def _confidence_summary(faces: list[dict], label: str) -> dict:
    rel = np.array([f["rel_error"][label] for f in faces])
    if not len(rel):
        return {}
    return {"conf rel err mean": float(rel.mean()), "median": float(np.median(rel)), "max": float(rel.max())}


def _truth(labels_path, names: list[str]) -> list[np.ndarray] | None:
    if labels_path is None:
        return None
    table = read_box_labels(labels_path)
    return [table.get(name, table.get(name.rsplit("/", 1)[-1], np.zeros((0, 4)))) for name in names]


def against_labels(
    truth: list[np.ndarray],
    kept: dict[str, list[Detections]],
    candidates: dict[str, list[Detections]],
    summary: dict[str, dict],
) -> None:
    """Add AP, false positives and misses against labelled boxes; FPs shared with fp32's FPs."""
    false_pos = {}
    for label, dets in kept.items():
        fps, missed = [], 0
        for gt, d in zip(truth, dets, strict=True):
            match = metrics.match_boxes(gt, d.boxes, MATCH_IOU)
            fps.append(d.boxes[list(match.unmatched_test)].reshape(-1, 4))
            missed += len(match.unmatched_ref)
        false_pos[label] = fps
        cand = candidates[label]
        summary[label]["AP vs labels"] = metrics.average_precision(
            [c.boxes for c in cand], [c.scores for c in cand], truth, MATCH_IOU
        )
        summary[label]["FP vs labels"] = sum(len(f) for f in fps)
        summary[label]["missed vs labels"] = missed
    reference = next(iter(false_pos))
    for label, fps in false_pos.items():
        shared = sum(
            len(metrics.match_boxes(r, f, MATCH_IOU).pairs)
            for r, f in zip(false_pos[reference], fps, strict=True)
        )
        summary[label]["FP shared with fp32"] = shared


def _figures(faces: list[dict], configs: list[str]) -> dict:
    if not faces or len(configs) < 2:
        return {}
    sizes = np.array([f["size_px"] for f in faces])
    errors = {label: np.array([f["rel_error"][label] for f in faces]) for label in configs[1:]}
    return {"relative_error.png": lambda path: plots.relative_error_graph(path, errors, sizes)}


def _markdown(data: dict, configs: list[str], figures: dict) -> str:
    rows = [{"config": label, **entry} for label, entry in data["summary"].items()]
    text = [
        f"Decoder: {data['decoder']}; operating threshold {data['threshold']:g}; boxes match at IoU >= "
        f"{MATCH_IOU}. The fp32 detections are the reference faces: `missed` are fp32 faces without a "
        "quantized match, `extra` are quantized detections without an fp32 match (false positives relative "
        "to fp32), `extra shared` of them also appear in another quantized configuration. `conf rel err` is "
        "|conf - conf_fp32| / conf_fp32 per fp32 face, its quantized confidence taken from the candidate "
        f"(down to score {CANDIDATE_FLOOR}) it overlaps at IoU >= {CONFIDENCE_IOU}, 0 if none. AP uses fp32 "
        "faces as ground truth.\n\n",
        md_table(rows),
    ]
    text += ["\n" + image_link(name, "relative error graph") + _reading_hint() for name in figures]
    if len(configs) > 1 and data["faces"]:
        last = configs[-1]
        worst = sorted(data["faces"], key=lambda f: -f["rel_error"][last])[:10]
        rows = [
            {
                "image": f["image"],
                "box": f["box"],
                "size px": f["size_px"],
                **{f"conf {c}": f["score"][c] for c in configs},
            }
            for f in worst
        ]
        text.append(f"\nFaces with the largest confidence error at {last}:\n\n" + md_table(rows))
    for kind in ("extras", "misses"):
        for label, records in data[kind].items():
            if records:
                shown = [{**r, "also_in": ", ".join(r["also_in"])} if "also_in" in r else r for r in records]
                text.append(
                    f"\n{kind.capitalize()} at {label} ({len(records)}):\n\n" + md_table(shown[:LISTED])
                )
    return "".join(text)


def _reading_hint() -> str:
    return (
        "\nEach point is one fp32 face; face ID 1 is the largest box (the face closest to the camera). "
        "Small, distant faces have low confidence and large relative errors first.\n"
    )
