"""The simulator's float32 fused multiply-add is C's fmaf bit for bit, including the cases where
rounding a*b + c to double first and then to float32 (double rounding) would be wrong."""
import ctypes
import ctypes.util

import numpy as np
import pytest

from xnorgen.sim.conv_xnor import fma32

libm_name = ctypes.util.find_library("m")


@pytest.mark.skipif(libm_name is None, reason="no C math library to compare with")
def test_fma32_equals_libm_fmaf():
    libm = ctypes.CDLL(libm_name)
    libm.fmaf.restype = ctypes.c_float
    libm.fmaf.argtypes = [ctypes.c_float] * 3
    rng = np.random.default_rng(0)
    a = rng.standard_normal(20000).astype(np.float32)
    b = rng.standard_normal(20000).astype(np.float32)
    c = (rng.standard_normal(20000) * rng.choice([1e-6, 1.0, 1e6], 20000)).astype(np.float32)
    c[:5000] = (-(a[:5000].astype(np.float64) * b[:5000])).astype(np.float32)       # heavy cancellation
    # exact value just off a float32 midpoint that double rounding lands on (naive answer is wrong)
    a[-3:] = np.float32(1 + 2**-23) * np.float32([1, -1, 1])
    b[-3:] = np.float32(2**-24 * (1 - 2**-23))
    c[-3:] = np.float32(1 + 2**-23) * np.float32([1, -1, -1])
    want = np.array([libm.fmaf(float(x), float(y), float(z)) for x, y, z in zip(a, b, c)], dtype=np.float32)
    got = fma32(a, b, c)
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
    naive = (a.astype(np.float64) * b + c).astype(np.float32)
    assert not np.array_equal(naive[-3:].view(np.uint32), want[-3:].view(np.uint32))   # the cases matter
