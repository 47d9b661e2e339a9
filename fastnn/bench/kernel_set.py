"""Kernel sets whose cold compile the start-up benchmarks measure.

Kernels are compiled once per dtype and per plan (kernels/_plan.py: the kinds of block, loss
and update a model uses), so a set is a list of models to fit (with validation) and
predict, in float32 and float64:

- SCRIPT, the reference set (0.1's): a regressor (MSE, Adam) and a classifier (softmax
  with cross-entropy, Adam) — the models of the reference workloads;
- EVERY_KIND, five models that between them use every kernel the model layer can run:
  every optimizer, loss (fused or not), activation, BatchNorm, Dropout, both clippings
  and a schedule.

Used by the asv start-up benchmarks and scripts/compile_times.py.
"""

SCRIPT = """
import numpy as np, fastnn
rng = np.random.default_rng(0)
X = rng.standard_normal((2048, 56), dtype=np.float32); y = rng.standard_normal(2048)
for dtype in ("float32", "float64"):
    for loss, last, target in (("mse", None, y), ("categorical_crossentropy", "softmax",
                               rng.integers(0, 4, 2048))):
        model = fastnn.Sequential([fastnn.Dense(56, 64, activation="relu"),
                                   fastnn.Dense(64, 1 if last is None else 4, activation=last)],
                                  loss=loss, dtype=dtype, seed=0)
        model.fit(X, target, epochs=1, batch_size=64, validation_data=(X[:100], target[:100]),
                  verbose=0)
        model.predict(X)
"""

EVERY_KIND = """
import numpy as np, fastnn
from fastnn import Activation, BatchNorm, Dense, Dropout
rng = np.random.default_rng(0)
X = rng.standard_normal((512, 20), dtype=np.float32)
y, labels, pairs = (rng.standard_normal(512), rng.integers(0, 3, 512),
                    rng.integers(0, 2, (512, 2)).astype(np.float32))
models = [  # (layers, loss, targets, optimizer, fit options)
    (lambda: [Dense(20, 16, activation="relu"), Dense(16, 1)], "mse", y,
     lambda: fastnn.Adam(1e-3), {}),
    (lambda: [Dense(20, 16, activation=None), BatchNorm(16), Activation("relu"),
              Dense(16, 3, activation="softmax")], "categorical_crossentropy", labels,
     lambda: fastnn.SGD(fastnn.CosineDecay(0.05, total_steps=20), momentum=0.9, nesterov=True),
     {}),
    (lambda: [Dropout(0.2), Dense(20, 16, activation="tanh"), Dense(16, 2, activation="sigmoid")],
     "binary_crossentropy", pairs, lambda: fastnn.RMSprop(1e-3), {"clip_norm": 1.0}),
    (lambda: [Dense(20, 16, activation=None), BatchNorm(16), Activation("softplus"), Dropout(0.3),
              Dense(16, 3, activation="sigmoid")], "categorical_crossentropy", labels,
     lambda: fastnn.Adagrad(1e-2), {"clip_value": 0.5}),
    (lambda: [Dense(20, 16, activation="softplus", l1=1e-4), Dense(16, 1, activation="tanh")],
     "mse", y, lambda: fastnn.Lamb(1e-3, weight_decay=0.01), {"clip_norm": 1.0}),
    (lambda: [Dense(20, 8, activation="tanh", l2=1e-3), Dense(8, 2, activation="softmax")],
     "binary_crossentropy", pairs, lambda: fastnn.AdamW(1e-3, weight_decay=0.01), {}),
]
for dtype in ("float32", "float64"):
    for layers, loss, target, optimizer, options in models:
        model = fastnn.Sequential(layers(), loss=loss, dtype=dtype, seed=0)
        model.fit(X, target, epochs=1, batch_size=64, validation_data=(X[:100], target[:100]),
                  optimizer=optimizer(), verbose=0, **options)
        model.predict(X)
"""

SETS = {"kernel-set": SCRIPT, "every-kind": EVERY_KIND}


