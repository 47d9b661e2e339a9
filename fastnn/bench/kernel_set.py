"""Kernel sets whose cold compile the start-up benchmarks measure.

Kernels are compiled once per dtype and per plan (kernels._plan: the kinds of block, loss
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
