"""The bfloat16 snapshot codec: the compiled encoder (wc_codec.h, which the CPU
core and the CUDA kernels apply to bf16 snapshots) against the numpy one
(wavecore.storage, used by the reference backends), bit for bit.

Both round float32 to the nearest bfloat16, ties to even. The compiled one is
reached through a test hook of the extension (``_runtime.bf16_encode``), so it
runs the C++ header as the core compiles it. Expected bits are also written out
by hand for the special cases, so that a bug shared by both encoders shows.
"""

import numpy as np
import pytest

from wavecore import storage
from wavecore.backends import cpu

_runtime, _IMPORT_ERROR = cpu._load_runtime()

pytestmark = pytest.mark.skipif(_IMPORT_ERROR is not None,
                                reason=f"the compiled core is not built: {_IMPORT_ERROR}")

# float32 bits -> expected bfloat16 bits (round to nearest, ties to even).
SPECIAL = {
    # ties between two bfloat16: to the even one, down and up
    0x3F808000: 0x3F80,  # 1 + 2**-8, halfway 0x3f80 / 0x3f81 -> down to even
    0x3F818000: 0x3F82,  # halfway 0x3f81 / 0x3f82 -> up to even
    0xBF808000: 0xBF80,
    0xBF818000: 0xBF82,
    0x3F807FFF: 0x3F80,  # just below a tie
    0x3F808001: 0x3F81,  # just above a tie
    0x3F80FFFF: 0x3F81,  # carries into the next bfloat16
    0x3FFF8000: 0x4000,  # a tie that carries into the exponent
    # signed zeros and infinities
    0x00000000: 0x0000,
    0x80000000: 0x8000,
    0x7F800000: 0x7F80,
    0xFF800000: 0xFF80,
    # denormals: smallest, ties among them (to even, down and up), largest
    0x00000001: 0x0000,
    0x80000001: 0x8000,
    0x00008000: 0x0000,  # halfway 0x0000 / 0x0001 -> down to even
    0x00018000: 0x0002,  # halfway 0x0001 / 0x0002 -> up to even
    0x80018000: 0x8002,
    0x00010000: 0x0001,  # the smallest bfloat16 denormal, exact
    0x007F8000: 0x0080,  # halfway between the largest denormal and the smallest normal
    0x007FFFFF: 0x0080,  # the largest float32 denormal rounds to the smallest normal
    0x807FFFFF: 0x8080,
    0x007F7FFF: 0x007F,
    # the largest finite values: the tie and above round to infinity
    0x7F7F7FFF: 0x7F7F,  # stays the largest finite bfloat16
    0x7F7F8000: 0x7F80,  # halfway to infinity: the even neighbour is infinity
    0x7F7FFFFF: 0x7F80,  # FLT_MAX
    0xFF7F8000: 0xFF80,
    0xFF7FFFFF: 0xFF80,
    0xFF7F7FFF: 0xFF7F,
}
# NaN stays NaN, keeps its sign and the top of its payload, and comes back quiet.
NAN = {
    0x7FC00000: 0x7FC0,  # quiet
    0xFFC00000: 0xFFC0,  # quiet, negative
    0x7F800001: 0x7FC0,  # signalling, payload only in the dropped bits (never infinity)
    0xFF800001: 0xFFC0,
    0x7FA00000: 0x7FE0,  # signalling with a payload in the kept bits
    0x7F810000: 0x7FC1,
    0x7FBFFFFF: 0x7FFF,
    0x7FFFFFFF: 0x7FFF,  # all ones: no carry into the sign
    0xFFFFFFFF: 0xFFFF,  # no wrap-around to zero
    0x7FC08000: 0x7FC0,  # payload bits below the kept ones are dropped, not rounded
}


def compiled_to_bf16(bits: np.ndarray) -> np.ndarray:
    values = np.ascontiguousarray(bits, np.uint32).view(np.float32)
    out = np.empty(values.shape, np.uint16)
    _runtime.bf16_encode(values, out)
    return out


def compiled_from_bf16(bits: np.ndarray) -> np.ndarray:
    bits = np.ascontiguousarray(bits, np.uint16)
    out = np.empty(bits.shape, np.float32)
    _runtime.bf16_decode(bits, out)
    return out


def numpy_to_bf16(bits: np.ndarray) -> np.ndarray:
    return storage.to_bf16(np.ascontiguousarray(bits, np.uint32).view(np.float32))


def nan_rule(bits: np.ndarray) -> np.ndarray:
    """Quieted NaN: the top 16 bits with the quiet bit set."""
    return ((bits >> np.uint32(16)) | np.uint32(0x40)).astype(np.uint16)


