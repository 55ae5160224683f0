"""Lossless weight encoding: the sizes ``weight_compression: encode`` charges, from a real coder.

The scheme (a Golomb-Rice code, the family Arm's Ethos-U weight codec belongs to):

1. the layer's integer weights, in output-channel order (the order an NPU streams them), are
   mapped to unsigned values by zig-zag (0, -1, 1, -2 ... -> 0, 1, 2, 3 ...);
2. they are cut into chunks of ``CHUNK`` values; each chunk picks the Rice parameter ``k``
   (0 .. bits - 1) that codes it shortest and stores it in a ``K_BITS``-bit header;
3. each value ``u`` is coded as ``u >> k`` in unary (ones, then a zero) and its low ``k``
   bits; a chunk that would come out longer than its raw ``bits`` per value is stored raw
   (header ``RAW``), so incompressible weights cost their raw size plus the headers.

``encode``/``decode`` produce and read the bit stream (tests check they round-trip);
``encoded_bits`` gives its exact length without building it, which is what the cost model
uses. Padding to whole bytes is left to the caller's burst rounding.
"""

from __future__ import annotations

import numpy as np

CHUNK = 256
K_BITS = 5
RAW = (1 << K_BITS) - 1


def zigzag(values: np.ndarray) -> np.ndarray:
    """Signed integers to unsigned: v >= 0 -> 2v, v < 0 -> -2v - 1."""
    v = np.asarray(values).astype(np.int32, copy=False).ravel()
    return (v << 1) ^ (v >> 31)


def _best_k(chunks: np.ndarray, counts: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Per chunk (rows; padded with zeros past ``counts``): the best ``k`` (``RAW`` for raw) and
    its coded bits.

    A chunk's Rice size is convex in ``k``, so only the three values around the estimate
    ``log2(mean)`` are tried; chunks whose best lies on that window's edge try every ``k``.
    """
    rows = np.arange(len(counts))
    mean = chunks.sum(axis=1) / counts
    centre = np.clip(np.rint(np.log2(np.maximum(mean, 1.0)) - 0.5).astype(np.int64), 1, max(bits - 2, 1))
    window = np.stack([centre - 1, centre, centre + 1])
    sizes = np.stack([_rice_bits(chunks, counts, window[i]) for i in range(3)])
    pick = np.argmin(sizes, axis=0)
    best, size = window[pick, rows], sizes[pick, rows]
    edge = ((pick == 0) & (window[0] > 0)) | ((pick == 2) & (window[2] < bits - 1))
    if edge.any():
        full = np.stack([_rice_bits(chunks[edge], counts[edge], np.full(edge.sum(), k)) for k in range(bits)])
        best[edge], size[edge] = np.argmin(full, axis=0), full.min(axis=0)
    raw = counts * bits
    return np.where(raw < size, RAW, best), np.minimum(raw, size)


def _rice_bits(chunks: np.ndarray, counts: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Coded bits of each chunk with its own Rice parameter ``k``."""
    k = np.clip(k, 0, None)
    return (chunks >> k[:, None]).sum(axis=1) + counts * (1 + k)


def _chunked(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n_chunks = -(-len(u) // CHUNK)
    padded = np.zeros(n_chunks * CHUNK, dtype=np.int32)
    padded[: len(u)] = u
    counts = np.full(n_chunks, CHUNK)
    if len(u) % CHUNK:
        counts[-1] = len(u) % CHUNK
    return padded.reshape(n_chunks, CHUNK), counts


def encoded_bits(values: np.ndarray, bits: int) -> int:
    """Length in bits of ``encode(values, bits)``."""
    u = zigzag(values)
    if u.size == 0:
        return 0
    chunks, counts = _chunked(u)
    _, sizes = _best_k(chunks, counts, bits)
    return int(sizes.sum() + K_BITS * len(counts))


def encode(values: np.ndarray, bits: int) -> bytes:
    """The bit stream of ``values`` (signed integers of ``bits`` bits), MSB first."""
    u = zigzag(values)
    if u.size == 0:
        return b""
    chunks, counts = _chunked(u)
    ks, _ = _best_k(chunks, counts, bits)
    out: list[np.ndarray] = []
    for chunk, count, k in zip(chunks, counts, ks, strict=True):
        out.append(_bits_of(np.array([k]), K_BITS))
        if k == RAW:
            out.append(_bits_of(chunk[:count], bits))
            continue
        for value in chunk[:count]:
            q = int(value) >> int(k)
            out.append(np.concatenate([np.ones(q, np.uint8), [0], _bits_of(np.array([value]), int(k))]))
    return np.packbits(np.concatenate(out)).tobytes()


def decode(data: bytes, count: int, bits: int) -> np.ndarray:
    """The ``count`` signed integers ``encode`` wrote into ``data``."""
    stream = np.unpackbits(np.frombuffer(data, dtype=np.uint8))
    pos, found = 0, []
    while len(found) < count:
        k = _value_of(stream[pos : pos + K_BITS])
        pos += K_BITS
        for _ in range(min(CHUNK, count - len(found))):
            if k == RAW:
                u, pos = _value_of(stream[pos : pos + bits]), pos + bits
                found.append(u // 2 if u % 2 == 0 else -(u + 1) // 2)
                continue
            q = 0
            while stream[pos]:
                q, pos = q + 1, pos + 1
            pos += 1
            u = (q << k) | _value_of(stream[pos : pos + k])
            pos += k
            found.append(u // 2 if u % 2 == 0 else -(u + 1) // 2)
    return np.array(found, dtype=np.int64)


def _bits_of(values: np.ndarray, width: int) -> np.ndarray:
    if width == 0:
        return np.zeros(0, np.uint8)
    shifts = np.arange(width - 1, -1, -1)
    return ((values[:, None] >> shifts) & 1).astype(np.uint8).ravel()


def _value_of(stream: np.ndarray) -> int:
    value = 0
    for bit in stream:
        value = (value << 1) | int(bit)
    return value
