"""Photos in, network inputs out: image folders, per-model preprocessing, identities and labels.

Images are read with Pillow as RGB ``uint8`` arrays. An image that cannot be read is skipped
with a warning and counted, so one bad file does not stop a report.
"""

from __future__ import annotations

import csv
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from nnasim.errors import DataError, NnasimWarning, UsageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class Sample:
    """One photo: its name relative to the data folder (with ``/`` separators) and its pixels."""

    name: str
    path: Path
    image: np.ndarray  # H x W x 3, uint8, RGB

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.image.shape[1], self.image.shape[0]


@dataclass(frozen=True)
class ImageSet:
    samples: tuple[Sample, ...]
    skipped: tuple[str, ...]  # names of files that could not be read


def files_under(root: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Files under ``root`` (recursively) whose suffix is one of ``suffixes``, sorted by relative path
    so that runs are repeatable."""
    return sorted(
        (p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in suffixes),
        key=lambda p: p.relative_to(root).as_posix(),
    )


def image_files(folder: str | Path) -> list[Path]:
    """Image files under ``folder`` (recursively), sorted by relative path."""
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist or is not a folder")
    files = files_under(root, IMAGE_EXTENSIONS)
    if not files:
        raise DataError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {root}")
    return files


def decode_rgb(path: Path) -> np.ndarray:
    """The image as an RGB uint8 array; a DataError naming the file if Pillow cannot read it."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise DataError(f"{path}: Pillow cannot read this image ({error})") from None


def read_rgb(path: Path) -> np.ndarray | None:
    """The image as an RGB uint8 array, or None (with a warning) if Pillow cannot read it."""
    try:
        return decode_rgb(path)
    except DataError as error:
        warnings.warn(f"skipping unreadable image {error}", NnasimWarning, stacklevel=2)
        return None


def load_images(folder: str | Path, limit: int | None = None) -> ImageSet:
    """Read the first ``limit`` images of ``folder`` (all if None), skipping unreadable ones."""
    root = Path(folder)
    samples, skipped = [], []
    for path in image_files(root):
        if limit is not None and len(samples) >= limit:
            break
        name = path.relative_to(root).as_posix()
        pixels = read_rgb(path)
        if pixels is None:
            skipped.append(name)
        else:
            samples.append(Sample(name, path, pixels))
    if not samples:
        raise DataError(f"none of the images in {root} could be read ({len(skipped)} skipped)")
    return ImageSet(tuple(samples), tuple(skipped))


# ---------------------------------------------------------------------------------------------
# Preprocessing


CHANNEL_ORDERS = ("rgb", "bgr")


@dataclass(frozen=True)
class Preprocess:
    """What a model expects of a photo: a bilinear resize to its input size, its channels (RGB, BGR,
    or one grayscale channel when the model takes one), then ``(pixel - mean) * scale``.

    ``source`` says where these numbers come from; reports print it so a user sees what was fed.
    """

    mean: float
    scale: float
    source: str  # where these numbers come from, for the report
    channel_order: str = "rgb"  # of a 3-channel input; a 1-channel input is grayscale either way

    def __call__(self, image: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
        """An ``N=1`` NCHW float32 input of ``input_shape`` made from an RGB uint8 image."""
        _, channels, height, width = input_shape
        resized = resize_rgb(image, width, height)
        if channels == 1:
            pixels = grayscale(resized)[..., None]
        elif channels == 3:
            pixels = resized[..., ::-1] if self.channel_order == "bgr" else resized
        else:
            raise DataError(
                f"the model takes {channels} input channels; images give 3 (RGB/BGR) or 1 (grayscale)"
            )
        x = (pixels.astype(np.float32) - np.float32(self.mean)) * np.float32(self.scale)
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None])

    def describe(self, channels: int) -> str:
        """One line saying what a ``channels``-channel input gets, e.g. ``BGR, (x-0)*1``."""
        kind = "grayscale (ITU-R 601 luma)" if channels == 1 else self.channel_order.upper()
        return f"{kind}, (x-{self.mean:g})*{self.scale:g} [{self.source}]"

    def with_options(self, channel_order: str | None = None, normalize: tuple[float, float] | None = None):
        """This preprocessing with the user's ``--channel-order`` and ``--normalize`` applied."""
        if channel_order is not None and channel_order not in CHANNEL_ORDERS:
            raise UsageError(
                f"--channel-order {channel_order!r}: expected one of {', '.join(CHANNEL_ORDERS)}"
            )
        mean, scale = normalize if normalize is not None else (self.mean, self.scale)
        order = channel_order or self.channel_order
        changed = normalize is not None or (channel_order is not None and channel_order != self.channel_order)
        source = f"given: (x-{mean:g})*{scale:g} {order.upper()}" if changed else self.source
        return Preprocess(mean, scale, source, order)


