"""``nnasim verify``: LFW View 2 through detector -> landmarks -> alignment -> embedder at each width.

For each detector x verifier combination (fp32 first, the reference) every pair of ``pairs.txt``
gets a cosine score; the report gives the protocol's accuracy (threshold chosen on the other
folds), TAR at FAR 1e-3 and 1e-2, the ROC of every combination on one figure, the pair decisions
that flip against fp32, the talk's agreement sets (A right in fp32, B right quantized) and the
cross-validation heatmap of a few identities. Front-end results and embeddings are cached per
configuration in ``OUT/cache`` and reused when models, configuration and calibration match.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from nnasim.analysis import faces, lfw, metrics
from nnasim.analysis.compare import QuantConfig
from nnasim.errors import UsageError
from nnasim.io.data import preprocessing_for
from nnasim.report import plots
from nnasim.report.document import Section, image_link, md_table, write_report

LISTED = 25  # rows of long lists in report.md (all are in report.json)
HEATMAP_IMAGES_PER_PERSON = 4
SAVE_EVERY = 400  # photos between cache saves, so an interrupted run keeps most of its work


@dataclass(frozen=True)
class Combo:
    """One way to run the cascade: the detector (and landmarks) at one width, the verifier at another."""

    detector: QuantConfig
    verifier: QuantConfig

    @property
    def label(self) -> str:
        return f"{self.detector.label}/{self.verifier.label}"


@dataclass(frozen=True)
class VerifyRequest:
    pairs: Path
    images: Path
    out: Path
    models: faces.Models
    combos: tuple[Combo, ...]  # the first is the reference (fp32/fp32)
    folds: tuple[int, ...] | None = None
    limit: int | None = None  # same and different pairs per fold
    calib_count: int = 32
    calib_method: str = "minmax"
    heatmap_people: int = 6
    force: bool = False


def verify(request: VerifyRequest, mapper: faces.Mapper = faces.run_inline) -> dict[str, Any]:
    """Run the protocol, write the report folder and return what report.json holds."""
    started = time.perf_counter()
    out = Path(request.out)
    check_output(out, request.force)
    all_pairs = lfw.read_pairs(request.pairs)
    pairs = lfw.select_pairs(all_pairs, list(request.folds) if request.folds else None, request.limit)
    if not pairs:
        raise UsageError(f"--folds {request.folds}: {request.pairs} has no pairs in these folds")
    names = sorted({n for p in pairs for n in (p.first, p.second)})
    located = {n: lfw.locate_image(request.images, n) for n in names}
    calib = calibration_images(all_pairs, request.images, request.calib_count)
    job = base_job(request, calib)
    cache = Cache(out / "cache")
    landmarks, frontend = run_frontend(job, names, located, cache, mapper)
    job = embedding_job(job, request, calib, cache, mapper)
    embeddings = run_embeddings(job, names, located, landmarks, cache, mapper)
    sections = analyse(request, pairs, names, embeddings, frontend)
    header = {
        "pairs": str(request.pairs),
        "images": str(request.images),
        "pairs_evaluated": len(pairs),
        "folds": sorted({p.fold for p in pairs}),
        "photos": len(names),
        "models": f"{request.models.detector} -> {request.models.landmarks} -> {request.models.verifier}",
        "combinations (detector/verifier)": [c.label for c in request.combos],
        "scheme": request.combos[-1].verifier.scheme,
        "landmarks": "run at the detector's width (the detector stage = detector + landmarks)",
        "calibration": f"{len(calib)} LFW photos spread over pairs.txt ({request.calib_method}); "
        "the verifier on their fp32-aligned crops",
        "preprocessing": "; ".join(
            f"{what}: {p.describe(c)}"
            for what, p, c in zip(
                ("detector", "landmarks", "verifier"), job.preprocess, (3, 1, 3), strict=True
            )
        ),
        "run_time_s": round(time.perf_counter() - started, 1),
    }
    write_report(out / "report", True, "nnasim verify: LFW View 2", header, sections)
    return {**header, **{s.key: s.data for s in sections}}


def check_output(out: Path, force: bool) -> None:
    """``OUT`` holds ``report/`` and ``cache/``: a finished report is replaced only with ``force``; a folder
    with only a cache (an interrupted run) is resumed; anything else there needs ``force``."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: is a file; give a folder for the report and its cache")
    if force or not out.exists():
        return
    if (out / "report").exists() or not (out / "cache").is_dir():
        raise UsageError(
            f"{out}: already exists; use --force to replace its report (the embeddings cached in "
            f"{out}/cache are reused where models and configuration match)"
        )


