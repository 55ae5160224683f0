"""Figure labels a practitioner can read: tensor names kept whole or cut from the right, never the left."""

from __future__ import annotations

import numpy as np
from report_checks import assert_nontrivial_png

from nnasim.report import plots


def test_names_that_differ_at_the_end_keep_different_labels():
    names = ["features.0", "features.10", "/backbone/features.1/conv/Conv_output_0"]
    labels = [plots._short(n) for n in names]
    assert labels[:2] == names[:2] and len(set(labels)) == 3
    assert labels[2].replace("\n", "") == names[2]  # wrapped at separators, nothing dropped


def test_a_name_too_long_for_two_lines_keeps_its_start():
    name = "/model/" + "block_" * 20 + "end"
    label = plots._short(name, width=20)
    lines = label.split("\n")
    assert len(lines) == 2 and all(len(line) <= 20 for line in lines)
    assert label.startswith("/model/") and label.endswith("…")


def test_similarity_heatmap_draws_cell_values(tmp_path):
    rng = np.random.default_rng(0)
    matrix = np.clip(rng.normal(0.5, 0.3, (6, 6)), -0.2, 1.0)
    path = tmp_path / "heat.png"
    plots.similarity_heatmap(
        path, matrix, [f"p{k // 2}/img{k}" for k in range(6)], [str(k // 2) for k in range(6)], "t"
    )
    assert_nontrivial_png(path)


def test_a_large_heatmap_labels_each_person_once_at_the_middle_of_their_faces():
    persons = [name for name, count in (("Ann", 3), ("Bob", 1), ("Cy", 2)) for _ in range(count)] * 11
    names = [f"{p}_{k:04d}.jpg" for k, p in enumerate(persons)]
    positions, ticks = plots._heatmap_ticks(names, persons)
    assert ticks[:3] == ["Ann", "Bob", "Cy"] and positions[:3] == [1.0, 3.0, 4.5] and len(ticks) == 33
    few_positions, few_ticks = plots._heatmap_ticks(names[:6], persons[:6])
    assert few_positions == list(range(6)) and few_ticks == names[:6]


def test_roc_axis_starts_just_below_the_lowest_tar_at_the_left_edge():
    far = np.array([0.0, 0.0, 0.0, 1e-3, 1.0])
    close = {
        "fp32": (far, np.array([0.0, 0.001, 0.943, 0.97, 1.0])),
        "int8": (far, np.array([0.0, 0.001, 0.93, 0.95, 1.0])),
    }
    assert plots._tar_floor(close, 1e-4) == 0.9
    weak = {**close, "int4": (far, np.array([0.0, 0.001, 0.12, 0.5, 1.0]))}
    assert plots._tar_floor(weak, 1e-4) == 0.1
    assert plots._tar_floor({"none": (far, np.zeros(5))}, 1e-4) == 0.0
