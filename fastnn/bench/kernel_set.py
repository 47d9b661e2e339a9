"""The whole kernel set the model layer compiles: fit (with validation) and predict of
a regressor and a classifier, in float32 and float64. Every optimizer, schedule,
remedy and activation shares these signatures, so this compiles all of them. Used by
the asv start-up benchmarks and scripts/compile_times.py."""

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


def compile_all():
    """Run SCRIPT in this process."""
    exec(compile(SCRIPT, "<fastnn kernel set>", "exec"), {})
