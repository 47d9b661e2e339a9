"""kernels._views: the compiled views equal NumPy's slicing and reshaping, element for
element and as views (writes go to the flat array)."""
import numpy as np
import pytest
from numba import njit
from numba.core.errors import TypingError

from fastnn.kernels._views import any_layout, column_major, row_major, segment


@njit
def _compiled(flat, offset, rows, cols):
    s, r, c = segment(flat, offset, rows), row_major(flat, offset, rows, cols), \
        column_major(flat, offset, rows, cols)
    return s.copy(), r.copy(), c.copy(), r.strides, c.strides


@njit
def _write_through(flat, offset, rows, cols):
    column_major(flat, offset, rows, cols)[rows - 1, cols - 1] = -1.0
    row_major(flat, offset, rows, cols)[0, 0] = -2.0


def _references(flat, offset, rows, cols):
    v = flat.reshape(-1)
    return (v[offset:offset + rows], v[offset:offset + rows * cols].reshape(rows, cols),
            v[offset:offset + rows * cols].reshape(cols, rows).T)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows, cols", [(1, 1), (1, 7), (5, 1), (3, 5), (64, 33), (257, 130)])
def test_views_equal_numpy(dtype, rows, cols):
    rng = np.random.default_rng(rows * 1000 + cols)
    offset = int(rng.integers(0, 50))
    flat = rng.standard_normal(offset + rows * cols + int(rng.integers(0, 9))).astype(dtype)
    s, r, c, r_strides, c_strides = _compiled(flat, offset, rows, cols)
    ref_s, ref_r, ref_c = _references(flat, offset, rows, cols)
    for got, ref in ((s, ref_s), (r, ref_r), (c, ref_c)):
        np.testing.assert_array_equal(got, ref)
    assert r_strides == ref_r.strides and c_strides == ref_c.strides
    # the Python functions are the same views
    for got, ref in zip((segment(flat, offset, rows), row_major(flat, offset, rows, cols),
                         column_major(flat, offset, rows, cols)), (ref_s, ref_r, ref_c)):
        np.testing.assert_array_equal(got, ref)
        assert np.shares_memory(got, flat)


def test_views_write_into_the_flat_array():
    rng = np.random.default_rng(0)
    flat = rng.standard_normal(40)
    expected = flat.copy()
    _, ref_r, ref_c = _references(expected, 3, 4, 5)
    ref_c[3, 4] = -1.0
    ref_r[0, 0] = -2.0
    _write_through(flat, 3, 4, 5)
    np.testing.assert_array_equal(flat, expected)


def test_a_two_dimensional_c_array_is_read_as_its_elements():
    X = np.arange(24.0).reshape(6, 4)   # rows 2..4 of X as a (4, 3) column-major matrix
    _, _, c, _, _ = _compiled(X, 2 * 4, 4, 3)
    np.testing.assert_array_equal(c, X[2:5].T)


def test_a_non_contiguous_array_is_refused():
    flat = np.arange(20.0)[::2]
    with pytest.raises(TypingError):
        _compiled(flat, 0, 2, 3)


@njit
def _weighted_sum(b):
    total = 0.0
    for i in range(b.shape[0]):
        for j in range(b.shape[1]):
            total += b[i, j] * (i + 2 * j)
    b[0, b.shape[1] - 1] = -5.0   # writes go to the array
    return total


@njit
def _sum_any(a):
    return _weighted_sum(any_layout(a))


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (33, 2)])
def test_any_layout_is_the_array_itself_and_one_callee_compile(shape):
    rng = np.random.default_rng(shape[0] * 10 + shape[1])
    i, j = np.indices(shape)
    for order in ("C", "F"):
        a = np.asarray(rng.standard_normal(shape), order=order)
        expected = float(np.sum(a * (i + 2 * j)))
        assert _sum_any(a) == pytest.approx(expected, rel=1e-13)
        assert a[0, shape[1] - 1] == -5.0 and any_layout(a) is a
    assert [sig[0].layout for sig in _weighted_sum.signatures] == ["A"]
