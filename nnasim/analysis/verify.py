"""Face verification analysis of embeddings, shared by ``compare --task embed`` and ``cascade``.

Given one embedding per face for each configuration (fp32 first), it measures what the
talk shows: how close each quantized embedding stays to its fp32 one, the pairwise
similarity heatmaps, ROC and TAR at fixed FAR over same/different-person pairs, and which
pair decisions flip at the threshold that best separates the fp32 pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnasim.analysis import metrics
from nnasim.report import plots
from nnasim.report.document import Section, image_link, md_table

FAR_TARGETS = (1e-2, 1e-3)
UNKNOWN = "?"  # person of a face whose identity is not known (group photos, stray detections)


@dataclass(frozen=True)
class Faces:
    """The faces being compared: a display name and a person (None if unknown) for each."""

    names: list[str]
    persons: list[str | None]

    def display_order(self) -> np.ndarray:
        """Indices ordering faces by person (unknown last), then name: the heatmap order."""
        keys = [((p is None), p or "", n) for p, n in zip(self.persons, self.names, strict=True)]
        return np.array(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.int64)

    def labelled_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All pairs ``i < j`` of faces with known persons, and whether each pair is the same person."""
        i, j = metrics.upper_pairs(len(self.names))
        known = np.array(
            [self.persons[a] is not None and self.persons[b] is not None for a, b in zip(i, j, strict=True)],
            bool,
        )
        i, j = i[known], j[known]
        same = np.array([self.persons[a] == self.persons[b] for a, b in zip(i, j, strict=True)], bool)
        return i, j, same


def verification_stats(similarity: np.ndarray, faces: Faces) -> dict:
    """ROC summary of one configuration: TAR at the target FARs, AUC, and the score ranges."""
    i, j, same = faces.labelled_pairs()
    scores = similarity[i, j]
    stats = {"pairs_same": int(same.sum()), "pairs_different": int((~same).sum())}
    if not same.any() or same.all():
        return stats
    for target in FAR_TARGETS:
        tar, threshold = metrics.tar_at_far(scores, same, target)
        stats[f"TAR@FAR={target:g}"] = tar
        stats[f"threshold@FAR={target:g}"] = threshold
    stats.update(
        AUC=metrics.roc_auc(scores, same),
        same_min=float(scores[same].min()),
        same_mean=float(scores[same].mean()),
        different_max=float(scores[~same].max()),
        different_mean=float(scores[~same].mean()),
    )
    return stats


def decision_flips(
    reference: np.ndarray, similarity: np.ndarray, faces: Faces, threshold: float
) -> list[dict]:
    """Labelled pairs whose accept/reject decision at ``threshold`` differs from the reference's."""
    i, j, same = faces.labelled_pairs()
    flips = []
    for a, b, is_same in zip(i, j, same, strict=True):
        before, after = reference[a, b] >= threshold, similarity[a, b] >= threshold
        if before != after:
            flips.append(
                {
                    "face_a": faces.names[a],
                    "face_b": faces.names[b],
                    "same_person": bool(is_same),
                    "sim_fp32": float(reference[a, b]),
                    "sim": float(similarity[a, b]),
                    "now": "accept" if after else "reject",
                    "now_correct": bool(after == is_same),
                }
            )
    return flips


