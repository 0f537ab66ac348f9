"""Quantised-row kernels (fp16 / bf16 / SQ8 / SQ4): every table vs scalar vs numpy.

Every kernel table usable on this machine (``_core.qkernel_tables()``: the
SIMD levels, plus "avx512vnni" beside the plain "avx512" table on a VNNI CPU)
is compared with the scalar reference and with numpy:

* conversions bit for bit (numpy's float16 for f16, an independent
  nearest-value search for bf16; NaNs follow the documented rule, which is
  not numpy's),
* integer kernels exactly, including the extreme codes that would saturate a
  naive pmaddubsw (255 * -128 pairs) and the largest d whose result fits int32,
* float kernels within a float32 accumulation tolerance,
* no kernel reads (or writes) one byte past the end of its arrays: inputs
  and outputs are placed against an unreadable guard page.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import vecdex
from vecdex import _core

TABLES = list(_core.qkernel_tables())
SIMD_TABLES = [t for t in TABLES if t != "scalar"]
# tails of every vector width (8, 16, 32, 64, 128, 256 elements per step) plus the dims
DIMS = [1, 2, 3, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 383, 384,
        768, 1536, 4099]
EPS32 = float(np.finfo(np.float32).eps)
LEVEL_NAMES = ("scalar", "neon", "avx2", "avx512")


def _tol(terms_abs_sum, d):
    """float32 accumulation tolerance, as in test_kernels.py."""
    return 8.0 * np.sqrt(d) * EPS32 * terms_abs_sum + 1e-30


def _f16_bits(x):
    return np.asarray(x, dtype=np.float32).astype(np.float16).view(np.uint16)


def _f16_values(bits):
    return np.asarray(bits, dtype=np.uint16).view(np.float16).astype(np.float64)


def _bf16_values(bits):
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32).astype(np.float64)


def _bf16_ref_bits(x32):
    """Round to nearest even on the upper 16 bits; NaN -> quiet NaN (bits >> 16 | 0x40)."""
    b = np.asarray(x32, dtype=np.float32).view(np.uint32).astype(np.uint64)
    r = (b + 0x7FFF + ((b >> 16) & 1)) >> 16
    nan = (b & 0x7FFFFFFF) > 0x7F800000
    return np.where(nan, (b >> 16) | 0x40, r).astype(np.uint16)


def _f16_nan_rule(x32):
    """The documented f32 -> f16 NaN result: sign | 0x7E00 | top 9 payload bits."""
    b = np.asarray(x32, dtype=np.float32).view(np.uint32)
    return (((b >> 16) & 0x8000) | 0x7E00 | ((b >> 13) & 0x1FF)).astype(np.uint16)


def _unpack_u4(packed, d):
    p = np.asarray(packed, dtype=np.uint8)
    return np.stack([p & 0x0F, p >> 4], axis=1).reshape(-1)[:d].astype(np.int64)


def _pack_u4(codes):
    c = np.asarray(codes, dtype=np.uint8)
    if len(c) % 2:
        c = np.concatenate([c, np.zeros(1, np.uint8)])
    return (c[0::2] | (c[1::2] << 4)).astype(np.uint8)


def _special_f32():
    """Values on every rounding boundary of f16 and bf16."""
    v = [0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, 65504.0, 65505.0, 65519.0, 65520.0, 65536.0, 1e10,
         -65520.0, 2.0 ** -14, 2.0 ** -24, 2.0 ** -25, 3 * 2.0 ** -25, 5 * 2.0 ** -25,
         1023.5 * 2.0 ** -24, 1022.5 * 2.0 ** -24, 2.0 ** -26, 1 + 2.0 ** -11, 1 + 3 * 2.0 ** -11,
         1 + 2.0 ** -8, 1 + 3 * 2.0 ** -8, 3.4e38, -3.4e38]
    x = np.array(v, dtype=np.float32)
    more = [np.nextafter(x, np.float32(np.inf)), np.nextafter(x, np.float32(-np.inf))]
    bits = np.array([0x00000001, 0x80000001, 0x007FFFFF, 0x00800000, 0x7F7FFFFF, 0x7F7F8000,
                     0x7F7F7FFF, 0x3F808000, 0x3F818000, 0x00018000, 0x00008000,
                     # NaNs: signalling, quiet, with payloads in the kept / dropped bits
                     0x7F800001, 0xFF800001, 0x7F801234, 0x7FC00000, 0xFFC00000, 0x7FBFFFFF,
                     0x7FFFFFFF, 0x7F802000, 0x7F8FE000, 0xFF9ABCDE], dtype=np.uint32).view(np.float32)
    return np.concatenate([x, *more, bits]).astype(np.float32)


def _random_f32_bits(rng, n):
    return rng.integers(0, 2 ** 32, size=n, dtype=np.uint64).astype(np.uint32).view(np.float32)


# --------------------------------------------------------------------------
# tables and dispatch
# --------------------------------------------------------------------------
def test_tables_sane():
    assert TABLES[0] == "scalar"
    assert len(set(TABLES)) == len(TABLES)
    assert set(TABLES) <= {"scalar", "neon", "avx2", "avx512", "avx512vnni"}
    levels = vecdex.available_simd_levels()
    for level in LEVEL_NAMES:
        t = _core.qkernel_table_for(level)
        if level in levels:
            assert t in TABLES
            assert t == level or (level == "avx512" and t == "avx512vnni")
        else:
            assert t is None
    assert _core.qkernel_active() == _core.qkernel_table_for(vecdex.simd_level())
    with pytest.raises(ValueError):
        _core.qkernel_table_for("avx9000")
    with pytest.raises(ValueError):
        _core.qkernel_dot_f16(np.ones(3, np.float32), np.ones(3, np.uint16), "avx9000")


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def test_vnni_detection_matches_cpuinfo():
    flags = _cpu_flags()
    if flags is None or "avx512" not in vecdex.available_simd_levels():
        pytest.skip("needs Linux /proc/cpuinfo and an AVX-512 machine")
    has = "avx512_vnni" in flags
    assert _core.cpu_has_avx512_vnni() == has
    assert ("avx512vnni" in TABLES) == has
    assert "avx512" in TABLES  # the plain table stays testable on a VNNI machine
    assert _core.qkernel_table_for("avx512") == ("avx512vnni" if has else "avx512")


def test_argument_checks():
    q = np.ones(5, np.float32)
    with pytest.raises(TypeError):  # wrong dtype: never converted silently
        _core.qkernel_dot_f16(q, np.ones(5, np.float32), "scalar")
    with pytest.raises(ValueError):
        _core.qkernel_dot_f16(q, np.ones(4, np.uint16), "scalar")
    with pytest.raises(ValueError):
        _core.qkernel_dot_u4_i8(np.ones(2, np.uint8), np.ones(5, np.int8), "scalar")  # needs 3 bytes
    with pytest.raises(TypeError):
        _core.qkernel_dot_u8_i8(np.ones(5, np.uint8), np.ones(5, np.uint8), "scalar")
    with pytest.raises(ValueError):
        _core.qkernel_f32_to_f16(q, "scalar", out=np.zeros(4, np.uint16))


# --------------------------------------------------------------------------
# conversions
# --------------------------------------------------------------------------
ALL_HALF = np.arange(65536, dtype=np.uint32).astype(np.uint16)


@pytest.mark.parametrize("table", TABLES)
def test_f16_to_f32_all_patterns(table):
    got = _core.qkernel_f16_to_f32(ALL_HALF, table)
    assert got.dtype == np.float32 and got.shape == (65536,)
    gb = got.view(np.uint32)
    h = ALL_HALF.astype(np.uint32)
    nan = ((h & 0x7C00) == 0x7C00) & ((h & 0x3FF) != 0)
    # finite values and infinities: exact (numpy's float16 -> float32 is exact)
    ref = ALL_HALF.view(np.float16).astype(np.float32).view(np.uint32)
    np.testing.assert_array_equal(gb[~nan], ref[~nan])
    # NaNs: made quiet, payload kept
    rule = ((h & 0x8000) << 16) | 0x7FC00000 | ((h & 0x3FF) << 13)
    np.testing.assert_array_equal(gb[nan], rule[nan])
    np.testing.assert_array_equal(gb, _core.qkernel_f16_to_f32(ALL_HALF, "scalar").view(np.uint32))


@pytest.mark.parametrize("table", TABLES)
def test_f32_to_f16_matches_numpy(table):
    rng = np.random.default_rng(5)
    # random bit patterns cover every exponent, subnormals, infinities and NaNs; uniform values
    # around the f16 range cover its normal / subnormal / overflow boundaries more densely
    x = np.concatenate([_special_f32(), _random_f32_bits(rng, 1 << 18),
                        rng.uniform(-70000, 70000, 1 << 16).astype(np.float32),
                        (rng.normal(size=1 << 16) * 2.0 ** -14).astype(np.float32),
                        ALL_HALF.view(np.float16).astype(np.float32)])
    got = _core.qkernel_f32_to_f16(x, table)
    assert got.dtype == np.uint16 and got.shape == x.shape
    nan = np.isnan(x)
    with np.errstate(over="ignore", invalid="ignore"):
        ref = x.astype(np.float16).view(np.uint16)
    np.testing.assert_array_equal(got[~nan], ref[~nan])
    np.testing.assert_array_equal(got[nan], _f16_nan_rule(x[nan]))
    np.testing.assert_array_equal(got, _core.qkernel_f32_to_f16(x, "scalar"))


@pytest.mark.parametrize("table", TABLES)
def test_f16_round_trip(table):
    f = _core.qkernel_f16_to_f32(ALL_HALF, table)
    back = _core.qkernel_f32_to_f16(f, table)
    h = ALL_HALF
    nan = ((h & 0x7C00) == 0x7C00) & ((h & 0x3FF) != 0)
    np.testing.assert_array_equal(back[~nan], h[~nan])
    np.testing.assert_array_equal(back[nan], h[nan] | 0x0200)  # quiet bit set, payload kept


@pytest.mark.parametrize("table", TABLES)
def test_bf16_to_f32_all_patterns(table):
    got = _core.qkernel_bf16_to_f32(ALL_HALF, table)
    # exact, NaN payloads included
    np.testing.assert_array_equal(got.view(np.uint32), ALL_HALF.astype(np.uint32) << 16)


@pytest.mark.parametrize("table", TABLES)
def test_f32_to_bf16(table):
    rng = np.random.default_rng(6)
    x = np.concatenate([_special_f32(), _random_f32_bits(rng, 1 << 18),
                        rng.normal(size=1 << 14).astype(np.float32),
                        _random_f32_bits(rng, 1 << 14).view(np.uint32).astype(np.float32)])
    # exact ties: low 16 bits 0x8000, both parities of the kept bit, all magnitudes
    ties = ((rng.integers(0, 2 ** 16, size=1 << 14, dtype=np.uint32) << 16) | 0x8000).view(np.float32)
    x = np.concatenate([x, ties]).astype(np.float32)
    got = _core.qkernel_f32_to_bf16(x, table)
    np.testing.assert_array_equal(got, _bf16_ref_bits(x))
    np.testing.assert_array_equal(got, _core.qkernel_f32_to_bf16(x, "scalar"))
    # independent check of the rounding for finite inputs: the nearest bf16 value, ties to even
    b = x.view(np.uint32)
    fin = np.isfinite(x) & ((b & 0x7FFFFFFF) < 0x7F7F8000)  # the upper candidate is finite too
    lo = (b[fin] & 0xFFFF0000).view(np.float32).astype(np.float64)
    hi = ((b[fin] & 0xFFFF0000) + 0x10000).view(np.float32).astype(np.float64)
    xv = x[fin].astype(np.float64)
    dlo, dhi = np.abs(xv - lo), np.abs(xv - hi)
    lo_even = ((b[fin] >> 16) & 1) == 0
    expect = np.where((dlo < dhi) | ((dlo == dhi) & lo_even), b[fin] >> 16, (b[fin] >> 16) + 1)
    np.testing.assert_array_equal(got[fin], expect.astype(np.uint16))
    # finite values beyond the largest bf16 round to infinity, NaNs stay NaN of the same sign
    big = np.isfinite(x) & ((b & 0x7FFFFFFF) >= 0x7F7F8000)
    np.testing.assert_array_equal(got[big] & 0x7FFF, np.full(big.sum(), 0x7F80, np.uint16))
    nan = np.isnan(x)
    gn = got[nan].astype(np.uint32)
    assert np.all((gn & 0x7F80) == 0x7F80) and np.all(gn & 0x40)
    np.testing.assert_array_equal(gn >> 15, b[nan] >> 31)


@pytest.mark.parametrize("table", TABLES)
def test_bf16_round_trip(table):
    f = _core.qkernel_bf16_to_f32(ALL_HALF, table)
    back = _core.qkernel_f32_to_bf16(f, table)
    h = ALL_HALF
    nan = ((h & 0x7F80) == 0x7F80) & ((h & 0x7F) != 0)
    np.testing.assert_array_equal(back[~nan], h[~nan])
    np.testing.assert_array_equal(back[nan], h[nan] | 0x40)


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("d", DIMS)
def test_conversions_every_length_write_exactly_n(table, d):
    rng = np.random.default_rng(d)
    x = (rng.normal(size=d) * 100).astype(np.float32)
    bits16 = rng.integers(0, 65536, size=d).astype(np.uint16)
    sentinel16, sentinel32 = np.uint16(0xA5A5), np.float32(-12345.5)
    for fn, inp, out_dtype, sentinel, ref in (
            (_core.qkernel_f32_to_f16, x, np.uint16, sentinel16, _core.qkernel_f32_to_f16(x, "scalar")),
            (_core.qkernel_f32_to_bf16, x, np.uint16, sentinel16, _bf16_ref_bits(x)),
            (_core.qkernel_f16_to_f32, bits16, np.float32, sentinel32, _core.qkernel_f16_to_f32(bits16, "scalar")),
            (_core.qkernel_bf16_to_f32, bits16, np.float32, sentinel32,
             (bits16.astype(np.uint32) << 16).view(np.float32))):
        buf = np.full(d + 40, sentinel, dtype=out_dtype)
        res = fn(inp, table, out=buf[:d])
        assert np.shares_memory(res, buf)
        np.testing.assert_array_equal(buf[:d].view(np.uint8), np.asarray(ref, out_dtype).view(np.uint8))
        assert np.all(buf[d:].view(np.uint8) == np.full(40, sentinel, out_dtype).view(np.uint8)), fn
    np.testing.assert_array_equal(_core.qkernel_f32_to_f16(x, table), _f16_bits(x))


# --------------------------------------------------------------------------
# fp16 / bf16 distances
# --------------------------------------------------------------------------
@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("fmt", ["f16", "bf16"])
def test_half_distances(table, d, fmt):
    rng = np.random.default_rng(17 * d + len(fmt))
    dot = getattr(_core, f"qkernel_dot_{fmt}")
    l2 = getattr(_core, f"qkernel_l2sq_{fmt}")
    for kind in ("normal", "offset", "wide"):
        q = rng.normal(size=d)
        x = rng.normal(size=d)
        if kind == "offset":
            q, x = q + 10, x + 10
        elif kind == "wide":  # f16 subnormals up to near its largest value
            x = x * np.exp(rng.uniform(-14, 9, size=d))
        q = q.astype(np.float32)
        if fmt == "f16":
            bits = _f16_bits(x)
            xv = _f16_values(bits)
        else:
            bits = _bf16_ref_bits(x.astype(np.float32))
            xv = _bf16_values(bits)
        q64 = q.astype(np.float64)

        exact = float(q64 @ xv)
        tol = _tol(float(np.abs(q64 * xv).sum()), d)
        got = dot(q, bits, table)
        assert isinstance(got, float)
        assert abs(got - exact) <= tol, (table, d, kind, got, exact)
        assert abs(got - dot(q, bits, "scalar")) <= 2 * tol

        diff = q64 - xv
        exact = float(diff @ diff)
        tol = _tol(exact, d)
        got = l2(q, bits, table)
        assert abs(got - exact) <= tol, (table, d, kind, got, exact)
        assert abs(got - l2(q, bits, "scalar")) <= 2 * tol
        assert got >= 0.0
    # identities: a row against its own (exactly representable) values
    z = np.zeros(d, np.uint16)
    assert dot(q, z, table) == 0.0
    xq = (_f16_values(bits) if fmt == "f16" else _bf16_values(bits)).astype(np.float32)
    assert l2(xq, bits, table) == 0.0


# --------------------------------------------------------------------------
# SQ8 / SQ4 with float weights
# --------------------------------------------------------------------------
def _codes(rng, d, kind, hi=255):
    if kind == "random":
        return rng.integers(0, hi + 1, size=d).astype(np.uint8)
    if kind == "max":
        return np.full(d, hi, np.uint8)
    if kind == "zero":
        return np.zeros(d, np.uint8)
    if kind == "alternate":
        return np.where(np.arange(d) % 2 == 0, hi, 0).astype(np.uint8)
    raise ValueError(kind)


CODE_KINDS = ["random", "max", "zero", "alternate"]


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("bits", [8, 4])
def test_float_weight_kernels(table, d, bits):
    rng = np.random.default_rng(31 * d + bits)
    hi = 255 if bits == 8 else 15
    for kind in CODE_KINDS:
        codes = _codes(rng, d, kind, hi)
        c64 = codes.astype(np.float64)
        row = codes if bits == 8 else _pack_u4(codes)
        dot = _core.qkernel_dot_u8_f32 if bits == 8 else _core.qkernel_dot_u4_f32
        l2 = _core.qkernel_l2sq_u8_f32 if bits == 8 else _core.qkernel_l2sq_u4_f32

        w = rng.normal(size=d).astype(np.float32)
        exact = float(w.astype(np.float64) @ c64)
        tol = _tol(float(np.abs(w.astype(np.float64) * c64).sum()), d)
        got = dot(w, row, table)
        assert abs(got - exact) <= tol, (table, d, kind, got, exact)
        assert abs(got - dot(w, row, "scalar")) <= 2 * tol

        # b_i = q_i - offset_i, per-dimension scales (some exactly 0: constant dimensions)
        scale = rng.uniform(0, 2.0 / hi, size=d).astype(np.float32)
        scale[rng.random(d) < 0.1] = 0
        b = (rng.normal(size=d) + 1).astype(np.float32)
        sc = scale.astype(np.float64) * c64
        t = b.astype(np.float64) - sc
        exact = float(t @ t)
        # the accumulation, plus the rounding of each t_i (fused or not) squared
        tol = _tol(exact, d) + 4 * EPS32 * float(np.abs(t) @ (np.abs(b) + np.abs(sc)))
        got = l2(b, scale, row, table)
        assert abs(got - exact) <= tol, (table, d, kind, got, exact)
        assert abs(got - l2(b, scale, row, "scalar")) <= 2 * tol
        assert got >= 0.0


# --------------------------------------------------------------------------
# integer kernels: exact
# --------------------------------------------------------------------------
def _int_cases(rng, d):
    """(u8 codes, i8 query) pairs: random and the extremes that saturate a naive pmaddubsw."""
    yield rng.integers(0, 256, size=d).astype(np.uint8), rng.integers(-128, 128, size=d).astype(np.int8)
    for c in (255, 254, 128, 127, 0):
        for qv in (-128, 127, -1):
            yield np.full(d, c, np.uint8), np.full(d, qv, np.int8)
    alt = np.where(np.arange(d) % 2 == 0, 255, 128).astype(np.uint8)
    yield alt, np.full(d, -128, np.int8)
    yield rng.choice(np.array([0, 127, 128, 255], np.uint8), size=d), \
        rng.choice(np.array([-128, -127, 126, 127], np.int8), size=d)


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("d", DIMS)
def test_dot_u8_i8_exact(table, d):
    rng = np.random.default_rng(41 * d)
    for codes, q in _int_cases(rng, d):
        exact = int(codes.astype(np.int64) @ q.astype(np.int64))
        got = _core.qkernel_dot_u8_i8(codes, q, table)
        assert isinstance(got, int)
        assert got == exact, (table, d, int(codes[0]), int(q[0]), got, exact)


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("d", DIMS)
def test_l2sq_u8_u8_exact(table, d):
    rng = np.random.default_rng(43 * d)
    cases = [(rng.integers(0, 256, size=d).astype(np.uint8), rng.integers(0, 256, size=d).astype(np.uint8))]
    for a, b in ((255, 0), (0, 255), (255, 255), (128, 127), (1, 254)):
        cases.append((np.full(d, a, np.uint8), np.full(d, b, np.uint8)))
    cases.append((np.where(np.arange(d) % 3 == 0, 255, 0).astype(np.uint8),
                  np.where(np.arange(d) % 2 == 0, 0, 255).astype(np.uint8)))
    for codes, q in cases:
        t = codes.astype(np.int64) - q.astype(np.int64)
        got = _core.qkernel_l2sq_u8_u8(codes, q, table)
        assert isinstance(got, int)
        assert got == int(t @ t), (table, d, got, int(t @ t))


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("d", DIMS)
def test_dot_u4_i8_exact(table, d):
    rng = np.random.default_rng(47 * d)
    cases = [(rng.integers(0, 16, size=d), rng.integers(-128, 128, size=d).astype(np.int8))]
    for c in (15, 8, 0):
        for qv in (-128, 127):
            cases.append((np.full(d, c), np.full(d, qv, np.int8)))
    for codes, q in cases:
        packed = _pack_u4(codes)
        assert packed.size == (d + 1) // 2
        exact = int(_unpack_u4(packed, d) @ q.astype(np.int64))
        got = _core.qkernel_dot_u4_i8(packed, q, table)
        assert got == exact, (table, d, got, exact)
        if d % 2:  # the high nibble of an odd row's last byte is ignored, whatever it holds
            dirty = packed.copy()
            dirty[-1] |= 0xF0
            assert _core.qkernel_dot_u4_i8(dirty, q, table) == exact
            w = rng.normal(size=d).astype(np.float32)
            assert _core.qkernel_dot_u4_f32(w, dirty, table) == _core.qkernel_dot_u4_f32(w, packed, table)
            s = np.ones(d, np.float32)
            assert _core.qkernel_l2sq_u4_f32(w, s, dirty, table) == _core.qkernel_l2sq_u4_f32(w, s, packed, table)


@pytest.mark.parametrize("table", TABLES)
def test_integer_kernels_at_their_int32_limits(table):
    """The documented largest d of each integer kernel, at the most extreme codes: the exact
    result fits int32 but needs every product widened before it is summed."""
    d = 65793  # dot_u8_i8: 255 * -128 * d = -2147483520
    assert _core.qkernel_dot_u8_i8(np.full(d, 255, np.uint8), np.full(d, -128, np.int8), table) == -255 * 128 * d
    assert _core.qkernel_dot_u8_i8(np.full(d, 255, np.uint8), np.full(d, 127, np.int8), table) == 255 * 127 * d
    d = 33025  # l2sq_u8_u8: 255^2 * d = 2147450625
    assert _core.qkernel_l2sq_u8_u8(np.full(d, 255, np.uint8), np.zeros(d, np.uint8), table) == 255 * 255 * d
    d = 1118481  # dot_u4_i8: 15 * -128 * d = -2147483520
    packed = np.full((d + 1) // 2, 0xFF, np.uint8)
    assert _core.qkernel_dot_u4_i8(packed, np.full(d, -128, np.int8), table) == -15 * 128 * d


@pytest.mark.parametrize("table", SIMD_TABLES)
def test_integer_kernels_random_lengths_vs_scalar(table):
    rng = np.random.default_rng(99)
    for d in rng.integers(1, 3000, size=60):
        d = int(d)
        c = rng.integers(0, 256, size=d).astype(np.uint8)
        q = rng.integers(-128, 128, size=d).astype(np.int8)
        qu = rng.integers(0, 256, size=d).astype(np.uint8)
        p = rng.integers(0, 256, size=(d + 1) // 2).astype(np.uint8)
        assert _core.qkernel_dot_u8_i8(c, q, table) == _core.qkernel_dot_u8_i8(c, q, "scalar")
        assert _core.qkernel_l2sq_u8_u8(c, qu, table) == _core.qkernel_l2sq_u8_u8(c, qu, "scalar")
        assert _core.qkernel_dot_u4_i8(p, q, table) == _core.qkernel_dot_u4_i8(p, q, "scalar")


# --------------------------------------------------------------------------
# no reads or writes past the end: arrays against an unreadable guard page
# (in a child process, so a fault fails this test instead of killing the run)
# --------------------------------------------------------------------------
_GUARD = r"""
import ctypes, mmap, sys
import numpy as np
from vecdex import _core

