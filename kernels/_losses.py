"""Losses: each returns its value (float64) and writes its gradient.

P, Z, T and G are (outputs, batch); T holds targets (one-hot rows for classes).
With m outputs and a batch of n:

    mse                         L = 1/(m n) sum (p - t)^2             G = 2 (p - t) / (m n)
    binary_crossentropy         L = -1/(m n) sum t log p + (1-t) log(1-p)
                                                        G = (p - t) / (p (1 - p) m n)
    categorical_crossentropy    L = -1/n sum t log p                  G = -t / (p n)
    softmax_cross_entropy       P = softmax(Z) per column, L as above, G = (P - T) / n
    sigmoid_binary_cross_entropy  P = sigmoid(Z), L as above,        G = (P - T) / (m n)
    poisson                     L = 1/(m n) sum p − t log p − (t − t log t)
                                (half the Poisson deviance, p ≥ eps)   G = (1 − T/P) / (m n)
    exp_poisson                 P = e^Z, L as above from z = log p    G = (P - T) / (m n)

Each takes an optional last argument ``c`` (batch,): per-sample factors, the loss
Σ_j c_j L_j / n and each column's gradient times c_j — a weighted mean with
c_j = w_j · n / Σ w (without ``c``, every c_j = 1). The fused pairs take logits and never
form log(0): they use the log-sum-exp and log1p(e^-|z|) forms, finite for logits of any
size. Probabilities fed to the unfused cross-entropies are clipped to [eps, 1 - eps]
(categorical and Poisson means: to eps from below; eps = 1e-7 for float32, 1e-15 for
float64) before the logarithm. Every G may alias the input P or Z.
"""
import math

import numpy as np

from ._jit import kernel
from ._rules import LOSS_RULES, compiled

#: the elements' loss terms and gradients (kernels._rules), inlined
_terms = compiled(LOSS_RULES, kernel(inline="always"))
squared_error = _terms.squared_error
binary_crossentropy_term = _terms.binary_crossentropy_term
categorical_crossentropy_term = _terms.categorical_crossentropy_term
sigmoid_crossentropy_term = _terms.sigmoid_crossentropy_term
poisson_term = _terms.poisson_term
poisson_mean_term = _terms.poisson_mean_term

MSE, BINARY_CROSSENTROPY, CATEGORICAL_CROSSENTROPY, POISSON = range(4)

#: name -> integer code understood by every kernel.
LOSSES = {
    "mse": MSE,
    "binary_crossentropy": BINARY_CROSSENTROPY,
    "categorical_crossentropy": CATEGORICAL_CROSSENTROPY,
    "poisson": POISSON,
}


@kernel(inline="always")
def factor(c, j):
    """c[j], or 1 without per-sample factors (c None: compiled away)."""
    if c is None:
        return 1.0
    return np.float64(c[j])


@kernel
def _clip_eps(P):
    return 1e-7 if P.itemsize == 4 else 1e-15


@kernel
def mse(P, T, G, c=None):
    """L = mean over all elements of (p - t)^2; G = 2 (p - t) / (m n)."""
    m, n = P.shape
    scale = 2.0 / (m * n)
    total = 0.0
    for j in range(n):
        cj = factor(c, j)
        for i in range(m):
            loss, G[i, j] = squared_error(np.float64(P[i, j]), np.float64(T[i, j]), scale * cj)
            total += loss * cj
    return total / (m * n)


@kernel
def binary_crossentropy(P, T, G, c=None):
    """L = -mean(t log p + (1 - t) log(1 - p)) over all elements, p clipped."""
    m, n = P.shape
    eps = _clip_eps(P)
    scale = 1.0 / (m * n)
    total = 0.0
    for j in range(n):
        cj = factor(c, j)
        for i in range(m):
            loss, G[i, j] = binary_crossentropy_term(np.float64(P[i, j]), np.float64(T[i, j]),
                                                     eps, scale * cj)
            total += loss * cj
    return total * scale


@kernel
def categorical_crossentropy(P, T, G, c=None):
    """L = -1/n sum t log p (p clipped below at eps); G = -t / (p n)."""
    m, n = P.shape
    eps = _clip_eps(P)
    total = 0.0
    for j in range(n):
        cj = factor(c, j)
        for i in range(m):
            loss, G[i, j] = categorical_crossentropy_term(np.float64(P[i, j]),
                                                          np.float64(T[i, j]), eps, n / cj)
            total += loss * cj
    return total / n


