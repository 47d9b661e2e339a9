"""``fastnn compile`` / ``fastnn.compile()``: the kernels of the common configurations,
compiled ahead of time into Numba's cache (for an image build, or right after install),
so that a first fit loads them instead of pausing to compile.

What a model compiles (kernels/_passes.py): its forward and backward passes per pass plan
(BatchNorm, Dropout, parallel products) and dtype; its update per optimizer rule,
clipping and parallel pass; its training and inference loops per loss and plan. Every
activation, schedule, L1/L2 and hyperparameter is run-time data, and so are the network's
sizes and the pool's thread count. The common configurations are then: float32 and
float64; MSE (linear output), softmax with categorical and sigmoid with binary
cross-entropy; plain, BatchNorm, Dropout and both; the serial, parallel-products and
split plans (small and wide networks, small and large minibatches); every optimizer
rule with and without gradient-norm clipping — about a hundred compiles, a few minutes,
each announced on a progress line.
"""
import time

import numpy as np

from fastnn.kernels.contract import KERNEL_OF, OPTIMIZER_RULES

#: loss name -> the output activation it is used with
LOSSES = {"mse": None, "categorical_crossentropy": "softmax", "binary_crossentropy": "sigmoid"}
#: remedies -> (BatchNorm, dropout rate)
REMEDIES = {"plain": (False, 0.0), "BatchNorm": (True, 0.0), "Dropout": (False, 0.2),
            "BatchNorm+Dropout": (True, 0.2)}
#: plan -> (hidden widths, batch size) that make planned_for (fastnn.kernels.contract) pick it:
#: serial (small products), parallel (a widest layer of 2^15 weights), split (a small
#: network on minibatches with 2^19 multiply-adds)
PLANS = {"serial": ((8,), 16), "parallel": ((256, 128), 16), "split": ((128, 128), 32)}
#: the optimizers whose update passes differ (AdamW runs Adam's): one of each is compiled
OPTIMIZERS = tuple(rule.title for code, rule in enumerate(OPTIMIZER_RULES)
                   if KERNEL_OF[code] == code)
INPUTS, CLASSES, ROWS = 4, 3, 96


def configurations(dtypes=("float32", "float64")):
    """(label, build model, fit keyword arguments) of every configuration compiled."""
    from fastnn import optimizers
    from fastnn.layers import Activation, BatchNorm, Dense, Dropout
    from fastnn.model import Sequential

    def model_of(dtype, loss, remedies, hidden):
        norm, rate = REMEDIES[remedies]
        layers, width = [], INPUTS
        for units in hidden:
            if rate:
                layers.append(Dropout(rate))
            if norm:
                layers += [Dense(width, units), BatchNorm(units),
                           Activation("relu")]
            else:
                layers.append(Dense(width, units, activation="relu"))
            width = units
        outputs = 1 if loss == "mse" else CLASSES
        layers.append(Dense(width, outputs, activation=LOSSES[loss]))
        return lambda: Sequential(layers, loss=loss, dtype=dtype, seed=0)

    found = []
    for dtype in dtypes:
        for plan, (hidden, batch) in PLANS.items():
            for loss in LOSSES:
                for remedies in REMEDIES if plan != "split" else ("plain",):
                    found.append((f"{dtype} {plan} {loss} {remedies}",
                                  model_of(dtype, loss, remedies, hidden),
                                  {"batch_size": batch, "optimizer": optimizers.Adam}))
            for name in OPTIMIZERS:
                for clip in (None, 1.0):
                    if plan == "split":   # the serial plan's updates
                        continue
                    found.append((f"{dtype} {plan} {name}" + (" clip_norm" if clip else ""),
                                  model_of(dtype, "mse", "plain", hidden),
                                  {"batch_size": batch, "optimizer": getattr(optimizers, name),
                                   "clip_norm": clip}))
    return found


def _data(model):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((ROWS, INPUTS))
    if model.loss_name == "mse":
        return X, rng.standard_normal(ROWS)
    if model.loss_name == "categorical_crossentropy":
        return X, rng.integers(0, CLASSES, ROWS)
    return X, rng.integers(0, 2, (ROWS, CLASSES))


def compile_kernels(dtypes=("float32", "float64"), progress=print):
    """Compile (or find in the cache) the kernels of every common configuration; report
    each through ``progress(line)``. Returns the seconds taken."""
    from fastnn.compile_notice import cache_folder

    todo = configurations(dtypes)
    began = time.perf_counter()
    progress(f"compiling fastnn's kernels for {len(todo)} configurations into "
             f"{cache_folder()}")
    for i, (label, build, options) in enumerate(todo, 1):
        started = time.perf_counter()
        model = build()
        X, y = _data(model)
        options = dict(options, optimizer=options["optimizer"](1e-3))
        model.fit(X, y, epochs=1, verbose=0, validation_data=(X[:8], y[:8]), **options)
        model.predict(X)
        progress(f"[{i}/{len(todo)}] {label}: {time.perf_counter() - started:.1f} s")
    seconds = time.perf_counter() - began
    progress(f"done in {seconds:.0f} s")
    return seconds
