"""CUDA twins of fastnn.kernels._batchnorm (same names, signatures and formulas; arrays
are device arrays, matrices (features × batch)).

Per-feature reductions run one thread per feature row, summing the batch in order in
float64 (as the CPU does); the elementwise passes run one thread per element.
"""
import math

import numpy as np

from .._activations import IDENTITY, RELU, SOFTMAX
from .._batchnorm import running_var_rates
from . import _config as config
from ._activations import _softmax_columns, bias_activation_forward, forward_rule
from ._backend import cuda


@cuda.jit(device=True)
def _row_moments(Z, i):
    """(mean, biased variance) of row i of Z in float64, shifted by its first column."""
    n = Z.shape[1]
    first = np.float64(Z[i, 0])
    s = 0.0
    ss = 0.0
    for j in range(n):
        d = np.float64(Z[i, j]) - first
        s += d
        ss += d * d
    shifted = s / n
    return first + shifted, max(ss / n - shifted * shifted, 0.0)


@cuda.jit
def _moments(Z, mean, var):
    i = cuda.grid(1)
    if i < Z.shape[0]:
        mean[i], var[i] = _row_moments(Z, i)


@cuda.jit
def _train_statistics(Y, eps, mean, istd, acc):
    """acc[:m], acc[m:2m] = μ, σ² (float64); mean = μ, istd = 1/√(σ² + ε) (Y's dtype)."""
    i = cuda.grid(1)
    m = Y.shape[0]
    if i < m:
        mu, var = _row_moments(Y, i)
        acc[i] = mu
        acc[m + i] = var
        mean[i] = mu
        istd[i] = 1.0 / math.sqrt(var + eps)


@cuda.jit
def _normalize(Y, gamma, beta, code, Zhat, mean, istd):
    i, j = cuda.grid(2)
    if i < Y.shape[0] and j < Y.shape[1]:
        h = (Y[i, j] - mean[i]) * istd[i]
        Zhat[i, j] = h
        y = gamma[i] * h + beta[i]
        if code == RELU:
            Y[i, j] = max(y, 0.0)
        else:
            Y[i, j] = forward_rule(code, np.float64(y))


@cuda.jit
def _running(running_mean, running_var, mean, var, momentum, var_keep, unbiased):
    i = cuda.grid(1)
    if i < running_mean.shape[0]:
        running_mean[i] = (1.0 - momentum) * running_mean[i] + momentum * mean[i]
        running_var[i] = var_keep * running_var[i] + momentum * var[i] * unbiased


@cuda.jit
def _inference_affine(gamma, beta, running_mean, running_var, eps, scale, shift):
    i = cuda.grid(1)
    if i < gamma.shape[0]:
        s = gamma[i] / math.sqrt(np.float64(running_var[i]) + eps)
        scale[i] = s
        shift[i] = beta[i] - running_mean[i] * s


@cuda.jit
def _scale_rows(Y, scale):
    i, j = cuda.grid(2)
    if i < Y.shape[0] and j < Y.shape[1]:
        Y[i, j] = Y[i, j] * scale[i]


@cuda.jit
def _backward_sums(D, Zhat, dgamma, dbeta, acc):
    """dβ = Σ_j dy, dγ = Σ_j dy ẑ; acc[:m], acc[m:2m] = their means (float64)."""
    i = cuda.grid(1)
    m, n = D.shape
    if i < m:
        s = 0.0
        sh = 0.0
        for j in range(n):
            dy = np.float64(D[i, j])
            s += dy
            sh += dy * Zhat[i, j]
        dbeta[i] = s
        dgamma[i] = sh
        acc[i] = s / n
        acc[m + i] = sh / n


@cuda.jit
def _backward_apply(D, Zhat, gamma, istd, acc):
    i, j = cuda.grid(2)
    m = D.shape[0]
    if i < m and j < D.shape[1]:
        k = gamma[i] * istd[i]
        D[i, j] = k * (D[i, j] - acc[i] - Zhat[i, j] * acc[m + i])


def batch_moments(Z, mean, var):
    """mean_i and the biased var_i of each row of Z over its columns (float64 outputs)."""
    blocks, threads = config.grid_1d(Z.shape[0])
    _moments[blocks, threads](Z, mean, var)


def batchnorm_forward(Y, gamma, beta, eps, code, Zhat, mean, istd, acc):
    """Training pass, in place over Y = Z: Ẑ = (Z − μ)/σ, Y = f(γ ⊙ Ẑ + β), keeping μ and
    1/σ per feature; acc[:m] and acc[m:2m] hold μ and the biased σ² (float64).
    Softmax (an output activation) is applied over each column after the affine step."""
    rows = config.grid_1d(Y.shape[0])
    _train_statistics[rows](Y, float(eps), mean, istd, acc)
    blocks, threads = config.grid_2d(*Y.shape)
    _normalize[blocks, threads](Y, gamma, beta, IDENTITY if code == SOFTMAX else code, Zhat,
                                mean, istd)
    if code == SOFTMAX:
        columns = config.grid_1d(Y.shape[1])
        _softmax_columns[columns](Y, Y, beta, False)


def update_running(running_mean, running_var, mean, var, momentum, n):
    """r̄ ← (1 − m) r̄ + m μ and v̄ ← (1 − m) v̄ + m σ² n/(n − 1) (unbiased), m = momentum;
    v̄ unchanged for n = 1."""
    blocks, threads = config.grid_1d(running_mean.shape[0])
    var_keep, unbiased = running_var_rates.py_func(float(momentum), n)
    _running[blocks, threads](running_mean, running_var, mean, var, float(momentum), var_keep,
                              unbiased)


def batchnorm_inference(Y, gamma, beta, running_mean, running_var, eps, code, scale, shift):
    """Inference pass, in place: Y = f(s ⊙ Z + t) with s = γ/√(v̄ + ε), t = β − r̄ s
    (s and t are written to ``scale`` and ``shift``)."""
    rows = config.grid_1d(Y.shape[0])
    _inference_affine[rows](gamma, beta, running_mean, running_var, float(eps), scale, shift)
    blocks, threads = config.grid_2d(*Y.shape)
    _scale_rows[blocks, threads](Y, scale)
    bias_activation_forward(Y, shift, code)


def batchnorm_backward(D, Zhat, gamma, istd, dgamma, dbeta, acc):
    """From D = dL/dY (in place, becoming dL/dZ): dγ = Σ_j D ⊙ Ẑ, dβ = Σ_j D,
    D = γ/σ ⊙ (D − dβ/n − Ẑ ⊙ dγ/n)."""
    rows = config.grid_1d(D.shape[0])
    _backward_sums[rows](D, Zhat, dgamma, dbeta, acc)
    blocks, threads = config.grid_2d(*D.shape)
    _backward_apply[blocks, threads](D, Zhat, gamma, istd, acc)