def calibration_images(pairs: list[lfw.Pair], folder: Path, count: int) -> tuple[str, ...]:
    """``count`` photos spread evenly over all images of pairs.txt (the same whatever --folds/--limit)."""
    names = sorted({n for p in pairs for n in (p.first, p.second)})
    picks = np.linspace(0, len(names) - 1, min(count, len(names))).round().astype(int)
    return tuple(lfw.locate_image(folder, names[i]) for i in dict.fromkeys(picks.tolist()))


def base_job(request: VerifyRequest, calib: tuple[str, ...]) -> faces.Job:
    models = request.models
    preprocess = tuple(preprocessing_for(m) for m in (models.detector, models.landmarks, models.verifier))
    detectors = tuple(dict.fromkeys(c.detector for c in request.combos))
    return faces.Job(models, str(request.images), detectors, (), preprocess, calib, request.calib_method)


# ---------------------------------------------------------------------------------------------
# Stages with a cache


class Cache:
    """Per-configuration results in ``folder``, keyed by image name and valid for one job key."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def load(self, kind: str, label: str, key: str) -> dict[str, dict[str, np.ndarray]]:
        path = self._path(kind, label)
        if not path.exists():
            return {}
        with np.load(path, allow_pickle=False) as data:
            if str(data["key"]) != key:
                return {}
            names = [str(n) for n in data["names"]]
            arrays = {f: data[f] for f in data.files if f not in ("key", "names")}  # each read once
        return {n: {f: a[i] for f, a in arrays.items()} for i, n in enumerate(names)}

    def save(self, kind: str, label: str, key: str, rows: dict[str, dict[str, np.ndarray]]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        names = sorted(rows)
        fields = next(iter(rows.values())).keys() if rows else []
        arrays = {f: np.stack([rows[n][f] for n in names]) for f in fields}
        path = self._path(kind, label)
        tmp = path.with_name(f".{path.name}.part.npz")
        np.savez(tmp, key=np.array(key), names=np.array(names), **arrays)
        os.replace(tmp, path)

    def _path(self, kind: str, label: str) -> Path:
        return self.folder / f"{kind}-{label.replace('/', '_')}.npz"


def run_frontend(job: faces.Job, names, located, cache: Cache, mapper):
    """Boxes and landmarks of every photo at every detector configuration (cached)."""
    labels = [c.label for c in job.detector_configs]
    keys = {c.label: job.frontend_key(c) for c in job.detector_configs}
    rows = {label: cache.load("frontend", label, keys[label]) for label in labels}
    missing = [n for n in names if any(n not in rows[label] for label in labels)]
    if missing:
        chunks = faces.run_chunks(
            mapper, faces.frontend_chunk, [located[n] for n in missing], lambda _: (), "front end", job
        )
        unsaved, finished = 0, 0
        for chunk, result in chunks:
            for label, entry in result.items():
                for i, k in enumerate(chunk):
                    rows[label][missing[k]] = {f: v[i] for f, v in entry.items()}
            unsaved, finished = unsaved + len(chunk), finished + len(chunk)
            if unsaved >= SAVE_EVERY or finished == len(missing):
                for label in labels:
                    cache.save("frontend", label, keys[label], rows[label])
                unsaved = 0
    landmarks = {label: np.stack([rows[label][n]["landmarks"] for n in names]) for label in labels}
    frontend = {
        label: {f: np.stack([rows[label][n][f] for n in names]) for f in ("box", "score", "found")}
        for label in labels
    }
    return landmarks, frontend


def embedding_job(job: faces.Job, request: VerifyRequest, calib, cache: Cache, mapper) -> faces.Job:
    """The embedding stage's job: verifier calibration on the fp32 front end's aligned calibration crops."""
    reference = job.detector_configs[0]
    fp32_job = replace(job, detector_configs=(reference,))
    landmarks, _ = run_frontend(fp32_job, list(calib), {n: n for n in calib}, cache, faces.run_inline)
    crops = tuple(faces.aligned_crops(job, list(calib), landmarks[reference.label]))
    verifiers = tuple(dict.fromkeys(c.verifier for c in request.combos))
    combos = tuple((c.detector.label, c.verifier.label) for c in request.combos)
    return replace(job, detector_configs=(), verifier_configs=verifiers, verifier_calib=crops, combos=combos)


def run_embeddings(job: faces.Job, names, located, landmarks, cache: Cache, mapper) -> dict[str, np.ndarray]:
    """Embeddings of every photo at every combination (cached per combination)."""
    keys = {f"{d}/{v}": job.embedding_key((d, v)) for d, v in job.combos}
    labels = list(keys)
    rows = {label: cache.load("embed", label, keys[label]) for label in labels}
    missing = [k for k, n in enumerate(names) if any(n not in rows[label] for label in labels)]
    if missing:
        wanted = {d: landmarks[d][missing] for d, _ in job.combos}
        chunks = faces.run_chunks(
            mapper,
            faces.embed_chunk,
            [located[names[k]] for k in missing],
            lambda chunk: ({d: lm[chunk] for d, lm in wanted.items()},),
            "embed",
            job,
        )
        unsaved, finished = 0, 0
        for chunk, result in chunks:
            for label, values in result.items():
                for i, k in enumerate(chunk):
                    rows[label][names[missing[k]]] = {"embedding": values[i]}
            unsaved, finished = unsaved + len(chunk), finished + len(chunk)
            if unsaved >= SAVE_EVERY or finished == len(missing):
                for label in labels:
                    cache.save("embed", label, keys[label], rows[label])
                unsaved = 0
    return {label: np.stack([rows[label][n]["embedding"] for n in names]) for label in labels}


# ---------------------------------------------------------------------------------------------
# Analysis


def analyse(request: VerifyRequest, pairs, names, embeddings, frontend) -> list[Section]:
    index = {n: k for k, n in enumerate(names)}
    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    scores = {label: lfw.pair_scores(e, index, pairs) for label, e in embeddings.items()}
    return [
        protocol_section(pairs, scores, same, folds, embeddings),
        frontend_section(frontend),
        heatmap_section(names, embeddings, request.heatmap_people),
    ]


def protocol_section(pairs, scores: dict[str, np.ndarray], same, folds, embeddings) -> Section:
    labels = list(scores)
    reference = labels[0]
    ref = lfw.fold_accuracy(scores[reference], same, folds)
    ref_thresholds = dict(zip(ref.folds, ref.thresholds, strict=True))
    rows, data = [], {"reference": reference, "configs": {}}
    for label in labels:
        summary = lfw.verification_summary(scores[label], same, folds)
        own = lfw.fold_accuracy(scores[label], same, folds)
        at_ref = lfw.fold_accuracy(scores[label], same, folds, ref_thresholds)
        agree = metrics.set_agreement(ref.accepted == same, own.accepted == same)
        flipped = np.flatnonzero(own.accepted != ref.accepted)
        cosine = metrics.cosine_similarity(embeddings[label], embeddings[reference])
        row = {
            "config": label,
            "accuracy": summary["accuracy"],
            "± std": summary["accuracy_std"],
            "TAR@FAR=1e-3": summary["TAR@FAR=0.001"],
            "TAR@FAR=1e-2": summary["TAR@FAR=0.01"],
            "AUC": summary["AUC"],
            "flips": len(flipped),
            "flips at fp32 thr": int(np.sum(at_ref.accepted != ref.accepted)),
            "|A∩B|": len(agree.both),
            "|A\\B|": len(agree.only_a),
            "|B\\A|": len(agree.only_b),
            "cos to fp32": float(np.mean(cosine)),
        }
        rows.append(row)
        data["configs"][label] = {
            **summary,
            "|A|": len(agree.a),
            "|B|": len(agree.b),
            "|A∩B|": len(agree.both),
            "|A\\B|": len(agree.only_a),
            "|B\\A|": len(agree.only_b),
            "flips": [_flip(pairs, i, scores, reference, label, own.accepted[i]) for i in flipped],
            "flips_at_fp32_thresholds": int(np.sum(at_ref.accepted != ref.accepted)),
            "accuracy_at_fp32_thresholds": at_ref.mean,
            "cosine_to_fp32_mean": float(np.mean(cosine)),
            "cosine_to_fp32_min": float(np.min(cosine)),
        }
    data["table"] = rows
    curves = {label: metrics.roc_curve(s, same)[:2] for label, s in scores.items()}
    floor = 0.5 / max(int((~same).sum()), 1)
    bars = [
        {"config": r["config"], "both": r["|A∩B|"], "only_a": r["|A\\B|"], "only_b": r["|B\\A|"]}
        for r in rows[1:]
    ]
    figures = {"lfw_roc.png": lambda path: plots.roc_curves(path, curves, floor)}
    if bars:
        figures["lfw_agreement.png"] = lambda path: plots.agreement_changes(path, bars)
    return Section(
        "lfw", "LFW verification", data, _protocol_markdown(data, rows, same, folds, figures), figures
    )


def _flip(pairs: list[lfw.Pair], i: int, scores, reference: str, label: str, accepted: bool) -> dict:
    pair = pairs[i]
    return {
        "fold": pair.fold,
        "first": pair.first,
        "second": pair.second,
        "same_person": pair.same,
        "score fp32": float(scores[reference][i]),
        "score": float(scores[label][i]),
        "now": "accept" if accepted else "reject",
        "now_right": bool(accepted == pair.same),
    }


def _protocol_markdown(data, rows, same, folds, figures) -> str:
    n_folds = len(np.unique(folds))
    how = (
        f"{n_folds}-fold: each fold's threshold is the best-accuracy threshold on the other folds"
        if n_folds > 1
        else "one fold: its threshold is chosen on itself (optimistic)"
    )
    different = int((~same).sum())
    text = [
        f"{len(same)} pairs ({int(same.sum())} same, {different} different). Accuracy: {how}. "
        f"TAR at FAR over all pairs (with {different} different pairs the smallest non-zero FAR is "
        f"1/{different}). `flips`: pairs whose decision differs from {data['reference']} (each "
        "configuration at its own fold thresholds; `at fp32 thr`: at the reference's). A = pairs right in "
        "the reference, B = right in the configuration. `cos to fp32`: mean cosine of each photo's "
        "embedding to its reference embedding.\n\n",
        md_table(rows, floatfmt=".4f"),
    ]
    for name in figures:
        text.append("\n" + image_link(name, name.removesuffix(".png")))
    for label, entry in list(data["configs"].items())[1:]:
        if entry["flips"]:
            shown = entry["flips"][:LISTED]
            text.append(f"\nPairs that flip at {label} ({len(entry['flips'])}):\n\n" + md_table(shown))
    return "".join(text)


def frontend_section(frontend: dict[str, dict[str, np.ndarray]]) -> Section:
    """How far each detector configuration's boxes move from fp32, and how often no face is found."""
    labels = list(frontend)
    ref = frontend[labels[0]]
    rows = []
    for label in labels:
        entry = frontend[label]
        ious = np.array(
            [
                metrics.iou_matrix(a[None], b[None])[0, 0]
                for a, b in zip(ref["box"], entry["box"], strict=True)
            ]
        )
        rows.append(
            {
                "detector": label,
                "no face found": int((~entry["found"].astype(bool)).sum()),
                "box IoU to fp32 mean": float(ious.mean()),
                "box IoU to fp32 min": float(ious.min()),
                "score mean": float(entry["score"].mean()),
            }
        )
    text = (
        "The subject is the detection nearest the image centre; with none at all the central region is used. "
        "The landmarks (at the detector's width) follow the box.\n\n" + md_table(rows, floatfmt=".4f")
    )
    return Section("frontend", "Detector stage against fp32", {"table": rows}, text)


