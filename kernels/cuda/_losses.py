"""CUDA twins of fastnn.kernels._losses. Each value is summed on the device into a
one-element float64 accumulator (``acc``) with atomic adds, so a training loop can
keep summing across minibatches and copy it to the host once per epoch; the public
twins (same names and signatures as on the CPU) return the value. Each takes the
CPU's per-sample factors ``c`` (kernels._losses): a device array, used where
``weighted``."""
import math

import numpy as np

from .._losses import BINARY_CROSSENTROPY, CATEGORICAL_CROSSENTROPY, MSE, POISSON, argmax_match
from .._rules import LOSS_RULES, compiled
from . import _config as config
from ._backend import cuda

#: the elements' loss terms and gradients (kernels._rules), as device functions
_terms = compiled(LOSS_RULES, cuda.jit(device=True))
squared_error = _terms.squared_error
binary_crossentropy_term = _terms.binary_crossentropy_term
categorical_crossentropy_term = _terms.categorical_crossentropy_term
sigmoid_crossentropy_term = _terms.sigmoid_crossentropy_term
poisson_term = _terms.poisson_term
poisson_mean_term = _terms.poisson_mean_term


@cuda.jit(device=True)
def _factor(c, weighted, j):
    return c[j] if weighted else 1.0


@cuda.jit
def _mse(P, T, G, acc, weight, c, weighted):
    i, j = cuda.grid(2)
    m, n = P.shape
    if i < m and j < n:
        cj = _factor(c, weighted, j)
        loss, G[i, j] = squared_error(P[i, j], T[i, j], 2.0 / (m * n) * cj)
        cuda.atomic.add(acc, 0, weight * loss * cj / (m * n))


@cuda.jit
def _binary_crossentropy(P, T, G, acc, weight, eps, c, weighted):
    i, j = cuda.grid(2)
    m, n = P.shape
    if i < m and j < n:
        cj = _factor(c, weighted, j)
        loss, G[i, j] = binary_crossentropy_term(P[i, j], T[i, j], eps, cj / (m * n))
        cuda.atomic.add(acc, 0, weight * loss * cj / (m * n))


@cuda.jit
def _categorical_crossentropy(P, T, G, acc, weight, eps, c, weighted):
    i, j = cuda.grid(2)
    m, n = P.shape
    if i < m and j < n:
        cj = _factor(c, weighted, j)
        loss, G[i, j] = categorical_crossentropy_term(P[i, j], T[i, j], eps, n / cj)
        if loss != 0.0:
            cuda.atomic.add(acc, 0, weight * loss * cj / n)


@cuda.jit
def _softmax_cross_entropy(Z, T, P, G, acc, weight, c, weighted):
    """One thread per column; P may be Z."""
    j = cuda.grid(1)
    m, n = Z.shape
    if j < n:
        zmax = -math.inf
        tsum = 0.0
        for i in range(m):
            zmax = max(zmax, Z[i, j])
            tsum += T[i, j]
        s = 0.0
        tz = 0.0
        for i in range(m):
            z = Z[i, j] - zmax
            tz += T[i, j] * z
            e = math.exp(z)
            P[i, j] = e
            s += e
        cj = _factor(c, weighted, j)
        cuda.atomic.add(acc, 0, weight * (tsum * math.log(s) - tz) * cj / n)
        for i in range(m):
            p = P[i, j] / s
            P[i, j] = p
            G[i, j] = (p - T[i, j]) * cj / n


@cuda.jit
def _sigmoid_binary_cross_entropy(Z, T, P, G, acc, weight, c, weighted):
    i, j = cuda.grid(2)
    m, n = Z.shape
    if i < m and j < n:
        cj = _factor(c, weighted, j)
        loss, P[i, j], G[i, j] = sigmoid_crossentropy_term(Z[i, j], T[i, j],
                                                                  cj / (m * n))
        cuda.atomic.add(acc, 0, weight * loss * cj / (m * n))


@cuda.jit
def _poisson(P, T, G, acc, weight, eps, c, weighted):
    i, j = cuda.grid(2)
    m, n = P.shape
    if i < m and j < n:
        cj = _factor(c, weighted, j)
        loss, G[i, j] = poisson_mean_term(P[i, j], T[i, j], eps, cj / (m * n))
        cuda.atomic.add(acc, 0, weight * loss * cj / (m * n))


@cuda.jit
def _exp_poisson(Z, T, P, G, acc, weight, c, weighted):
    i, j = cuda.grid(2)
    m, n = Z.shape
    if i < m and j < n:
        cj = _factor(c, weighted, j)
        loss, P[i, j], G[i, j] = poisson_term(Z[i, j], T[i, j], cj / (m * n))
        cuda.atomic.add(acc, 0, weight * loss * cj / (m * n))


