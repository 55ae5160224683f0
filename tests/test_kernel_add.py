"""add/sub kernel under the three rules vs the per-element Python-int reference."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nnasim.kernels.add import add, make_add_params
from tests.kernel_strategies import bits_st, int_arrays, int_range
from tests.reference.add_ref import add_ref


@settings(max_examples=80, deadline=None)
@given(
    st.data(),
    bits_st,
    st.sampled_from(["float32", "fixedpoint", "single-rounding", "xnnpack", "pow2"]),
    st.sampled_from([1, -1]),
)
def test_add_matches_reference(data, bits, rule, sign_b):
    shape = data.draw(st.sampled_from([(2, 3, 4), (1, 1, 5), (2, 5, 7)]))
    a = data.draw(int_arrays(shape, bits))
    b = data.draw(int_arrays(data.draw(st.sampled_from([shape, (1, 1, shape[-1]), (1,)])), bits))
    lo_q, hi_q = int_range(bits)
    if rule == "pow2":
        scales = [2.0 ** -data.draw(st.integers(0, 12)) for _ in range(3)]
        zps = (0, 0, 0)
    else:
        scales = [data.draw(st.floats(1e-3, 1.0)) for _ in range(3)]
        zps = tuple(data.draw(st.integers(lo_q // 2, hi_q // 2)) for _ in range(3))
    if rule in ("fixedpoint", "single-rounding") or (rule == "xnnpack" and bits > 8):
        # TFLite's precondition: inputs shifted by 20 (15) bits stay in int32
        a = np.clip(a, zps[0] - 2 ** (bits - 1), zps[0] + 2 ** (bits - 1) - 1)
        b = np.clip(b, zps[1] - 2 ** (bits - 1), zps[1] + 2 ** (bits - 1) - 1)
    relu_lo = data.draw(st.one_of(st.none(), st.just(zps[2])))
    params = make_add_params(*scales, zps, bits, rule, lo_q, hi_q, lo=relu_lo, sign_b=sign_b)
    out, saturations = add(a, b, params)
    expected, expected_saturations = add_ref(
        a, b, *scales, *zps, bits, rule, lo_q, hi_q, lo=relu_lo, sign_b=sign_b
    )
    assert np.array_equal(out, expected)
    assert saturations == expected_saturations


def test_int16_xnnpack_add_rounds_blocks_once_and_leaves_the_rest_to_fixedpoint():
    """TFLite's optimized int16 add: its 16-element blocks differ from the reference kernels'
    integers here and there; the tail past the last whole block and broadcasts do not."""
    rng = np.random.default_rng(0)
    a, b = rng.integers(-3000, 3000, (2, 1000), dtype=np.int32)
    scales = [float(np.float32(s)) for s in (0.0002, 0.00035, 0.0005)]  # a TFLite file's float32 scales
    zps = (0, 0, 0)

    def run(rule, b_operand):
        return add(a, b_operand, make_add_params(*scales, zps, 16, rule, -32768, 32767))[0]

    blocked = a.size - a.size % 16
    ours, reference = run("xnnpack", b), run("fixedpoint", b)
    assert np.array_equal(ours[blocked:], reference[blocked:])
    assert not np.array_equal(ours[:blocked], reference[:blocked])
    assert np.array_equal(run("xnnpack", b[:1]), run("fixedpoint", b[:1]))