def resize_rgb(image: np.ndarray, width: int, height: int) -> np.ndarray:
    if image.shape[1] == width and image.shape[0] == height:
        return image
    return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))


def grayscale(image: np.ndarray) -> np.ndarray:
    """RGB uint8 -> luma uint8 as Pillow's ``convert("L")`` (and OpenCV's RGB2GRAY): 0.299 R + 0.587 G +
    0.114 B."""
    return np.asarray(Image.fromarray(image).convert("L"))


_ULTRAFACE = "ultraface: (x-127)/128 RGB (Linzaer's detect_imgs_onnx.py)"
# Model name prefix -> the preprocessing its authors used (see ../shared/models/SOURCES.md).
KNOWN_PREPROCESSING = {
    "ultraface": Preprocess(127.0, 1 / 128, _ULTRAFACE),
    "version-rfb": Preprocess(127.0, 1 / 128, _ULTRAFACE),
    "version-slim": Preprocess(127.0, 1 / 128, _ULTRAFACE),
    "mobilefacenet": Preprocess(127.5, 1 / 128, "mobilefacenet: (x-127.5)/128 RGB"),
    "arcface-mbf": Preprocess(127.0, 1 / 128, "arcface-mbf: (x-127)/128 RGB, ArcFace-aligned 112x112"),
    "landmarks-68": Preprocess(0.0, 1 / 256, "landmarks-68: grayscale x/256 (faceplugin preprocessLandmark)"),
    "lffd-head": Preprocess(0.0, 1.0, "lffd-head: raw BGR 0..255, the graph normalises", "bgr"),
}
DEFAULT_PREPROCESSING = Preprocess(127.5, 1 / 127.5, "default: (x-127.5)/127.5 RGB")


def preprocessing_for(
    model: str | Path,
    mean: float | None = None,
    scale: float | None = None,
    channel_order: str | None = None,
) -> Preprocess:
    """The preprocessing for ``model`` (path or zoo name): its authors' where nnasim knows the model
    (by file name), else the default; ``mean``/``scale``/``channel_order`` override it."""
    stem = Path(str(model)).name.lower()
    known = next((p for prefix, p in KNOWN_PREPROCESSING.items() if stem.startswith(prefix)), None)
    base = known or DEFAULT_PREPROCESSING
    normalize = (mean, scale) if mean is not None and scale is not None else None
    return base.with_options(channel_order, normalize)


NORMALIZE_NAMES = {"raw": (0.0, 1.0), "unit": (0.0, 1 / 255), "signed": (127.5, 1 / 127.5)}


def parse_normalize(text: str) -> tuple[float, float]:
    """``--normalize``: ``MEAN,SCALE`` (input = (pixel - MEAN) * SCALE) or ``raw`` (0..255), ``unit``
    (0..1) or ``signed`` (-1..1)."""
    if text.lower() in NORMALIZE_NAMES:
        return NORMALIZE_NAMES[text.lower()]
    try:
        mean, scale = (float(v) for v in text.split(","))
    except ValueError:
        names = ", ".join(NORMALIZE_NAMES)
        raise UsageError(
            f"--normalize {text!r}: expected MEAN,SCALE (e.g. 127.5,0.0078125) or {names}"
        ) from None
    return mean, scale


# ---------------------------------------------------------------------------------------------
# Identities (embedders) and labels (classifiers)

# The file-name rule that turns the photo names of ../shared/images into people:
# drop trailing digits, then cut at the first variant tag, collapse a repeated name, apply aliases.
VARIANT_TAGS = ("img", "test", "john")
ALIASES = {"johnsnow": "kit_harington"}  # SOURCES.md: johnsnow is Kit Harington
GROUP_PHOTO = re.compile(r"(_and_|people)")  # photos of several people: no single identity