def is_nan(bits: np.ndarray) -> np.ndarray:
    return (bits & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)


def patterns(n_grid=1 << 20, n_random=1 << 20) -> np.ndarray:
    """Every 2**32 / n_grid-th float32 bit pattern, offset per block so that the
    low bits vary too, then random patterns and the special cases."""
    rng = np.random.default_rng(20261201)
    step = (1 << 32) // n_grid
    grid = np.arange(n_grid, dtype=np.uint64) * step
    odd = (np.arange(n_grid) % 2).astype(np.uint64)
    grid += rng.integers(0, step, n_grid, dtype=np.uint64) * odd
    random = rng.integers(0, 1 << 32, n_random, dtype=np.uint64)
    return np.concatenate([grid, random, list(SPECIAL), list(NAN)]).astype(np.uint32)


@pytest.mark.parametrize("encode", [compiled_to_bf16, numpy_to_bf16], ids=["compiled", "numpy"])
def test_special_values_round_to_nearest_even(encode):
    bits = np.array(list(SPECIAL), np.uint32)
    got = encode(bits)
    expected = np.array(list(SPECIAL.values()), np.uint16)
    wrong = {f"{b:#010x}": (f"{g:#06x}", f"{e:#06x}")
             for b, g, e in zip(bits, got, expected) if g != e}
    assert not wrong, f"float32 bits: (got, expected) {wrong}"


def test_compiled_nan_stays_nan_with_sign_and_payload():
    bits = np.array(list(NAN), np.uint32)
    got = compiled_to_bf16(bits)
    np.testing.assert_array_equal(got, np.array(list(NAN.values()), np.uint16))
    assert np.isnan(compiled_from_bf16(got)).all()


def test_numpy_nan_stays_nan_with_sign_and_payload():
    bits = np.array(list(NAN), np.uint32)
    np.testing.assert_array_equal(numpy_to_bf16(bits), np.array(list(NAN.values()), np.uint16))


def test_compiled_encoder_equals_numpy_bit_for_bit():
    bits = patterns()
    compiled, reference = compiled_to_bf16(bits), numpy_to_bf16(bits)
    nan = is_nan(bits)
    assert 0 < nan.sum() < len(bits) // 100  # the sample holds NaNs, and mostly numbers
    mismatch = np.flatnonzero((compiled != reference) & ~nan)
    assert mismatch.size == 0, [f"{b:#010x}" for b in bits[mismatch[:10]]]
    # NaN: the rule of wc_codec.h, which storage.py follows.
    np.testing.assert_array_equal(compiled[nan], nan_rule(bits[nan]))
    np.testing.assert_array_equal(reference[nan], compiled[nan])


def test_decoders_equal_and_every_bfloat16_round_trips():
    every = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    compiled = compiled_from_bf16(every)
    reference = storage.from_bf16(every)
    np.testing.assert_array_equal(compiled.view(np.uint32), reference.view(np.uint32))
    np.testing.assert_array_equal(compiled.view(np.uint32), every.astype(np.uint32) << 16)
    # A bfloat16 value is a float32 that encodes back to itself; a signalling
    # NaN comes back quiet.
    quieted = np.where(np.isnan(reference), every | np.uint16(0x40), every)
    np.testing.assert_array_equal(compiled_to_bf16(compiled.view(np.uint32)), quieted)
    numbers = ~np.isnan(reference)
    np.testing.assert_array_equal(storage.to_bf16(reference[numbers]), every[numbers])


def test_encoders_agree_with_an_independent_rounding():
    # Round float32 to 8 significant bits with float64 arithmetic (exact here):
    # the nearest bfloat16, ties to even, by numpy's own rint.
    bits = patterns(1 << 16, 1 << 16)
    magnitude = bits & np.uint32(0x7FFFFFFF)
    finite = (magnitude < np.uint32(0x7F800000)) & (magnitude != 0)
    v = bits[finite].view(np.float32).astype(np.float64)
    exponent = np.maximum(np.frexp(v)[1] - 1, -126)  # |v| in [2**e, 2**(e+1)); denormals: -126
    ulp = np.exp2(exponent - 7.0)
    rounded = np.rint(v / ulp) * ulp  # np.rint: ties to even
    rounded = np.where(np.abs(rounded) >= 2.0**128, np.copysign(np.inf, v), rounded)
    expected = (rounded.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    np.testing.assert_array_equal(compiled_to_bf16(bits[finite]), expected)
    np.testing.assert_array_equal(numpy_to_bf16(bits[finite]), expected)
