"""Input data: broken arrays and archives, non-finite values and options, image bombs, odd tables."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from tests.bad_inputs.catalogue import Case, _images

SHAPE = (1, 3, 32, 32)  # tinynet's input


def _npy(name: str, value) -> callable:
    return lambda folder: np.save(folder / name, value)


def _good() -> np.ndarray:
    return np.zeros(SHAPE, np.float32)


def _poisoned(value: float) -> np.ndarray:
    array = _good()
    array[0, 1, 2, 3] = value
    return array


def _lying_header(folder: Path) -> None:
    """A .npy of 128 bytes whose header claims a 10^6 x 10^6 float64 array (8 TB)."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)}
    )
    (folder / "x.npy").write_bytes(buffer.getvalue() + bytes(16))


def _unclosed_header(folder: Path) -> None:
    """A .npy whose header dict never closes its shape tuple (Python's tokenizer fails on it)."""
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(3, np.float32))
    (folder / "x.npy").write_bytes(buffer.getvalue().replace(b"(3,)", b"(3, ", 1))


def _npz(members: dict[str, bytes], name: str = "x.npz"):
    def make(folder: Path) -> None:
        with zipfile.ZipFile(folder / name, "w", zipfile.ZIP_DEFLATED) as archive:
            for member, data in members.items():
                archive.writestr(member, data)

    return make


def _npy_bytes(value: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, value)
    return buffer.getvalue()


def _corrupt_member(folder: Path) -> None:
    """A valid .npz whose deflated member has its compressed bytes overwritten."""
    _npz({"x.npy": _npy_bytes(np.arange(3 * 32 * 32, dtype=np.float32).reshape(SHAPE))})(folder)
    data = bytearray((folder / "x.npz").read_bytes())
    start = 30 + len("x.npy") + 20  # inside the member's deflate stream
    data[start : start + 200] = bytes(range(200))
    (folder / "x.npz").write_bytes(bytes(data))