libc = ctypes.CDLL(None, use_errno=True)
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
PAGE = mmap.PAGESIZE
_keep = []

def at_end(a):
    a = np.ascontiguousarray(a)
    npages = (a.nbytes + PAGE - 1) // PAGE + 1
    mm = mmap.mmap(-1, npages * PAGE)
    base = ctypes.addressof(ctypes.c_char.from_buffer(mm))
    if libc.mprotect(base + (npages - 1) * PAGE, PAGE, 0) != 0:
        raise OSError(ctypes.get_errno(), "mprotect")
    v = np.frombuffer(mm, dtype=a.dtype, count=a.size, offset=(npages - 1) * PAGE - a.nbytes)
    v[...] = a
    _keep.append(mm)
    return v

rng = np.random.default_rng(0)
tables = sys.argv[1].split(",")
dims = [int(x) for x in sys.argv[2].split(",")]
for t in tables:
    for d in dims:
        f = at_end(rng.normal(size=d).astype(np.float32))
        g = at_end(rng.uniform(0, 1, size=d).astype(np.float32))
        h = at_end(rng.integers(0, 0x7C00, size=d).astype(np.uint16))
        c = at_end(rng.integers(0, 256, size=d).astype(np.uint8))
        cu = at_end(rng.integers(0, 256, size=d).astype(np.uint8))
        q = at_end(rng.integers(-128, 128, size=d).astype(np.int8))
        p = at_end(rng.integers(0, 256, size=(d + 1) // 2).astype(np.uint8))
        _core.qkernel_dot_f16(f, h, t); _core.qkernel_l2sq_f16(f, h, t)
        _core.qkernel_dot_bf16(f, h, t); _core.qkernel_l2sq_bf16(f, h, t)
        _core.qkernel_dot_u8_f32(f, c, t); _core.qkernel_l2sq_u8_f32(f, g, c, t)
        _core.qkernel_dot_u8_i8(c, q, t); _core.qkernel_l2sq_u8_u8(c, cu, t)
        _core.qkernel_dot_u4_i8(p, q, t); _core.qkernel_dot_u4_f32(f, p, t)
        _core.qkernel_l2sq_u4_f32(f, g, p, t)
        _core.qkernel_f32_to_f16(f, t, out=at_end(np.zeros(d, np.uint16)))
        _core.qkernel_f32_to_bf16(f, t, out=at_end(np.zeros(d, np.uint16)))
        _core.qkernel_f16_to_f32(h, t, out=at_end(np.zeros(d, np.float32)))
        _core.qkernel_bf16_to_f32(h, t, out=at_end(np.zeros(d, np.float32)))
print("ok")
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses mmap + mprotect guard pages")
def test_no_access_past_the_end(tmp_path):
    script = tmp_path / "guard.py"
    script.write_text(textwrap.dedent(_GUARD))
    dims = sorted(set(DIMS + list(range(1, 70)) + [127, 129, 255, 257, 511, 513]))
    r = subprocess.run([sys.executable, str(script), ",".join(TABLES), ",".join(map(str, dims))],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", (r.returncode, r.stderr[-3000:])


# --------------------------------------------------------------------------
# VECDEX_SIMD also chooses the quantised table
# --------------------------------------------------------------------------
@pytest.mark.parametrize("level", vecdex.available_simd_levels())
def test_env_selects_quant_table(level):
    env = dict(os.environ, VECDEX_SIMD=level)
    r = subprocess.run([sys.executable, "-c",
                        "from vecdex import _core; print(_core.qkernel_active()); "
                        f"print(_core.qkernel_table_for({level!r}))"],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    active, expected = r.stdout.split()
    assert active == expected
