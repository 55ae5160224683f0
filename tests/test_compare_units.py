"""Pieces of compare/cascade checked by hand: decoders, NMS, data loading, identities, labels, options."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from nnasim.analysis.compare import parse_configs
from nnasim.analysis.detect import Detections, decode_lffd, decode_ultraface, decoder_for, nms
from nnasim.analysis.detection import against_labels, against_reference, mark_shared_extras
from nnasim.errors import DataError, ModelError, UsageError
from nnasim.io.data import (
    class_labels,
    load_images,
    person_from_name,
    preprocessing_for,
    read_box_labels,
    read_name_table,
)
from nnasim.ir import Graph, Tensor

# ------------------------------------------------------------------------------------------ NMS


def test_nms_keeps_highest_and_drops_overlaps_by_hand():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 0, 30, 10]], float)
    scores = np.array([0.9, 0.8, 0.95])
    # IoU(0, 1) = 90 / 110 = .82 > .3 -> 1 goes; 2 overlaps nothing
    assert nms(boxes, scores, 0.3).tolist() == [2, 0]
    assert nms(boxes, scores, 0.9).tolist() == [2, 0, 1]


# ------------------------------------------------------------------------------------ decoders


def test_ultraface_decoding_scales_normalised_boxes_and_suppresses():
    outputs = {
        "scores": np.array([[[0.1, 0.9], [0.5, 0.5], [0.2, 0.8]]], np.float32),
        "boxes": np.array([[[0.1, 0.1, 0.5, 0.5], [0.6, 0.6, 0.9, 0.9], [0.12, 0.1, 0.5, 0.5]]], np.float32),
    }
    dets = decode_ultraface(outputs, (320, 240), (200, 100), 0.6)
    # box 1 scores .5 < .6; box 2 overlaps box 0 (IoU .95) and scores lower
    np.testing.assert_allclose(dets.boxes, [[20, 10, 100, 50]], rtol=1e-6)
    np.testing.assert_allclose(dets.scores, [0.9], rtol=1e-6)


def _lffd_outputs(sizes=(3, 4)) -> dict[str, np.ndarray]:
    outputs = {}
    for branch in range(1, 9):
        outputs[f"score_{branch}"] = np.zeros((1, 2, *sizes), np.float32)
        outputs[f"bbox_{branch}"] = np.zeros((1, 4, *sizes), np.float32)
    return outputs


def test_lffd_decoding_uses_receptive_field_centres_by_hand():
    outputs = _lffd_outputs()
    outputs["score_1"][0, 0, 1, 2] = 0.9  # branch 1: stride 4, first centre 3, RF 15
    outputs["bbox_1"][0, :, 1, 2] = [1, 1, -1, -1]
    # centre (3 + 4*2, 3 + 4*1) = (11, 7); corners centre -/+ 7.5; input 64x48 -> image 128x96 (x2)
    dets = decode_lffd(outputs, (64, 48), (128, 96), 0.5)
    np.testing.assert_allclose(dets.boxes, [[7, 0, 37, 29]])  # y1 = -1 clipped to 0
    np.testing.assert_allclose(dets.scores, [0.9], rtol=1e-6)


def test_lffd_decoding_reads_the_face_channel_and_later_branches():
    outputs = _lffd_outputs()
    outputs["score_6"][0, 1, 0, 0] = 0.99  # channel 1 is background: ignored
    outputs["score_6"][0, 0, 0, 1] = 0.8  # branch 6: stride 32, first centre 31, RF 250
    dets = decode_lffd(outputs, (400, 400), (400, 400), 0.5)
    # centre (31 + 32, 31); zero offsets give a zero-size box, which is dropped
    assert len(dets) == 0
    outputs["bbox_6"][0, :, 0, 1] = [0.2, 0.2, -0.2, -0.2]  # corners -/+ 25 px
    dets = decode_lffd(outputs, (400, 400), (400, 400), 0.5)
    np.testing.assert_allclose(dets.boxes, [[38, 6, 88, 56]])


def _graph_with_outputs(*names: str) -> Graph:
    tensors = {n: Tensor(n, (1, 1)) for n in ("input", *names)}
    return Graph("toy", (), tensors, ("input",), names)


def test_decoder_for_recognises_families_and_names_what_it_expects():
    assert decoder_for(_graph_with_outputs("scores", "boxes")).family == "ultraface"
    lffd = [f"{k}_{i}" for i in range(1, 9) for k in ("score", "bbox")]
    assert decoder_for(_graph_with_outputs(*lffd)).family == "lffd"
    with pytest.raises(ModelError, match="toy.*scores.*boxes"):
        decoder_for(_graph_with_outputs("logits"))
    with pytest.raises(ModelError, match="5 LFFD-style branches"):
        decoder_for(_graph_with_outputs(*lffd[:10]))


# ---------------------------------------------------------------------------------------- data

SHARED_PHOTO_NAMES = {
    "alex_lacamoire1.jpg": "alex_lacamoire",
    "alex_lacamoire_img1.png": "alex_lacamoire",
    "biden.jpg": "biden",
    "biden_biden2.png": "biden",
    "johnsnow_test1.jpg": "kit_harington",
    "kit_harington_john1.jpeg": "kit_harington",
    "kit_harington_john2.png": "kit_harington",
    "obama.jpg": "obama",
    "obama3.png": "obama",
    "rose_leslie_img1.jpg": "rose_leslie",
    "rose_leslie_img2.png": "rose_leslie",
    "obama_and_biden.jpg": None,
    "two_people.jpg": None,
}


@pytest.mark.parametrize(("name", "person"), SHARED_PHOTO_NAMES.items())
def test_identity_rule_gives_the_five_people_of_the_shared_photos(name, person):
    assert person_from_name(name) == person


def test_preprocessing_by_model_name():
    white = np.full((4, 6, 3), 255, np.uint8)
    ultra = preprocessing_for("/x/ultraface-rfb-320.onnx")(white, (1, 3, 2, 3))
    assert ultra.shape == (1, 3, 2, 3) and ultra.dtype == np.float32
    np.testing.assert_allclose(ultra, (255 - 127) / 128)
    mfn = preprocessing_for("mobilefacenet.onnx")(np.zeros((2, 2, 3), np.uint8), (1, 3, 2, 2))
    np.testing.assert_allclose(mfn, -127.5 / 128)
    assert preprocessing_for("other.onnx").source.startswith("default")
    assert preprocessing_for("other.onnx", 0.0, 1.0)(white, (1, 3, 4, 6)).max() == 255


def test_rgb_channel_order_is_kept():
    image = np.zeros((2, 2, 3), np.uint8)
    image[..., 0] = 255  # red
    x = preprocessing_for("mobilefacenet")(image, (1, 3, 2, 2))
    assert x[0, 0].min() > 0 and x[0, 1].max() < 0 and x[0, 2].max() < 0


def test_unreadable_images_are_skipped_with_a_warning_and_counted(tmp_path):
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "good.png")
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    (tmp_path / "notes.txt").write_text("ignored: not an image extension")
    with pytest.warns(UserWarning, match="bad.jpg"):
        images = load_images(tmp_path)
    assert [s.name for s in images.samples] == ["good.png"]
    assert images.skipped == ("bad.jpg",)


def test_image_folder_errors_name_the_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_images(tmp_path / "missing")
    with pytest.raises(DataError, match=f"no images.*{tmp_path.name}"):
        load_images(tmp_path)
    (tmp_path / "bad.png").write_bytes(b"junk")
    with pytest.warns(UserWarning), pytest.raises(DataError, match="1 skipped"):
        load_images(tmp_path)


def test_limit_takes_the_first_images_by_name(tmp_path):
    for name in ("c.png", "a.png", "b/z.png"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / name)
    assert [s.name for s in load_images(tmp_path, limit=2).samples] == ["a.png", "b/z.png"]


def test_class_labels_from_folders_tables_and_their_errors(tmp_path):
    assert class_labels(["cat/1.png", "ant/2.png", "cat/3.png"], 2) == [1, 0, 1]  # sorted names
    assert class_labels(["7/a.png", "3/b.png"], 10) == [7, 3]  # integer folders are indices
    table_file = tmp_path / "labels.csv"
    table_file.write_text("file,label\na.png,4\nsub/b.png,2\n")
    table = read_name_table(table_file, "label")
    assert class_labels(["x/a.png", "sub/b.png"], 5, table) == [4, 2]
    with pytest.raises(DataError, match="outside the model's 3 classes"):
        class_labels(["x/a.png"], 3, table)
    with pytest.raises(DataError, match="no label for 1 image.*'c.png'"):
        class_labels(["c.png"], 5)


def test_box_labels_csv(tmp_path):
    path = tmp_path / "boxes.csv"
    path.write_text("file,x1,y1,x2,y2\na.jpg,1,2,3,4\na.jpg,5,6,7,8\nb.jpg,0,0,1,1\n")
    boxes = read_box_labels(path)
    np.testing.assert_array_equal(boxes["a.jpg"], [[1, 2, 3, 4], [5, 6, 7, 8]])
    path.write_text("a.jpg,1,2,3\n")
    with pytest.raises(DataError, match="boxes.csv:1"):
        read_box_labels(path)


# ------------------------------------------------------------------------------------- options


def test_bit_configs_put_fp32_first_and_reject_bad_widths():
    assert [c.label for c in parse_configs("8,16,8")] == ["fp32", "int16", "int8"]
    assert [c.label for c in parse_configs("32,8", per_channel=True)] == ["fp32", "int8-pc"]
    assert [c.label for c in parse_configs("8,8pc,16")] == ["fp32", "int16", "int8-pc", "int8"]
    assert [c.per_channel for c in parse_configs("16pc")] == [False, True]
    with pytest.raises(UsageError, match="--bits '32pc'"):
        parse_configs("32pc")
    with pytest.raises(UsageError, match="--bits '4'"):
        parse_configs("4")
    with pytest.raises(UsageError, match="--bits 'x'"):
        parse_configs("x")
    with pytest.raises(UsageError, match="at least one width"):
        parse_configs(",")
    with pytest.raises(UsageError, match="--scheme"):
        parse_configs("8", scheme="log")


# ---------------------------------------------------------------------------- detection analysis


def _dets(boxes, scores) -> Detections:
    return Detections(np.array(boxes, float).reshape(-1, 4), np.array(scores, float))


G1, G2, X, Y = [0, 0, 10, 10], [50, 0, 60, 10], [100, 0, 110, 10], [200, 0, 210, 10]


def test_false_positives_against_labels_and_those_shared_with_fp32():
    truth = [np.array([G1, G2], float)]
    kept = {"fp32": [_dets([G1, X], [0.9, 0.8])], "int8": [_dets([G1, X, Y], [0.9, 0.85, 0.7])]}
    summary = {"fp32": {}, "int8": {}}
    against_labels(truth, kept, kept, summary)
    # fp32: TP, FP -> recall 1/2 at precision 1 -> AP .5; int8: TP, FP, FP -> AP .5
    assert summary["fp32"] == {
        "AP vs labels": 0.5,
        "FP vs labels": 1,
        "missed vs labels": 1,
        "FP shared with fp32": 1,
    }
    assert summary["int8"]["FP vs labels"] == 2 and summary["int8"]["FP shared with fp32"] == 1


def test_misses_and_extras_against_fp32_and_shared_extras():
    reference = [_dets([G1, G2], [0.9, 0.8])]
    int16 = [_dets([G1, X], [0.9, 0.75])]
    int8 = [_dets([G1, [101, 0, 111, 10], Y], [0.8, 0.72, 0.71])]
    summary16, extras16, misses16 = against_reference(["a.jpg"], reference, int16, int16)
    summary8, extras8, _ = against_reference(["a.jpg"], reference, int8, int8)
    assert (summary16["matched"], summary16["missed"], summary16["extra"]) == (1, 1, 1)
    assert [m["box"] for m in misses16] == [G2]
    extras = {"int16": extras16, "int8": extras8}
    mark_shared_extras(extras)
    assert [e["also_in"] for e in extras["int16"]] == [["int8"]]  # X and its 1-px shift: IoU .82
    assert [e["also_in"] for e in extras["int8"]] == [["int16"], []]
    # AP with fp32 as truth: TP(.9), FP(.75) and G2 never found -> recall 1/2 at precision 1
    assert summary16["AP vs fp32"] == pytest.approx(0.5)
