"""Cache-line-aligned buffers: zeros, the asked shape and dtype, every start aligned."""
import numpy as np
import pytest

import fastnn
from fastnn.buffers import ALIGNMENT, aligned_zeros


@pytest.mark.parametrize("shape", [0, 1, 7, 1000, (2, 33), (3, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_aligned_zeros(shape, dtype):
    arrays = [aligned_zeros(shape, dtype) for _ in range(20)]  # heap positions vary
    for a in arrays:
        assert a.shape == np.zeros(shape).shape and a.dtype == dtype
        assert a.flags.c_contiguous and a.flags.writeable
        assert a.size == 0 or a.ctypes.data % ALIGNMENT == 0  # an empty array has no start
        assert not a.any()
    if arrays[0].size:
        arrays[0][...] = 1
        assert not arrays[1].any()  # separate storage


def test_training_buffers_are_aligned():
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((50, 7)), rng.standard_normal(50)
    model = fastnn.Sequential([fastnn.Dense(7, 5, activation="relu"), fastnn.Dense(5, 1)],
                              seed=1)
    adam = fastnn.Adam()
    model.fit(X, y, epochs=1, batch_size=9, optimizer=adam, verbose=0)
    for buffer in (model.params, model.grads, model._ws, adam.state):
        assert buffer.ctypes.data % ALIGNMENT == 0
