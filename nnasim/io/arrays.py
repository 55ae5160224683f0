"""Arrays users give as inputs: ``.npy`` files and ``.npz`` members, read with their header checked first.

Before any data is read, the header must describe a numeric array (no strings, no Python objects)
whose bytes are actually in the file and fit in memory, so a 100-byte ``.npy`` claiming terabytes
is one line, not a MemoryError. A corrupt or truncated ``.npz`` member names the file and the
member. Values must be finite: NaN or infinity would become silent zeros or saturated integers.
"""

from __future__ import annotations

import math
import os
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import IO

import numpy as np

from nnasim.errors import DataError
from nnasim.io.guarded import read_bytes

NUMERIC_KINDS = "biuf"  # bool, signed, unsigned, float


def _memory_budget() -> int:
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 4


def _read_checked(handle: IO[bytes], where: str, available: int) -> np.ndarray:
    """One array from ``handle`` (positioned at a .npy header) after checking what the header claims."""
    try:
        version = np.lib.format.read_magic(handle)
        read_header = (
            np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = read_header(handle)
    except (
        ValueError,
        SyntaxError,
        tokenize.TokenError,
        EOFError,
        OSError,
        zlib.error,
        zipfile.BadZipFile,
    ) as error:
        raise DataError(f"{where}: not a valid .npy array ({error})") from None
    if dtype.kind not in NUMERIC_KINDS or dtype.hasobject or dtype.fields:
        raise DataError(f"{where}: holds {dtype} values; nnasim takes numbers (integers or floats)")
    needed = math.prod(shape) * dtype.itemsize
    if needed > min(available, _memory_budget()):
        raise DataError(
            f"{where}: its header claims shape {list(shape)} ({needed:,} bytes), more than "
            f"{'the file holds' if needed > available else 'a quarter of this machine memory'}"
        )
    try:
        data = handle.read(needed)
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as error:
        raise DataError(f"{where}: corrupt or truncated data ({error})") from None
    if len(data) != needed:
        raise DataError(f"{where}: truncated ({len(data):,} of {needed:,} bytes)")
    array = np.frombuffer(data, dtype=dtype)
    return array.reshape(shape[::-1]).transpose() if fortran else array.reshape(shape)


def load_npy(path: str | Path) -> np.ndarray:
    """The numeric array in the ``.npy`` file ``path``, its header checked before its data is read."""
    import io

    data = read_bytes(path, "a .npy array", min(2**40, _memory_budget()), DataError)
    return _read_checked(io.BytesIO(data), str(path), len(data))


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Every member of the ``.npz`` file ``path`` by name (without ``.npy``), each checked as ``load_npy``."""
    try:
        archive = zipfile.ZipFile(_regular(path))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as error:
        raise DataError(f"{path}: not a valid .npz archive ({error})") from None
    arrays: dict[str, np.ndarray] = {}
    with archive:
        for info in archive.infolist():
            name = info.filename.removesuffix(".npy")
            where = f"{path}: member {name!r}"
            try:
                with archive.open(info) as handle:
                    arrays[name] = _read_checked(handle, where, info.file_size)
            except (
                zipfile.BadZipFile,
                zlib.error,
                EOFError,
                OSError,
                NotImplementedError,
                RuntimeError,
            ) as error:  # noqa: E501
                raise DataError(f"{where}: corrupt or truncated ({error})") from None
    if not arrays:
        raise DataError(f"{path}: an empty .npz archive")
    return arrays


def _regular(path: str | Path) -> Path:
    """``path`` if it is a regular file (the guarded reader's message otherwise)."""
    path = Path(path)
    if not path.is_file():
        read_bytes(path, "a .npz archive", 0, DataError)  # raises, naming what it is
    return path


def check_finite(where: str, value: np.ndarray) -> np.ndarray:
    """``value`` if every element is finite; a DataError counting the NaN and infinite ones otherwise."""
    if value.dtype.kind == "f":
        bad = ~np.isfinite(value)
        if bad.any():
            nans = int(np.isnan(value).sum())
            raise DataError(
                f"{where}: {nans} NaN and {int(bad.sum()) - nans} infinite values (of {value.size}); "
                "nnasim computes only with finite numbers"
            )
    return value
