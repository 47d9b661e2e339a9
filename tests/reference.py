"""Slow, obviously-correct float64 references, written from the formulas of
docs/design.md independently of the kernels (columns are samples)."""
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
    if name == "exp":
        return np.exp(Z)
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
    if name == "exp":
        return np.exp(Z)
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
    if name == "poisson":   # half the Poisson deviance of the means P, as scikit-learn's
        deviance = np.where(T > 0, T * np.log(np.where(T > 0, T, 1) / P), 0) - T + P
        return deviance.mean(), (1 - T / P) / (m * n)
    raise ValueError(name)


def regularized(g, w, l1, l2):
    return g + l1 * np.sign(w) + l2 * w


def learning_rate(schedule, t):
    """The schedules' formulas, written out: schedule = (name, lr, *constants)."""
    name, lr = schedule[0], schedule[1]
    if name == "inverse_time":
        return lr / (1 + schedule[2] * t)
    if name == "step":
        return lr * schedule[3] ** (t // schedule[2])
    if name == "exponential":
        return lr * schedule[2] ** t
    total, warmup, min_lr = schedule[2:5]
    if t < warmup:
        return lr * t / warmup
    if t < total:
        return min_lr + (lr - min_lr) * (1 + np.cos(np.pi * (t - warmup) / (total - warmup))) / 2
    return min_lr


def clipped(g, clip_norm=None, clip_value=None):
    """Each element to ±clip_value, then the whole vector to norm clip_norm (PyTorch's
    clip_grad_norm_: factor max_norm / (norm + 1e-6) when below 1)."""
    if clip_value is not None:
        g = np.clip(g, -clip_value, clip_value)
    if clip_norm is not None:
        g = g * min(1.0, clip_norm / (np.sqrt((g * g).sum()) + 1e-6))
    return g


def optimizer_steps(name, p, grads, hp, segments, steps0=0, clip_norm=None, clip_value=None):
    """Apply the updates for each gradient in ``grads`` in turn; returns (p, state).
    ``segments`` is a list of (start, stop, l1, l2[, decays]); ``hp`` holds lr (a number
    or a schedule tuple for ``learning_rate``), decay and the optimizer's constants."""
    p = f64(p).copy()
    lr = hp["lr"]
    s1, s2 = np.zeros_like(p), np.zeros_like(p)
    wd = hp.get("weight_decay", 0.0)
    for t, g in enumerate(grads, start=steps0):
        g = f64(g).copy()
        decays = np.zeros_like(p)
        for start, stop, l1, l2, *decay in segments:
            g[start:stop] = regularized(g[start:stop], p[start:stop], l1, l2)
            decays[start:stop] = decay[0] if decay else 0.0
        g = clipped(g, clip_norm, clip_value)
        if isinstance(lr, tuple):
            lr_t = learning_rate(lr, t)
        else:
            lr_t = lr / (1 + hp.get("decay", 0.0) * t)
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
        elif name in ("adam", "adamw"):
            b1, b2 = hp["beta1"], hp["beta2"]
            p *= 1 - lr_t * wd * decays                       # decoupled decay first
            s1 = b1 * s1 + (1 - b1) * g
            s2 = b2 * s2 + (1 - b2) * g * g
            mhat, vhat = s1 / (1 - b1 ** (t + 1)), s2 / (1 - b2 ** (t + 1))
            p -= lr_t * mhat / (np.sqrt(vhat) + hp["eps"])
        elif name == "lion":
            b1, b2 = hp["beta1"], hp["beta2"]
            p *= 1 - lr_t * wd * decays                       # decoupled decay first
            p -= lr_t * np.sign(b1 * s1 + (1 - b1) * g)
            s1 = b2 * s1 + (1 - b2) * g
        elif name == "lamb":
            b1, b2 = hp["beta1"], hp["beta2"]
            s1 = b1 * s1 + (1 - b1) * g
            s2 = b2 * s2 + (1 - b2) * g * g
            mhat, vhat = s1 / (1 - b1 ** (t + 1)), s2 / (1 - b2 ** (t + 1))
            r = mhat / (np.sqrt(vhat) + hp["eps"]) + wd * decays * p
            for start, stop, *_ in segments:            # one trust ratio per tensor
                w_norm = np.linalg.norm(p[start:stop])
                r_norm = np.linalg.norm(r[start:stop])
                trust = w_norm / r_norm if w_norm > 0 and r_norm > 0 else 1.0
                p[start:stop] -= lr_t * trust * r[start:stop]
    return p, (s1, s2)


def splitmix64_keep(key, step, site, rate, count):
    """Dropout's keep mask, element by element, with Python's unbounded integers."""
    M, G = 2 ** 64, 0x9E3779B97F4A7C15

    def mix(z):
        z %= M
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % M
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % M
        return z ^ (z >> 31)
    start = mix(key + G * (mix(step) ^ site))
    threshold = int(rate * 2 ** 64)
    return np.array([mix(start + G * (e + 1)) >= threshold for e in range(count)])


def batchnorm_train(Z, gamma, beta, eps):
    """Training-mode batch normalization of each row of Z: (Y, Ẑ, mean, biased var)."""
    Z = f64(Z)
    mean = Z.mean(axis=1)
    var = ((Z - mean[:, None]) ** 2).mean(axis=1)
    Zhat = (Z - mean[:, None]) / np.sqrt(var[:, None] + eps)
    return f64(gamma)[:, None] * Zhat + f64(beta)[:, None], Zhat, mean, var


def batchnorm_backward(dY, Z, gamma, eps):
    """(dZ, dgamma, dbeta) through training-mode batch normalization, row by row with the
    explicit Jacobian J_jk = dy_j/dz_k = γ/σ (δ_jk − 1/n − ẑ_j ẑ_k / n)."""
    dY, Z = f64(dY), f64(Z)
    _, Zhat, _, var = batchnorm_train(Z, gamma, np.zeros_like(f64(gamma)), eps)
    n = Z.shape[1]
    dZ = np.empty_like(Z)
    for i in range(Z.shape[0]):
        h = Zhat[i]
        J = f64(gamma)[i] / np.sqrt(var[i] + eps) * (np.eye(n) - 1.0 / n - np.outer(h, h) / n)
        dZ[i] = J.T @ dY[i]
    return dZ, (dY * Zhat).sum(axis=1), dY.sum(axis=1)


def convolution(X, W, b, stride, padding):
    """PyTorch's Conv2d (cross-correlation) of X (n, c_in, h, w) by W (c_out, c_in, kh, kw),
    zero padding: a sum over the window, one output at a time."""
    X, W = f64(X), f64(W)
    (sh, sw), (ph, pw) = stride, padding
    n, _, h, w = X.shape
    c_out, _, kh, kw = W.shape
    Xp = np.pad(X, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    h_out, w_out = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    Y = np.empty((n, c_out, h_out, w_out))
    for oy in range(h_out):
        for ox in range(w_out):
            window = Xp[:, :, oy * sh:oy * sh + kh, ox * sw:ox * sw + kw]
            Y[:, :, oy, ox] = np.einsum("nchw,ochw->no", window, W) + f64(b)
    return Y


def max_pool(X, size, stride):
    """PyTorch's MaxPool2d (no padding, floor mode) of X (n, c, h, w)."""
    X = f64(X)
    (kh, kw), (sh, sw) = size, stride
    n, c, h, w = X.shape
    h_out, w_out = (h - kh) // sh + 1, (w - kw) // sw + 1
    Y = np.empty((n, c, h_out, w_out))
    for oy in range(h_out):
        for ox in range(w_out):
            Y[:, :, oy, ox] = X[:, :, oy * sh:oy * sh + kh, ox * sw:ox * sw + kw].max(axis=(2, 3))
    return Y