def _truncated_npz(folder: Path) -> None:
    _npz({"x.npy": _npy_bytes(_good())})(folder)
    data = (folder / "x.npz").read_bytes()
    (folder / "x.npz").write_bytes(data[: len(data) // 2])


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _bomb_png() -> bytes:
    """A PNG header announcing 100000 x 100000 RGB pixels (30 GB decoded) in under 100 bytes."""
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def _bomb_in_folder(folder: Path) -> None:
    _images(folder, 2, 0)
    (folder / "data" / "cat" / "bomb.png").write_bytes(_bomb_png())


def _bytes(name: str, data: bytes):
    return lambda folder: (folder / name).write_bytes(data)


RUN = ("run", "tinynet", "--bits", "8", "--input")
COMPARE = ("compare", "tinynet", "--task", "classify", "--data", "{dir}/data", "-o", "{dir}/out")
EMBED = ("compare", "tinynet", "--task", "embed", "--data", "{dir}/data", "-o", "{dir}/out")

DATA_CASES = [
    Case(
        "npy of strings",
        (*RUN, "{dir}/x.npy"),
        r"x\.npy: holds <U\d+ values; nnasim takes numbers",
        _npy("x.npy", np.array(["a", "b"])),
    ),
    Case(
        "npy of objects",
        (*RUN, "{dir}/x.npy"),
        r"x\.npy: holds object values",
        _npy("x.npy", np.array([{}, None], dtype=object)),
    ),
    Case(
        "npy of structs",
        (*RUN, "{dir}/x.npy"),
        r"x\.npy: holds .* values",
        _npy("x.npy", np.zeros(3, [("a", "f4"), ("b", "i4")])),
    ),
    Case(
        "npy header never closes",
        (*RUN, "{dir}/x.npy"),
        r"x\.npy: not a valid \.npy array \(",
        _unclosed_header,
    ),
    Case(
        "npy header claims terabytes",
        (*RUN, "{dir}/x.npy"),
        r"x\.npy: its header claims shape \[1000000, 1000000\] .* more than the file holds",
        _lying_header,
    ),
    Case(
        "npy truncated",
        (*RUN, "{dir}/x.npy"),
        r"x\.npy: its header claims shape \[1, 3, 32, 32\]",
        lambda f: (f / "x.npy").write_bytes(_npy_bytes(_good())[:500]),
    ),
    Case(
        "npy not an array",
        (*RUN, "{dir}/x.npy"),
        r"x\.npy: not a valid \.npy array",
        _bytes("x.npy", b"hello world, not numpy"),
    ),
    Case("npy empty", (*RUN, "{dir}/x.npy"), r"x\.npy: not a valid \.npy array", _bytes("x.npy", b"")),
    Case(
        "npy is a FIFO",
        (*RUN, "{dir}/x.npy"),
        r"x\.npy: is a FIFO",
        lambda f: __import__("os").mkfifo(f / "x.npy"),
    ),
    Case(
        "npy with NaN",
        (*RUN, "{dir}/x.npy"),
        r"x\.npy: input 'input': 1 NaN and 0 infinite values",
        _npy("x.npy", _poisoned(np.nan)),
    ),
    Case(
        "npy with infinity",
        (*RUN, "{dir}/x.npy"),
        r"0 NaN and 1 infinite values",
        _npy("x.npy", _poisoned(-np.inf)),
    ),
    Case(
        "npy float64 overflowing float32",
        (*RUN, "{dir}/x.npy"),
        r"infinite values",
        _npy("x.npy", np.full(SHAPE, 1e300, np.float64)),
    ),
    Case(
        "npz corrupt member",
        (*RUN, "{dir}/x.npz"),
        r"x\.npz(: member 'x')?: (corrupt|not a valid)",
        _corrupt_member,
    ),
    Case("npz truncated", (*RUN, "{dir}/x.npz"), r"x\.npz: not a valid \.npz archive", _truncated_npz),
    Case(
        "npz member of strings",
        (*RUN, "{dir}/x.npz"),
        r"x\.npz: member 'x': holds <U1 values",
        _npz({"x.npy": _npy_bytes(np.array(["a"]))}),
    ),
    Case(
        "npz member of objects",
        (*RUN, "{dir}/x.npz"),
        r"member 'x': holds object values",
        _npz({"x.npy": _npy_bytes(np.array([None], dtype=object))}),
    ),
    Case(
        "npz member claiming terabytes",
        (*RUN, "{dir}/x.npz"),
        r"member 'x': its header claims shape \[1000000, 1000000\]",
        lambda f: (_lying_header(f), _npz({"x.npy": (f / "x.npy").read_bytes()})(f)),
    ),
    Case(
        "npz member not npy",
        (*RUN, "{dir}/x.npz"),
        r"member 'x': not a valid \.npy array",
        _npz({"x.npy": b"plain text"}),
    ),
    Case("npz empty", (*RUN, "{dir}/x.npz"), r"x\.npz: an empty \.npz archive", _npz({})),
    Case(
        "npz with NaN",
        (*RUN, "{dir}/x.npz"),
        r"x\.npz: input 'input': 1 NaN",
        _npz({"x.npy": _npy_bytes(_poisoned(np.nan))}),
    ),
    Case(
        "calibration data with NaN",
        (*RUN, "{dir}/ok.npy", "--calib", "{dir}/calib"),
        r"calib/bad\.npy: input 'input': 1 NaN",
        lambda f: (
            np.save(f / "ok.npy", _good()),
            (f / "calib").mkdir(),
            np.save(f / "calib" / "bad.npy", _poisoned(np.nan)),
        ),
    ),
    Case(
        "--mean nan",
        (*RUN, "{dir}/x.png", "--mean", "nan", "--std", "1"),
        r"--mean nan: must be a finite number",
        lambda f: None,
    ),
    Case(
        "--std inf",
        (*RUN, "{dir}/x.png", "--mean", "0", "--std", "inf"),
        r"--std inf: must be a finite number",
        lambda f: None,
    ),
    Case(
        "--mean 1e400",
        (*RUN, "{dir}/x.png", "--mean", "1e400", "--std", "1"),
        r"--mean inf: must be a finite number",
        lambda f: None,
    ),
    Case(
        "--normalize nan",
        (*COMPARE, "--normalize", "nan,1"),
        r"--normalize 'nan,1': MEAN and SCALE must be finite",
        lambda f: _images(f, 1, 0),
    ),
    Case(
        "--normalize scale inf",
        (*COMPARE, "--normalize", "127,inf"),
        r"--normalize '127,inf'",
        lambda f: _images(f, 1, 0),
    ),
    Case(
        "--normalize scale 0",
        (*COMPARE, "--normalize", "127,0"),
        r"SCALE non-zero",
        lambda f: _images(f, 1, 0),
    ),
    Case(
        "--score-threshold nan",
        (*COMPARE, "--score-threshold", "nan"),
        r"--score-threshold nan: must be a number between 0 and 1",
        lambda f: _images(f, 1, 0),
    ),
    Case(
        "decompression bomb in run",
        (*RUN, "{dir}/bomb.png"),
        r"bomb\.png: refused as a possible decompression bomb",
        _bytes("bomb.png", _bomb_png()),
    ),
    Case(
        "decompression bomb in a data folder is skipped",
        (*COMPARE, "--bits", "32"),
        r"skipping unreadable image .*bomb\.png: refused as a possible decompression bomb",
        _bomb_in_folder,
        code=0,
    ),
    Case(
        "truncated PNG in run",
        (*RUN, "{dir}/cut.png"),
        r"cut\.png: Pillow cannot read this image",
        lambda f: (
            _images(f, 1, 0),
            (f / "cut.png").write_bytes((f / "data" / "cat" / "ok0.png").read_bytes()[:60]),
        ),
    ),
    Case(
        "non-UTF-8 --labels",
        (*COMPARE, "--labels", "{dir}/labels.csv"),
        r"labels\.csv:2: not UTF-8 text",
        lambda f: (_images(f, 1, 0), (f / "labels.csv").write_bytes(b"file,label\nok0.png,caf\xe9\n")),
    ),
    Case(
        "non-UTF-8 --identities",
        (*EMBED, "--identities", "{dir}/who.csv"),
        r"who\.csv:1: not UTF-8 text",
        lambda f: (_images(f, 2, 0), (f / "who.csv").write_bytes(b"ok0.png,Jos\xe9\n")),
    ),
    Case(
        "--labels is a FIFO",
        (*COMPARE, "--labels", "{dir}/labels.csv"),
        r"labels\.csv: is a FIFO",
        lambda f: (_images(f, 1, 0), __import__("os").mkfifo(f / "labels.csv")),
    ),
    Case(
        "--labels missing",
        (*COMPARE, "--labels", "{dir}/labels.csv"),
        r"labels\.csv: no such file",
        lambda f: _images(f, 1, 0),
    ),
    Case(
        "--faces 1e400",
        ("profile", "lffd@64x64+tinynet", "--hw", "2nx", "--faces", "1e400"),
        r"--faces '1e400': expected integers from 0 to",
    ),
    Case(
        "--faces 10^400",
        ("profile", "lffd@64x64+tinynet", "--hw", "2nx", "--faces", "1" + "0" * 400),
        r"--faces '10000.*': expected integers from 0 to",
    ),
]
