"""Classification analysis: Top-1/Top-5 per configuration and the talk's agreement sets.

A is the set of images right in fp32, B the set right in a quantized configuration. Top-1
alone shows |B| - |A|; the sets show how many images changed sides in each direction.
"""

from __future__ import annotations

import numpy as np

from nnasim.analysis import metrics
from nnasim.report import plots
from nnasim.report.document import Section, image_link, md_table


def classify_section(names: list[str], labels: list[int], scores: dict[str, np.ndarray]) -> Section:
    """``scores`` maps config label -> ``(N, classes)`` outputs; the first config is fp32."""
    configs = list(scores)
    labels_arr = np.asarray(labels)
    k = min(5, scores[configs[0]].shape[1])
    right_fp32 = metrics.topk_correct(scores[configs[0]], labels_arr, 1)
    predictions = {label: np.argmax(s, axis=1) for label, s in scores.items()}
    rows, data = [], {}
    for label, s in scores.items():
        agree = metrics.set_agreement(right_fp32, metrics.topk_correct(s, labels_arr, 1))
        changed = np.flatnonzero(predictions[label] != predictions[configs[0]])
        entry = {
            "config": label,
            "top1": metrics.topk_accuracy(s, labels_arr, 1),
            f"top{k}": metrics.topk_accuracy(s, labels_arr, k),
            "|A|": len(agree.a),
            "|B|": len(agree.b),
            "|A∩B|": len(agree.both),
            "|A\\B|": len(agree.only_a),
            "|B\\A|": len(agree.only_b),
            "overlap |A∩B|/|A∪B|": agree.overlap,
            "top1 changed": len(changed),
        }
        rows.append(entry)
        data[label] = {
            **entry,
            "only_fp32_right": [names[i] for i in agree.only_a],
            "only_quantized_right": [names[i] for i in agree.only_b],
            "flipped": [_flip(names, labels, predictions, configs[0], label, i) for i in changed],
        }
    bars = [
        {"config": r["config"], "both": r["|A∩B|"], "only_a": r["|A\\B|"], "only_b": r["|B\\A|"]}
        for r in rows
    ]
    figures = {"agreement.png": lambda path: plots.agreement_bars(path, bars[1:] or bars)}
    return Section(
        "classify",
        "Classification: accuracy and agreement sets",
        data,
        _markdown(rows, data, figures, len(names)),
        figures,
    )


def _flip(names, labels, predictions, reference: str, label: str, index: int) -> dict:
    return {
        "image": names[index],
        "label": int(labels[index]),
        "fp32": int(predictions[reference][index]),
        label: int(predictions[label][index]),
    }


def _markdown(rows: list[dict], data: dict, figures: dict, total: int) -> str:
    text = [
        f"{rows[0]['|A|']} of {total} images are right in fp32 (A); B is the set right in each "
        "configuration. `top1 changed`: images whose top-1 class differs from fp32 (right or wrong).\n\n",
        md_table(rows),
    ]
    for label, entry in list(data.items())[1:]:
        if entry["flipped"]:
            text.append(f"\nImages whose top-1 class changed at {label}:\n\n" + md_table(entry["flipped"]))
    text += ["\n" + image_link(name, "agreement sets") for name in figures]
    return "".join(text)
