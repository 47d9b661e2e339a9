"""CUDA twins of fastnn.kernels._activations (same names, signatures and formulas;
arrays are device arrays, (features, batch))."""
import math

from .._rules import ACTIVATION_RULES, IDENTITY, SOFTMAX, compiled
from . import _config as config
from ._backend import cuda


#: the scalar rules (kernels._rules), as device functions
_rules_device = compiled(ACTIVATION_RULES, cuda.jit(device=True))
forward_rule, derivative_rule = _rules_device.forward_rule, _rules_device.derivative_rule


@cuda.jit
def _bias_act(Y, b, code):
    i, j = cuda.grid(2)
    if i < Y.shape[0] and j < Y.shape[1]:
        Y[i, j] = forward_rule(code, Y[i, j] + b[i])


@cuda.jit
def _act(code, Z, A):
    i, j = cuda.grid(2)
    if i < Z.shape[0] and j < Z.shape[1]:
        A[i, j] = forward_rule(code, Z[i, j])


@cuda.jit
def _softmax_columns(Z, A, b, add_bias):
    """One thread per column: A[:, j] = softmax(Z[:, j] (+ b))."""
    j = cuda.grid(1)
    if j < Z.shape[1]:
        m = Z.shape[0]
        zmax = -math.inf
        for i in range(m):
            z = Z[i, j] + (b[i] if add_bias else 0.0)
            A[i, j] = z
            zmax = max(zmax, z)
        total = 0.0
        for i in range(m):
            e = math.exp(A[i, j] - zmax)
            A[i, j] = e
            total += e
        for i in range(m):
            A[i, j] = A[i, j] / total


@cuda.jit
def _derivative_inplace(code, A, D):
    i, j = cuda.grid(2)
    if i < A.shape[0] and j < A.shape[1]:
        D[i, j] = D[i, j] * derivative_rule(code, A[i, j])


@cuda.jit
def _softmax_jvp(A, dA, dZ):
    j = cuda.grid(1)
    if j < A.shape[1]:
        s = 0.0
        for i in range(A.shape[0]):
            s += A[i, j] * dA[i, j]
        for i in range(A.shape[0]):
            dZ[i, j] = A[i, j] * (dA[i, j] - s)


@cuda.jit
def _copy(src, dst):
    i, j = cuda.grid(2)
    if i < src.shape[0] and j < src.shape[1]:
        dst[i, j] = src[i, j]


@cuda.jit
def _fill(out, value):
    k = cuda.grid(1)
    if k < out.shape[0]:
        out[k] = value


@cuda.jit
def _row_sum(D, db):
    """One thread per row (features): db[i] = sum_j D[i, j]."""
    i = cuda.grid(1)
    if i < D.shape[0]:
        total = 0.0
        for j in range(D.shape[1]):
            total += D[i, j]
        db[i] = total


def bias_activation_forward(Y, b, code):
    """Y <- f(Y + b), in place."""
    if code == SOFTMAX:
        blocks, threads = config.grid_1d(Y.shape[1])
        _softmax_columns[blocks, threads](Y, Y, b, True)
    else:
        blocks, threads = config.grid_2d(*Y.shape)
        _bias_act[blocks, threads](Y, b, code)


def activation_forward(code, Z, A):
    """A = f(Z) (A may be Z)."""
    if code == SOFTMAX:
        blocks, threads = config.grid_1d(Z.shape[1])
        _softmax_columns[blocks, threads](Z, A, Z[:, 0], False)
    else:
        blocks, threads = config.grid_2d(*Z.shape)
        _act[blocks, threads](code, Z, A)


def softmax_jvp(A, dA, dZ):
    """dZ = (A ⊙ (I - Aᵀ)) · dA per column. dZ may be dA."""
    blocks, threads = config.grid_1d(A.shape[1])
    _softmax_jvp[blocks, threads](A, dA, dZ)


def derivative_inplace(code, A, D):
    """D <- D ⊙ f'(Z) from the output A; softmax by its JVP."""
    if code == SOFTMAX:
        softmax_jvp(A, D, D)
    elif code != IDENTITY:
        blocks, threads = config.grid_2d(*A.shape)
        _derivative_inplace[blocks, threads](code, A, D)


def activation_backward(code, A, dA, dZ):
    """dZ = dA ⊙ f'(Z), from the output A. dZ may be dA."""
    if dZ is not dA:
        blocks, threads = config.grid_2d(*dA.shape)
        _copy[blocks, threads](dA, dZ)
    derivative_inplace(code, A, dZ)


def fill(out, value):
    """out[:] = value, on the device (out a 1-D device array)."""
    blocks, threads = config.grid_1d(out.shape[0])
    _fill[blocks, threads](out, value)


def row_sum(dZ, db):
    """db = row-sum of dZ."""
    blocks, threads = config.grid_1d(dZ.shape[0])
    _row_sum[blocks, threads](dZ, db)


def activation_backward_bias(code, A, dA, dZ, db):
    """dZ = dA ⊙ f'(Z) and db = row-sum(dZ)."""
    activation_backward(code, A, dA, dZ)
    row_sum(dZ, db)
