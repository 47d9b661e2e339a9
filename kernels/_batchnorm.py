"""Batch normalization (Ioffe and Szegedy 2015), with PyTorch ``BatchNorm1d`` semantics.

Per feature i (a row of the (features × batch) matrix Z), over the n samples of a batch:

    training   μ_i = 1/n Σ_j z_ij,  σ²_i = 1/n Σ_j (z_ij − μ_i)²      (biased)
               ẑ = (z − μ_i) / √(σ²_i + ε),  y = γ_i ẑ + β_i,  a = f(y)
               r̄_i ← (1 − m) r̄_i + m μ_i,  v̄_i ← (1 − m) v̄_i + m σ²_i n/(n − 1)
    inference  y = γ_i (z − r̄_i) / √(v̄_i + ε) + β_i,  a = f(y)
    backward   from dY = dL/dy:  dγ_i = Σ_j dy ẑ,  dβ_i = Σ_j dy,
               dz = γ_i/σ_i (dy − dβ_i/n − ẑ dγ_i/n)

Moments and the backward sums accumulate in float64 (``acc``, 2 × features); μ and
1/σ are kept for the backward pass in the model's dtype, as are ẑ and the running
statistics. The activation f is applied in the same pass that writes y.
"""
import math

import numpy as np

from ._jit import kernel
from ._activations import RELU, SOFTMAX, activation_forward, bias_activation_forward, forward_rule


@kernel
def batch_moments(Z, mean, var):
    """mean_i and the biased var_i of each row of Z over its columns (float64 outputs),
    in one pass over Z shifted by its first column (no cancellation)."""
    m, n = Z.shape
    for i in range(m):
        mean[i] = 0.0
        var[i] = 0.0
    for j in range(n):
        for i in range(m):
            d = np.float64(Z[i, j]) - np.float64(Z[i, 0])
            mean[i] += d
            var[i] += d * d
    for i in range(m):
        shifted = mean[i] / n
        mean[i] = Z[i, 0] + shifted
        var[i] = max(var[i] / n - shifted * shifted, 0.0)


@kernel
def batchnorm_forward(Y, gamma, beta, eps, code, Zhat, mean, istd, acc):
    """Training pass, in place over Y = Z: Ẑ = (Z − μ)/σ, Y = f(γ ⊙ Ẑ + β), keeping μ and
    1/σ per feature; acc[:m] and acc[m:2m] hold μ and the biased σ² (float64)."""
    m, n = Y.shape
    mu, var = acc[:m], acc[m:2 * m]
    batch_moments(Y, mu, var)
    for i in range(m):
        mean[i] = mu[i]
        istd[i] = 1.0 / math.sqrt(var[i] + eps)
    zero = Y.dtype.type(0)
    if code == RELU:
        for j in range(n):
            for i in range(m):
                h = (Y[i, j] - mean[i]) * istd[i]
                Zhat[i, j] = h
                Y[i, j] = max(gamma[i] * h + beta[i], zero)
    else:   # forward_rule leaves softmax's input as it is: the columns follow
        for j in range(n):
            for i in range(m):
                h = (Y[i, j] - mean[i]) * istd[i]
                Zhat[i, j] = h
                Y[i, j] = forward_rule(code, np.float64(gamma[i] * h + beta[i]))
        if code == SOFTMAX:
            activation_forward(np.int64(SOFTMAX), Y, Y)   # not a literal: one compile


@kernel
def update_running(running_mean, running_var, mean, var, momentum, n):
    """r̄ ← (1 − m) r̄ + m μ and v̄ ← (1 − m) v̄ + m σ² n/(n − 1) (unbiased), m = momentum;
    v̄ unchanged for n = 1 (one sample has no variance: n/(n − 1) would make it NaN)."""
    var_keep, unbiased = running_var_rates(momentum, n)
    for i in range(running_mean.shape[0]):
        running_mean[i] = (1.0 - momentum) * running_mean[i] + momentum * mean[i]
        running_var[i] = var_keep * running_var[i] + momentum * var[i] * unbiased


@kernel(inline="always")
def running_var_rates(momentum, n):
    """(a, u) with v̄ ← a v̄ + m σ² u: (1 − m, n/(n − 1)), or (1, 0) for n = 1."""
    if n > 1:
        return 1.0 - momentum, n / (n - 1.0)
    return 1.0, 0.0


@kernel
def batchnorm_inference(Y, gamma, beta, running_mean, running_var, eps, code, scale, shift):
    """Inference pass, in place: Y = f(s ⊙ Z + t) with s = γ/√(v̄ + ε), t = β − r̄ s
    (s and t are written to ``scale`` and ``shift``)."""
    m, n = Y.shape
    for i in range(m):
        s = gamma[i] / math.sqrt(np.float64(running_var[i]) + eps)
        scale[i] = s
        shift[i] = beta[i] - running_mean[i] * s
    for j in range(n):
        for i in range(m):
            Y[i, j] = Y[i, j] * scale[i]
    bias_activation_forward(Y, shift, code)


@kernel
def batchnorm_backward(D, Zhat, gamma, istd, dgamma, dbeta, acc):
    """From D = dL/dY (in place, becoming dL/dZ): dγ = Σ_j D ⊙ Ẑ, dβ = Σ_j D,
    D = γ/σ ⊙ (D − dβ/n − Ẑ ⊙ dγ/n)."""
    m, n = D.shape
    sum_dy, sum_dyh = acc[:m], acc[m:2 * m]
    for i in range(m):
        sum_dy[i] = 0.0
        sum_dyh[i] = 0.0
    for j in range(n):
        for i in range(m):
            dy = np.float64(D[i, j])
            sum_dy[i] += dy
            sum_dyh[i] += dy * Zhat[i, j]
    cast = D.dtype.type
    for i in range(m):
        dbeta[i] = sum_dy[i]
        dgamma[i] = sum_dyh[i]
        sum_dy[i] = sum_dy[i] / n            # now the means of dy and dy ẑ
        sum_dyh[i] = sum_dyh[i] / n
    for j in range(n):
        for i in range(m):
            k = gamma[i] * istd[i]
            D[i, j] = k * (D[i, j] - cast(sum_dy[i]) - Zhat[i, j] * cast(sum_dyh[i]))
