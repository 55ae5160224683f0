"""Reference integer add: each rule spelled out per element with Python ints."""

from __future__ import annotations

import numpy as np

from tests.reference.fixedpoint_ref import mbqm32, quantize_multiplier, round_half_away_div_pow2


def add_ref(a, b, sa, sb, so, za, zb, zo, bits, rule, qmin, qmax, lo=None, hi=None, sign_b=1):
    a, b = np.broadcast_arrays(np.asarray(a, np.int64), np.asarray(b, np.int64))
    lo = qmin if lo is None else max(lo, qmin)
    hi = qmax if hi is None else min(hi, qmax)
    out = np.empty(a.shape, np.int64)
    saturations = 0
    for index in np.ndindex(a.shape):
        da, db = int(a[index]) - za, (int(b[index]) - zb) * sign_b
        if rule == "float32":
            ma, mb = np.float32(sa) / np.float32(so), np.float32(sb) / np.float32(so)
            y = int(np.rint(np.float32(np.float32(da) * ma) + np.float32(np.float32(db) * mb)))
        elif rule == "fixedpoint":
            shift = 15 if bits > 8 else 20
            twice = 2.0 * max(sa, sb)
            ya = mbqm32(da << shift, *quantize_multiplier(sa / twice))
            yb = mbqm32(db << shift, *quantize_multiplier(sb / twice))
            y = mbqm32(ya + yb, *quantize_multiplier(twice / ((1 << shift) * so)))
        else:
            fa, fb, fo = (-int(np.log2(s)) for s in (sa, sb, so))
            f = max(fa, fb)
            y = round_half_away_div_pow2((da << (f - fa)) + (db << (f - fb)), f - fo)
        y += zo
        saturations += not qmin <= y <= qmax
        out[index] = min(max(y, lo), hi)
    return out, saturations