def person_from_name(name: str) -> str | None:
    """The person a photo shows, from its file name; None for a group photo.

    ``obama2`` -> obama, ``rose_leslie_img1`` -> rose_leslie, ``biden_biden2`` -> biden,
    ``kit_harington_john1`` -> kit_harington, ``johnsnow_test1`` -> kit_harington,
    ``obama_and_biden`` -> None.
    """
    stem = Path(name).stem.lower()
    if GROUP_PHOTO.search(stem):
        return None
    tokens = [t for t in re.sub(r"\d+$", "", stem).split("_") if t]
    for index, token in enumerate(tokens):
        if index > 0 and token in VARIANT_TAGS:
            tokens = tokens[:index]
            break
    half = len(tokens) // 2
    if half and len(tokens) % 2 == 0 and tokens[:half] == tokens[half:]:
        tokens = tokens[:half]
    person = "_".join(tokens)
    return ALIASES.get(person, person) if person else None


def read_name_table(path: str | Path, what: str) -> dict[str, str]:
    """A two-column CSV ``file,value`` (header optional) as {file name: value}.

    Files are matched by their name relative to the data folder or by their bare file name.
    """
    table: dict[str, str] = {}
    try:
        with open(path, newline="") as handle:
            for line, row in enumerate(csv.reader(handle), start=1):
                if not row or row[0].startswith("#"):
                    continue
                if len(row) < 2:
                    raise DataError(f"{path}:{line}: expected 'file,{what}', got {row!r}")
                if line == 1 and row[0].strip().lower() in ("file", "image", "name", "path"):
                    continue
                table[row[0].strip()] = row[1].strip()
    except OSError as error:
        raise DataError(f"cannot read {what} file {path}: {error}") from error
    return table


def read_box_labels(path: str | Path) -> dict[str, np.ndarray]:
    """Face boxes from a CSV ``file,x1,y1,x2,y2`` (pixels, header optional) as {file: (K, 4)}.

    An image the file does not list has no faces.
    """
    boxes: dict[str, list[list[float]]] = {}
    try:
        with open(path, newline="") as handle:
            for line, row in enumerate(csv.reader(handle), start=1):
                if not row or row[0].startswith("#"):
                    continue
                values = _numbers(row[1:])
                if values is None and line == 1:
                    continue  # a header
                if values is None or len(values) != 4:
                    raise DataError(f"{path}:{line}: expected 'file,x1,y1,x2,y2' in pixels, got {row!r}")
                boxes.setdefault(row[0].strip(), []).append(values)
    except OSError as error:
        raise DataError(f"cannot read box labels file {path}: {error}") from error
    return {name: np.array(rows, np.float64).reshape(-1, 4) for name, rows in boxes.items()}


def _numbers(fields: list[str]) -> list[float] | None:
    try:
        return [float(v) for v in fields]
    except ValueError:
        return None


def lookup(table: dict[str, str], sample_name: str) -> str | None:
    return table.get(sample_name, table.get(Path(sample_name).name))


def persons_of(names: list[str], table: dict[str, str] | None = None) -> list[str | None]:
    """The person of each photo: from ``table`` where it lists the photo, else the file-name rule."""
    table = table or {}
    persons = []
    for name in names:
        listed = lookup(table, name)
        persons.append(person_from_name(name) if listed is None else (listed or None))
    return persons


def class_labels(names: list[str], num_classes: int, table: dict[str, str] | None = None) -> list[int]:
    """Class index of each sample, from a ``file,label`` table or from its folder name.

    A label is either an integer class index or a class name; names are numbered in sorted
    order (the ImageNet folder convention).
    """
    raw = [lookup(table, n) if table else (n.split("/")[-2] if "/" in n else None) for n in names]
    missing = [n for n, label in zip(names, raw, strict=True) if label is None]
    if missing:
        source = "the labels file" if table else "a class folder"
        raise DataError(f"no label for {len(missing)} image(s), e.g. {missing[0]!r} (not in {source})")
    if all(label.lstrip("-").isdigit() for label in raw):
        labels = [int(label) for label in raw]
    else:
        index = {name: i for i, name in enumerate(sorted(set(raw)))}
        labels = [index[label] for label in raw]
    bad = [label for label in labels if not 0 <= label < num_classes]
    if bad:
        raise DataError(f"label {bad[0]} is outside the model's {num_classes} classes")
    return labels
