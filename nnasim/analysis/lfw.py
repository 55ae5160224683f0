"""The LFW View 2 verification protocol: ``pairs.txt``, folds, thresholds chosen on the other folds.

``pairs.txt`` (Huang et al., LFW technical report 07-49, "View 2"): a first line ``FOLDS N``, then
per fold ``N`` same-person lines ``name i j`` followed by ``N`` different-person lines
``name1 i name2 j`` (image numbers from 1; the photo is ``name_%04d.jpg``, in a folder per person
or all in one). Accuracy is reported as the mean over folds, each fold's threshold being the one
with the best accuracy on the other folds ("unrestricted, labelled outside data" protocol as
insightface and every face-recognition paper evaluate LFW).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnasim.analysis import metrics
from nnasim.errors import DataError


@dataclass(frozen=True)
class Pair:
    fold: int  # from 1
    first: str  # image names, e.g. Abel_Pacheco_0001.jpg
    second: str
    same: bool


def image_name(person: str, number: str) -> str:
    return f"{person}_{int(number):04d}.jpg"


def read_pairs(path: str | Path) -> list[Pair]:
    """The pairs of an LFW ``pairs.txt``; a DataError naming the file and line if it is malformed."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read pairs file {path}: {error}") from None
    rows = [(n, line.split()) for n, line in enumerate(lines, start=1) if line.strip()]
    if not rows or len(rows[0][1]) != 2 or not all(v.isdigit() for v in rows[0][1]):
        raise DataError(
            f"{path}:1: expected the header 'FOLDS PAIRS_PER_HALF_FOLD' (LFW: '10 300' or '5 300')"
        )
    folds, half = (int(v) for v in rows[0][1])
    expected = folds * half * 2
    if len(rows) - 1 != expected:
        raise DataError(
            f"{path}: the header promises {folds} folds x 2 x {half} = {expected} pairs, "
            f"found {len(rows) - 1}"
        )
    pairs = []
    for index, (line, fields) in enumerate(rows[1:]):
        same = (index // half) % 2 == 0
        pairs.append(_pair(path, line, fields, index // (2 * half) + 1, same))
    return pairs


def _pair(path: Path, line: int, fields: list[str], fold: int, same: bool) -> Pair:
    want = 3 if same else 4
    numbers = fields[1:] if same else fields[1::2]
    if len(fields) != want or not all(v.isdigit() and int(v) > 0 for v in numbers):
        kind = "'name i j' (same person)" if same else "'name1 i name2 j' (different people)"
        raise DataError(
            f"{path}:{line}: expected {kind} in this part of fold {fold}, got {' '.join(fields)!r}"
        )
    if same:
        return Pair(fold, image_name(fields[0], fields[1]), image_name(fields[0], fields[2]), True)
    return Pair(fold, image_name(fields[0], fields[1]), image_name(fields[2], fields[3]), False)


def select_pairs(pairs: list[Pair], folds: list[int] | None = None, limit: int | None = None) -> list[Pair]:
    """The pairs of the given folds; with ``limit``, the first ``limit`` same and ``limit`` different
    pairs of each fold (so every fold keeps both kinds)."""
    chosen = [p for p in pairs if folds is None or p.fold in folds]
    if limit is None:
        return chosen
    kept, seen = [], {}
    for pair in chosen:
        key = (pair.fold, pair.same)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] <= limit:
            kept.append(pair)
    return kept


def locate_image(folder: Path, name: str) -> str:
    """The image's name relative to ``folder``: ``Person/name`` (LFW's layout) or ``name`` (flat)."""
    person = name.rsplit("_", 1)[0]
    for candidate in (f"{person}/{name}", name):
        if (folder / candidate).is_file():
            return candidate
    raise DataError(f"{folder}: no image {name} (looked for {person}/{name} and {name})")


# ---------------------------------------------------------------------------------------------
# Scores -> decisions and accuracy


def accuracy_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """The threshold with the best accuracy (``accept = score >= threshold``) on these pairs.

    Candidates are the midpoints between consecutive distinct scores and one value beyond each
    end; ties go to the lowest threshold, so the choice is deterministic.
    """
    values = np.unique(np.asarray(scores, np.float64))
    candidates = np.concatenate([[values[0] - 1.0], (values[1:] + values[:-1]) / 2, [values[-1] + 1.0]])
    accepted = scores[None, :] >= candidates[:, None]
    accuracy = (accepted == np.asarray(same, bool)[None, :]).mean(axis=1)
    return float(candidates[int(np.argmax(accuracy))])


@dataclass(frozen=True)
class FoldResult:
    folds: tuple[int, ...]
    thresholds: tuple[float, ...]  # per fold, chosen on the other folds
    accuracies: tuple[float, ...]  # per fold
    accepted: np.ndarray  # per pair: accepted at its fold's threshold

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracies))

    @property
    def std(self) -> float:
        return float(np.std(self.accuracies))


def fold_accuracy(
    scores: np.ndarray, same: np.ndarray, folds: np.ndarray, thresholds: dict[int, float] | None = None
) -> FoldResult:
    """Per fold: the threshold chosen on the other folds (or given) and the accuracy on this fold.

    With a single fold the threshold is chosen on that fold itself (an optimistic figure; the
    report says so).
    """
    scores, same, folds = np.asarray(scores, np.float64), np.asarray(same, bool), np.asarray(folds)
    names = tuple(int(f) for f in np.unique(folds))
    chosen, accuracies = [], []
    accepted = np.zeros(len(scores), bool)
    for fold in names:
        test = folds == fold
        train = ~test if len(names) > 1 else test
        threshold = thresholds[fold] if thresholds else accuracy_threshold(scores[train], same[train])
        accepted[test] = scores[test] >= threshold
        chosen.append(threshold)
        accuracies.append(float((accepted[test] == same[test]).mean()))
    return FoldResult(names, tuple(chosen), tuple(accuracies), accepted)


def verification_summary(scores: np.ndarray, same: np.ndarray, folds: np.ndarray) -> dict:
    """Accuracy over folds, TAR at FAR 1e-3 / 1e-2 over all pairs, and the ROC AUC."""
    result = fold_accuracy(scores, same, folds)
    summary = {
        "accuracy": result.mean,
        "accuracy_std": result.std,
        "fold_accuracies": list(result.accuracies),
        "fold_thresholds": list(result.thresholds),
    }
    for target in (1e-3, 1e-2):
        tar, threshold = metrics.tar_at_far(scores, same, target)
        summary[f"TAR@FAR={target:g}"] = tar
        summary[f"threshold@FAR={target:g}"] = threshold
    summary["AUC"] = metrics.roc_auc(scores, same)
    return summary


def pair_scores(embeddings: np.ndarray, index: dict[str, int], pairs: list[Pair]) -> np.ndarray:
    """Cosine similarity of each pair's two embeddings."""
    a = np.array([index[p.first] for p in pairs])
    b = np.array([index[p.second] for p in pairs])
    return metrics.cosine_similarity(embeddings[a], embeddings[b])