def heatmap_people(names: list[str], count: int) -> list[int]:
    """Indices of the photos of the ``count`` people with the most photos (ties by name), up to
    ``HEATMAP_IMAGES_PER_PERSON`` each, ordered by person."""
    people: dict[str, list[int]] = {}
    for k, name in enumerate(names):
        people.setdefault(Path(name).stem.rsplit("_", 1)[0], []).append(k)
    ranked = sorted(people, key=lambda p: (-len(people[p]), p))[:count]
    return [k for person in sorted(ranked) for k in people[person][:HEATMAP_IMAGES_PER_PERSON]]


def heatmap_section(names: list[str], embeddings: dict[str, np.ndarray], count: int) -> Section:
    chosen = heatmap_people(names, count)
    shown = [Path(names[k]).stem for k in chosen]
    persons = [s.rsplit("_", 1)[0] for s in shown]
    figures, data = {}, {"photos": shown}
    for label, e in embeddings.items():
        sim = metrics.pairwise_cosine(e[chosen])
        same = np.equal.outer(persons, persons) & ~np.eye(len(chosen), dtype=bool)
        other = ~np.equal.outer(persons, persons)
        data[label] = {
            "same_min": float(sim[same].min()) if same.any() else None,
            "different_max": float(sim[other].max()) if other.any() else None,
        }
        name = f"lfw_heatmap_{label.replace('/', '_')}.png"
        title = f"LFW cross-validation heatmap, {label}"
        figures[name] = lambda path, m=sim, t=title: plots.similarity_heatmap(path, m, shown, persons, t)
    rows = [{"config": k, **v} for k, v in data.items() if k != "photos"]
    text = (
        f"{len(chosen)} photos of the {count} people with the most photos among those evaluated; cosine "
        "similarity of every pair. `same_min` is the lowest same-person similarity, `different_max` the "
        "highest different-person one: the margin the threshold lives in.\n\n"
        + md_table(rows, floatfmt=".3f")
    )
    text += "".join("\n" + image_link(n, n.removesuffix(".png")) for n in figures)
    return Section("heatmaps", "Cross-validation heatmaps", data, text, figures)
