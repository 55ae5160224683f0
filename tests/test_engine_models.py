"""Whole models in the integer engine: on every model, 16-bit outputs are closer to fp32 than 8-bit.

Zoo models run on generated inputs (LFFD at 160x160 for speed); the trained models in ../shared
run on real photos with their own preprocessing, calibrated on other photos than the ones scored.
"""

from __future__ import annotations

import numpy as np
import pytest
from oracles import SHARED, shared_model

from nnasim.engine.inputs import load_feeds
from nnasim.engine.session import build_session, generated_feeds
from nnasim.frontend import load_lowered
from nnasim.io.data import preprocessing_for
from nnasim.ir.execute import run_float

ZOO = ["lffd@160x160", "arcface"]
TRAINED = {"mobilefacenet": "aligned", "ultraface-rfb-320": "crowds", "ultraface-slim-320": "crowds"}


def _sqnr_db(reference: np.ndarray, value: np.ndarray) -> float:
    noise = float(np.sum((reference.astype(np.float64) - value) ** 2))
    return 10 * np.log10(float(np.sum(reference.astype(np.float64) ** 2)) / max(noise, 1e-30))


def _check_16_beats_8(graph, calib, evaluate) -> dict[int, dict[str, float]]:
    quality = {}
    for bits in (8, 16):
        session = build_session(graph, bits, calib=calib)
        quality[bits] = {name: np.inf for name in graph.outputs}
        for feed in evaluate:
            reference, outputs = run_float(graph, feed), session.run(feed)
            for name in graph.outputs:
                quality[bits][name] = min(quality[bits][name], _sqnr_db(reference[name], outputs[name]))
    for name in graph.outputs:
        assert quality[16][name] > quality[8][name], (name, quality)
        assert quality[16][name] > 20, (name, quality)
    return quality


@pytest.mark.parametrize("spec", ZOO)
def test_zoo_model_16_bits_closer_than_8(spec):
    graph = load_lowered(spec)
    feeds = generated_feeds(graph, 2, seed=11)
    _check_16_beats_8(graph, feeds[:1], feeds[1:])


@pytest.mark.parametrize("name", sorted(TRAINED))
def test_trained_model_16_bits_closer_than_8(shared_dir, name):
    path = shared_model(name)
    graph = load_lowered(path)
    feeds = [
        feed for _, feed in load_feeds(SHARED / "images" / TRAINED[name], graph, preprocessing_for(path))
    ]
    _check_16_beats_8(graph, feeds[:3], feeds[3:5])
