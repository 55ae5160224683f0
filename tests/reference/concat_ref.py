"""Reference concat: each input through the reference output stage, then numpy concatenation."""

import numpy as np

from tests.reference.requant_ref import requantize_ref


def concat_ref(inputs, zero_points, reals, rule, zo, qmin, qmax, acc_bits, axis):
    parts = [
        requantize_ref(np.asarray(x, np.int64) - zp, real, rule, zo, qmin, qmax, acc_bits)[0]
        for x, zp, real in zip(inputs, zero_points, reals, strict=True)
    ]
    return np.concatenate(parts, axis=axis)
