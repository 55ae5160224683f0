"""The face pipeline of ``nnasim verify``: detector -> landmarks -> ArcFace alignment -> embedder.

Two stages, each run per image (so the work splits over processes or a cluster, and a result does
not depend on how the images were chunked):

- the **front end** at each detector configuration: the detector finds faces; the one nearest the
  image centre is the subject (LFW centres its subject); the 68-landmark model, run at the same
  width as the detector, places the landmarks in a 1.2x enlarged box (the landmark model's own
  crop, faceplugin's ``alignLandmarkImage``);
- the **embedding** of each detector x verifier combination: the crop aligned on the front end's
  landmarks, embedded by the verifier at its width.

Sessions are built once per worker process from a picklable ``Job``; every worker calibrates on the
same images, so every worker builds the same integer model.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from nnasim.analysis.align import align_face
from nnasim.analysis.compare import QuantConfig, make_session
from nnasim.analysis.detect import decoder_for
from nnasim.io.data import Preprocess, decode_rgb

LANDMARK_BOX_SCALE = 1.2  # faceplugin's predictLandmark: the detector box enlarged 1.2x about its centre
CANDIDATE_FLOOR = 0.1  # the subject may score below the operating threshold; below this it is "not found"
FALLBACK_BOX = (0.28, 0.28, 0.72, 0.72)  # no face at all: LFW's central region, as image fractions
CHUNK_IMAGES = 16


@dataclass(frozen=True)
class Models:
    detector: str
    landmarks: str
    verifier: str


@dataclass(frozen=True)
class Job:
    """Everything a worker needs to build its sessions and process images (picklable)."""

    models: Models
    images: str  # the folder of the photos
    detector_configs: tuple[QuantConfig, ...]
    verifier_configs: tuple[QuantConfig, ...]
    preprocess: tuple[Preprocess, Preprocess, Preprocess]  # detector, landmarks, verifier
    calib_images: tuple[str, ...]  # detector/landmark calibration photos (names under ``images``)
    calib_method: str
    verifier_calib: tuple[np.ndarray, ...] = field(default=(), compare=False)  # aligned fp32 crops
    combos: tuple[tuple[str, str], ...] = ()  # (detector label, verifier label) pairs to embed

    @property
    def key(self) -> str:
        """A digest of everything that decides the results (the worker's session cache key)."""
        text = json.dumps(_describe(self), sort_keys=True)
        digest = hashlib.sha256(text.encode())
        for crop in self.verifier_calib:
            digest.update(crop.tobytes())
        return digest.hexdigest()[:16]

    def frontend_key(self, config: QuantConfig) -> str:
        """The key of one detector configuration's front-end results (independent of the others)."""
        return replace(
            self, detector_configs=(config,), verifier_configs=(), verifier_calib=(), combos=()
        ).key

    def embedding_key(self, combo: tuple[str, str]) -> str:
        """The key of one detector/verifier combination's embeddings."""
        verifier = tuple(c for c in self.verifier_configs if c.label == combo[1])
        return replace(self, detector_configs=(), verifier_configs=verifier, combos=(combo,)).key


def _describe(job: Job) -> dict:
    return {
        "models": [_file_id(m) for m in (job.models.detector, job.models.landmarks, job.models.verifier)],
        "detector_configs": [c.__dict__ for c in job.detector_configs],
        "verifier_configs": [c.__dict__ for c in job.verifier_configs],
        "preprocess": [p.__dict__ for p in job.preprocess],
        "calib_images": list(job.calib_images),
        "calib_method": job.calib_method,
        "combos": [list(c) for c in job.combos],
        "pipeline": "v1",
    }


def _file_id(model: str) -> str:
    path = Path(model)
    return f"{path.name}:{path.stat().st_size}" if path.is_file() else model


def image_path(folder: str | Path, name: str) -> Path:
    return Path(folder) / name


# ---------------------------------------------------------------------------------------------
# Sessions per process


class Sessions:
    """The graphs and sessions of one job, built once per process."""

    def __init__(self, job: Job) -> None:
        from nnasim.quant.qdq import load_any

        self.detector = load_any(job.models.detector)
        self.landmarks = load_any(job.models.landmarks)
        self.verifier = load_any(job.models.verifier)
        self.decoder = decoder_for(self.detector)
        self.det, self.lm = {}, {}
        if job.detector_configs:
            det_pre, lm_pre, _ = job.preprocess
            photos = [decode_rgb(image_path(job.images, n)) for n in job.calib_images]
            det_calib = [feed(self.detector, det_pre, p) for p in photos]
            crops = _calibration_landmark_crops(self, job, photos)
            lm_calib = [feed(self.landmarks, lm_pre, crop) for crop in crops]
            for c in job.detector_configs:
                self.det[c.label] = make_session(self.detector, c, det_calib, job.calib_method)
                self.lm[c.label] = make_session(self.landmarks, c, lm_calib, job.calib_method)
        ver_calib = [feed(self.verifier, job.preprocess[2], crop) for crop in job.verifier_calib]
        self.ver = {
            c.label: make_session(self.verifier, c, ver_calib, job.calib_method) for c in job.verifier_configs
        }


def _calibration_landmark_crops(sessions: Sessions, job: Job, photos: list[np.ndarray]) -> list[np.ndarray]:
    """Landmark-model calibration inputs: the crops the fp32 detector gives on the calibration photos."""
    from nnasim.ir.execute import FloatSession

    fp32 = FloatSession(sessions.detector)
    crops = []
    for photo in photos:
        box, _, _ = subject_box(sessions, fp32, job.preprocess[0], photo)
        crops.append(landmark_crop(photo, box)[0])
    return crops


_SESSIONS: dict[str, Sessions] = {}


def sessions_for(job: Job) -> Sessions:
    key = job.key
    if key not in _SESSIONS:
        _SESSIONS.clear()  # one job at a time per process
        _SESSIONS[key] = Sessions(job)
    return _SESSIONS[key]


def feed(graph, preprocess: Preprocess, image: np.ndarray) -> dict[str, np.ndarray]:
    name = graph.inputs[0]
    return {name: preprocess(image, graph.shape(name))}


# ---------------------------------------------------------------------------------------------
# Front end: the subject's box and landmarks


def subject_box(sessions: Sessions, session, preprocess: Preprocess, image: np.ndarray):
    """(box, score, found): the detection nearest the image centre among those at the operating
    threshold (else among all candidates, else LFW's central region with ``found`` False)."""
    graph = sessions.detector
    _, _, height, width = graph.shape(graph.inputs[0])
    size = (image.shape[1], image.shape[0])
    outputs = session.run(feed(graph, preprocess, image))
    dets = sessions.decoder.decode(outputs, (width, height), size, CANDIDATE_FLOOR)
    if not len(dets):
        return np.array(FALLBACK_BOX) * [size[0], size[1]] * 2, 0.0, False
    confident = dets.scores >= sessions.decoder.default_threshold
    pool = np.flatnonzero(confident) if confident.any() else np.arange(len(dets))
    centres = (dets.boxes[pool, :2] + dets.boxes[pool, 2:]) / 2
    distance = np.sum((centres - np.array(size) / 2) ** 2, axis=1)
    best = pool[int(np.argmin(distance))]  # argmin takes the first: the higher score on ties
    return dets.boxes[best], float(dets.scores[best]), True


def landmark_crop(image: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The landmark model's crop: the box enlarged ``LANDMARK_BOX_SCALE`` times about its centre (less
    if the image is smaller), shifted inside the image; returns the crop and its ``x, y, w, h``."""
    img_h, img_w = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    box_w, box_h = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    scale = min((img_h - 1) / box_h, (img_w - 1) / box_w, LANDMARK_BOX_SCALE)
    new_w, new_h = box_w * scale, box_h * scale
    left, top = (x1 + x2) / 2 - new_w / 2, (y1 + y2) / 2 - new_h / 2
    left = min(max(left, 0.0), img_w - 1 - new_w)
    top = min(max(top, 0.0), img_h - 1 - new_h)
    x, y, w, h = int(left), int(top), max(int(new_w), 1), max(int(new_h), 1)
    return np.ascontiguousarray(image[y : y + h, x : x + w]), (x, y, w, h)


def landmarks_in_image(
    session, graph, preprocess: Preprocess, image: np.ndarray, box: np.ndarray
) -> np.ndarray:
    """The 68 landmarks ``(68, 2)`` in image pixels: the model gives them as fractions of its crop."""
    crop, (x, y, w, h) = landmark_crop(image, box)
    out = session.run(feed(graph, preprocess, crop))[graph.outputs[0]].reshape(68, 2).astype(np.float64)
    return out * [w, h] + [x, y]


def frontend_chunk(job: Job, names: list[str]) -> dict[str, dict[str, np.ndarray]]:
    """Per detector configuration: boxes ``(n, 4)``, scores, found flags and landmarks ``(n, 68, 2)``."""
    s = sessions_for(job)
    det_pre, lm_pre, _ = job.preprocess
    result: dict[str, dict[str, list]] = {
        c.label: {"box": [], "score": [], "found": [], "landmarks": []} for c in job.detector_configs
    }
    for name in names:
        image = decode_rgb(image_path(job.images, name))
        for config in job.detector_configs:
            box, score, found = subject_box(s, s.det[config.label], det_pre, image)
            points = landmarks_in_image(s.lm[config.label], s.landmarks, lm_pre, image, box)
            entry = result[config.label]
            entry["box"].append(box)
            entry["score"].append(score)
            entry["found"].append(found)
            entry["landmarks"].append(points)
    return {label: {k: np.array(v) for k, v in entry.items()} for label, entry in result.items()}


def embed_chunk(job: Job, names: list[str], landmarks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per combination ``"det/ver"``: the embeddings ``(n, D)`` of the aligned crops."""
    s = sessions_for(job)
    result: dict[str, list] = {f"{d}/{v}": [] for d, v in job.combos}
    for k, name in enumerate(names):
        image = decode_rgb(image_path(job.images, name))
        crops = {d: align_face(image, landmarks[d][k]) for d in dict.fromkeys(d for d, _ in job.combos)}
        for d, v in job.combos:
            out = s.ver[v].run(feed(s.verifier, job.preprocess[2], crops[d]))[s.verifier.outputs[0]]
            result[f"{d}/{v}"].append(out.reshape(-1).astype(np.float32))
    return {key: np.stack(rows) for key, rows in result.items()}


def aligned_crops(job: Job, names: list[str], landmarks: np.ndarray) -> list[np.ndarray]:
    return [
        align_face(decode_rgb(image_path(job.images, n)), p) for n, p in zip(names, landmarks, strict=True)
    ]


# ---------------------------------------------------------------------------------------------
# Executors: where chunks run


Mapper = Callable[[Callable, list[tuple]], Iterator[tuple[int, Any]]]


def run_inline(fn: Callable, calls: list[tuple]) -> Iterator[tuple[int, Any]]:
    """Every call in this process, in order."""
    for index, args in enumerate(calls):
        yield index, fn(*args)


def process_mapper(workers: int) -> Mapper:
    """Calls spread over ``workers`` local processes (results come back in any order, keyed by index).

    Workers are spawned, not forked: a fork after the engine's OpenMP runtime started is unsafe.
    """

    def run(fn: Callable, calls: list[tuple]) -> Iterator[tuple[int, Any]]:
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn")
        ) as pool:
            futures = {pool.submit(fn, *args): index for index, args in enumerate(calls)}
            try:
                for future in as_completed(futures):
                    yield futures[future], future.result()
            finally:
                for future in futures:
                    future.cancel()

    return run


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_chunks(
    mapper: Mapper, fn: Callable, names: list[str], extra: Callable[[list[int]], tuple], desc: str, job: Job
) -> Iterator[tuple[list[int], Any]]:
    """``fn(job, chunk_names, *extra(chunk_indices))`` over chunks of ``names`` with a progress bar;
    yields ``(chunk indices, result)`` as chunks finish (in any order)."""
    chunks = [list(range(i, min(i + CHUNK_IMAGES, len(names)))) for i in range(0, len(names), CHUNK_IMAGES)]
    calls = [(job, [names[i] for i in chunk], *extra(chunk)) for chunk in chunks]
    with tqdm(total=len(names), desc=desc, unit="image", disable=None) as bar:
        for index, result in mapper(fn, calls):
            bar.update(len(chunks[index]))
            yield chunks[index], result
