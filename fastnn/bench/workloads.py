"""The reference workloads of the head-to-head (float32, Adam(lr=1e-3), shuffled
every epoch; a step is forward + backward + update of one minibatch)."""
from collections import namedtuple

import numpy as np

Workload = namedtuple("Workload", "name sizes loss batch samples")

WORKLOADS = {
    "bike": Workload("bike", (56, 64, 64, 1), "mse", 64, 16_384),
    "mnist": Workload("mnist", (784, 256, 128, 10), "softmax_ce", 128, 16_384),
    "wide": Workload("wide", (1024, 2048, 2048, 10), "softmax_ce", 512, 8_192),
}
LR = 1e-3


def data(w, seed=0):
    """The same random float32 data for every contender: X (n, d), y (n,) targets or
    integer classes."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((w.samples, w.sizes[0]), dtype=np.float32)
    if w.loss == "mse":
        y = (X[:, :8].sum(axis=1) / 3 + 0.1 * rng.standard_normal(w.samples)).astype(np.float32)
    else:
        y = rng.integers(0, w.sizes[-1], w.samples).astype(np.int64)
    return X, y


def steps(w):
    return w.samples // w.batch


def build_model(w, dtype="float32"):
    """fastnn's model of workload ``w``: ReLU hidden layers, a linear output with MSE or
    a softmax output with cross-entropy."""
    import fastnn

    s = w.sizes
    last = None if w.loss == "mse" else "softmax"
    layers = [fastnn.Dense(s[i], s[i + 1], activation="relu" if i < len(s) - 2 else last)
              for i in range(len(s) - 1)]
    return fastnn.Sequential(layers, loss="mse" if w.loss == "mse"
                             else "categorical_crossentropy", dtype=dtype, seed=0)
