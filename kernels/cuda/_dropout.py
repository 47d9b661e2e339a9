"""CUDA twins of fastnn.kernels._dropout: inverted dropout with the counter-based mask
of kernels.cuda._random (the same bits as on the CPU; nothing stored). One thread per
element; element e = j·rows + i of a (features × batch) matrix, as on the CPU."""
import numpy as np

from .._activations import RELU
from . import _config as config
from ._activations import derivative_rule
from ._backend import cuda
from ._random import bits, drop_threshold


@cuda.jit
def _dropout(A, rate, scale, start):
    i, j = cuda.grid(2)
    m, n = A.shape
    if i < m and j < n:
        if bits(start, j * m + i) >= drop_threshold(rate):
            A[i, j] = A[i, j] * scale
        else:
            A[i, j] = 0.0


@cuda.jit
def _dropout_activation_backward(code, A, D, rate, scale, start):
    i, j = cuda.grid(2)
    m, n = A.shape
    if i < m and j < n:
        if code == RELU:
            if A[i, j] > 0.0:
                D[i, j] = D[i, j] * scale
            else:
                D[i, j] = 0.0
        elif bits(start, j * m + i) >= drop_threshold(rate):
            D[i, j] = D[i, j] * scale * derivative_rule(code, np.float64(A[i, j]) * (1.0 - rate))
        else:
            D[i, j] = 0.0


def _scalars(A, rate, start):
    """(rate, scale, start) as kernel arguments: a float64, A's float type (so that a
    float32 product rounds as on the CPU) and a uint64."""
    return float(rate), A.dtype.type(1.0 / (1.0 - rate)), np.uint64(start)


def dropout_forward(A, rate, start):
    """A <- A ⊙ m / (1 − rate), in place (the stream ``start`` from random.stream)."""
    blocks, threads = config.grid_2d(*A.shape)
    _dropout[blocks, threads](A, *_scalars(A, rate, start))


def dropout_backward(D, rate, start):
    """D <- D ⊙ m / (1 − rate), in place: the gradient through the dropout."""
    dropout_forward(D, rate, start)


def dropout_activation_backward(code, A, D, rate, start):
    """D <- D ⊙ m / (1 − rate) ⊙ f'(a), in place, from the dropped output A = ã of f
    (a = ã (1 − rate) where kept); f is not softmax."""
    blocks, threads = config.grid_2d(*A.shape)
    _dropout_activation_backward[blocks, threads](code, A, D, *_scalars(D, rate, start))
