"""The reference workloads of the head-to-head (float32, shuffled every epoch; a step is
forward + backward + update of one minibatch).

Plain workloads: ReLU hidden layers, Adam(lr=1e-3). A regularized workload has the same
layers with each hidden Dense followed by BatchNorm (PyTorch BatchNorm1d semantics:
batch mean and biased variance in training, running statistics updated with the
unbiased variance), ReLU and inverted Dropout(0.2); its hidden Dense layers have no bias
(BatchNorm's beta replaces it). It trains with AdamW(lr=1e-3, weight_decay=0.01,
decoupled as PyTorch's, on the Dense weights only) after clipping the global gradient
norm to 1.0 every step (PyTorch clip_grad_norm_).
"""
from collections import namedtuple

import numpy as np

Workload = namedtuple("Workload", "name sizes loss batch samples regularized")
Workload.__new__.__defaults__ = (False,)

WORKLOADS = {
    "bike": Workload("bike", (56, 64, 64, 1), "mse", 64, 16_384),
    "mnist": Workload("mnist", (784, 256, 128, 10), "softmax_ce", 128, 16_384),
    "mnist-regularized": Workload("mnist-regularized", (784, 256, 128, 10), "softmax_ce", 128,
                                  16_384, True),
    "wide": Workload("wide", (1024, 2048, 2048, 10), "softmax_ce", 512, 8_192),
}
LR = 1e-3
#: the regularized workloads' settings
BN_MOMENTUM, BN_EPS, DROPOUT, WEIGHT_DECAY, CLIP_NORM = 0.1, 1e-5, 0.2, 0.01, 1.0


def data(w, seed=0):
    """The same random float32 data for every contender: X (n, d), y (n,) targets or
    integer classes. It depends on the sizes, loss and samples only (so mnist-regularized
    trains on mnist's data)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((w.samples, w.sizes[0]), dtype=np.float32)
    if w.loss == "mse":
        y = (X[:, :8].sum(axis=1) / 3 + 0.1 * rng.standard_normal(w.samples)).astype(np.float32)
    else:
        y = rng.integers(0, w.sizes[-1], w.samples).astype(np.int64)
    return X, y


def steps(w):
    return w.samples // w.batch


def build_model(w, dtype="float32", *, batchnorm=None, dropout=None):
    """fastnn's model of workload ``w``: ReLU hidden layers (each Dense followed by
    BatchNorm, ReLU and Dropout when ``w.regularized``; ``batchnorm`` and ``dropout``, a
    rate, override that), a linear output with MSE or a softmax output with
    cross-entropy."""
    import fastnn

    batchnorm = w.regularized if batchnorm is None else batchnorm
    dropout = (DROPOUT if w.regularized else 0.0) if dropout is None else dropout
    s = w.sizes
    layers = []
    for i in range(len(s) - 2):
        if batchnorm:
            layers += [fastnn.Dense(s[i], s[i + 1]),
                       fastnn.BatchNorm(s[i + 1], momentum=BN_MOMENTUM, eps=BN_EPS),
                       fastnn.Activation("relu")]
        else:
            layers.append(fastnn.Dense(s[i], s[i + 1], activation="relu"))
        if dropout:
            layers.append(fastnn.Dropout(dropout))
    layers.append(fastnn.Dense(s[-2], s[-1], activation=None if w.loss == "mse" else "softmax"))
    return fastnn.Sequential(layers, loss="mse" if w.loss == "mse"
                             else "categorical_crossentropy", dtype=dtype, seed=0)


def fit_options(w):
    """The keyword arguments of ``model.fit`` for workload ``w`` beyond the data, epochs
    and batch size: the optimizer, and the gradient clipping of a regularized workload.
    ``model.train_step`` takes the same keywords."""
    import fastnn

    if w.regularized:
        return {"optimizer": fastnn.AdamW(lr=LR, weight_decay=WEIGHT_DECAY),
                "clip_norm": CLIP_NORM}
    return {"optimizer": fastnn.Adam(lr=LR)}