def compile_all(name="kernel-set"):
    """Run the set ``name`` in this process."""
    exec(compile(SETS[name], f"<fastnn {name}>", "exec"), {})


# ------------------------------------------------------- what a new configuration costs
#: a 56-64-64-1 regressor trained by Adam (one epoch, with validation, then predict), and
#: the changes of it measured by ``scripts/compile_times.py changes``: each in a fresh
#: process whose cache holds the base model's kernels
CHANGE = """
import numpy as np, fastnn
from fastnn import Activation, BatchNorm, Dense, Dropout
change = {change!r}
rng = np.random.default_rng(0)
X = rng.standard_normal((2048, 56)).astype(np.float32); y = rng.standard_normal(2048)
act = "tanh" if change == "activation" else "relu"
layers, loss, t = [Dense(56, 64, act), Dense(64, 64, act), Dense(64, 1)], "mse", y
if change == "loss":
    layers[-1], loss = Dense(64, 3, "softmax"), "categorical_crossentropy"
    t = rng.integers(0, 3, 2048)
elif change == "depth":
    layers = [Dense(56, 64, act), Dense(64, 1)]
elif change == "BatchNorm + Dropout":
    layers = [Dense(56, 64), BatchNorm(64), Activation("relu"), Dropout(0.2),
              Dense(64, 64, "relu"), Dense(64, 1)]
model = fastnn.Sequential(layers, loss=loss, seed=0,
                          dtype="float64" if change == "float64" else "float32")
model.fit(X, t, epochs=1, batch_size=64, verbose=0, validation_data=(X[:200], t[:200]),
          optimizer=fastnn.SGD(1e-2, momentum=0.9) if change == "optimizer" else fastnn.Adam(),
          clip_norm=1.0 if change == "clipping" else None)
model.predict(X)
"""
CHANGES = ("activation", "loss", "optimizer", "clipping", "depth", "float64",
           "BatchNorm + Dropout")

#: first fits of common models, each measured from an empty cache
FIRST_FITS = {
    "the README's example": CHANGE.format(change="depth"),
    "fastnn train bike": """
from fastnn.cli import main
main(["train", "bike", "--epochs", "1", "--quiet"])
""",
    "MLPClassifier on wine": """
import fastnn
from sklearn.datasets import load_wine
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
X, y = load_wine(return_X_y=True)
make_pipeline(StandardScaler(),
              fastnn.MLPClassifier(max_iter=50, random_state=0, dtype="float32")).fit(X, y)
""",
    "MLPRegressor((64, 64)) on bike": """
import fastnn
from fastnn.bench.sklearn_swap import load
X, y = load("bike")
fastnn.MLPRegressor(hidden_layer_sizes=(64, 64), max_iter=2, random_state=0,
                    dtype="float32").fit(X, y)
""",
    "BatchNorm+Dropout+AdamW": CHANGE.format(change="BatchNorm + Dropout").replace(
        "fastnn.Adam()", "fastnn.AdamW(1e-3, weight_decay=0.01)"),
    "mnist (parallel plan)": """
from fastnn.bench.workloads import WORKLOADS, build_model, data, fit_options
w = WORKLOADS["mnist"]; X, y = data(w)
build_model(w).fit(X[:4096], y[:4096], epochs=1, batch_size=w.batch, verbose=0,
                   **fit_options(w))
""",
}


def seconds_in_fresh_process(code, cache):
    """Wall seconds of ``code`` in a fresh process whose Numba cache is ``cache``."""
    import os
    import subprocess
    import sys

    timed = ("import contextlib, io, time, warnings\nwarnings.simplefilter('ignore')\n"
             "began = time.perf_counter()\nwith contextlib.redirect_stdout(io.StringIO()):\n"
             f"    exec(compile({code!r}, '<fastnn change>', 'exec'), {{}})\n"
             "print(time.perf_counter() - began)")
    out = subprocess.run([sys.executable, "-c", timed], capture_output=True, text=True,
                         check=True, env=dict(os.environ, NUMBA_CACHE_DIR=cache))
    return float(out.stdout.strip().splitlines()[-1])
