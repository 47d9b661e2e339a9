"""Inverted dropout with a counter-based mask (kernels._random): nothing is stored.

With rate p and m_e = keep(stream, e, p) for element e = j·rows + i of a
(features × batch) matrix (column j, row i):

    forward    ã = a ⊙ m / (1 − p)
    backward   da = dã ⊙ m / (1 − p)

In a network the activations are stored dropped (ã), so the derivative of the
activation before the dropout is written from ã: a = ã (1 − p) where kept. For ReLU
no mask is needed there: kept and positive ⇔ ã > 0, and f'(a) = 0 everywhere else.
"""
import numpy as np

from ._jit import kernel
from ._activations import RELU, derivative_rule
from ._random import bits, drop_threshold


@kernel
def dropout_forward(A, rate, start):
    """A <- A ⊙ m / (1 − rate), in place (the stream ``start`` from random.stream)."""
    m, n = A.shape
    threshold = drop_threshold(rate)
    scale = A.dtype.type(1.0 / (1.0 - rate))
    zero = A.dtype.type(0)
    for j in range(n):
        for i in range(m):
            A[i, j] = A[i, j] * scale if bits(start, j * m + i) >= threshold else zero


@kernel
def dropout_backward(D, rate, start):
    """D <- D ⊙ m / (1 − rate), in place: the gradient through the dropout."""
    dropout_forward(D, rate, start)


@kernel
def dropout_activation_backward(code, A, D, rate, start):
    """D <- D ⊙ m / (1 − rate) ⊙ f'(a), in place, from the dropped output A = ã of f
    (a = ã (1 − rate) where kept); f is not softmax."""
    m, n = A.shape
    scale = D.dtype.type(1.0 / (1.0 - rate))
    zero = D.dtype.type(0)
    if code == RELU:
        for j in range(n):
            for i in range(m):
                D[i, j] = D[i, j] * scale if A[i, j] > zero else zero
        return
    threshold = drop_threshold(rate)
    keep = 1.0 - rate
    for j in range(n):
        for i in range(m):
            if bits(start, j * m + i) >= threshold:
                D[i, j] = D[i, j] * scale * derivative_rule(code, np.float64(A[i, j]) * keep)
            else:
                D[i, j] = zero
