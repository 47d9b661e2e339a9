"""Slow, obviously-correct float64 references, written from the notes' formulas
independently of the kernels (columns are samples)."""
import numpy as np


def f64(a):
    return np.asarray(a, dtype=np.float64)


def activation(name, Z):
    Z = f64(Z)
    if name == "identity":
        return Z.copy()
    if name == "relu":
        return np.maximum(Z, 0)
    if name == "sigmoid":
        return 1 / (1 + np.exp(-Z))
    if name == "tanh":
        return np.tanh(Z)
    if name == "softplus":
        return np.log1p(np.exp(-np.abs(Z))) + np.maximum(Z, 0)
    if name == "softmax":
        E = np.exp(Z - Z.max(axis=0))
        return E / E.sum(axis=0)
    raise ValueError(name)


def derivative(name, Z):
    """f'(Z) elementwise (not for softmax), from the input Z."""
    Z = f64(Z)
    if name == "identity":
        return np.ones_like(Z)
    if name == "relu":
        return (Z > 0).astype(np.float64)
    if name == "sigmoid":
        s = 1 / (1 + np.exp(-Z))
        return s * (1 - s)
    if name == "tanh":
        return 1 - np.tanh(Z) ** 2
    if name == "softplus":
        return 1 / (1 + np.exp(-Z))
    raise ValueError(name)


def softmax_jacobian(a):
    """J[i, k] = dy_i/dx_k = y_i (δ_ik − y_k), element by element."""
    n = len(a)
    J = np.empty((n, n))
    for i in range(n):
        for k in range(n):
            J[i, k] = a[i] * ((1.0 if i == k else 0.0) - a[k])
    return J


def softmax_backward(A, dA):
    """Column by column Jᵀ · dA with the explicit Jacobian."""
    A, dA = f64(A), f64(dA)
    return np.stack([softmax_jacobian(A[:, j]).T @ dA[:, j] for j in range(A.shape[1])], axis=1)


def losses(name, P, T):
    """(value, gradient with respect to P)."""
    P, T = f64(P), f64(T)
    m, n = P.shape
    if name == "mse":
        return ((P - T) ** 2).mean(), 2 * (P - T) / (m * n)
    if name == "binary_crossentropy":
        value = -(T * np.log(P) + (1 - T) * np.log(1 - P)).mean()
        return value, (P - T) / (P * (1 - P)) / (m * n)
    if name == "categorical_crossentropy":
        return -(T * np.log(P)).sum() / n, -T / P / n
    raise ValueError(name)


def regularized(g, w, l1, l2):
    return g + l1 * np.sign(w) + l2 * w


def optimizer_steps(name, p, grads, hp, segments, steps0=0):
    """Apply the updates for each gradient in ``grads`` in turn; returns (p, state).
    ``segments`` is a list of (start, stop, l1, l2)."""
    p = f64(p).copy()
    lr, decay = hp["lr"], hp.get("decay", 0.0)
    s1, s2 = np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, start=steps0):
        g = f64(g).copy()
        for start, stop, l1, l2 in segments:
            g[start:stop] = regularized(g[start:stop], p[start:stop], l1, l2)
        lr_t = lr / (1 + decay * t)
        if name == "sgd":
            mu = hp.get("momentum", 0.0)
            if mu == 0:
                p -= lr_t * g
            else:
                s1 = mu * s1 + g
                p -= lr_t * (g + mu * s1 if hp.get("nesterov") else s1)
        elif name == "adagrad":
            s1 += g * g
            p -= lr_t * g / (np.sqrt(s1) + hp["eps"])
        elif name == "rmsprop":
            s1 = hp["rho"] * s1 + (1 - hp["rho"]) * g * g
            p -= lr_t * g / (np.sqrt(s1) + hp["eps"])
        elif name == "adam":
            b1, b2 = hp["beta1"], hp["beta2"]
            s1 = b1 * s1 + (1 - b1) * g
            s2 = b2 * s2 + (1 - b2) * g * g
            mhat, vhat = s1 / (1 - b1 ** (t + 1)), s2 / (1 - b2 ** (t + 1))
            p -= lr_t * mhat / (np.sqrt(vhat) + hp["eps"])
    return p, (s1, s2)