def analyse_embeddings(
    embeddings: dict[str, np.ndarray],
    faces: Faces,
    prefix: str = "",
    threshold: tuple[float, str] | None = None,
) -> Section:
    """The verification section for ``embeddings`` (config label -> ``(N, D)``; the first is fp32).

    ``prefix`` names the figure files (``{prefix}heatmap_<config>.png``, ``{prefix}roc.png``).
    The decision threshold is ``threshold`` (value, where it comes from) if given, else the one
    that best separates the first configuration's pairs.
    """
    labels = list(embeddings)
    reference = labels[0]
    sims = {label: metrics.pairwise_cosine(e) for label, e in embeddings.items()}
    i, j, same = faces.labelled_pairs()
    if threshold is None:
        separable = same.any() and not same.all()
        value = metrics.best_threshold(sims[reference][i, j], same) if separable else float("nan")
        threshold = (value, f"chosen on {reference} (maximises TAR - FAR)")
    data: dict = {
        "faces": faces.names,
        "persons": faces.persons,
        "threshold": threshold[0],
        "threshold_from": threshold[1],
        "configs": {},
    }
    for label in labels:
        cosine_to_ref = metrics.cosine_similarity(embeddings[label], embeddings[reference])
        flips = (
            decision_flips(sims[reference], sims[label], faces, threshold[0]) if label != reference else []
        )
        data["configs"][label] = {
            "cosine_to_fp32": cosine_to_ref,
            "verification": verification_stats(sims[label], faces),
            "decision_flips": flips,
            "similarity": sims[label],
        }
    figures = _figures(sims, faces, i, j, same, prefix)
    return Section("embed", "Embeddings and verification", data, _markdown(data, faces, figures), figures)


def _figures(sims, faces: Faces, i, j, same, prefix: str) -> dict:
    if not faces.names:
        return {}
    order = faces.display_order()
    names = [faces.names[k] for k in order]
    persons = [faces.persons[k] or UNKNOWN for k in order]
    figures = {}
    for label, sim in sims.items():
        ordered = sim[np.ix_(order, order)]
        title = f"Cross-validation heatmap, {label}"
        figures[f"{prefix}heatmap_{label}.png"] = lambda path, m=ordered, t=title: plots.similarity_heatmap(
            path, m, names, persons, t
        )
    if same.any() and not same.all():
        curves = {label: metrics.roc_curve(sim[i, j], same)[:2] for label, sim in sims.items()}
        floor = 0.5 / max(int((~same).sum()), 1)
        figures[f"{prefix}roc.png"] = lambda path: plots.roc_curves(path, curves, floor)
    return figures


def _markdown(data: dict, faces: Faces, figures: dict) -> str:
    if not faces.names:
        return "No faces to compare.\n"
    rows = []
    for label, entry in data["configs"].items():
        cos = np.asarray(entry["cosine_to_fp32"])
        stats = entry["verification"]
        rows.append(
            {
                "config": label,
                "cos to fp32 mean": float(cos.mean()),
                "cos to fp32 min": float(cos.min()),
                **{
                    k: v
                    for k, v in stats.items()
                    if not k.startswith("threshold") and not k.startswith("pairs")
                },
                "flips": len(entry["decision_flips"]),
            }
        )
    known = sorted({p for p in faces.persons if p is not None})
    first = next(iter(data["configs"].values()))["verification"]
    text = [
        f"{len(faces.names)} faces, {sum(p is not None for p in faces.persons)} of them of a known person "
        f"({len(known)} people: {', '.join(known)}); "
        f"{first['pairs_same']} same-person and {first['pairs_different']} different-person pairs.\n\n",
        md_table(rows, floatfmt=".4f"),
        f"\nDecision threshold {data['threshold_from']}: **{data['threshold']:.3f}**. `flips` counts pairs "
        f"whose accept/reject decision at that threshold differs from {next(iter(data['configs']))}.\n",
    ]
    for label, entry in data["configs"].items():
        if entry["decision_flips"]:
            text.append(f"\nPairs that flip at {label}:\n\n" + md_table(entry["decision_flips"]))
    worst = _worst_faces(data)
    if worst:
        text.append("\nFaces whose embedding moved most (lowest cosine to fp32):\n\n" + md_table(worst))
    for name in figures:
        text.append("\n" + image_link(name, name.removesuffix(".png")))
    return "".join(text)


def _worst_faces(data: dict, count: int = 5) -> list[dict]:
    rows = []
    for label, entry in list(data["configs"].items())[1:]:
        cos = np.asarray(entry["cosine_to_fp32"])
        for k in np.argsort(cos, kind="stable")[:count]:
            rows.append({"config": label, "face": data["faces"][k], "cos to fp32": float(cos[k])})
    return rows
