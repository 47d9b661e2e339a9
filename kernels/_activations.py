"""Activations, each written as its forward rule beside its derivative rule.

Arrays are (features, batch): one column per sample, as in the lecture notes.
Every derivative is written from the activation's *output* a = f(z), so the
backward pass needs only the stored activations (scikit-learn's trick):

    identity  a = z                      f'(z) = 1
    relu      a = max(z, 0)              f'(z) = [a > 0]
    sigmoid   a = 1 / (1 + e^-z)         f'(z) = a (1 - a)
    tanh      a = tanh z                 f'(z) = 1 - a^2
    softplus  a = log(1 + e^z)           f'(z) = sigmoid(z) = 1 - e^-a
    exp       a = e^z                    f'(z) = a      (the Poisson loss's mean)
    softmax   a_i = e^z_i / sum_k e^z_k  dL/dz = (A ⊙ (I - Aᵀ)) · dL/da
              (per column; applied as a Jacobian-vector product, never formed)

Scalar rules are evaluated in float64 and stored in the array's dtype; they are written
once (kernels._rules) for these kernels and their CUDA twins.
"""
import math

import numpy as np

from ._jit import kernel
from ._rules import (ACTIVATION_RULES, EXP, IDENTITY, RELU, SIGMOID, SOFTMAX, SOFTPLUS, TANH,
                     compiled)

#: name -> integer code understood by every kernel.
ACTIVATIONS = {
    "identity": IDENTITY,
    "relu": RELU,
    "sigmoid": SIGMOID,
    "tanh": TANH,
    "softplus": SOFTPLUS,
    "softmax": SOFTMAX,
    "exp": EXP,
}


#: the scalar rules (kernels._rules), inlined into the CPU kernels
_rules_cpu = compiled(ACTIVATION_RULES, kernel(inline="always"))
sigmoid, tanh, softplus = _rules_cpu.sigmoid, _rules_cpu.tanh, _rules_cpu.softplus
forward_rule, derivative_rule = _rules_cpu.forward_rule, _rules_cpu.derivative_rule


@kernel
def _softmax_column(Z, A, j):
    """A[:, j] = softmax(Z[:, j]), shifted by the column maximum for stability."""
    m = Z.shape[0]
    zmax = -np.inf
    for i in range(m):
        zmax = max(zmax, np.float64(Z[i, j]))
    total = 0.0
    for i in range(m):
        e = math.exp(Z[i, j] - zmax)
        A[i, j] = e
        total += e
    inv = 1.0 / total
    for i in range(m):
        A[i, j] = A[i, j] * inv


@kernel
def bias_activation_forward(Y, b, code):
    """Y <- f(Y + b), in place: the fused epilogue of the dense layer."""
    m, n = Y.shape
    zero = Y.dtype.type(0)
    if code == RELU:  # the hot path of every ReLU network: keep it vectorized
        for j in range(n):
            for i in range(m):
                v = Y[i, j] + b[i]
                Y[i, j] = v if v > zero else zero
    elif code == IDENTITY:
        for j in range(n):
            for i in range(m):
                Y[i, j] += b[i]
    elif code == SOFTMAX:
        for j in range(n):
            for i in range(m):
                Y[i, j] += b[i]
            _softmax_column(Y, Y, j)
    else:
        for j in range(n):
            for i in range(m):
                Y[i, j] = forward_rule(code, np.float64(Y[i, j]) + b[i])


@kernel
def activation_forward(code, Z, A):
    """A = f(Z) (A may be Z)."""
    m, n = Z.shape
    if code == SOFTMAX:
        for j in range(n):
            _softmax_column(Z, A, j)
    else:
        for j in range(n):
            for i in range(m):
                A[i, j] = forward_rule(code, np.float64(Z[i, j]))


@kernel
def softmax_jvp(A, dA, dZ):
    """dZ = (A ⊙ (I - Aᵀ)) · dA per column, i.e. dz_k = a_k (da_k - sum_i a_i da_i).

    The n x n Jacobian is never formed. dZ may be dA.
    """
    m, n = A.shape
    for j in range(n):
        s = 0.0
        for i in range(m):
            s += np.float64(A[i, j]) * dA[i, j]
        for i in range(m):
            dZ[i, j] = A[i, j] * (dA[i, j] - s)


@kernel
def derivative_inplace(code, A, D):
    """D <- D ⊙ f'(Z), from the output A = f(Z); softmax by its JVP.

    Reads and writes D only at the same index, so the loops vectorize.
    """
    m, n = A.shape
    zero = D.dtype.type(0)
    if code == SOFTMAX:
        softmax_jvp(A, D, D)
    elif code == RELU:
        for j in range(n):
            for i in range(m):
                D[i, j] = D[i, j] if A[i, j] > zero else zero
    elif code != IDENTITY:
        for j in range(n):
            for i in range(m):
                D[i, j] = D[i, j] * derivative_rule(code, np.float64(A[i, j]))


@kernel
def activation_backward(code, A, dA, dZ):
    """dZ = dA ⊙ f'(Z), from the output A = f(Z); softmax by its JVP. dZ may be dA."""
    if dZ.ctypes.data != dA.ctypes.data:
        m, n = dA.shape
        for j in range(n):
            for i in range(m):
                dZ[i, j] = dA[i, j]
    derivative_inplace(code, A, dZ)


@kernel
def row_sum(dZ, db):
    """db = row-sum of dZ (sum over the batch), accumulated in the dtype of db.

    Columns are added in order, so the result does not depend on thread count.
    """
    m, n = dZ.shape
    for i in range(m):
        db[i] = 0
    for j in range(n):
        for i in range(m):
            db[i] += dZ[i, j]


@kernel
def activation_backward_bias(code, A, dA, dZ, db):
    """dZ = dA ⊙ f'(Z) and db = row-sum(dZ): the fused epilogue of backprop."""
    activation_backward(code, A, dA, dZ)
    row_sum(dZ, db)
