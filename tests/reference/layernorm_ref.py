"""Reference fixed-point layer normalisation in Python integers (math.isqrt), row by row."""

import math


def _round_div(a: int, b: int) -> int:
    q = (2 * abs(a) + b) // (2 * b)
    return q if a >= 0 else -q


def _shift_round(a: int, bits: int) -> int:
    """a / 2**bits, ties away from zero."""
    return _round_div(a, 1 << bits)


def layer_norm_ref(rows, zp, centre, gain_bits, eps, gain, offset, zo, qmin, qmax, norm_bits=16):
    out, saturations = [], 0
    for row in rows:
        d = [int(v) - zp for v in row]
        n = len(d)
        mean = _round_div(sum(d) << centre, n)
        c = [(v << centre) - mean for v in d]
        sigma = max(math.isqrt(sum(v * v for v in c) // n + eps), 1)
        result = []
        for j, v in enumerate(c):
            z = _round_div(v << norm_bits, sigma)
            y = _shift_round(z * int(gain[j]) + (int(offset[j]) << norm_bits), norm_bits + gain_bits) + zo
            saturations += y < qmin or y > qmax
            result.append(min(max(y, qmin), qmax))
        out.append(result)
    return out, saturations