_argmax_match = cuda.jit(device=True)(argmax_match.py_func)


@cuda.jit
def _count_correct(code, P, T, count):
    j = cuda.grid(1)
    m, n = P.shape
    if j < n:
        if code == CATEGORICAL_CROSSENTROPY:
            if _argmax_match(P, T, j):
                cuda.atomic.add(count, 0, 1)
        elif code == BINARY_CROSSENTROPY:
            c = 0
            for i in range(m):
                if (P[i, j] > 0.5) == (T[i, j] > 0.5):
                    c += 1
            cuda.atomic.add(count, 0, c)


def _eps(P):
    return 1e-7 if P.dtype == np.float32 else 1e-15


_unweighted = []


def _factors(c):
    """(the factors, whether there are any): a one-element stand-in without ``c``."""
    if c is not None:
        return (cuda.to_device(np.ascontiguousarray(c)) if isinstance(c, np.ndarray) else c), True
    if not _unweighted:
        _unweighted.append(cuda.to_device(np.ones(1)))
    return _unweighted[0], False


def accumulate_loss(code, P, T, G, acc, weight=1.0, c=None):
    """acc[0] += weight · loss(P, T), weighted per sample by ``c``; G = dL/dP (on the
    device)."""
    blocks, threads = config.grid_2d(*P.shape)
    factors = _factors(c)
    if code == MSE:
        _mse[blocks, threads](P, T, G, acc, weight, *factors)
    elif code == BINARY_CROSSENTROPY:
        _binary_crossentropy[blocks, threads](P, T, G, acc, weight, _eps(P), *factors)
    elif code == POISSON:
        _poisson[blocks, threads](P, T, G, acc, weight, _eps(P), *factors)
    else:
        _categorical_crossentropy[blocks, threads](P, T, G, acc, weight, _eps(P), *factors)


def accumulate_fused(code, Z, T, P, G, acc, weight=1.0, c=None):
    """acc[0] += weight · loss from the logits Z, weighted per sample by ``c``; P =
    probabilities, G = dL/dZ."""
    factors = _factors(c)
    if code == CATEGORICAL_CROSSENTROPY:
        blocks, threads = config.grid_1d(Z.shape[1])
        _softmax_cross_entropy[blocks, threads](Z, T, P, G, acc, weight, *factors)
    elif code == POISSON:
        blocks, threads = config.grid_2d(*Z.shape)
        _exp_poisson[blocks, threads](Z, T, P, G, acc, weight, *factors)
    else:
        blocks, threads = config.grid_2d(*Z.shape)
        _sigmoid_binary_cross_entropy[blocks, threads](Z, T, P, G, acc, weight, *factors)


def accumulate_correct(code, P, T, count):
    """count[0] += correct predictions (0 for regression)."""
    if code != MSE:
        blocks, threads = config.grid_1d(P.shape[1])
        _count_correct[blocks, threads](code, P, T, count)


def _value(launch):
    acc = cuda.to_device(np.zeros(1))
    launch(acc)
    return float(acc.copy_to_host()[0])


def mse(P, T, G, c=None):
    return _value(lambda acc: accumulate_loss(MSE, P, T, G, acc, c=c))


def binary_crossentropy(P, T, G, c=None):
    return _value(lambda acc: accumulate_loss(BINARY_CROSSENTROPY, P, T, G, acc, c=c))


def categorical_crossentropy(P, T, G, c=None):
    return _value(lambda acc: accumulate_loss(CATEGORICAL_CROSSENTROPY, P, T, G, acc, c=c))


def loss_value_and_grad(code, P, T, G):
    return _value(lambda acc: accumulate_loss(code, P, T, G, acc))


def softmax_cross_entropy(Z, T, P, G, c=None):
    return _value(lambda acc: accumulate_fused(CATEGORICAL_CROSSENTROPY, Z, T, P, G, acc, c=c))


def poisson(P, T, G, c=None):
    return _value(lambda acc: accumulate_loss(POISSON, P, T, G, acc, c=c))


def exp_poisson(Z, T, P, G, c=None):
    return _value(lambda acc: accumulate_fused(POISSON, Z, T, P, G, acc, c=c))


def sigmoid_binary_cross_entropy(Z, T, P, G, c=None):
    return _value(lambda acc: accumulate_fused(BINARY_CROSSENTROPY, Z, T, P, G, acc, c=c))


def count_correct(code, P, T):
    count = cuda.to_device(np.zeros(1, dtype=np.int64))
    accumulate_correct(code, P, T, count)
    return int(count.copy_to_host()[0])