@kernel
def softmax_cross_entropy(Z, T, P, G, c=None):
    """P = softmax(Z); L = -1/n sum t log P via log-sum-exp; G = (P - T) / n.

    P may be Z (each logit is read before its probability overwrites it).
    """
    m, n = Z.shape
    total = 0.0
    for j in range(n):
        zmax = -np.inf
        tsum = 0.0
        for i in range(m):
            zmax = max(zmax, np.float64(Z[i, j]))
            tsum += T[i, j]
        s = 0.0
        tz = 0.0
        for i in range(m):
            z = Z[i, j] - zmax
            tz += T[i, j] * z
            e = math.exp(z)
            P[i, j] = e
            s += e
        cj = factor(c, j)
        total += (tsum * math.log(s) - tz) * cj  # -sum t (z - zmax - log s)
        inv = 1.0 / s
        for i in range(m):
            p = P[i, j] * inv
            P[i, j] = p
            G[i, j] = (p - T[i, j]) * cj / n
    return total / n


@kernel
def sigmoid_binary_cross_entropy(Z, T, P, G, c=None):
    """P = sigmoid(Z); L = mean of max(z, 0) - t z + log1p(e^-|z|); G = (P - T)/(m n)."""
    m, n = Z.shape
    scale = 1.0 / (m * n)
    total = 0.0
    for j in range(n):
        cj = factor(c, j)
        for i in range(m):
            loss, P[i, j], G[i, j] = sigmoid_crossentropy_term(
                np.float64(Z[i, j]), np.float64(T[i, j]), scale * cj)
            total += loss * cj
    return total * scale


@kernel
def poisson(P, T, G, c=None):
    """L = mean of half the Poisson deviance of the means P (clipped below at eps);
    G = (1 − t/p)/(m n)."""
    m, n = P.shape
    eps = _clip_eps(P)
    scale = 1.0 / (m * n)
    total = 0.0
    for j in range(n):
        cj = factor(c, j)
        for i in range(m):
            loss, G[i, j] = poisson_mean_term(np.float64(P[i, j]), np.float64(T[i, j]), eps,
                                              scale * cj)
            total += loss * cj
    return total * scale


@kernel
def exp_poisson(Z, T, P, G, c=None):
    """P = e^Z (the Poisson means from their logarithms); L = mean of half the Poisson
    deviance, p − t z − (t − t log t); G = (P − T)/(m n). P may be Z."""
    m, n = Z.shape
    scale = 1.0 / (m * n)
    total = 0.0
    for j in range(n):
        cj = factor(c, j)
        for i in range(m):
            loss, P[i, j], G[i, j] = poisson_term(np.float64(Z[i, j]), np.float64(T[i, j]),
                                                  scale * cj)
            total += loss * cj
    return total * scale


@kernel
def loss_value_and_grad(code, P, T, G):
    """Dispatch on the loss code: value of the loss on probabilities/values P, G = dL/dP."""
    if code == MSE:
        return mse(P, T, G)
    if code == BINARY_CROSSENTROPY:
        return binary_crossentropy(P, T, G)
    if code == POISSON:
        return poisson(P, T, G)
    return categorical_crossentropy(P, T, G)


@kernel(inline="always")
def argmax_match(P, T, j):
    """1 if column j's largest p and largest t are in the same row, else 0 (also the
    CUDA twin's device function)."""
    ip = 0
    it = 0
    for i in range(1, P.shape[0]):
        if P[i, j] > P[ip, j]:
            ip = i
        if T[i, j] > T[it, j]:
            it = i
    return 1 if ip == it else 0


@kernel
def correct_categorical(P, T):
    """Columns whose largest p and largest t are in the same row (argmax match)."""
    correct = 0
    for j in range(P.shape[1]):
        correct += argmax_match(P, T, j)
    return correct


@kernel
def correct_binary(P, T):
    """Elements with p > 1/2 == t > 1/2."""
    m, n = P.shape
    correct = 0
    for j in range(n):
        for i in range(m):
            correct += (P[i, j] > 0.5) == (T[i, j] > 0.5)
    return correct


@kernel
def count_correct(code, P, T):
    """Correct predictions in a batch: argmax match (categorical) or p > 1/2 == t > 1/2
    per element (binary); 0 for regression."""
    if code == CATEGORICAL_CROSSENTROPY:
        return correct_categorical(P, T)
    if code == BINARY_CROSSENTROPY:
        return correct_binary(P, T)
    return 0
